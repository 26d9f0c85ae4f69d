"""What one case asks of a Ray cluster, per task: a leaf of the suite schema, not part of the spec hash
(where a case runs does not change its result), and `--ray-resources`, checked against the same names."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    field_validator,
)

from .errors import ConfigError

BUILTIN = ("CPU", "GPU", "memory", "object_store_memory")  # Ray's own resource names


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cpus: Optional[PositiveFloat] = None  # None: 1; also the case's torch CPU threads
    gpus: Optional[NonNegativeFloat] = None  # None: 1 when the device wants a GPU, else 0
    custom: dict[str, PositiveFloat] = Field(default_factory=dict)  # Ray custom resources, e.g. {trainer: 1}

    @field_validator("custom")
    @classmethod
    def _not_builtin(cls, custom: dict[str, float]) -> dict[str, float]:
        builtin = _builtin_among(custom)
        if builtin:
            raise ValueError(f"{builtin!r} is a built-in Ray resource; ask for it with cpus/gpus, not custom")
        return custom


def _builtin_among(names: Iterable[str]) -> Optional[str]:
    return next(iter(sorted(set(names) & set(BUILTIN))), None)


def parse_resources(text: Optional[str]) -> dict[str, float]:
    """`trainer=1,accelerator_type_a100=0.5`: Ray custom resources, each a name and a positive amount."""
    resources: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, _, amount = (part.strip() for part in item.partition("="))
        try:
            value = float(amount)
        except ValueError:
            value = 0.0
        if not name or value <= 0 or _builtin_among([name]):
            raise ConfigError(f"--ray-resources {text!r} is not a list of custom resources with positive amounts "
                              "(CPU and GPU come from the suite's `resources`); write e.g. --ray-resources trainer=1")
        resources[name] = value
    return resources

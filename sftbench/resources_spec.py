"""What one case asks of a Ray cluster, per task: a leaf of the suite schema, not part of the spec hash
(where a case runs does not change its result)."""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, field_validator

BUILTIN = ("CPU", "GPU", "memory", "object_store_memory")  # Ray's own resource names


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cpus: Optional[PositiveFloat] = None  # None: 1; also the case's torch CPU threads
    gpus: Optional[NonNegativeFloat] = None  # None: 1 when the device wants a GPU, else 0
    custom: dict[str, PositiveFloat] = Field(default_factory=dict)  # Ray custom resources, e.g. {trainer: 1}

    @field_validator("custom")
    @classmethod
    def _not_builtin(cls, custom: dict[str, float]) -> dict[str, float]:
        builtin = sorted(set(custom) & set(BUILTIN))
        if builtin:
            raise ValueError(f"{builtin[0]!r} is a built-in Ray resource; ask for it with cpus/gpus, not custom")
        return custom

"""The suite's sweep and selection syntax (a leaf, beside the schema that uses it): which values a
sweep key may take, the `depth` strategy entry, and `select:` (chosen on validation, never on test)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import short_repr

# A sweep: dotted key -> the values it takes (cases expand to the product; suite/sweeps.py)
SweepValues = list[Any]
DEPTH = "depth"  # a strategies entry that expands, per backbone, to the probe, last_k 1..n-1 and full


def sweep_lists(sweep: dict[str, Any], allowed_words: tuple[str, ...] = ()) -> dict[str, Any]:
    for key, values in sweep.items():
        if isinstance(values, str) and values in allowed_words:
            continue
        if not isinstance(values, list) or not values:
            words = " or ".join(repr(w) for w in allowed_words)
            raise ValueError(f"sweep key {key!r} takes a non-empty list of values"
                             + (f" (or {words})" if words else "") + f", not {short_repr(values)}")
        if len({repr(v) for v in values}) != len(values):
            raise ValueError(f"sweep key {key!r} lists a value twice ({short_repr(values)}); list each value once")
    return sweep


def check_strategy_sweep(name: str, params: dict[str, Any], sweep: dict[str, Any],
                         check: Callable[[str, dict[str, Any]], None]) -> None:
    """Each swept value through the catalog's check of the strategy's parameters (ValueError: the fix)."""
    for key, values in sweep.items():
        if key in params:
            raise ValueError(f"strategy {name!r} sets {key!r} in both params and sweep; keep one")
        for value in [] if values == "all" else values:
            try:
                check(name, {**params, key: value})
            except ValueError as err:
                raise ValueError(f"sweep {key}={short_repr(value)}: {err}") from None


TEST_SCORED = ("top1", "macro_f1")  # metrics of the test split, which never picks a sweep point


class SelectSpec(BaseModel):
    """Choose each sweep group's best point on the validation split (suite/cases.py groups them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = "val_top1"
    over: list[str] = Field(default_factory=list)  # swept training keys chosen over; empty: every swept key
    refit: bool = False  # retrain the chosen point on train + val, score test once (suite/cases.py)

    @field_validator("metric")
    @classmethod
    def _validation_metric(cls, metric: str) -> str:
        if metric in TEST_SCORED:
            raise ValueError(f"metric {metric!r} is scored on the test split, which never picks a sweep point; "
                             "use val_top1")
        if metric != "val_top1":
            raise ValueError(f"no split provides a metric {short_repr(metric)}; use val_top1 (top-1 on the "
                             "validation split)")
        return metric

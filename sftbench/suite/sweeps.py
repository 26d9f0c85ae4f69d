"""Sweeps: training keys and strategy parameters that take lists of values.

A suite's `sweep:` (and an override's, for the cases it matches) names training hyperparameters by
dotted key, `optimizer.lr: [0.003, 0.01, 0.03]`; a strategy entry's `sweep:` names its parameters,
`{name: last_k, sweep: {k: [1, 2, 3]}}`. Every case runs at each point of the product, and its id
names the point (`...-last_k-k3-lr0.01`), so ids stay readable and each point keeps its own spec
hash; a suite without sweeps expands exactly as before.
"""
from __future__ import annotations

import copy
import itertools
import re
import typing
from typing import Any

from pydantic import BaseModel

from ..backbones.stages import count_stages
from ..errors import ConfigError, did_you_mean
from ..schema import DEPTH, BackboneSpec, StrategySpec, TrainSpec

Point = tuple[tuple[str, Any], ...]  # ((dotted key, value), ...), keys sorted
SHORT_NAMES = {"optimizer.lr": "lr", "optimizer.weight_decay": "wd", "optimizer.momentum": "mom",
               "optimizer.name": "opt", "schedule.name": "sched", "schedule.warmup_epochs": "warmup",
               "epochs": "ep", "batch_size": "bs", "label_smoothing": "ls"}
NOT_SWEPT = ("seeds", "resources")  # seeds are the replicates, not a hyperparameter; resources place a case


def leaf_keys(model: type[BaseModel] = TrainSpec, prefix: str = "") -> list[str]:
    """Every dotted key of a training spec that holds a value (nested models walked into)."""
    keys = []
    for name, field in model.model_fields.items():
        nested = _model_type(field.annotation)
        if name in NOT_SWEPT:
            continue
        keys += leaf_keys(nested, f"{prefix}{name}.") if nested else [f"{prefix}{name}"]
    return keys


def _model_type(annotation: Any) -> Any:
    candidates = [annotation, *typing.get_args(annotation)]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def check_keys(sweep: dict[str, Any], where: str) -> None:
    known = leaf_keys()
    for key in sweep:
        if key not in known:
            raise ConfigError(f"{where}.{key}: no training hyperparameter is called {key!r}"
                              f"{did_you_mean(key, known)}; sweep one of {', '.join(known)}")


def points(sweep: dict[str, list[Any]]) -> list[Point]:
    """The product of the values, keys in sorted order; one empty point without a sweep."""
    keys = sorted(sweep)
    return [tuple(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))]


def apply(train: dict[str, Any], point: Point) -> dict[str, Any]:
    """A copy of a training spec's dict with the point's values set at their dotted keys."""
    updated = copy.deepcopy(train)
    for key, value in point:
        *parents, leaf = key.split(".")
        target = updated
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return updated


def value_text(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)
    return re.sub(r"[^A-Za-z0-9_.-]+", "", text)


def point_label(point: Point) -> str:
    """`lr0.01-wd0.0001`: how the point shows in a case id."""
    return "-".join(f"{SHORT_NAMES.get(key, key.rsplit('.', 1)[-1])}{value_text(value)}" for key, value in point)


def strategy_points(spec: StrategySpec, stages: int) -> list[StrategySpec]:
    """One strategy per point of its own sweep (`all`: 1 to the backbone's `stages`)."""
    if not spec.sweep:
        return [spec]
    sweep = {key: list(range(1, stages + 1)) if values == "all" else values for key, values in spec.sweep.items()}
    out = []
    for point in points(sweep):
        params = {**spec.params, **dict(point)}
        label_id = f"{spec.id}-{point_label(point)}" if spec.id else None
        out.append(StrategySpec(name=spec.name, id=label_id, params=params))
    return out


def depth_strategies(stages: int) -> list[StrategySpec]:
    """`depth`: the probe (k = 0), last_k for k = 1 .. stages - 1, and full (every stage)."""
    return ([StrategySpec(name="linear_probe")] + [StrategySpec(name="last_k", params={"k": k}) for k in range(1, stages)]
            + [StrategySpec(name="full")])


def backbone_strategies(entries: list[StrategySpec], backbone: BackboneSpec, source: str) -> list[StrategySpec]:
    """The matrix's strategies for one backbone: `depth` and strategy sweeps expanded, and every
    last_k's k checked against the backbone's stages (built without weights: no download)."""
    def stages() -> int:
        return count_stages(backbone)

    out: list[StrategySpec] = []
    for entry in entries:
        for key, values in entry.sweep.items():
            if values == "all" and (entry.name, key) != ("last_k", "k"):
                raise ConfigError(f"{source}: strategy {entry.name!r} sweep {key}: 'all' means every stage and "
                                  "works for last_k's k only; list the values instead")
        needs_stages = entry.name == DEPTH or "all" in entry.sweep.values()
        expanded = depth_strategies(stages()) if entry.name == DEPTH else strategy_points(
            entry, stages() if needs_stages else 0)
        out += expanded
    for strategy in out:
        k = strategy.params.get("k")
        if strategy.name == "last_k" and isinstance(k, int) and k > stages():
            raise ConfigError(f"{source}: strategy {strategy.label!r}: k={k} exceeds the {stages()} stages of "
                              f"backbone {backbone.label!r}; use 1 <= k <= {stages()}")
    return out

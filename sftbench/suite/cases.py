"""A suite's cases: the matrix minus excludes, overrides merged in, stable ids and spec hashes."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import ValidationError

from ..errors import ConfigError, did_you_mean
from ..limits import MAX_CASES
from ..schema import (
    BackboneSpec,
    SelectSpec,
    DatasetSpec,
    StrategySpec,
    Suite,
    Thresholds,
    TrainSpec,
)
from ..strategies.lookup import build_strategy
from .messages import format_validation_error
from .selectors import check_selector, selects
from .sweeps import Point, apply, backbone_strategies, check_keys, point_label, points

SPEC_HASH_VERSION = 1


@dataclass(frozen=True)
class Case:
    suite: str
    backbone: BackboneSpec
    dataset: DatasetSpec
    strategy: StrategySpec
    train: TrainSpec
    seed: int
    thresholds: Thresholds = field(default_factory=Thresholds, compare=False)
    sweep: Point = ()  # the training sweep's point this case runs at (its values are in `train`)
    select: Optional[SelectSpec] = field(default=None, compare=False)  # the suite's selection, if any
    refit: bool = False  # the chosen point retrained on train + val (`refit_case`), scored once on test
    case_id: str = field(init=False)  # without the seed: seeds of one case pool in baselines
    spec_hash: str = field(init=False)

    def __post_init__(self) -> None:
        case_id = f"{self.backbone.label}-{self.dataset.label}-{self.strategy.label}"
        if self.sweep:
            case_id += f"-{point_label(self.sweep)}"
        if self.refit:
            case_id += "-refit"
        object.__setattr__(self, "case_id", case_id)
        object.__setattr__(self, "spec_hash", spec_hash(self.normalised_spec()))

    @property
    def run_key(self) -> str:
        """One seed of one case: the unit the runner executes and the store records."""
        return f"{self.case_id}-seed{self.seed}"

    def normalised_spec(self) -> dict[str, Any]:
        """Everything that can change a result; labels, data location and seed list excluded."""
        return {
            "hash_version": SPEC_HASH_VERSION,
            "backbone": _without_neutral(self.backbone.model_dump(exclude={"id"}), BACKBONE_HASH_NEUTRAL),
            "dataset": _without_neutral(self.dataset.model_dump(exclude={"id", "root"}), DATASET_HASH_NEUTRAL),
            "strategy": {"name": self.strategy.name, "params": resolved_strategy_params(self.strategy)},
            "train": _hashed_train(self.train),
        }

    def to_record(self) -> dict[str, Any]:
        record = {
            "backbone": self.backbone.model_dump(mode="json"),
            "dataset": self.dataset.model_dump(mode="json"),
            "strategy": self.strategy.model_dump(mode="json", exclude={"sweep"}),
            "train": self.train.model_dump(mode="json", exclude={"seeds"}),
        }
        if self.sweep:
            record["sweep"] = dict(self.sweep)
        if self.select is not None:
            record["select"] = {"metric": self.select.metric, "over": self.select_keys, "group": self.sweep_group}
            if self.select.refit:  # absent otherwise: the records of suites without refit stay as they were
                record["select"]["refit"] = True
            if self.refit:
                record["select"]["refit_of"] = self.case_id.removesuffix("-refit")
        return record

    @property
    def select_keys(self) -> list[str]:
        """The swept training keys this case's selection chooses over."""
        keys = [key for key, _ in self.sweep]
        return [key for key in keys if key in self.select.over] if self.select and self.select.over else keys

    @property
    def sweep_group(self) -> str:
        """The case id without the keys chosen over: every point of one group competes on validation."""
        rest = tuple((key, value) for key, value in self.sweep if key not in self.select_keys)
        base = f"{self.backbone.label}-{self.dataset.label}-{self.strategy.label}"
        return f"{base}-{point_label(rest)}" if rest else base


# Fields added after hashes were first published: left out of the hash at their default, so the
# cases that never set them keep their hashes (and their baselines); a non-default value counts.
HASH_NEUTRAL_DEFAULTS = {"tf32": True}
DATASET_HASH_NEUTRAL = {"val_size": None, "shots": None, "split_seed": None}
BACKBONE_HASH_NEUTRAL = {"stage": None, "init_seed": None}


def _without_neutral(dumped: dict[str, Any], neutral: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in dumped.items() if key not in neutral or value != neutral[key]}


def _hashed_train(train: Any) -> dict[str, Any]:
    # seeds and resources (where a case runs) do not change a seed's result
    return _without_neutral(train.model_dump(exclude={"seeds", "resources"}), HASH_NEUTRAL_DEFAULTS)


def resolved_strategy_params(strategy: StrategySpec) -> dict[str, Any]:
    """Parameters with every default filled in (and the effective BN policy), so a changed
    default changes the hash of the cases that relied on it."""
    built = build_strategy(strategy.name, strategy.params)
    return {**built.params.model_dump(), "bn": built.bn}


def spec_hash(normalised: dict[str, Any]) -> str:
    blob = json.dumps(normalised, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass
class _Resolved:
    train: TrainSpec
    thresholds: Thresholds
    sweep: dict[str, list[Any]]  # the suite's sweep with matching overrides' sweeps merged in
    sweep_origin: dict[str, tuple[Any, ...]]  # where each swept key's values come from, for errors


def _resolved(suite: Suite, b: BackboneSpec, d: DatasetSpec, s: StrategySpec, source: str) -> _Resolved:
    """Defaults with every matching override deep-merged in, in file order."""
    train, thresholds = suite.defaults.model_dump(), suite.thresholds.model_dump()
    sweep, origin = dict(suite.sweep), {key: ("sweep",) for key in suite.sweep}
    last_train = last_thresholds = None
    for index, override in enumerate(suite.overrides):
        if selects(override.match, b, d, s):
            train = _deep_merge(train, override.set)
            thresholds = _deep_merge(thresholds, override.thresholds)
            sweep.update(override.sweep)
            origin.update({key: ("overrides", index, "sweep") for key in override.sweep})
            last_train = index if override.set else last_train
            last_thresholds = index if override.thresholds else last_thresholds
    return _Resolved(
        _validated(TrainSpec, train, source, ("overrides", last_train, "set"), ("defaults",), last_train),
        _validated(Thresholds, thresholds, source, ("overrides", last_thresholds, "thresholds"), ("thresholds",),
                   last_thresholds), sweep, origin)


def _at_point(resolved: _Resolved, point: Point, source: str) -> TrainSpec:
    if not point:
        return resolved.train
    try:
        return TrainSpec.model_validate(apply(resolved.train.model_dump(), point))
    except ValidationError as err:
        key = ".".join(map(str, err.errors()[0]["loc"]))
        where = resolved.sweep_origin.get(key, ("sweep",))
        raise ConfigError(format_validation_error(err, source, prefix=where, root=TrainSpec)) from None


def _validated(model: Any, data: dict[str, Any], source: str, override_loc: tuple[Any, ...],
               default_loc: tuple[Any, ...], override_index: Optional[int]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        prefix = override_loc if override_index is not None else default_loc
        raise ConfigError(format_validation_error(err, source, prefix=prefix, root=model)) from None


def expand(
    suite: Suite,
    *,
    source: str = "<suite>",
    seeds: Optional[list[int]] = None,
    epochs: Optional[int] = None,
) -> list[Case]:
    """The matrix minus excludes, with overrides applied and sweeps expanded; `seeds`/`epochs`
    override every case."""
    m = suite.matrix
    strategies = {b.label: backbone_strategies(m.strategies, b, source) for b in m.backbones}
    derived = [s for mine in strategies.values() for s in mine]
    check_keys(suite.sweep, f"{source}: sweep")
    for i, override in enumerate(suite.overrides):
        check_selector(override.match, m, derived, f"{source}: overrides[{i}].match")
        check_keys(override.sweep, f"{source}: overrides[{i}].sweep")
    for i, selector in enumerate(suite.exclude):
        check_selector(selector, m, derived, f"{source}: exclude[{i}]")
    cases: list[Case] = []
    limit = MAX_CASES.value
    for b in m.backbones:
        for d in m.datasets:
            for s in strategies[b.label]:
                if any(selects(x, b, d, s) for x in suite.exclude):
                    continue
                resolved = _resolved(suite, b, d, s, source)
                _check_strategy_fits_data(s, d, source)
                # counted before a point is built: 3 keys x 100 values would be 10**6 cases and minutes
                adding = math.prod(map(len, resolved.sweep.values())) * len(seeds if seeds is not None else resolved.train.seeds)
                if len(cases) + adding > limit:
                    raise ConfigError(MAX_CASES.exceeded(f"{source}:", f"expands to more than {len(cases) + adding:,} "
                                                         "cases (backbones x datasets x strategies x sweep x seeds)"))
                for point in points(resolved.sweep):
                    train = _at_point(resolved, point, source)
                    if epochs is not None:
                        train = train.model_copy(update={"epochs": epochs})
                    for seed in seeds if seeds is not None else train.seeds:
                        cases.append(Case(suite.name, b, d, s, train, seed, resolved.thresholds, point, suite.select))
    _check_unique(cases, source)
    if suite.select is not None:
        _check_selection(suite, cases, source)
    return cases


def _check_selection(suite: Suite, cases: list[Case], source: str) -> None:
    swept = {key for case in cases for key, _ in case.sweep}
    for key in suite.select.over:
        if key not in swept:
            raise ConfigError(f"{source}: select.over: {key!r} is not swept by any case"
                              f"{did_you_mean(key, sorted(swept))}; sweep it or leave it out of `over`")
    for case in cases:
        d = case.dataset
        if suite.select.refit and d.shots is not None:
            raise ConfigError(f"{source}: select.refit: dataset {d.label!r} draws `shots` per class, whose training "
                              "and validation images do not make one pool to retrain on; drop refit or use train_size")
        if d.val_size is None and (d.val_fraction == 0 or d.shots is not None):
            raise ConfigError(f"{source}: select.metric: {suite.select.metric} needs a validation split, but "
                              f"dataset {case.dataset.label!r} has none; give it a val_size (or, without shots, a val_fraction)")


def _check_strategy_fits_data(strategy: StrategySpec, dataset: DatasetSpec, source: str) -> None:
    try:
        build_strategy(strategy.name, strategy.params).check_data(augment=dataset.augment)
    except ConfigError as err:
        raise ConfigError(f"{source}: strategy {strategy.label!r} with dataset {dataset.label!r}: {err}") from None


def _check_unique(cases: list[Case], source: str) -> None:
    seen: dict[str, Case] = {}
    for case in cases:
        other = seen.get(case.run_key)
        if other is not None:
            what = "the same case twice" if other.spec_hash == case.spec_hash else "two different cases with one id"
            raise ConfigError(
                f"{source}: the matrix yields {what} ({case.case_id!r}); remove the repeated entry "
                "or give one of them a distinct `id:`"
            )
        seen[case.run_key] = case


def refit_case(case: Case) -> Case:
    """The chosen point retrained on its training and validation images together (VTAB's protocol):
    the same seeded order, with the validation share folded back into training."""
    d = case.dataset
    if d.val_size is not None:
        train_size = d.train_size + d.val_size if d.train_size is not None else None
        pooled = d.model_copy(update={"val_size": None, "train_size": train_size, "val_fraction": 0.0})
    else:
        pooled = d.model_copy(update={"val_fraction": 0.0})
    return dataclasses.replace(case, dataset=pooled, refit=True)

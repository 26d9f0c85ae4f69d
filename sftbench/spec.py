"""Suite schema: YAML -> validated `Suite` -> expanded `Case`s with stable ids and spec hashes.

Pure: no torch work happens here beyond asking the registries whether a name exists.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from . import names
from .errors import ConfigError, did_you_mean
from .validation import format_validation_error

SPEC_HASH_VERSION = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- training hyperparameters ("defaults" and per-case overrides) -------------------------------


class OptimizerSpec(Strict):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: PositiveFloat = 0.01
    momentum: float = Field(0.9, ge=0.0, lt=1.0)  # sgd only
    weight_decay: NonNegativeFloat = 0.0
    nesterov: bool = False


class ScheduleSpec(Strict):
    name: Literal["constant", "cosine"] = "cosine"
    warmup_epochs: NonNegativeFloat = 0.0  # linear warm-up of the learning rate, in epochs


class TrainSpec(Strict):
    epochs: PositiveInt = 1
    batch_size: PositiveInt = 32
    eval_batch_size: Optional[PositiveInt] = None  # None: 2 x batch_size
    optimizer: OptimizerSpec = OptimizerSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    image_size: Optional[PositiveInt] = None  # None: the backbone's pretrained input size
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip_norm: Optional[PositiveFloat] = None
    max_steps_per_epoch: Optional[PositiveInt] = None  # cap for smoke runs
    timing_warmup_steps: NonNegativeInt = 2  # first train steps left out of throughput
    deterministic: bool = True  # deterministic kernels; disables cudnn.benchmark
    channels_last: bool = False  # NHWC memory format for model and batches (faster convs with AMP)
    compile: Optional[Literal["default", "reduce-overhead", "max-autotune"]] = None  # torch.compile mode
    feature_cache: bool = True  # probes train the head on cached frozen-backbone features
    seeds: list[NonNegativeInt] = Field(default_factory=lambda: [0], min_length=1)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds {seeds} repeat a value; list each seed once")
        return seeds


# --- the matrix axes ------------------------------------------------------------------------------


class WeightsFile(Strict):
    file: str


def _shorthand(value: Any) -> Any:
    """Matrix entries may be written as a bare name."""
    return {"name": value} if isinstance(value, str) else value


def _slug_params(params: dict[str, Any]) -> str:
    return "-".join(f"{k}{v}" for k, v in sorted(params.items()))


class BackboneSpec(Strict):
    name: str  # timm model name, or "torchvision:<name>"
    weights: Union[Literal["pretrained", "random"], WeightsFile] = "pretrained"
    id: Optional[str] = None
    kwargs: dict[str, Any] = Field(default_factory=dict)  # extra create_model arguments

    @field_validator("name")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        names.check_backbone(name)
        return name

    @field_validator("weights", mode="before")
    @classmethod
    def _weights_form(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"file"}:
            return value
        if value in ("pretrained", "random"):
            return value
        raise ValueError(f"weights {value!r} is not valid; use 'pretrained', 'random' or {{file: PATH}}")

    @property
    def label(self) -> str:
        if self.id:
            return self.id
        base = self.name.split(":", 1)[-1]
        if self.weights == "pretrained":
            return base
        return f"{base}-{'random' if self.weights == 'random' else 'file'}"


class DatasetSpec(Strict):
    name: str
    id: Optional[str] = None
    root: Optional[str] = None  # None: --data-root, else the sftbench cache
    train_size: Optional[PositiveInt] = None  # training pool (train + validation) drawn with the seed
    test_size: Optional[PositiveInt] = None  # fixed test subset, the same for every seed
    val_fraction: float = Field(0.1, ge=0.0, le=0.5)
    augment: Literal["none", "flip", "crop_flip"] = "none"
    placement: Literal["auto", "device", "host"] = "auto"  # uint8 images on the accelerator, or streamed
    options: dict[str, Any] = Field(default_factory=dict)  # dataset-specific (synthetic: sizes)

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        names.check_dataset(name)
        return name

    @property
    def label(self) -> str:
        return self.id or self.name


class StrategySpec(Strict):
    name: str
    id: Optional[str] = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_strategy(self) -> "StrategySpec":
        names.check_strategy(self.name, self.params)
        return self

    @property
    def label(self) -> str:
        if self.id:
            return self.id
        return f"{self.name}-{_slug_params(self.params)}" if self.params else self.name


class Matrix(Strict):
    backbones: list[BackboneSpec] = Field(min_length=1)
    datasets: list[DatasetSpec] = Field(min_length=1)
    strategies: list[StrategySpec] = Field(min_length=1)

    @field_validator("backbones", "datasets", "strategies", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        return [_shorthand(v) for v in value] if isinstance(value, list) else value


# --- regression thresholds (not part of the spec hash: they judge results, not produce them) ----


class AccuracyThresholds(Strict):
    abs_tol: NonNegativeFloat = 0.005  # 0.5 pp: about twice a 10k-image test set's sampling error
    k_sigma: PositiveFloat = 3.0  # regress only beyond k x the seed noise of the difference
    alpha: float = Field(0.05, gt=0.0, lt=1.0)  # one-sided Welch test when both sides have >= 2 seeds
    assumed_seed_std: NonNegativeFloat = 0.001  # seed std used when a side has a single seed (0.1 pp)


class RelativeThreshold(Strict):
    rel_tol: NonNegativeFloat


class Thresholds(Strict):
    accuracy: AccuracyThresholds = AccuracyThresholds()
    throughput: RelativeThreshold = RelativeThreshold(rel_tol=0.10)  # higher is better
    memory: RelativeThreshold = RelativeThreshold(rel_tol=0.15)  # lower is better


class CaseSelector(Strict):
    """Selects cases by backbone/dataset/strategy label (or name); a list means any of them."""

    backbone: Optional[Union[str, list[str]]] = None
    dataset: Optional[Union[str, list[str]]] = None
    strategy: Optional[Union[str, list[str]]] = None


class Override(Strict):
    match: CaseSelector
    set: dict[str, Any] = Field(default_factory=dict)  # training hyperparameters
    thresholds: dict[str, Any] = Field(default_factory=dict)  # regression thresholds


class Suite(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    version: PositiveInt = 1
    requires_gpu: bool = False  # pytest skips it without CUDA; `sftbench run` refuses CPU unless asked
    defaults: TrainSpec = TrainSpec()
    thresholds: Thresholds = Thresholds()
    matrix: Matrix
    overrides: list[Override] = Field(default_factory=list)
    exclude: list[CaseSelector] = Field(default_factory=list)


# --- cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    suite: str
    backbone: BackboneSpec
    dataset: DatasetSpec
    strategy: StrategySpec
    train: TrainSpec
    seed: int
    thresholds: Thresholds = field(default_factory=Thresholds, compare=False)
    case_id: str = field(init=False)  # without the seed: seeds of one case pool in baselines
    spec_hash: str = field(init=False)

    def __post_init__(self) -> None:
        case_id = f"{self.backbone.label}-{self.dataset.label}-{self.strategy.label}"
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
            "backbone": self.backbone.model_dump(exclude={"id"}),
            "dataset": self.dataset.model_dump(exclude={"id", "root"}),
            "strategy": {"name": self.strategy.name, "params": resolved_strategy_params(self.strategy)},
            "train": self.train.model_dump(exclude={"seeds"}),
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone.model_dump(mode="json"),
            "dataset": self.dataset.model_dump(mode="json"),
            "strategy": self.strategy.model_dump(mode="json"),
            "train": self.train.model_dump(mode="json", exclude={"seeds"}),
        }


def resolved_strategy_params(strategy: StrategySpec) -> dict[str, Any]:
    """Parameters with every default filled in (and the effective BN policy), so a changed
    default changes the hash of the cases that relied on it."""
    from .strategies import build_strategy

    built = build_strategy(strategy.name, strategy.params)
    return {**built.params.model_dump(), "bn": built.bn}


def spec_hash(normalised: dict[str, Any]) -> str:
    blob = json.dumps(normalised, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _selects(selector: CaseSelector, b: BackboneSpec, d: DatasetSpec, s: StrategySpec) -> bool:
    def hit(wanted: Optional[Union[str, list[str]]], *candidates: str) -> bool:
        if wanted is None:
            return True
        wanted_list = [wanted] if isinstance(wanted, str) else wanted
        return any(c in wanted_list for c in candidates)

    return (
        hit(selector.backbone, b.label, b.name)
        and hit(selector.dataset, d.label, d.name)
        and hit(selector.strategy, s.label, s.name)
    )


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_selector(selector: CaseSelector, matrix: Matrix, where: str) -> None:
    axes = {
        "backbone": [x for b in matrix.backbones for x in (b.label, b.name)],
        "dataset": [x for d in matrix.datasets for x in (d.label, d.name)],
        "strategy": [x for s in matrix.strategies for x in (s.label, s.name)],
    }
    for axis, known in axes.items():
        wanted = getattr(selector, axis)
        for value in [wanted] if isinstance(wanted, str) else wanted or []:
            if value not in known:
                raise ConfigError(
                    f"{where}.{axis}: {value!r} matches no {axis} in the matrix"
                    f"{did_you_mean(value, known)}; use one of {sorted(set(known))}"
                )


def _resolved(suite: Suite, b: BackboneSpec, d: DatasetSpec, s: StrategySpec, source: str) -> tuple[TrainSpec, Thresholds]:
    """Defaults with every matching override deep-merged in, in file order."""
    train, thresholds = suite.defaults.model_dump(), suite.thresholds.model_dump()
    last_train = last_thresholds = None
    for index, override in enumerate(suite.overrides):
        if _selects(override.match, b, d, s):
            train = _deep_merge(train, override.set)
            thresholds = _deep_merge(thresholds, override.thresholds)
            last_train = index if override.set else last_train
            last_thresholds = index if override.thresholds else last_thresholds
    return (_validated(TrainSpec, train, source, ("overrides", last_train, "set"), ("defaults",), last_train),
            _validated(Thresholds, thresholds, source, ("overrides", last_thresholds, "thresholds"), ("thresholds",),
                       last_thresholds))


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
    """The matrix minus excludes, with overrides applied; `seeds`/`epochs` override every case."""
    for i, override in enumerate(suite.overrides):
        _check_selector(override.match, suite.matrix, f"{source}: overrides[{i}].match")
    for i, selector in enumerate(suite.exclude):
        _check_selector(selector, suite.matrix, f"{source}: exclude[{i}]")
    cases: list[Case] = []
    m = suite.matrix
    for b in m.backbones:
        for d in m.datasets:
            for s in m.strategies:
                if any(_selects(x, b, d, s) for x in suite.exclude):
                    continue
                train, thresholds = _resolved(suite, b, d, s, source)
                if epochs is not None:
                    train = train.model_copy(update={"epochs": epochs})
                for seed in seeds if seeds is not None else train.seeds:
                    cases.append(Case(suite.name, b, d, s, train, seed, thresholds))
    _check_unique(cases, source)
    return cases


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


# --- loading -----------------------------------------------------------------------------------


def parse_suite(data: Any, source: str = "<suite>") -> Suite:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a mapping with `name` and `matrix`, not {type(data).__name__}")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None
    expand(suite, source=source)  # surfaces override/exclude/id errors at load time
    return suite


def load_suite(path: Union[str, Path]) -> Suite:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read suite file {str(path)!r} ({err.strerror}); check the path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: YAML syntax error ({problem}); fix the indentation or quoting there") from None
    return parse_suite(data, str(path))

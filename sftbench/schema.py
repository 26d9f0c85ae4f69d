"""The suite schema: pydantic models of a suite file. A leaf: it imports no component.

Names (backbones, datasets, strategies) are checked by the catalog that the loader hands to
pydantic's validation context (`suite.catalog`); validated without one, names are taken as given.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Protocol, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import short_repr
from .paths import SAFE_NAME
from .resources_spec import Resources
from .sweep_spec import DEPTH, SelectSpec, SweepValues, check_strategy_sweep, sweep_lists


class NameChecker(Protocol):
    """What the schema asks of a catalog: raise ValueError (with the fix) for an unknown name."""

    def check_backbone(self, name: str) -> None: ...
    def check_dataset(self, name: str) -> None: ...
    def check_strategy(self, name: str, params: dict[str, Any]) -> None: ...


def _catalog(info: ValidationInfo) -> Optional[NameChecker]:
    return (info.context or {}).get("catalog")


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
    tf32: bool = True  # CUDA only: TF32 tensor cores for fp32 matmuls and convolutions
    channels_last: bool = False  # NHWC memory format for model and batches (faster convs with AMP)
    compile: Optional[Literal["default", "reduce-overhead", "max-autotune"]] = None  # torch.compile mode
    feature_cache: bool = True  # probes train the head on cached frozen-backbone features
    resources: Resources = Resources()  # per-case Ray task resources (--executor ray)
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
    id: Optional[str] = Field(None, pattern=SAFE_NAME.pattern)  # case ids are built from labels
    kwargs: dict[str, Any] = Field(default_factory=dict)  # extra create_model arguments
    stage: Optional[PositiveInt] = None  # timm EfficientNets: keep only the first k block stages (features from stage k)
    init_seed: Optional[NonNegativeInt] = None  # draw the initial weights (random ones, the new head) from this seed, not the run's

    @field_validator("name")
    @classmethod
    def _known_backbone(cls, name: str, info: ValidationInfo) -> str:
        if (catalog := _catalog(info)) is not None:
            catalog.check_backbone(name)
        return name

    @field_validator("weights", mode="before")
    @classmethod
    def _weights_form(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"file"}:
            return value
        if value in ("pretrained", "random"):
            return value
        raise ValueError(f"weights {short_repr(value)} is not valid; use 'pretrained', 'random' or {{file: PATH}}")

    @property
    def label(self) -> str:
        if self.id:
            return self.id
        base = self.name.split(":", 1)[-1] + (f"-stage{self.stage}" if self.stage else "")
        if self.weights == "pretrained":
            return base
        return f"{base}-{'random' if self.weights == 'random' else 'file'}"


class DatasetSpec(Strict):
    name: str
    id: Optional[str] = Field(None, pattern=SAFE_NAME.pattern)  # case ids are built from labels
    root: Optional[str] = None  # None: --data-root, else the sftbench cache
    train_size: Optional[PositiveInt] = None  # training pool (train + validation) drawn with the seed
    test_size: Optional[PositiveInt] = None  # fixed test subset, the same for every seed
    val_fraction: float = Field(0.1, ge=0.0, le=0.5)
    val_size: Optional[PositiveInt] = None  # a fixed validation count; train_size then counts training only
    shots: Optional[PositiveInt] = None  # k training images per class, drawn with the case's seed
    # None: each seed draws its own training pool (seed noise includes the data); an int: every seed
    # trains on the pool this seed draws, so seed noise is the training's alone (a tighter gate)
    split_seed: Optional[NonNegativeInt] = None
    augment: Literal["none", "flip", "crop_flip"] = "none"
    placement: Literal["auto", "device", "host"] = "auto"  # uint8 images on the accelerator, or streamed
    options: dict[str, Any] = Field(default_factory=dict)  # dataset-specific (synthetic: sizes)

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, name: str, info: ValidationInfo) -> str:
        if (catalog := _catalog(info)) is not None:
            catalog.check_dataset(name)
        return name

    @model_validator(mode="after")
    def _one_training_size(self) -> "DatasetSpec":
        if self.shots is not None and self.train_size is not None:
            raise ValueError(f"shots {self.shots} and train_size {self.train_size} both set the training size; "
                             "keep one")
        return self

    @property
    def label(self) -> str:
        return self.id or self.name


class StrategySpec(Strict):
    name: str
    id: Optional[str] = Field(None, pattern=SAFE_NAME.pattern)  # case ids are built from labels
    params: dict[str, Any] = Field(default_factory=dict)
    # parameter -> values, e.g. {k: [1, 2, 3]}; last_k's k may be "all" (1 to the backbone's stages)
    sweep: dict[str, Any] = Field(default_factory=dict)

    @field_validator("sweep")
    @classmethod
    def _sweep_form(cls, sweep: dict[str, Any]) -> dict[str, Any]:
        return sweep_lists(sweep, ("all",))

    @model_validator(mode="after")
    def _known_strategy(self, info: ValidationInfo) -> "StrategySpec":
        if self.name == DEPTH:
            if self.params or self.sweep or self.id:
                raise ValueError("strategy 'depth' takes no params, sweep or id (it expands to linear_probe, "
                                 "last_k k=1..n-1 and full); write those strategies out to change them")
            return self
        if (catalog := _catalog(info)) is not None:
            catalog.check_strategy(self.name, self.params)
            check_strategy_sweep(self.name, self.params, self.sweep, catalog.check_strategy)
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
    """A drop of mean top-1 is REGRESSED when beyond `abs_tol` and significant by the seed t-test
    against the baseline's seeds (Holm across the run's cases at `alpha`); `power` is the chance
    with which the stated detectable drop is caught (regression/accuracy.py, docs/verdicts.md)."""

    abs_tol: NonNegativeFloat = 0.005  # 0.5 pp: about twice a 10k-image test set's sampling error
    alpha: float = Field(0.05, gt=0.0, lt=1.0)  # family-wise over the run's cases (Holm)
    power: float = Field(0.8, gt=0.5, lt=1.0)  # the detectable drop is caught with this probability


class RelativeThreshold(Strict):
    """A speed or memory change between runs counts when it is beyond `rel_tol` (the practical floor)
    and beyond the baseline runs' one-sided prediction interval at `alpha` (t, on log values); a
    one-run baseline has no between-run spread and uses `assumed_run_sd` instead."""

    rel_tol: NonNegativeFloat = 0.05
    alpha: float = Field(0.01, gt=0.0, lt=1.0)
    assumed_run_sd: PositiveFloat = 0.12  # sd of log(speed) between runs when the baseline has one run


class ThroughputThresholds(RelativeThreshold):
    """Speed is judged only where the machine is the baseline's: the same hardware fingerprint, and
    every part of its calibration (engine/calibration.py) within `calibration_band` of the baseline
    runs' (docs/verdicts.md measured the band). Beyond it, `machine-differs` leaves speed unjudged
    (MACHINE-DIFFERS); `normalise` divides by the calibration's change and widens the tolerance."""

    calibration_band: PositiveFloat = 0.25
    beyond_band: Literal["machine-differs", "normalise"] = "machine-differs"


class Thresholds(Strict):
    accuracy: AccuracyThresholds = AccuracyThresholds()
    throughput: ThroughputThresholds = ThroughputThresholds()  # higher is better
    memory: RelativeThreshold = RelativeThreshold(rel_tol=0.15, assumed_run_sd=0.05)  # lower is better


class CaseSelector(Strict):
    """Selects cases by backbone/dataset/strategy label (or name); a list means any of them."""

    backbone: Optional[Union[str, list[str]]] = None
    dataset: Optional[Union[str, list[str]]] = None
    strategy: Optional[Union[str, list[str]]] = None


class Override(Strict):
    match: CaseSelector
    set: dict[str, Any] = Field(default_factory=dict)  # training hyperparameters
    sweep: dict[str, SweepValues] = Field(default_factory=dict)  # replaces the suite's values of these keys
    thresholds: dict[str, Any] = Field(default_factory=dict)  # regression thresholds

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep_form(cls, sweep: Any) -> Any:
        return sweep_lists(sweep) if isinstance(sweep, dict) else sweep


class Suite(Strict):
    name: str = Field(pattern=SAFE_NAME.pattern)
    description: str = ""
    version: PositiveInt = 1
    baseline_seeds: PositiveInt = 1  # seeds a blessed baseline should hold: `baseline update` warns below it
    requires_gpu: bool = False  # pytest skips it without CUDA; `sftbench run` refuses CPU unless asked
    defaults: TrainSpec = TrainSpec()
    thresholds: Thresholds = Thresholds()
    matrix: Matrix
    # training hyperparameters by dotted key (`optimizer.lr: [0.003, 0.01, 0.03]`): every case runs
    # at each point of the product; ids name the values (`...-lr0.01`)
    sweep: dict[str, SweepValues] = Field(default_factory=dict)
    select: Optional[SelectSpec] = None  # report each sweep group's point chosen on validation
    overrides: list[Override] = Field(default_factory=list)
    exclude: list[CaseSelector] = Field(default_factory=list)

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep_form(cls, sweep: Any) -> Any:
        return sweep_lists(sweep) if isinstance(sweep, dict) else sweep

"""The one result record: what a case's run produced, typed and versioned.

A record is built in one place (`engine/runner.py`), written as one JSON line, and read back
through `Record.from_json`, which migrates older schema versions and refuses newer ones.
Everything downstream (summaries, verdicts, leaderboards, reports) reads it by attribute.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from ..errors import ConfigError, ResultsFormatError
from ..paths import check_safe_name
from .bits import PerExample
from .migrations import SCHEMA_VERSION, migrate

class Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _safe_name(value: str) -> str:
    try:
        return check_safe_name(value, "the name")
    except ConfigError as err:  # pydantic reports a ValueError with the field's location
        raise ValueError(str(err).split(";")[0]) from None


# A suite name, run id or hardware key: each becomes a path component (results/<suite>/<run>.jsonl,
# baselines/<suite>/<hardware>.json), so a record from a file can never name `../..`.
SafeName = Annotated[str, AfterValidator(_safe_name)]


class Labels(Part):
    backbone: str
    dataset: str
    strategy: str


class CalibrationReading(Part):
    """One timing of the fixed reference workload (engine/calibration.py): medians of repeats."""

    gemm_gflops: float
    copy_gbps: float
    spread: float = 0.0  # (max - min) / median over the repeats, the larger of the two parts
    gpu_tflops: Optional[float] = None


class Calibration(Part):
    """The machine's speed just before and just after the case, in the process that ran it."""

    workload: str
    threads: int
    before: CalibrationReading
    after: CalibrationReading


class Node(Part):
    host: str
    ray_node_id: Optional[str] = None

    # `host/1a2b3c4d`, in sentences `host (Ray node 1a2b3c4d)`: two nodes of one machine share a host name
    @property
    def label(self) -> str:
        return f"{self.host}/{self.ray_node_id[:8]}" if self.ray_node_id else self.host

    @property
    def in_words(self) -> str:
        return f"{self.host} (Ray node {self.ray_node_id[:8]})" if self.ray_node_id else self.host


class Environment(Part):
    """Library versions, device and machine; extra keys are kept (they vary by platform)."""

    model_config = ConfigDict(extra="allow")
    hardware_key: SafeName
    device: str = "cpu"
    device_name: Optional[str] = None
    torch: Optional[str] = None
    git_commit: Optional[str] = None
    fingerprint: Optional[dict[str, Any]] = None  # CPU/GPU details behind the readable hardware key
    fingerprint_digest: Optional[str] = None
    calibration: Optional[Calibration] = None  # absent in older records and with SFTBENCH_CALIBRATION=off
    node: Optional[Node] = None  # absent in records older than the node field

    @property
    def node_label(self) -> str:
        return self.node.label if self.node is not None else "unknown"

    def get(self, key: str) -> Any:
        return getattr(self, key, None)


class ErrorInfo(Part):
    type: str
    message: str
    phase: Optional[str] = None
    traceback: Optional[str] = None


class Metrics(Part):
    top1: float
    macro_f1: float
    per_class_recall: list[Optional[float]] = Field(default_factory=list)
    final_train_loss: float
    val_top1: Optional[float] = None


class Throughput(Part):
    train_path: str = "images"  # images | cached_features (of the last phase)
    train_samples_per_s: Optional[float] = None
    eval_samples_per_s: Optional[float] = None
    timed_train_samples: int = 0
    timed_train_seconds: float = 0.0
    train_steps: int = 0
    train_windows: list[float] = Field(default_factory=list)  # samples/s per timing window (schema 2)
    eval_windows: list[float] = Field(default_factory=list)
    # the image data path's own samples/s (host wait for the next batch; absent in older records)
    data_samples_per_s: Optional[float] = None
    data_windows: list[float] = Field(default_factory=list)
    # the comparable cost: images seen per second of the train phase's wall time, feature
    # extraction included (absent in older records; `Record.train_wall_samples_per_s` derives it)
    images_seen: Optional[int] = None
    train_wall_samples_per_s: Optional[float] = None


class Memory(Part):
    peak_mb: float  # steady state (after warm-up) when `steady`, else the cold peak; verdicts gate on it
    kind: str
    cold_peak_mb: Optional[float] = None  # everything, warm-up and autotuning included (absent before 0.2)
    steady: bool = False


class ParamCounts(Part):
    trainable: int
    total: int
    trainable_fraction: float


class StrategyInfo(Part):
    name: str
    params: dict[str, Any]
    bn: str
    plans: list[dict[str, Any]] = Field(default_factory=list)


class DatasetInfo(Part):
    source: str
    classes: list[str]
    sizes: dict[str, int]


class BackboneInfo(Part):
    library: str
    weights_source: str
    image_size: int
    interpolation: str


class DataPath(Part):
    placement: str
    channels_last: bool
    compile: Optional[str] = None
    tf32: Optional[bool] = None  # TF32 matmuls and convolutions on CUDA


class Determinism(Part):
    """What `deterministic: true` delivered: decided once per process, before CUDA starts."""

    requested: bool
    cublas_workspace_config: Optional[str] = None
    nondeterministic_ops: list[str] = Field(default_factory=list)  # ops that warned during the case


class FeatureInfo(Part):
    computed: int = 0
    reused: int = 0
    extract_seconds: float = 0.0
    cache_files: list[str] = Field(default_factory=list)


class Record(Part):
    """One case, one seed, one run. Fields after `status` are absent when the case failed early."""

    schema_version: int = SCHEMA_VERSION
    suite: SafeName
    run_id: SafeName
    case_id: str
    run_key: str
    seed: int = Field(ge=0, lt=2 ** 63)  # a seed is an SQLite INTEGER in the history
    spec_hash: str
    spec: dict[str, Any]
    labels: Labels
    env: Environment
    started_at: str
    finished_at: Optional[str] = None
    status: Literal["ok", "failed"] = "failed"
    error: Optional[ErrorInfo] = None
    timings_s: dict[str, float] = Field(default_factory=dict)
    memory: Optional[Memory] = None
    dataset: Optional[DatasetInfo] = None
    backbone: Optional[BackboneInfo] = None
    data_path: Optional[DataPath] = None
    determinism: Optional[Determinism] = None
    features: Optional[FeatureInfo] = None
    strategy: Optional[StrategyInfo] = None
    metrics: Optional[Metrics] = None
    throughput: Optional[Throughput] = None
    params: Optional[ParamCounts] = None
    per_example: Optional[PerExample] = None
    history: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def hardware_key(self) -> str:
        return self.env.hardware_key

    @property
    def top1(self) -> Optional[float]:
        return self.metrics.top1 if self.metrics else None

    @property
    def images_seen(self) -> Optional[int]:
        """Training images seen: steps x batch size, or one pass for an L-BFGS probe."""
        if self.throughput is None:
            return None
        if self.throughput.images_seen is not None:
            return self.throughput.images_seen
        if self.throughput.train_steps:
            return self.throughput.train_steps * int(self.spec.get("train", {}).get("batch_size", 0))
        return self.dataset.sizes.get("train") if self.dataset else None

    @property
    def train_wall_samples_per_s(self) -> Optional[float]:
        """Images seen per second of the whole train phase: comparable between probes and fine-tunes."""
        if self.throughput is not None and self.throughput.train_wall_samples_per_s is not None:
            return self.throughput.train_wall_samples_per_s
        seen, seconds = self.images_seen, self.timings_s.get("train")
        return seen / seconds if seen and seconds else None

    @property
    def error_message(self) -> str:
        return self.error.message if self.error else "unknown error"

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form: top-level fields that were never filled are left out, as before."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if v is not None or k in ("finished_at",)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Record":
        """Validate (migrating older versions); `where` names the file and line in errors."""
        if not isinstance(data, dict):
            raise ResultsFormatError(f"{where}: a record must be a JSON object, not {type(data).__name__}; "
                                     "remove the line or re-run the case")
        data = migrate(data, where)
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(map(str, first["loc"]))
            raise ResultsFormatError(f"{where}: record field {key!r} is invalid ({first['msg'].lower()}); "
                                     "remove the line or re-run the case") from None

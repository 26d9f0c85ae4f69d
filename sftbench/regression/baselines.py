"""Baseline files: `baselines/<suite>/<hardware-key>.json`, one entry per case id, stable key order."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ResultsFormatError, SftbenchError, short_repr
from ..files import write_atomic
from ..limits import MAX_BASELINE_BYTES
from ..paths import under_root
from ..results.environment import utc_now
from ..results.record import PerExample, SafeName
from .integrity import check_baseline_entry
from .summary import CaseSummary, RunSpeed, mean_std, median

# 2 added per-seed per-example bits, throughput windows and the test size; 3 the speed of each run
# blessed, with its machine calibration and fingerprint (speed verdicts need several runs)
BASELINE_SCHEMA_VERSION = 3
ENV_KEYS = ("sftbench", "torch", "torchvision", "timm", "python", "device_name", "cuda", "cudnn", "git_commit",
            "fingerprint", "fingerprint_digest")


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _seed_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Seeds are keys of JSON objects, so strings; each must be a whole number (they are sorted as such)."""
    for key in values:
        if not key.isascii() or not key.lstrip("-").isdigit():
            raise ValueError(f"seed {key[:40]!r} is not a whole number")
    return values


class AccuracyStats(_Part):
    values: dict[str, float]  # seed -> top-1
    mean: Optional[float] = None
    std: Optional[float] = None
    n: int

    _seeds = field_validator("values")(_seed_keys)


class MedianStat(_Part):
    median: Optional[float] = None
    n: int = 0


class BaselineEntry(_Part):
    spec_hash: str
    accuracy: AccuracyStats
    train_samples_per_s: MedianStat = MedianStat()
    eval_samples_per_s: MedianStat = MedianStat()
    peak_mb: MedianStat = MedianStat()
    per_example: dict[str, PerExample] = Field(default_factory=dict)  # seed -> correctness bits
    train_windows: list[float] = Field(default_factory=list)  # samples/s per timing window, all seeds
    eval_windows: list[float] = Field(default_factory=list)
    test_n: Optional[int] = None
    env: dict[str, Any] = Field(default_factory=dict)
    date: str = ""
    runs: list[RunSpeed] = Field(default_factory=list)  # schema 3: one per blessed run
    sweep_point: dict[str, Any] = Field(default_factory=dict)  # a swept group's chosen point when blessed

    _seeds = field_validator("per_example")(_seed_keys)

    @property
    def accuracy_values(self) -> list[float]:
        return [self.accuracy.values[k] for k in sorted(self.accuracy.values, key=int)]


class Baseline(_Part):
    suite: SafeName
    hardware_key: SafeName
    cases: dict[str, BaselineEntry] = Field(default_factory=dict)
    path: Optional[Path] = Field(None, exclude=True)

    def to_json(self) -> str:
        data = {"schema_version": BASELINE_SCHEMA_VERSION, **self.model_dump(mode="json")}
        for entry in data["cases"].values():  # only a swept group's entry names its chosen point
            if not entry["sweep_point"]:
                del entry["sweep_point"]
            for run in entry["runs"]:  # the data path's speed exists only where an image path was timed
                if run.get("data_samples_per_s") is None:
                    run.pop("data_samples_per_s", None)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def baseline_path(root: Path, suite: str, hardware_key: str) -> Path:
    """`root/<suite>/<hardware>.json`; both names come from records, so both are checked to stay in root."""
    return under_root(root, suite, hardware_key, suffix=".json")


def load_baseline(path: Path) -> Baseline:
    limit = MAX_BASELINE_BYTES.value
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
        if len(raw) > limit:
            raise ResultsFormatError(MAX_BASELINE_BYTES.exceeded(f"baseline {path}", f"holds more than {limit:,} bytes"))
        data = json.loads(raw.decode("utf-8"))
    except OSError as err:
        raise SftbenchError(f"cannot read baseline {str(path)!r} ({err.strerror}); check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        line = f" (line {err.lineno})" if isinstance(err, json.JSONDecodeError) else ""
        raise ResultsFormatError(f"baseline {path} is not valid JSON{line}; restore it from git or re-bless it "
                                 "with `sftbench baseline update`") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or not 1 <= version <= BASELINE_SCHEMA_VERSION:
        raise ResultsFormatError(f"baseline {path} has schema version {short_repr(version)}, but this sftbench reads versions "
                                 f"1 to {BASELINE_SCHEMA_VERSION}; upgrade sftbench to read it, or re-bless it with "
                                 "`sftbench baseline update`")
    # versions 1 and 2: the newer fields are absent and default to empty; verdicts then use seed-level
    # tests (1) and leave speed unjudged, as MACHINE-DIFFERS, until the baseline is blessed again (1, 2)
    try:
        baseline = Baseline.model_validate({**data, "path": path})
    except ValidationError as err:
        first = err.errors()[0]
        where = short_repr(".".join(map(str, first["loc"])))
        why = first["msg"].removeprefix("Value error, ")
        why = why[:1].lower() + why[1:]
        raise ResultsFormatError(f"baseline {path}: field {where} is missing or invalid ({why}); restore the file from "
                                 "git or re-bless it with `sftbench baseline update`") from None
    for case_id, entry in baseline.cases.items():
        check_baseline_entry(case_id, entry.accuracy.values, entry.per_example, path)
    return baseline


def find_baseline(root: Path, suite: str, hardware_key: str) -> Optional[Baseline]:
    path = baseline_path(root, suite, hardware_key)
    return load_baseline(path) if path.exists() else None


def _round(value: Optional[float], digits: int) -> Optional[float]:
    return None if value is None else round(value, digits)


def entry_from_summary(summary: CaseSummary) -> BaselineEntry:
    """Rounded so diffs show real changes: accuracy to 1e-6, speeds to 0.01/s, memory to 0.1 MB."""
    mean, std = mean_std(summary.accuracy_values)
    env = summary.env
    return BaselineEntry(
        spec_hash=summary.spec_hash,
        accuracy=AccuracyStats(values={str(seed): summary.accuracy[seed] for seed in sorted(summary.accuracy)},
                               mean=_round(mean, 6), std=_round(std, 6), n=len(summary.accuracy)),
        train_samples_per_s=MedianStat(median=_round(median(summary.train_throughput), 2), n=len(summary.train_throughput)),
        eval_samples_per_s=MedianStat(median=_round(median(summary.eval_throughput), 2), n=len(summary.eval_throughput)),
        peak_mb=MedianStat(median=_round(median(summary.peak_mb), 1), n=len(summary.peak_mb)),
        per_example={str(seed): bits for seed, bits in sorted(summary.per_example.items())},
        train_windows=[round(w, 2) for w in summary.train_windows],
        eval_windows=[round(w, 2) for w in summary.eval_windows],
        test_n=summary.test_n,
        env={k: env.get(k) if env else None for k in ENV_KEYS},
        date=utc_now(),
        runs=summary.runs,
        sweep_point=summary.sweep_point,
    )


def update_baseline(existing: Optional[Baseline], summaries: dict[str, CaseSummary], suite: str,
                    hardware_key: str) -> tuple[Baseline, list[str]]:
    """Refresh the entries of the summarised cases; failed cases are refused (and returned)."""
    baseline = existing or Baseline(suite=suite, hardware_key=hardware_key)
    refused = []
    for case_id, summary in sorted(summaries.items()):
        if summary.failed:
            refused.append(f"{case_id} ({'; '.join(summary.errors)})")
            continue
        if summary.hardware_key != hardware_key:
            raise SftbenchError(f"results for {case_id!r} come from hardware {summary.hardware_key!r}, not "
                                f"{hardware_key!r}; bless each hardware's results into its own baseline file")
        baseline.cases[case_id] = entry_from_summary(summary)
    return baseline, refused


def write_baseline(baseline: Baseline, path: Path) -> None:
    write_atomic(path, baseline.to_json())

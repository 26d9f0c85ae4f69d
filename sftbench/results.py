"""Case records: environment fingerprint, the append-only JSONL store, and pandas loading."""
from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import re
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import torch

from .errors import SftbenchError

SCHEMA_VERSION = 1


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


# --- environment --------------------------------------------------------------------------------


def _version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return _cpu_name()


def hardware_key(device: torch.device) -> str:
    """Throughput is only ever compared within one key: a slug of the GPU name, or of the CPU
    model and thread count (`cpu-intel-r-xeon-r-processor-2t`), or `mps`."""
    if device.type == "mps":
        return "mps"
    name = device_name(device) if device.type == "cuda" else f"cpu {_cpu_name()} {torch.get_num_threads()}t"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@functools.lru_cache(maxsize=8)
def git_commit(folder: Path) -> Optional[str]:
    """HEAD of the suite's repo (`-dirty` if tracked files changed), read once per run."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


@functools.lru_cache(maxsize=8)
def _static_environment() -> dict[str, Any]:
    return {
        "sftbench": _version("sftbench"),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "timm": _version("timm"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }


def environment(device: torch.device, suite_dir: Optional[Path] = None) -> dict[str, Any]:
    env = dict(_static_environment())
    env.update(
        device=str(device),
        device_name=device_name(device),
        hardware_key=hardware_key(device),
        torch_threads=torch.get_num_threads(),
        git_commit=git_commit(suite_dir) if suite_dir else None,
    )
    if device.type == "cuda":
        env["driver_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
    return env


# --- the store ----------------------------------------------------------------------------------


class Store:
    """`results/<suite>/<run-id>.jsonl`: one record per line, appended as each case ends.

    Each record is written with a single `write` on an O_APPEND descriptor and fsynced, so a
    killed run leaves at worst one torn last line, which reading skips.
    """

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_run(cls, out_dir: Path, suite: str, run_id: str) -> "Store":
        return cls(out_dir / suite / f"{run_id}.jsonl")

    @classmethod
    def latest(cls, out_dir: Path, suite: str) -> Optional["Store"]:
        runs = sorted((out_dir / suite).glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        return cls(runs[-1]) if runs else None

    @property
    def run_id(self) -> str:
        return self.path.stem

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size and not self._ends_with_newline():
                line = b"\n" + line  # seal a torn line left by a killed run
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def records(self) -> list[dict[str, Any]]:
        return list(read_records(self.path)) if self.path.exists() else []

    def finished_keys(self) -> set[tuple[str, str]]:
        """(run_key, spec_hash) of cases that finished OK: `--resume` skips them."""
        return {(r["run_key"], r["spec_hash"]) for r in self.records() if r.get("status") == "ok"}


def read_records(path: Path) -> Iterable[dict[str, Any]]:
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from an interrupted run
            version = record.get("schema_version")
            if version != SCHEMA_VERSION:
                raise SftbenchError(
                    f"{path}:{number}: result schema version {version!r} is not the supported {SCHEMA_VERSION}; "
                    "re-run the suite with this sftbench version"
                )
            yield record


def result_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.jsonl")) if path.is_dir() else [path])
    return files


def load_results(paths: Iterable[str | Path] | str | Path) -> "pandas.DataFrame":  # noqa: F821
    """One row per record, nested fields flattened with dots (`metrics.top1`, `env.torch`)."""
    import pandas as pd

    if isinstance(paths, (str, Path)):
        paths = [paths]
    records = [r for f in result_files(Path(p) for p in paths) for r in read_records(f)]
    return pd.json_normalize(records, sep=".")

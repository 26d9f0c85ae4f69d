"""The environment fingerprint in every record: versions, device, hardware key, git commit."""
from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import torch


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


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

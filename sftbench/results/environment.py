"""The environment fingerprint in every record: versions, device, hardware key, git commit, and the
hardware fingerprint that decides whether two runs' speeds can be compared at all."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import torch

from ..allocator import allocator_mode


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


def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo (empty where there is none)."""
    cpuinfo = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def _memory_gib() -> Optional[float]:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size / 2**30, 1)


@functools.lru_cache(maxsize=1)
def cpu_fingerprint() -> dict[str, Any]:
    """What a hypervisor's "AMD EPYC" hides: family, model and stepping name the generation."""
    info = _cpuinfo_fields()
    flags = info.get("flags", "")
    return {
        "vendor": info.get("vendor_id") or platform.processor() or None, "family": info.get("cpu family"),
        "model": info.get("model"), "stepping": info.get("stepping"), "logical_cores": os.cpu_count(),
        "memory_gib": _memory_gib(), "flags_digest": hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else None,
    }


def _nvml(index: int) -> dict[str, Any]:
    """Power limit, maximum clocks and MIG mode through NVML, where nvidia-ml-py is installed."""
    try:
        # deferred: optional (nvidia-ml-py), only on CUDA machines
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        out: dict[str, Any] = {"driver": pynvml.nvmlSystemGetDriverVersion(),
                               "power_limit_w": pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
                               "max_sm_clock_mhz": pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM)}
        try:
            out["mig_mode"] = pynvml.nvmlDeviceGetMigMode(handle)[0]
        except pynvml.NVMLError:
            out["mig_mode"] = None
        return out
    except Exception:  # no NVML, no driver library, or an old driver: the fields stay unknown
        return {}


def gpu_fingerprint(device: torch.device) -> dict[str, Any]:
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {"name": props.name, "memory_mib": props.total_memory // 2**20,
            "capability": f"{props.major}.{props.minor}", "sm_count": props.multi_processor_count,
            **_nvml(_physical_index(index))}


def _physical_index(index: int) -> int:
    """NVML counts every GPU; torch only the visible ones (a pool worker sees one, renumbered 0)."""
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip().isdigit()]
    return int(visible[index]) if index < len(visible) else index


def fingerprint(device: torch.device) -> dict[str, Any]:
    """The machine as speed depends on it: CPU, threads used, how host memory is allocated, and the GPU
    where one runs the case."""
    out: dict[str, Any] = {"cpu": cpu_fingerprint(), "threads": torch.get_num_threads(), "device_type": device.type,
                           "allocator": allocator_mode()}
    if device.type == "cuda":
        out["gpu"] = gpu_fingerprint(device)
    return out


def fingerprint_digest(print_: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(print_, sort_keys=True).encode()).hexdigest()[:16]


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


def node(ray_node_id: Optional[str] = None) -> dict[str, Optional[str]]:
    """Where the case ran: the host name, and the Ray node id when a Ray task ran it (two nodes of one
    machine share a host name). Not in the hardware fingerprint: identical machines compare."""
    return {"host": socket.gethostname(), "ray_node_id": ray_node_id}


def environment(device: torch.device, suite_dir: Optional[Path] = None,
                ray_node_id: Optional[str] = None) -> dict[str, Any]:
    env = dict(_static_environment())
    env.update(
        device=str(device),
        device_name=device_name(device),
        hardware_key=hardware_key(device),
        torch_threads=torch.get_num_threads(),
        git_commit=git_commit(suite_dir) if suite_dir else None,
        node=node(ray_node_id),
    )
    env["fingerprint"] = fingerprint(device)
    env["fingerprint_digest"] = fingerprint_digest(env["fingerprint"])
    if device.type == "cuda":
        env["driver_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
    return env

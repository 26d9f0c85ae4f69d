"""The device a run uses, its GPU requirement, and process-wide seeding and determinism."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from .determinism import configure_process


def resolve_device(name: str) -> torch.device:
    """auto | cpu | cuda[:N] | mps, checked against what this machine has."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = parse_device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was asked for but no CUDA GPU is visible; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} does not exist (this machine has {torch.cuda.device_count()} GPU(s))")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' is not available on this machine; use --device cpu or auto")
    return device


def parse_device(name: str) -> torch.device:
    """The device a name means, without asking whether this machine has it (`auto`: the CPU)."""
    if name == "auto":
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def device_for_suite(suite: str, requires_gpu: bool, requested: str) -> torch.device:
    """The device to run a suite on. `requires_gpu: true` means: with `auto`, refuse unless a CUDA GPU
    is visible; a device named explicitly (`cpu`, `cuda:1`) is the user's decision and is used."""
    device = resolve_device(requested)
    if requires_gpu and requested == "auto" and device.type != "cuda":
        raise ConfigError(f"suite {suite!r} needs a GPU (requires_gpu: true) and none is visible; run it on a "
                          "GPU machine, or pass the device explicitly (`--device cpu`) to run it on the CPU anyway")
    return device


@dataclass(frozen=True)
class DeviceRequest:
    """The device as asked for (`--device`, `requires_gpu`), resolved where the case will run: on this
    machine for serial and pool, on each worker for Ray (a cluster's head often has no GPU)."""

    suite: str
    requires_gpu: bool
    name: str = "auto"

    def resolve(self) -> torch.device:
        return device_for_suite(self.suite, self.requires_gpu, self.name)

    @property
    def wants_gpu(self) -> bool:
        """Whether a case should ask a cluster for a GPU by default."""
        return self.name.startswith("cuda") or (self.requires_gpu and self.name == "auto")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too


def prepare_case(device: torch.device, deterministic: bool, tf32: bool) -> None:
    """Process state a case depends on, set fresh for each case."""
    configure_process(deterministic)  # only the process's first case decides (before CUDA starts)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # cuda:N must not open a context on GPU 0
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    torch.compiler.reset()  # the last case's graphs must not pile up to the recompile limit or hold memory
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)

"""What `deterministic: true` means, decided once per process before CUDA starts, and checked.

cuBLAS reads CUBLAS_WORKSPACE_CONFIG when the process creates its first handle, so it is set
before the first case (for the whole process, if any case asks for determinism), never per case.
`torch.use_deterministic_algorithms(warn_only=True)` lets an op without a deterministic kernel
run anyway (on CUDA, e.g. the global-pool backward) and only warns: the warnings are caught per
case and recorded, so a record says exactly which ops were not deterministic.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..errors import SftbenchWarning

CUBLAS_KEY = "CUBLAS_WORKSPACE_CONFIG"
DETERMINISTIC_CUBLAS = ":4096:8"
_NOT_DETERMINISTIC = re.compile(r"^(\S+) does not have a deterministic implementation")
_decided = False


def configure_process(deterministic_wanted: bool) -> None:
    """Set cuBLAS up for determinism if any case will want it; only the first call decides."""
    global _decided
    if _decided:
        return
    _decided = True
    if not deterministic_wanted or CUBLAS_KEY in os.environ:
        return
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        warnings.warn(SftbenchWarning(
            f"CUDA started before sftbench could set {CUBLAS_KEY}; cuBLAS matmuls may not be deterministic in "
            f"this process; export {CUBLAS_KEY}={DETERMINISTIC_CUBLAS} before starting it"), stacklevel=2)
        return
    os.environ[CUBLAS_KEY] = DETERMINISTIC_CUBLAS


@contextmanager
def record_nondeterministic_ops() -> Iterator[list[str]]:
    """Collect the ops that warned they ran without a deterministic kernel; other warnings pass on."""
    ops: list[str] = []
    caught: list[Any] = []
    try:
        with warnings.catch_warnings(record=True) as log:
            warnings.simplefilter("always")
            try:
                yield ops
            finally:
                caught = list(log)
    finally:  # outside the catching context, or the passed-on warnings would be caught again
        for warning in caught:
            match = _NOT_DETERMINISTIC.match(str(warning.message))
            if match:
                ops.append(match[1])
            else:
                _pass_on(warning)
        ops[:] = sorted(set(ops))


def _pass_on(warning: Any) -> None:
    warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def determinism_record(requested: bool, ops: list[str]) -> dict[str, Any]:
    return {"requested": requested, "cublas_workspace_config": os.environ.get(CUBLAS_KEY),
            "nondeterministic_ops": ops if requested else []}

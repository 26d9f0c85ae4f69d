"""A slowdown outside sftbench, for measuring the speed gate: put this folder on PYTHONPATH.

SLOWDOWN_BACKWARD=F makes every `Tensor.backward` take (1 + F) times as long (1.0: twice as slow),
SLOWDOWN_INTERPOLATE=F does the same to `torch.nn.functional.interpolate` (the data path's resize).
The extra time is slept after the real work (CPU ops are synchronous), so results are unchanged.
"""
import os
import time


def _slowed(func, factor):
    def slow(*args, **kwargs):
        start = time.perf_counter()
        out = func(*args, **kwargs)
        time.sleep(factor * (time.perf_counter() - start))
        return out

    return slow


_BACKWARD = float(os.environ.get("SLOWDOWN_BACKWARD", "0") or 0)
_INTERPOLATE = float(os.environ.get("SLOWDOWN_INTERPOLATE", "0") or 0)
if _BACKWARD or _INTERPOLATE:
    import torch
    import torch.nn.functional as F

    if _BACKWARD:
        torch.Tensor.backward = _slowed(torch.Tensor.backward, _BACKWARD)
    if _INTERPOLATE:
        F.interpolate = _slowed(F.interpolate, _INTERPOLATE)

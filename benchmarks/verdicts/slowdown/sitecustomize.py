"""A slowdown outside sftbench, for measuring the speed gate: put this folder on PYTHONPATH.

SLOWDOWN_BACKWARD=F makes every `Tensor.backward` take (1 + F) times as long (1.0: twice as slow),
SLOWDOWN_INTERPOLATE=F does the same to `torch.nn.functional.interpolate` (the data path's resize).
The extra time is spent spinning on one core after the real work (CPU ops are synchronous), so
results are unchanged. It spins rather than sleeps: a sleeping slowdown leaves the CPU idle, and on
a shared VM the phase after it then ran measurably faster (eval 1.18x in an `ab` comparison whose
only change was a slept backward pass), which a real slow kernel would not cause.
"""
import os
import time


def _slowed(func, factor):
    def slow(*args, **kwargs):
        start = time.perf_counter()
        out = func(*args, **kwargs)
        until = time.perf_counter() + factor * (time.perf_counter() - start)
        while time.perf_counter() < until:
            pass
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

"""Top-1 must agree with the per-example bits it came from: verdicts read both (the seed test the
top-1, McNemar the bits), so a file edited after the run would be judged on numbers that never
happened. Refused with one sentence naming the file, the case and both figures."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import ResultsFormatError
from ..results.record import PerExample, Record


def _disagreement(top1: float, bits: PerExample) -> Optional[float]:
    """The bits' accuracy when the stated top-1 is off by more than half an example (rounding)."""
    if not bits.n:
        return None
    from_bits = float(bits.bools().mean())
    return from_bits if abs(top1 - from_bits) > 0.5 / bits.n else None


def _refuse(source: Path, case_id: str, seed: object, top1: float, from_bits: float) -> ResultsFormatError:
    return ResultsFormatError(
        f"{source}: case {case_id!r} seed {seed} states top-1 {100 * top1:.2f} % but its per-example results "
        f"give {100 * from_bits:.2f} %; the file was edited after the run: restore it or re-run the case")


def check_record(record: Record, source: Path) -> None:
    if record.ok and record.metrics is not None and record.per_example is not None:
        from_bits = _disagreement(record.metrics.top1, record.per_example)
        if from_bits is not None:
            raise _refuse(source, record.case_id, record.seed, record.metrics.top1, from_bits)


def check_baseline_entry(case_id: str, values: dict[str, float], bits: dict[str, PerExample], source: Path) -> None:
    for seed, top1 in values.items():
        from_bits = _disagreement(top1, bits[seed]) if seed in bits else None
        if from_bits is not None:
            raise _refuse(source, case_id, seed, top1, from_bits)

"""The few error types sftbench raises; the CLI and the pytest plugin turn them into messages."""
from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable


class SftbenchError(Exception):
    """A user-facing error: its message is one sentence naming the bad value and the fix."""


class ConfigError(SftbenchError):
    """The suite file (or a command-line value) is invalid."""


class UnknownNameError(ConfigError):
    """A backbone, dataset or strategy name that no registry knows."""


class WeightsUnavailableError(SftbenchError):
    """Pretrained weights could not be found locally nor downloaded."""


class DatasetUnavailableError(SftbenchError):
    """A dataset could not be found locally nor downloaded."""


class ResultsFormatError(SftbenchError):
    """A results or baseline file is unreadable, corrupt, or from an unknown schema version."""


class RunLockedError(SftbenchError):
    """Another process is writing the same run."""


class SftbenchWarning(UserWarning):
    """Something was skipped or repaired; the CLI prints it as one yellow line."""


class TrainingDivergedError(SftbenchError):
    """The loss became NaN or infinite."""


class CaseOutOfMemoryError(SftbenchError):
    """The device ran out of memory during a case."""


class StrategyViolationError(SftbenchError):
    """The optimizer or the frozen tensors disagree with what the strategy declared."""


_SHORT = reprlib.Repr()  # attributes, not keywords: Python 3.11's Repr takes none
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4
_SHORT.maxlevel = 2


def short_repr(value: object) -> str:
    """repr() bounded in length and depth: a hostile suite value never floods (or stalls) a message."""
    return _SHORT.repr(value)


def first_sentence(err: BaseException, with_type: bool = False) -> str:
    """The first sentence of an exception's message (bounded): library errors run long, ours are one line."""
    lines = str(err).strip().splitlines()
    text = lines[0].split(". ", 1)[0].rstrip(".")[:200] if lines else ""
    if not text:
        return type(err).__name__
    return f"{type(err).__name__}: {text}" if with_type else text


def listing(names: Iterable[str], limit: int = 3) -> str:
    """'a, b, c and 4 more': a bounded list of names for a one-sentence message."""
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known names, or '' when nothing is close."""
    if len(name) > 100:  # nothing that long is a typo of a name, and difflib is quadratic in it
        return ""
    close = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"

"""The few error types sftbench raises; the CLI and the pytest plugin turn them into messages."""
from __future__ import annotations

import difflib
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


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known names, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"

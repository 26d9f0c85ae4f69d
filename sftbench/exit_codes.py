"""Exit codes of the `sftbench` commands: one definition, read by the CLI and by the verdict gate."""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every case ran; check: every case PASS, IMPROVED, NOISE or NEW
    REGRESSION = 1  # check: a case REGRESSED (with --strict also MISSING or INCOMPARABLE)
    CONFIG = 2  # usage or configuration error: one sentence, no traceback
    CASE_FAILED = 3  # a case failed to run (takes precedence over REGRESSION)
    INTERRUPTED = 130  # Ctrl-C: finished cases are kept; --resume continues

"""What sftbench trusts: installed packages and the user's own choices, never a file's content.

A suite that names `module:Class` is code: loading it would import (run) that module. That happens
only when the user opts in, with `--allow-code`, `--sftbench-allow-code` (pytest), `allow_code()`
(Python) or SFTBENCH_ALLOW_CODE=1; the choice is kept in the environment so every process of the
run (pool workers, a local Ray, `ab`'s sides) makes the same one. Installed entry points are code
the user installed, and load without it.
"""
from __future__ import annotations

import os

from .errors import ConfigError, short_repr

ALLOW_CODE_ENV = "SFTBENCH_ALLOW_CODE"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def env_flag(name: str) -> bool:
    """A yes/no environment variable: 1/true/yes/on or 0/false/no/off (empty: no); anything else is refused."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={short_repr(os.environ[name])} is neither yes nor no; set it to 1 or 0")


def code_allowed() -> bool:
    return env_flag(ALLOW_CODE_ENV)


def allow_code() -> None:
    """Let suites name `module:Class` code in this process and the processes it starts."""
    os.environ[ALLOW_CODE_ENV] = "1"


def refuse_code(what: str) -> ConfigError:
    return ConfigError(f"{what} names code (`module:Class`), which a suite may run only when you allow it; if you "
                       "trust this suite pass --allow-code (pytest: --sftbench-allow-code, Python: "
                       f"sftbench.allow_code(), or {ALLOW_CODE_ENV}=1), or install the strategy as a "
                       "`sftbench.strategies` entry point")

"""Bounds on what a file may make sftbench do, each with the environment variable that raises it.

Suites, results, baselines and history databases travel between machines and people; a crafted or
careless one must be refused in a sentence, not exhaust memory or time. The defaults sit far above
any real file (a 108-case suite, a 50k-example test split's record of 10 kB).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Limit:
    name: str  # the environment variable that raises it
    default: int
    what: str  # "cases in one suite", in sentences

    @property
    def value(self) -> int:
        text = os.environ.get(self.name, "").strip()
        if not text:
            return self.default
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{self.name}={text!r} is not a whole number; set it to a limit such as "
                              f"{self.default}") from None
        if value < 1:
            raise ConfigError(f"{self.name}={text!r} must be at least 1; set it to a limit such as {self.default}")
        return value

    def exceeded(self, where: str, found: str) -> str:
        """The sentence for a file over the limit: what it holds, the limit, and how to raise it."""
        return (f"{where} {found}, over the limit of {self.value:,} {self.what}; if it is meant, raise the limit "
                f"with {self.name}=N")


MAX_CASES = Limit("SFTBENCH_MAX_CASES", 20_000, "cases in one suite")
MAX_YAML_NODES = Limit("SFTBENCH_MAX_YAML_NODES", 100_000, "values in one suite once its aliases are expanded")
MAX_SUITE_BYTES = Limit("SFTBENCH_MAX_SUITE_BYTES", 1 << 20, "bytes in one suite file")
MAX_RECORD_BYTES = Limit("SFTBENCH_MAX_RECORD_BYTES", 16 << 20, "bytes in one result record")
MAX_BASELINE_BYTES = Limit("SFTBENCH_MAX_BASELINE_BYTES", 256 << 20, "bytes in one baseline file")

"""The steady allocation mode: what it applies, when, and that speeds under two modes are not compared."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from sftbench import allocator
from sftbench.cli import app
from sftbench.errors import ConfigError
from sftbench.regression.speed import Machine, machine_difference
from sftbench.regression.summary import RunSpeed
from sftbench.results.environment import fingerprint, fingerprint_digest
from sftbench.schema import ThroughputThresholds


@pytest.fixture
def glibc(monkeypatch):
    def set_glibc(value: bool) -> None:
        monkeypatch.setattr(allocator, "_is_glibc", lambda: value)
    return set_glibc


@pytest.mark.parametrize("env, is_glibc, mode", [
    (None, True, "glibc-steady"), ("steady", True, "glibc-steady"), (" Steady ", True, "glibc-steady"),
    ("system", True, "system"), (None, False, "system"), ("steady", False, "system"), ("", True, "glibc-steady"),
])
def test_mode_follows_the_variable_and_the_c_library(monkeypatch, glibc, env, is_glibc, mode):
    glibc(is_glibc)
    if env is None:
        monkeypatch.delenv(allocator.MODE_ENV, raising=False)
    else:
        monkeypatch.setenv(allocator.MODE_ENV, env)
    assert allocator.allocator_mode() == mode


def test_an_unknown_mode_is_one_sentence_naming_it(monkeypatch):
    monkeypatch.setenv(allocator.MODE_ENV, "jemalloc")
    with pytest.raises(ConfigError, match=r"SFTBENCH_MALLOC='jemalloc' is not a mode; use steady .* or system"):
        allocator.allocator_mode()


def test_steady_fixes_both_thresholds_once_and_system_touches_nothing(monkeypatch, glibc):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: FakeLibc())
    allocator._fix_thresholds.cache_clear()
    glibc(True)
    monkeypatch.setenv(allocator.MODE_ENV, "system")
    assert allocator.steady_allocation() == "system" and calls == []
    monkeypatch.setenv(allocator.MODE_ENV, "steady")
    assert allocator.steady_allocation() == "glibc-steady"
    assert allocator.steady_allocation() == "glibc-steady"
    assert calls == [(-3, 1 << 30), (-1, 1 << 30)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, applied once
    allocator._fix_thresholds.cache_clear()


def test_the_mode_is_part_of_the_fingerprint_so_two_modes_are_not_compared(monkeypatch, glibc):
    glibc(True)
    monkeypatch.setenv(allocator.MODE_ENV, "steady")
    steady = fingerprint(torch.device("cpu"))
    monkeypatch.setenv(allocator.MODE_ENV, "system")
    system = fingerprint(torch.device("cpu"))
    assert (steady["allocator"], system["allocator"]) == ("glibc-steady", "system")
    assert fingerprint_digest(steady) != fingerprint_digest(system)

    def machine(print_):
        run = RunSpeed(run_id="r", train_samples_per_s=100.0, workload="w", gemm_gflops=100.0,
                       fingerprint_digest=fingerprint_digest(print_))
        return Machine("cpu-x-2t", [run], print_)

    reason = machine_difference(machine(steady), machine(system), ThroughputThresholds())
    assert reason is not None and "allocator glibc-steady -> system" in reason


@pytest.mark.skipif(not allocator._is_glibc(), reason="mallopt is glibc's; other C libraries keep their own mode")
def test_steady_mode_stops_large_buffers_from_page_faulting_again():
    """The mechanism itself, in fresh processes: a 48 MB buffer allocated, written and freed ten times
    faults its pages in about once under the steady mode (measured: 12,296 faults for 12,288 pages);
    glibc's own mode maps it afresh each time (122,926)."""
    script = (
        "import resource, sys, torch\n"
        "from sftbench.allocator import steady_allocation\n"
        "if sys.argv[1] == 'steady': steady_allocation()\n"
        "torch.ones(12 << 20)\n"  # warm-up: the first allocation always faults
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for n in range(10): torch.ones((12 << 20) + 4096 * (n % 3))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )

    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True,
                             env={**os.environ, "SFTBENCH_MALLOC": mode})
        return int(out.stdout.split()[-1])

    steady, system = faults("steady"), faults("system")
    pages = (48 << 20) // 4096
    assert steady < 3 * pages, (steady, system)  # reused: the heap grows once, then no new faults
    assert system > 5 * pages, (steady, system)


def test_run_refuses_a_bad_mode_in_one_sentence_before_training(monkeypatch, tmp_path, tiny_suite, write_suite):
    monkeypatch.setenv(allocator.MODE_ENV, "tcmalloc")
    result = CliRunner().invoke(app, ["run", "--suite", str(write_suite(tiny_suite)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "SFTBENCH_MALLOC='tcmalloc' is not a mode" in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()

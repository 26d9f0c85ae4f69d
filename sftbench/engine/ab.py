"""`sftbench ab`: the same cases under two interpreters, alternately, on one machine.

Each side is a command that runs Python: a virtualenv's `python`, or a wrapper script that sets up
its environment and then `exec`s Python with the arguments it was given. Every round runs both
sides once with the same cases, seeds, device and threads, in A B then B A order or the reverse
(so a machine that drifts during the comparison moves both sides alike; which side opens each
pair of rounds is drawn, so a disturbance that recurs every few runs does not fall on one side).
Each run is a plain `sftbench run` in a child process, writing its records under the comparison's folder; nothing is shared in
memory, so the two sides may have different torch, timm or sftbench versions.
"""
from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import ConfigError, SftbenchError
from ..results.record import Record
from ..results.store import read_records

SIDES = ("A", "B")
OK_EXITS = (0, 3)  # 3: a case failed; its record says why and the comparison reports it


@dataclass(frozen=True)
class AbPlan:
    suite: Path
    suite_name: str
    pythons: dict[str, str]  # side -> the command that runs Python
    rounds: int
    out: Path
    device: str = "cpu"
    threads: Optional[int] = None
    seeds: Optional[str] = None
    limit_cases: Optional[int] = None
    data_root: Optional[Path] = None

    order_seed: int = 0

    def order(self, round_index: int) -> tuple[str, ...]:
        """Each pair of rounds is A B, B A or B A, A B, drawn with `order_seed`: balanced against a
        drifting machine, and not in step with a disturbance that recurs every few runs."""
        first = SIDES if random.Random(f"{self.order_seed}-{round_index // 2}").random() < 0.5 else SIDES[::-1]
        return first if round_index % 2 == 0 else first[::-1]

    def command(self, side: str, round_index: int) -> list[str]:
        args = [self.pythons[side], "-m", "sftbench", "run", "--suite", str(self.suite), "--out", str(self.out / side),
                "--run-id", run_id(side, round_index), "--device", self.device, "--executor", "serial"]
        for flag, value in (("--threads", self.threads), ("--seeds", self.seeds), ("--limit-cases", self.limit_cases),
                            ("--data-root", self.data_root)):
            if value is not None:
                args += [flag, str(value)]
        return args + ([] if round_index == 0 else ["--no-preflight"])  # checked once, in the first round


def run_id(side: str, round_index: int) -> str:
    return f"ab-{side}-round{round_index}"


@dataclass
class AbRuns:
    """Every record of the comparison, by side and round."""

    records: dict[str, dict[int, list[Record]]] = field(default_factory=lambda: {s: {} for s in SIDES})


Progress = Callable[[str, int, int], None]  # side, round, rounds


def child_env(folder: Path) -> dict[str, str]:
    """A side's environment: PYTHONSAFEPATH keeps the current folder off sys.path (Python 3.11+), and the
    child also starts in a folder of its own (`folder`), so each side imports its own interpreter's sftbench."""
    folder.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "PYTHONSAFEPATH": "1", "SFTBENCH_CALIBRATION": "off"}


_WHERE = "import sftbench, sys; sys.stdout.write(sftbench.__file__)"


def check_interpreters(pythons: dict[str, str], folder: Path) -> dict[str, str]:
    """Each side must start Python and import sftbench, or nothing runs; the sftbench path each side imports."""
    imports = {}
    for side, python in pythons.items():
        try:
            probe = subprocess.run([python, "-c", _WHERE], capture_output=True, text=True, timeout=300,
                                   cwd=_cwd(folder, side), env=child_env(_cwd(folder, side)))
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ConfigError(f"--{side.lower()} {python!r} cannot be started ({err}); pass a Python interpreter "
                              "or an executable wrapper script that execs one") from None
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConfigError(f"--{side.lower()} {python!r} cannot import sftbench ({last}); install sftbench into "
                              "that environment (`pip install -e .`)")
        imports[side] = str(Path(probe.stdout.strip()).parent)
    return imports


def _cwd(folder: Path, side: str) -> Path:
    return folder / f".cwd-{side}"  # empty: nothing in it can shadow a package


def run_ab(plan: AbPlan, progress: Progress = lambda side, r, n: None) -> AbRuns:
    """Run every round, both sides; a side that fails outright stops the comparison with its error."""
    runs = AbRuns()
    # calibration off: the pairing, not a reference workload, cancels the machine
    envs = {side: child_env(_cwd(plan.out, side)) for side in SIDES}
    for round_index in range(plan.rounds):
        for side in plan.order(round_index):
            progress(side, round_index, plan.rounds)
            done = subprocess.run(plan.command(side, round_index), capture_output=True, text=True, env=envs[side],
                                  cwd=_cwd(plan.out, side))
            path = plan.out / side / plan.suite_name / f"{run_id(side, round_index)}.jsonl"
            if done.returncode not in OK_EXITS or not path.exists():
                tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
                raise SftbenchError(f"side {side} ({plan.pythons[side]}) failed in round {round_index + 1} with exit "
                                    f"code {done.returncode}: {tail or 'no output'}")
            runs.records[side][round_index] = list(read_records(path))
    return runs

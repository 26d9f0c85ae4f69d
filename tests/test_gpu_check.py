"""benchmarks/gpu_check.sh runs all its parts on the CPU (`--device cpu --tiny`) and prints its table."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_its_cpu_capable_parts_and_prints_one_table(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--tiny",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    table = done.stdout[done.stdout.index("sftbench GPU check"):]
    assert "train img/s vs timm benchmark" in table and "sftbench device path" in table
    assert table.count("ok top-1") == 6 and "FAILED" not in table  # every case of cifar10.yaml, 1 epoch

#!/usr/bin/env bash
# The committed quickstart baseline, blessed from ten quiet runs of two seeds each (seeds 0-19, about
# 30 minutes on 2 cores), then the unchanged quickstart judged against it quiet and with one
# busy-loop neighbour per core, and once with a 2x slower backward pass (about 11 minutes more).
# Nothing else may run on the machine meanwhile. Unseen seeds for the accuracy figures:
# benchmarks/verdicts/accuracy_aa.sh. Usage: bash benchmarks/verdicts/quickstart_speed.sh [OUT]
# then: python benchmarks/verdicts/accuracy_power.py (see its docstring)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-results}
RUNS=10
NEIGHBOURS=()
trap 'for p in "${NEIGHBOURS[@]}"; do kill "$p" 2>/dev/null; done' EXIT
for r in $(seq 0 $((RUNS - 1))); do
  sftbench run --suite quickstart --seeds "$((2 * r)),$((2 * r + 1))" --run-id "bless-$r" --out "$OUT" > "$OUT/bless-$r.log" 2>&1
  rc=$?; echo "$(date +%T) bless-$r rc=$rc"
done
files=(); for r in $(seq 0 $((RUNS - 1))); do files+=(--results "$OUT/quickstart/bless-$r.jsonl"); done
sftbench baseline update --suite quickstart "${files[@]}" > "$OUT/bless.log" 2>&1; echo "$(date +%T) bless rc=$?"
sftbench run --suite quickstart --run-id quiet-check --out "$OUT" --check > "$OUT/quiet-check.log" 2>&1
rc=$?; echo "$(date +%T) quiet-check rc=$rc"
for _ in $(seq 1 "$(nproc)"); do python3 -c 'while True: pass' & NEIGHBOURS+=($!); done
sftbench run --suite quickstart --run-id busy-check --out "$OUT" --check > "$OUT/busy-check.log" 2>&1
rc=$?; echo "$(date +%T) busy-check rc=$rc"
for p in "${NEIGHBOURS[@]}"; do kill "$p" 2>/dev/null; done; NEIGHBOURS=()
# a real slowdown outside sftbench, quiet machine: torch's backward pass made twice as slow
for i in 1; do
  PYTHONPATH=$PWD/benchmarks/verdicts/slowdown${PYTHONPATH:+:$PYTHONPATH} SLOWDOWN_BACKWARD=1.0 \
    sftbench run --suite quickstart --run-id "slow-backward2x-$i" --out "$OUT" --check --no-preflight \
    > "$OUT/slow-backward2x-$i.log" 2>&1
  rc=$?; echo "$(date +%T) slow-backward2x-$i rc=$rc"
done

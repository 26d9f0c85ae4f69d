#!/usr/bin/env bash
# The `sftbench ab` figures of docs/verdicts.md (about 20 minutes on 2 cores, nothing else running):
# the same interpreter on both sides (twice), a 2x slower backward pass, a 15 % slower one.
# Usage: bash benchmarks/verdicts/ab_runs.sh [OUT]; then python benchmarks/verdicts/ab_rounds.py OUT/ab-*.json
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-results/speedgate}
SLOW=$PWD/benchmarks/verdicts/slowdown
SUITE=benchmarks/speed.yaml
mkdir -p "$OUT"
# sftbench ab: the same interpreter, a 2x slower backward pass, a 15 % slower one
wrapper() {  # wrapper FILE FACTOR: an interpreter that sets up its environment and execs python
  printf '#!/bin/sh\nexport PYTHONPATH=%s${PYTHONPATH:+:$PYTHONPATH}\nexport SLOWDOWN_BACKWARD=%s\nexec %s "$@"\n' "$SLOW" "$2" "$(command -v python)" > "$1"
  chmod +x "$1"
}
wrapper "$OUT/python-backward2x" 1.0
wrapper "$OUT/python-backward1.15x" 0.15
PY=$(command -v python)
ab() { local name=$1; shift; sftbench ab --suite "$SUITE" --limit-cases 1 --threads 2 --a "$PY" "$@" \
       --json "$OUT/ab-$name.json" --markdown "$OUT/ab-$name.md" > "$OUT/ab-$name.log" 2>&1
       local rc=$?; echo "$(date +%T) ab-$name rc=$rc"; }
ab same-1 --b "$PY" --rounds 5
ab same-2 --b "$PY" --rounds 5
ab backward2x --b "$OUT/python-backward2x" --rounds 3
ab backward1.15x --b "$OUT/python-backward1.15x" --rounds 8
echo "$(date +%T) done"

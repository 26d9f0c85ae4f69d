#!/usr/bin/env bash
# The committed quickstart baseline, blessed from ten quiet runs (one seed each, seeds 0-9), and the unchanged
# quickstart judged against it quiet and with one busy-loop neighbour per core (about 40 minutes
# on 2 cores). Usage: bash benchmarks/verdicts/quickstart_speed.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-results}
NEIGHBOURS=()
trap 'for p in "${NEIGHBOURS[@]}"; do kill "$p" 2>/dev/null; done' EXIT
for s in $(seq 0 9); do
  sftbench run --suite quickstart --seeds "$s" --run-id "bless-$s" --out "$OUT" > "$OUT/bless-$s.log" 2>&1
  rc=$?; echo "$(date +%T) bless-$s rc=$rc"
done
files=(); for s in $(seq 0 9); do files+=(--results "$OUT/quickstart/bless-$s.jsonl"); done
sftbench baseline update --suite quickstart "${files[@]}" > "$OUT/bless.log" 2>&1; echo "bless rc=$?"
sftbench run --suite quickstart --run-id quiet-check --out "$OUT" --check > "$OUT/quiet-check.log" 2>&1
rc=$?; echo "$(date +%T) quiet-check rc=$rc"
for _ in $(seq 1 "$(nproc)"); do python3 -c 'while True: pass' & NEIGHBOURS+=($!); done
sftbench run --suite quickstart --run-id busy-check --out "$OUT" --check > "$OUT/busy-check.log" 2>&1
rc=$?; echo "$(date +%T) busy-check rc=$rc"
# the same busy run judged against the schema-2 baseline an older sftbench blessed (no calibration)
git show 5416744~1:baselines/quickstart/cpu-amd-epyc-2t.json > "$OUT/old-baseline.json"
sftbench check --suite quickstart --results "$OUT/quickstart/busy-check.jsonl" --baseline "$OUT/old-baseline.json" \
  > "$OUT/busy-vs-old.log" 2>&1; echo "busy-vs-old rc=$?"

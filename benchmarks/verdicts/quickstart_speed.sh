#!/usr/bin/env bash
# The committed quickstart baseline, blessed from three quiet runs (one seed each), and the unchanged
# quickstart judged against it quiet and with one busy-loop neighbour per core (about 15 minutes
# on 2 cores). Usage: bash benchmarks/verdicts/quickstart_speed.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-results}
NEIGHBOURS=()
trap 'for p in "${NEIGHBOURS[@]}"; do kill "$p" 2>/dev/null; done' EXIT
for s in 0 1 2; do
  sftbench run --suite quickstart --seeds "$s" --run-id "bless-$s" --out "$OUT" > "$OUT/bless-$s.log" 2>&1
  echo "$(date +%T) bless-$s rc=$?"
done
files=(); for s in 0 1 2; do files+=(--results "$OUT/quickstart/bless-$s.jsonl"); done
sftbench baseline update --suite quickstart "${files[@]}" > "$OUT/bless.log" 2>&1; echo "bless rc=$?"
sftbench run --suite quickstart --run-id quiet-check --out "$OUT" --check > "$OUT/quiet-check.log" 2>&1
echo "$(date +%T) quiet-check rc=$?"
for _ in $(seq 1 "$(nproc)"); do python3 -c 'while True: pass' & NEIGHBOURS+=($!); done
sftbench run --suite quickstart --run-id busy-check --out "$OUT" --check > "$OUT/busy-check.log" 2>&1
echo "$(date +%T) busy-check rc=$?"

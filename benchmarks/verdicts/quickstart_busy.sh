#!/usr/bin/env bash
# The unchanged quickstart against a baseline blessed on this machine while quiet (three one-seed runs),
# then checked quiet and with one busy-loop process per core, and against the committed baseline (about
# 7 minutes on 2 cores, nothing else running). Usage: bash benchmarks/verdicts/quickstart_busy.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/../.."; OUT=${1:-results/quickstart-busy}; mkdir -p "$OUT"
for s in 0 1 2; do sftbench run --suite quickstart --seeds $s --run-id bless-$s --out $OUT --no-preflight > $OUT/bless-$s.log 2>&1; echo "$(date +%T) bless-$s rc=$?"; done
sftbench baseline update --suite quickstart --results $OUT/quickstart/bless-0.jsonl --results $OUT/quickstart/bless-1.jsonl --results $OUT/quickstart/bless-2.jsonl --baselines-dir $OUT/baselines > $OUT/bless.log 2>&1; echo "$(date +%T) bless rc=$?"
B=$(ls $OUT/baselines/quickstart/*.json)
sftbench run --suite quickstart --seeds 0 --run-id quiet-check --out $OUT --check --baseline $B --no-preflight > $OUT/quiet-check.log 2>&1; echo "$(date +%T) quiet-check rc=$?"
P=(); trap 'kill "${P[@]}" 2>/dev/null' EXIT  # the neighbours never outlive the script
for _ in $(seq 1 $(nproc)); do python3 -c 'while True: pass' & P+=($!); done
sftbench run --suite quickstart --seeds 0 --run-id busy-check --out $OUT --check --baseline $B --no-preflight > $OUT/busy-check.log 2>&1; echo "$(date +%T) busy-check rc=$?"
kill "${P[@]}"; P=()
sftbench check --suite quickstart --out $OUT --results $OUT/quickstart/quiet-check.jsonl > $OUT/committed-check.log 2>&1; echo "$(date +%T) committed-check rc=$?"

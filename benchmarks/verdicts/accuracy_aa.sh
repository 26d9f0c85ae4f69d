#!/usr/bin/env bash
# The accuracy A/A of docs/verdicts.md at scale: unchanged code, new seeds the committed baseline never
# saw, two streams side by side on the 2 cores: seeds FIRST to MID with one torch thread and a cold
# feature cache (a fresh SFTBENCH_CACHE), MID+1 to LAST with two threads and the usual cache. Accuracy
# does not depend on the machine's load, only on the thread count, so the streams may share the machine.
# Usage: bash benchmarks/verdicts/accuracy_aa.sh [OUT] [FIRST] [LAST]   (seeds 20-74: about 80 minutes on 2 cores)
# then:  python benchmarks/verdicts/false_alarms.py --baseline baselines/quickstart/cpu-amd-epyc-2t.json \
#            --aa OUT/quickstart/aa-threads1.jsonl --aa OUT/quickstart/aa-threads2.jsonl
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-results/accuracy-aa}
FIRST=${2:-20}
LAST=${3:-74}
MID=$(( (FIRST + LAST) / 2 ))
mkdir -p "$OUT"
seeds() { seq -s, "$1" "$2"; }
SFTBENCH_CACHE=$(mktemp -d) sftbench run --suite quickstart --seeds "$(seeds "$FIRST" "$MID")" --threads 1 --out "$OUT" \
  --run-id aa-threads1 --no-preflight > "$OUT/aa-threads1.log" 2>&1 &
sftbench run --suite quickstart --seeds "$(seeds $((MID + 1)) "$LAST")" --threads 2 --out "$OUT" \
  --run-id aa-threads2 --no-preflight > "$OUT/aa-threads2.log" 2>&1 &
wait
echo "done $(date +%T)"

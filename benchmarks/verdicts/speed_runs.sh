#!/usr/bin/env bash
# The runs behind docs/verdicts.md's speed-gate figures (about 35 minutes on 2 cores, plus 20 for `ab`;
# nothing else may run on the machine meanwhile). Usage: [AB=0] bash benchmarks/verdicts/speed_runs.sh [OUT]
# then: python benchmarks/verdicts/speed_gate.py OUT
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-results/speedgate}
SLOW=$PWD/benchmarks/verdicts/slowdown
SUITE=benchmarks/speed.yaml
mkdir -p "$OUT"
NEIGHBOURS=()
neighbours() {  # start N busy-loop processes beside the run (a shared CI runner's neighbours)
  for _ in $(seq 1 "$1"); do python3 -c 'while True: pass' & NEIGHBOURS+=($!); done; sleep 1
}
quiet() { for pid in "${NEIGHBOURS[@]}"; do kill "$pid" 2>/dev/null; done; NEIGHBOURS=(); sleep 1; }
run() {  # run ID [extra sftbench run args...]
  local id=$1; shift
  sftbench run --suite "$SUITE" --out "$OUT" --run-id "$id" --no-preflight "$@" > "$OUT/$id.log" 2>&1
  local rc=$?; echo "$(date +%T) $id rc=$rc"
}
trap quiet EXIT

# the baseline: three quiet runs, one seed each (seed noise and between-run noise from the same runs)
for s in 0 1 2; do run "bless-$s" --seeds "$s"; done
# A/A: unchanged code under varied conditions (seed 0: accuracy equals the baseline's seed 0)
for i in $(seq 1 8); do run "aa-quiet-$i"; done
neighbours 1; for i in 1 2 3 4; do run "aa-one-neighbour-$i"; done; quiet
neighbours 2; for i in 1 2 3 4; do run "aa-two-neighbours-$i"; done; quiet
for i in 1 2 3; do run "aa-threads1-$i" --threads 1; done
for i in 1 2 3; do run "aa-pool-$i" --executor pool --workers 2; done
# real slowdowns outside sftbench, on the quiet machine
for i in 1 2 3; do PYTHONPATH=$SLOW${PYTHONPATH:+:$PYTHONPATH} SLOWDOWN_BACKWARD=1.0 run "slow-backward2x-$i"; done
for i in 1 2 3; do PYTHONPATH=$SLOW${PYTHONPATH:+:$PYTHONPATH} SLOWDOWN_INTERPOLATE=1.0 run "slow-data2x-$i"; done
for i in 1 2 3; do PYTHONPATH=$SLOW${PYTHONPATH:+:$PYTHONPATH} SLOWDOWN_BACKWARD=0.5 run "slow-backward1.5x-$i"; done
for i in 1 2 3; do PYTHONPATH=$SLOW${PYTHONPATH:+:$PYTHONPATH} SLOWDOWN_BACKWARD=0.25 run "slow-backward1.25x-$i"; done
# twelve more quiet A/A runs, later in the session (the machine's state drifts over half an hour)
for i in $(seq 9 20); do run "aa-quiet-$i"; done

[ "${AB:-1}" = 0 ] || bash benchmarks/verdicts/ab_runs.sh "$OUT"

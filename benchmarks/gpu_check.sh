#!/usr/bin/env bash
# The GPU check: one script, one table, <= 8 minutes on one GPU. Paste its table into
# docs/performance.md. `--device cpu --tiny` runs every part small on the CPU (CI does).
#
#   bash benchmarks/gpu_check.sh [--device cuda|cpu] [--tiny] [--out DIR]
set -euo pipefail
DEVICE=cuda TINY=0 OUT=gpu-check
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown argument $1; use --device, --tiny, --out" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
JSON="$OUT/gpu_check.jsonl"; : > "$JSON"
export SFTBENCH_PERF_JSON="$JSON"

echo "== nvidia-smi"
nvidia-smi || echo "(nvidia-smi not available)"
echo "== environment"
python -c "import json, sys, torch; from sftbench.results.environment import environment; \
print(json.dumps(environment(torch.device(sys.argv[1])), indent=1, default=str))" "$DEVICE"

if [ "$TINY" = 1 ]; then
  TRAIN=(--arch resnet18 --size 32 --batches 8 --modes eager --steps 4 --min-seconds 0)
  DATA=(--arch resnet18 --size 32 --batch 8 --steps 3 --reps 1 --workers 1)
  SMOKE=(--tiny)
else
  TRAIN=(--arch resnet50 --size 224 --batches 64,256 --modes eager,compiled --precision bf16 --channels-last --cudnn-benchmark)
  DATA=(--arch resnet50 --size 224 --batch 64 --steps 30 --reps 3 --workers 8)
  SMOKE=()
fi

echo "== train throughput: sftbench fit() vs timm's train benchmark"
python "$HERE/perf/train_throughput.py" --device "$DEVICE" "${TRAIN[@]}" --json "$JSON"
echo "== data path vs the CPU DataLoader recipe"
python "$HERE/perf/data_path_vs_dataloader.py" --device "$DEVICE" "${DATA[@]}"
echo "== cifar10.yaml, 1 epoch on synthetic CIFAR-shaped data"
python "$HERE/gpu_smoke_suite.py" "$OUT/cifar10-smoke.yaml" "${SMOKE[@]}"
rm -f "$OUT/results/cifar10-smoke/smoke.jsonl"
python -m sftbench run --suite "$OUT/cifar10-smoke.yaml" --device "$DEVICE" --out "$OUT/results" --run-id smoke || true
python "$HERE/gpu_table.py" "$JSON" "$OUT/results/cifar10-smoke/smoke.jsonl"

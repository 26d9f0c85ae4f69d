#!/usr/bin/env bash
# last_k with the cached frozen prefix (A) against the image path (B), alternating A B B A, then a
# table of train seconds and top-1 per case: python benchmarks/perf/prefix_ab_table.py OUT
set -euo pipefail
out=${1:-/tmp/prefix_ab}
for run in A1 B1 B2 A2; do
  budget=1024; [[ $run == B* ]] && budget=0
  SFTBENCH_PREFIX_CACHE_MB=$budget sftbench run --suite benchmarks/perf/prefix_ab.yaml --out "$out" \
    --run-id "$run" --no-preflight > "$out-$run.log" 2>&1
done
python - "$out" <<'PY'
import json, statistics, sys
from pathlib import Path
runs = {p.stem: [json.loads(l) for l in p.read_text().splitlines()] for p in Path(sys.argv[1], "prefix_ab").glob("*.jsonl")}
cases = sorted({r["case_id"] for rs in runs.values() for r in rs})
print("| case | train s, prefix cache (A1, A2) | images (B1, B2) | ratio of medians | top-1 A | top-1 B |")
print("|---|---|---|---|---|---|")
for case in cases:
    t = {k: next(r for r in rs if r["case_id"] == case) for k, rs in runs.items()}
    a, b = [t[k]["timings_s"]["train"] for k in ("A1", "A2")], [t[k]["timings_s"]["train"] for k in ("B1", "B2")]
    print(f"| {case.split('-')[-1]} | {a[0]:.1f}, {a[1]:.1f} | {b[0]:.1f}, {b[1]:.1f} | "
          f"{statistics.median(b) / statistics.median(a):.2f}x | {t['A1']['metrics']['top1']:.4f} | {t['B1']['metrics']['top1']:.4f} |")
PY

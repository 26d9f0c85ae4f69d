"""Print the one table of benchmarks/gpu_check.sh from its JSON lines (and the smoke run's records)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def smoke_rows(results: Path) -> list[dict]:
    from sftbench import read_records

    rows = []
    for record in read_records(results):
        outcome = f"ok top-1 {record.top1:.4f}" if record.ok else f"FAILED: {record.error_message[:60]}"
        speed = record.throughput.train_samples_per_s if record.throughput else None
        rows.append({"check": "smoke", "case": record.case_id, "outcome": outcome,
                     "train_img_s": f"{speed:,.1f}" if speed else ""})
    return rows


def main() -> None:
    lines = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
    if len(sys.argv) > 2:
        lines += smoke_rows(Path(sys.argv[2]))
    table = Table(title="sftbench GPU check", show_lines=False)
    for column in ("check", "setting", "sftbench", "reference", "ratio"):
        table.add_column(column, justify="left" if column in ("check", "setting") else "right")
    for row in lines:
        if row["check"] == "train_throughput":
            setting = (f"{row['arch']} @{row['size']} {row['precision']}{' CL' if row['channels_last'] else ''} "
                       f"b{row['batch']} {row['mode']}")
            table.add_row("train img/s vs timm benchmark", setting, f"{row['sftbench_img_s']:,.1f}",
                          f"{row['timm_img_s']:,.1f}", f"{row['ratio']:.3f}")
        elif row["check"] == "smoke":
            speed = f", train {row['train_img_s']} img/s" if row.get("train_img_s") else ""
            table.add_row("cifar10.yaml smoke (1 epoch)", row["case"], row["outcome"] + speed, "", "")
        else:
            table.add_row(row["check"].split(",")[0][:40], row["contender"], f"{row['median']:,.1f} {row['unit']}",
                          "", f"{row['ratio']:.3f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()

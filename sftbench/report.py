"""Rendering only: rich tables from records. Takes a Console, returns nothing, decides nothing."""
from __future__ import annotations

from typing import Any, Optional

from rich import box
from rich.console import Console
from rich.table import Table


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_table(records: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("case", no_wrap=True)
    for name in ("status", "top-1", "F1", "train/s", "eval/s", "trained", "peak MB", "wall s"):
        table.add_column(name, justify="left" if name == "status" else "right")
    for r in records:
        metrics, speed, params = r.get("metrics", {}), r.get("throughput", {}), r.get("params", {})
        ok = r.get("status") == "ok"
        table.add_row(
            r["run_key"],
            "[green]ok[/]" if ok else "[red]FAILED[/]",
            _fmt(metrics.get("top1"), ".4f"),
            _fmt(metrics.get("macro_f1"), ".4f"),
            _fmt(speed.get("train_samples_per_s"), ",.1f"),
            _fmt(speed.get("eval_samples_per_s"), ",.1f"),
            _fmt(params.get("trainable_fraction") and 100 * params["trainable_fraction"], ".2f") + ("%" if params else ""),
            _fmt(r.get("memory", {}).get("peak_mb"), ",.0f"),
            _fmt(r.get("timings_s", {}).get("total"), ".1f"),
        )
    return table


def print_summary(console: Console, records: list[dict[str, Any]], title: str) -> None:
    console.print(summary_table(records, title))
    for r in records:
        if r.get("status") != "ok":
            error = r.get("error", {})
            console.print(f"[red]{r['run_key']} failed during {error.get('phase')}:[/] {error.get('message')}")

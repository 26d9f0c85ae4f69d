"""Render one list of verdicts four ways: rich table, Markdown, JUnit XML, JSON. Rendering only."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

from rich import box
from rich.console import Console
from rich.table import Table

from ..files import write_atomic
from ..regression.compare import MetricCheck, Status, Verdict
from .escape import markdown_cell, terminal_text

STYLE = {
    Status.PASS: "green", Status.IMPROVED: "bold green", Status.REGRESSED: "bold red", Status.NOISE: "yellow",
    Status.NEW: "cyan", Status.MISSING: "magenta", Status.FAILED: "bold red", Status.INCOMPARABLE: "magenta",
    Status.MACHINE_DIFFERS: "blue",
}


def _pct(check: Optional[MetricCheck], field: str) -> str:
    value = getattr(check, field) if check else None
    return "-" if value is None else f"{100 * value:.2f}"


def _speed(check: Optional[MetricCheck]) -> str:
    if check and check.status is Status.MACHINE_DIFFERS:
        return "not judged"
    if not check or check.baseline is None or check.current is None:
        return "-"
    return f"{check.current:,.1f} ({100 * (check.current / check.baseline - 1):+.1f}%)"


def _status_text(v: Verdict) -> str:
    return v.status.value + (f" (was {v.initial.status.value})" if v.initial and v.initial.status != v.status else "")


def verdict_table(verdicts: list[Verdict], title: str) -> Table:
    table = Table(title=terminal_text(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("case", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for name in ("base top-1 %", "top-1 %", "Δ pp", "train img/s (Δ)"):
        table.add_column(name, justify="right")
    table.add_column("reason")
    for v in verdicts:
        acc = v.check_for("accuracy")
        delta = f"{100 * acc.delta:+.2f}" if acc and acc.delta is not None else "-"
        table.add_row(terminal_text(v.case_id), f"[{STYLE.get(v.status, '')}]{_status_text(v)}[/]", _pct(acc, "baseline"),
                      _pct(acc, "current"), delta, _speed(v.check_for("train_throughput")), terminal_text(v.reason))
    return table


def machine_note(verdicts: list[Verdict]) -> Optional[str]:
    """One line when speed was left unjudged: how many cases, and the first reason (usually shared)."""
    unjudged = [c for v in verdicts for c in v.checks if c.status is Status.MACHINE_DIFFERS and c.metric != "peak_memory"]
    if not unjudged:
        return None
    cases = len({v.case_id for v in verdicts for c in v.checks if c in unjudged})
    return f"speed MACHINE-DIFFERS on {cases} case(s), neither a pass nor a regression: {unjudged[0].reason}"


def print_verdicts(console: Console, verdicts: list[Verdict], title: str) -> None:
    console.print(verdict_table(verdicts, title))
    counts = {s: sum(v.status is s for v in verdicts) for s in Status if any(v.status is s for v in verdicts)}
    console.print(", ".join(f"[{STYLE.get(s, '')}]{n} {s.value}[/]" for s, n in counts.items()) or "no cases")
    if note := machine_note(verdicts):
        console.print(terminal_text(note, style="blue"), highlight=False, soft_wrap=True)


def markdown(verdicts: list[Verdict], title: str) -> str:
    lines = [f"### {markdown_cell(title)}", "", "| case | status | baseline top-1 % | top-1 % | Δ pp | train img/s (Δ) | reason |",
             "|---|---|---:|---:|---:|---:|---|"]
    for v in verdicts:
        acc = v.check_for("accuracy")
        delta = f"{100 * acc.delta:+.2f}" if acc and acc.delta is not None else "-"
        icon = {Status.REGRESSED: "❌ ", Status.FAILED: "💥 ", Status.IMPROVED: "✅ "}.get(v.status, "")
        lines.append(f"| {markdown_cell(v.case_id)} | {icon}**{_status_text(v)}** | {_pct(acc, 'baseline')} | {_pct(acc, 'current')} "
                     f"| {delta} | {_speed(v.check_for('train_throughput'))} | {markdown_cell(v.reason)} |")
    counts = ", ".join(f"{sum(v.status is s for v in verdicts)} {s.value}" for s in Status
                       if any(v.status is s for v in verdicts))
    note = machine_note(verdicts)
    return "\n".join(lines + ["", counts or "no cases", *([""] + [note] if note else []), ""])


def junit_xml(verdicts: list[Verdict], suite: str, against: str = "no baseline") -> str:
    """One testcase per case: REGRESSED -> failure, FAILED -> error, MISSING/INCOMPARABLE -> skipped."""
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=f"sftbench.{suite}", tests=str(len(verdicts)),
                       failures=str(sum(v.status is Status.REGRESSED for v in verdicts)),
                       errors=str(sum(v.status is Status.FAILED for v in verdicts)),
                       skipped=str(sum(v.status in (Status.MISSING, Status.INCOMPARABLE) for v in verdicts)))
    ET.SubElement(ET.SubElement(ts, "properties"), "property", name="baseline", value=against)
    for v in verdicts:
        tc = ET.SubElement(ts, "testcase", classname=f"sftbench.{suite}", name=v.case_id)
        if v.status is Status.REGRESSED:
            ET.SubElement(tc, "failure", message=v.reason, type="REGRESSED").text = v.reason
        elif v.status is Status.FAILED:
            ET.SubElement(tc, "error", message=v.reason, type="FAILED").text = v.reason
        elif v.status in (Status.MISSING, Status.INCOMPARABLE):
            ET.SubElement(tc, "skipped", message=f"{v.status.value}: {v.reason}")
        ET.SubElement(tc, "system-out").text = f"{_status_text(v)}: {v.reason}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def verdicts_json(verdicts: list[Verdict], suite: str, against: str = "no baseline") -> str:
    data = {"suite": suite, "baseline": against, "verdicts": [v.to_dict() for v in verdicts]}
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def write_reports(verdicts: list[Verdict], suite: str, junit: Optional[Path], md: Optional[Path],
                  json_path: Optional[Path], against: str = "no baseline") -> None:
    """Every report names the baseline file and hardware the verdicts were judged against."""
    for path, text in ((junit, lambda: junit_xml(verdicts, suite, against)),
                       (md, lambda: markdown(verdicts, f"sftbench check: {suite} vs {against}")),
                       (json_path, lambda: verdicts_json(verdicts, suite, against))):
        if path is not None:
            write_atomic(path, text())

"""`sftbench publish`: the history as a static HTML site that opens from the file system.

Every script is bundled (plotly's offline bundle, written once beside the pages), so the pages work
with no network. index.html lists each case's latest figures, a sparkline and its status; one page
per case plots every metric over runs with its seed band, the committed baseline's band, change points and
environment changes, each point linked to its commit; regressions.html lists the change points.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from plotly.offline import get_plotlyjs

from ..errors import SftbenchError
from ..files import write_atomic
from ..history.changepoints import ChangePoint
from ..history.series import Series
from .baseline_band import Band
from .escape import file_slug, html_text, plotly_text, script_json
from .history import commit_text, delta_text, env_text, value_text

MARKER = ".sftbench-dashboard"  # a folder holding it was written by publish, and may be written again
LABELS = {"top1": "top-1 %", "train_throughput": "train img/s", "eval_throughput": "eval img/s", "peak_mb": "peak MB"}
STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
         "td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}.bad{color:#b00}.good{color:#070}")


def prepare_folder(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SftbenchError(f"{out} is not empty and was not written by `sftbench publish`; nothing was written: "
                            "publish into an empty or new folder (--out)")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / MARKER, "written by sftbench publish\n")


def _page(title: str, body: str, plotly: bool = False) -> str:
    script = '<script src="plotly.min.js"></script>' if plotly else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html_text(title)}</title>{script}"
            f"<style>{STYLE}</style></head><body><h1>{html_text(title)}</h1>{body}</body></html>")


def svg_sparkline(values: list[float], width: int = 120, height: int = 24) -> str:
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(values))
    return (f"<svg width='{width}' height='{height}' class='spark'><polyline fill='none' stroke='#1f77b4' "
            f"stroke-width='1.5' points='{points}'/></svg>")


def _baseline_layers(band: Optional[Band], scale: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The committed baseline behind a plot: a grey band, its centre dotted, and its label (shapes, notes)."""
    if band is None:
        return [], []
    area = {"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": band.low * scale, "y1": band.high * scale,
            "fillcolor": "rgba(120,120,120,0.15)", "line": {"width": 0}, "layer": "below"}
    middle = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": band.mid * scale, "y1": band.mid * scale,
              "line": {"color": "#777", "width": 1, "dash": "dot"}}
    label = {"xref": "paper", "x": 1, "xanchor": "right", "y": band.high * scale, "yanchor": "bottom",
             "showarrow": False, "font": {"size": 9, "color": "#555"}, "text": plotly_text(band.label)}
    return [area, middle], [label]


def _figure(series: Series, changes: list[ChangePoint], commit_url: Optional[str],
            band: Optional[Band] = None) -> dict[str, Any]:
    scale = 100.0 if series.metric == "top1" else 1.0
    x = list(range(len(series.points)))
    mean = [p.mean * scale for p in series.points]
    sd = [(p.sd or 0.0) * scale for p in series.points]
    # plotly reads <br>, <a href> and entities in its text: every string from the history is escaped
    labels = ["<br>".join(plotly_text(part) for part in (p.run_id, commit_text(p.commit), p.date[:16]))
              for p in series.points]
    links = [_link(commit_url, p.commit, p.run_id) for p in series.points]
    seed_band = {"x": x + x[::-1], "y": [m + s for m, s in zip(mean, sd)] + [m - s for m, s in zip(mean, sd)][::-1],
                 "fill": "toself", "line": {"width": 0}, "fillcolor": "rgba(31,119,180,0.2)", "hoverinfo": "skip",
                 "name": "± seed sd", "type": "scatter"}
    line = {"x": x, "y": mean, "text": labels, "customdata": links, "mode": "lines+markers", "type": "scatter",
            "name": LABELS[series.metric], "hovertemplate": "%{text}<br>%{y:.2f}<extra></extra>"}
    shapes, notes = _baseline_layers(band, scale)
    for change in changes:
        shapes.append({"type": "line", "x0": change.index - 0.5, "x1": change.index - 0.5, "yref": "paper", "y0": 0,
                       "y1": 1, "line": {"color": "#b00" if change.worse else "#070", "dash": "dash"}})
        notes.append({"x": change.index - 0.5, "yref": "paper", "y": 1.02, "showarrow": False,
                      "text": f"{delta_text(change)} (p={change.p_value:.1g})"})
    for i, point in enumerate(series.points):
        if point.env_change:
            notes.append({"x": i, "yref": "paper", "y": -0.18, "showarrow": False, "font": {"size": 9},
                          "text": plotly_text(env_text(point)[:80])})
    # zeroline off: at x = 0 plotly draws it as a vertical rule through the first run
    axis = {"tickvals": x, "ticktext": [plotly_text(_tick(p)) for p in series.points], "tickangle": -45, "zeroline": False}
    title = LABELS[series.metric] + (f" · machine {plotly_text(series.fingerprint)}" if series.fingerprint else "")
    layout = {"title": {"text": title}, "xaxis": axis, "shapes": shapes, "annotations": notes, "height": 340,
              "showlegend": False, "margin": {"b": 90}}
    return {"data": [seed_band, line], "layout": layout}


def _tick(point: Any) -> str:
    if not point.commit:
        return point.run_id[:7]
    return point.commit[:7] + ("*" if point.commit.endswith("-dirty") else "")


def _link(commit_url: Optional[str], commit: Optional[str], run_id: str) -> str:
    """The point's commit link; the record's values are URL-quoted, so they cannot change the scheme or host."""
    if not commit_url or not commit:
        return ""
    return commit_url.format(commit=quote(commit, safe=""), run_id=quote(run_id, safe=""))


# Each figure is data, not script: a <script type="application/json"> that one fixed script reads
# with JSON.parse (and its JSON escaped for a script element anyway); a click opens http(s) links only.
_FIGURE = "<div id='plot{i}'></div><script type='application/json' class='figure' data-plot='plot{i}'>{json}</script>"
_DRAW = ("<script>document.querySelectorAll('script.figure').forEach(function(s){var f=JSON.parse(s.textContent),"
         "d=document.getElementById(s.dataset.plot);Plotly.newPlot(d,f.data,f.layout,{responsive:true});"
         "d.on('plotly_click',function(e){var u=e.points[0].customdata;if(typeof u==='string'&&/^https?:[/][/]/i"
         ".test(u))window.open(u,'_blank','noopener');});});</script>")


def _case_page(case: str, series: list[Series], changes: list[ChangePoint], commit_url: Optional[str],
               bands: dict[str, Band]) -> str:
    plots = [_FIGURE.format(i=i, json=script_json(_figure(s, [c for c in changes if c.series is s], commit_url,
                                                          bands.get(s.key))))
             for i, s in enumerate(series)]
    return _page(case, "<p><a href='index.html'>all cases</a> · <a href='regressions.html'>change points</a></p>"
                 + "".join(plots) + _DRAW, plotly=True)


def _latest(series: list[Series], metric: str) -> str:
    found = [s for s in series if s.metric == metric]
    return value_text(found[-1], found[-1].points[-1]) if found else "-"


def _status(changes: list[ChangePoint]) -> str:
    if not changes:
        return "<span class='good'>steady</span>"
    return "<br>".join(f"<span class='{'bad' if c.worse else 'good'}'>{c.series.metric} {delta_text(c)} at "
                       f"{html_text(c.first_bad.run_id)}</span>" for c in changes)


def publish(series: list[Series], changes: list[ChangePoint], out: Path, commit_url: Optional[str] = None,
            title: str = "sftbench history", bands: Optional[dict[str, Band]] = None) -> list[Path]:
    """Write the site into `out` (empty, new, or an earlier dashboard); the pages written. `bands`: the
    committed baseline's band per series key, drawn behind that series."""
    prepare_folder(out)
    write_atomic(out / "plotly.min.js", get_plotlyjs())
    by_case: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for one in series:
        by_case[(one.suite, one.case_id)].append(one)
    rows, written = [], []
    for (suite, case), mine in sorted(by_case.items()):
        case_changes = [c for c in changes if c.series in mine]
        page = out / f"case-{file_slug(suite, case)}.html"
        write_atomic(page, _case_page(f"{suite} · {case}", mine, case_changes, commit_url, bands or {}))
        written.append(page)
        accuracy = [s for s in mine if s.metric == "top1"]
        spark = svg_sparkline([p.mean for p in accuracy[0].points]) if accuracy else ""
        rows.append(f"<tr class='case'><td>{html_text(suite)}</td><td><a href='{page.name}'>{html_text(case)}</a>"
                    f"</td><td>{_latest(mine, 'top1')}</td><td>{spark}</td><td>{_latest(mine, 'train_throughput')}"
                    f"</td><td>{_latest(mine, 'eval_throughput')}</td><td>{_status(case_changes)}</td></tr>")
    head = "<tr><th>suite</th><th>case</th><th>latest top-1</th><th>top-1 over runs</th><th>train img/s</th>" \
           "<th>eval img/s</th><th>status</th></tr>"
    index = out / "index.html"
    write_atomic(index, _page(title, f"<p>{len(by_case)} case(s), {len(changes)} change point(s) · "
                              f"<a href='regressions.html'>change points</a></p><table>{head}{''.join(rows)}</table>"))
    regressions = out / "regressions.html"
    items = "".join(f"<tr><td>{html_text(c.series.case_id)}</td><td>{html_text(c.series.metric)}</td><td>{delta_text(c)}"
                    f"</td><td>{c.p_value:.2g}</td><td>{html_text(c.last_good.run_id)} "
                    f"({html_text(commit_text(c.last_good.commit))})</td><td>{html_text(c.first_bad.run_id)} "
                    f"({html_text(commit_text(c.first_bad.commit))})</td><td>{html_text(env_text(c.first_bad))}</td></tr>"
                    for c in changes)
    write_atomic(regressions, _page("change points", "<p><a href='index.html'>all cases</a></p><table><tr><th>case</th>"
                                    "<th>metric</th><th>delta</th><th>p</th><th>last good</th><th>first bad</th>"
                                    f"<th>environment change</th></tr>{items}</table>"))
    return [index, regressions, *written]

"""Every string read from a file is data: escaped for the place it lands (HTML, a script's JSON,
a Markdown table, a file name, a rich table). Records, baselines and history databases travel
between machines and people, so none of their strings may become markup, script or a path."""
from __future__ import annotations

import hashlib
import html
import json
import math
import re
from typing import Any

from rich.text import Text

_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # terminal escapes and other C0/C1 controls, not \t \n


def html_text(value: object) -> str:
    """For HTML text and quoted attributes (both quote kinds escaped)."""
    return html.escape(str(value), quote=True)


def plotly_text(value: object) -> str:
    """For plotly's text fields (labels, ticks, titles, notes), which read <br>, <a href> and a few entities:
    `<`, `>` and `&` escaped, quotes left (plotly shows `&quot;` as it is)."""
    return html.escape(str(value), quote=False)


def script_json(value: Any) -> str:
    """JSON that may sit inside a <script> element: no `</script>`, `<!--`, `&` entity or JavaScript
    line terminator can end or change the element, and `JSON.parse` reads back the same value."""
    text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_UNSAFE[m.group()], text)


def _finite(value: Any) -> Any:
    """NaN and infinities (which JSON.parse refuses) as null, the gap plotly draws for a missing value."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def markdown_cell(value: object) -> str:
    """For a cell of a Markdown table (a CI summary, a PR comment): no HTML, no column break, one line."""
    text = html.escape(_CONTROL.sub("", str(value)), quote=False)
    return re.sub(r"\s*[\r\n\u2028\u2029]+\s*", " ", text).replace("|", "\\|").replace("`", "\\`")


def terminal_text(value: object, style: str = "") -> Text:
    """For a rich table or line: no console markup is read from it, and no terminal escape reaches the screen."""
    return Text(_CONTROL.sub("", str(value)), style=style)


def file_slug(*parts: str, limit: int = 72) -> str:
    """A file name for any strings: a readable slug, capped, plus a short hash of the exact parts, so
    `a b` and `a-b` get two names and a 300-character id a short one."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-.")[:limit] or "x"
    digest = hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()
    return f"{readable}-{digest}"

"""The typer app, its consoles, the options several commands share, and the user-error guard.

The CLI is the only place (with the pytest plugin) that picks exit codes (`sftbench.exit_codes`).
"""
from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from .. import options as shared
from .. import trust
from ..errors import SftbenchError, SftbenchWarning
from ..exit_codes import ExitCode
from ..report.escape import terminal_text

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark and regression suite for transfer learning.")
baseline_app = typer.Typer(help="Bless results as baselines.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")


@app.callback()
def _everywhere(allow_code: bool = typer.Option(shared.ALLOW_CODE.default, "--allow-code", help=shared.ALLOW_CODE.help)) -> None:
    """Benchmark and regression suite for transfer learning."""
    if allow_code:
        trust.allow_code()
# Piped output (CI logs) gets 160 columns instead of rich's 80, so tables are not truncated.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160)
F = TypeVar("F", bound=Callable[..., Any])
_show_warning = warnings.showwarning


def _show_sftbench_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """sftbench's own warnings are one yellow line on stderr; others keep Python's format."""
    if issubclass(category, SftbenchWarning):
        err_console.print(Text.assemble(("warning:", "yellow"), " ", terminal_text(message)), highlight=False,
                          soft_wrap=True)
    else:
        _show_warning(message, category, *args, **kwargs)


warnings.showwarning = _show_sftbench_warning
warnings.simplefilter("always", SftbenchWarning)  # each skipped line is its own warning


def user_errors(func: F) -> F:
    """Library errors become one red sentence and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SftbenchError as err:
            err_console.print(Text.assemble(("error:", "bold red"), " ", terminal_text(err)), highlight=False,
                              soft_wrap=True)  # the message quotes file values: never markup
            raise typer.Exit(ExitCode.CONFIG) from None

    return wrapper  # type: ignore[return-value]


# Options that several commands take: declared once.
SuiteOpt = Annotated[str, typer.Option("--suite", "-s", help="Suite name (benchmarks/<name>.yaml) or path.")]
OutOpt = Annotated[Path, typer.Option(help=shared.OUT.help)]
ResultsOpt = Annotated[Optional[list[Path]], typer.Option(help="Result files or folders (default: the suite's latest run).")]
BaselineOpt = Annotated[Optional[Path], typer.Option(help="Baseline file (default: baselines/<suite>/<hardware>.json).")]
JunitOpt = Annotated[Optional[Path], typer.Option("--junit-xml", help="Write JUnit XML here (run: with --check).")]
MarkdownOpt = Annotated[Optional[Path], typer.Option(help="Write a Markdown report here, e.g. $GITHUB_STEP_SUMMARY (run: with --check).")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write the verdicts as JSON here (run: with --check).")]
StrictOpt = Annotated[bool, typer.Option(help="MISSING and INCOMPARABLE cases fail the check (exit 1).")]
RequireBaselineOpt = Annotated[bool, typer.Option(help="A case with no baseline (NEW) fails the check (exit 1); for CI.")]
AllPointsOpt = Annotated[bool, typer.Option(help="Every sweep point as its own case, instead of each sweep "
                                            "group's point chosen on validation (suites with `select:`).")]
RequireNoiseOpt = Annotated[bool, typer.Option(help="Refuse (exit 2) a baseline case blessed from one seed: it has learnt no seed noise; for CI.")]
NodeOpt = Annotated[Optional[str], typer.Option(help="Only the records of one node: a host name, a host/node label "
                                                "or the start of a Ray node id (each record's env.node).")]

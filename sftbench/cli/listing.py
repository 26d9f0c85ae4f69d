"""`sftbench list`: what a suite can name (suites, backbones, datasets, strategies)."""
from __future__ import annotations

import fnmatch
from typing import Any

import typer
from rich.table import Table

from ..backbones.names import timm_models, torchvision_models
from ..backbones.offline import OFFLINE_PACKAGES
from ..data.datasets import DATASETS
from ..errors import ConfigError
from ..registry import Registry
from ..strategies.lookup import STRATEGIES
from ..suite.discovery import available_suites
from ..suite.loader import load_suite
from .app import app, console, user_errors


@app.command("list")
@user_errors
def list_(
    what: str = typer.Argument(..., help="suites | backbones | datasets | strategies"),
    pattern: str = typer.Option("*", help="Filter backbones with a wildcard, e.g. '*efficientnet*'."),
    source: str = typer.Option("timm", help="Backbones from timm or torchvision."),
) -> None:
    """List what a suite can name."""
    table = Table(title=what, title_justify="left")
    if what == "suites":
        _suites(table)
    elif what in ("datasets", "strategies"):
        _registry(table, DATASETS if what == "datasets" else STRATEGIES)
    elif what == "backbones":
        _backbones(table, source, pattern)
    else:
        raise ConfigError(f"cannot list {what!r}; use suites, backbones, datasets or strategies")
    console.print(table)


def _suites(table: Table) -> None:
    table.add_column("suite"), table.add_column("path"), table.add_column("description")
    for name, path in available_suites().items():
        description = load_suite(path).description.strip()
        table.add_row(name, str(path), description.splitlines()[0] if description else "")


def _registry(table: Table, registry: Registry[Any]) -> None:
    table.add_column("name"), table.add_column("parameters"), table.add_column("description")
    for entry in registry:
        params = getattr(entry.factory, "Params", None)
        default_bn = getattr(entry.factory, "default_bn", None)  # bn=None means the strategy's default
        shown = ", ".join(f"{k}={default_bn if k == 'bn' and f.default is None else f.default!r}"
                          for k, f in params.model_fields.items()) if params else "options"
        table.add_row(entry.name, shown, entry.description)


def _backbones(table: Table, source: str, pattern: str) -> None:
    if source not in ("timm", "torchvision"):
        raise ConfigError(f"--source {source!r} is unknown; use timm or torchvision")
    names = sorted(timm_models()) if source == "timm" else [f"torchvision:{n}" for n in sorted(torchvision_models())]
    table.add_column("backbone"), table.add_column("offline weights")
    for name in fnmatch.filter(names, pattern):
        table.add_row(name, OFFLINE_PACKAGES[name].pip_name if name in OFFLINE_PACKAGES else "")

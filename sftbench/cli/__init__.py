"""The `sftbench` command line: one module per command group, all on one typer app."""
from __future__ import annotations

import sys

from . import ab, check, history, leaderboard, listing, rank, results, run  # noqa: F401  (each registers its commands on the app)
from .app import app


def main() -> None:
    app(prog_name="sftbench")


if __name__ == "__main__":
    sys.exit(main())

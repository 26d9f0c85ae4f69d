"""`sftbench results merge`: combine the outputs of CI shards into one run."""
from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ConfigError
from ..results.selection import latest_per_run_key
from ..results.store import Store, read_records, result_files
from .app import OutOpt, app, console, user_errors

results_app = typer.Typer(help="Work with result files.", no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command("merge")
@user_errors
def merge(
    files: list[Path] = typer.Argument(..., help="Result files or folders of the shards."),
    run_id: str = typer.Option(..., help="The merged run's id."),
    out: OutOpt = Path("results"),
) -> None:
    """One run from several shard runs: each case once (its last record), for check, leaderboard and baselines."""
    paths = result_files(files)
    records = latest_per_run_key(r for f in paths for r in read_records(f))
    suites = sorted({r.suite for r in records})
    if len(suites) != 1:
        raise ConfigError(f"the files hold {'no records' if not suites else 'suites ' + ', '.join(suites)}; "
                          "merge the shards of one suite")
    store = Store.for_run(out, suites[0], run_id)
    if store.path.exists():
        raise ConfigError(f"{store.path} exists already; pick another --run-id")
    with store.lock:
        for record in records:  # one run: check and leaderboard pool a case's seeds within a run
            store.append(record.model_copy(update={"run_id": run_id}))
    console.print(f"merged {len(records)} record(s) from {len(paths)} file(s) into {store.path}")

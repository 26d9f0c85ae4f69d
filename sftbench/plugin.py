"""Suites as pytest tests: `pytest benchmarks/quickstart.yaml` collects one item per case and seed.

Each item runs through the same library functions as `sftbench run`, appends to the same results
store, and passes or fails by the same verdict logic as `sftbench check` (judged on its own seed
against the baseline's seeds). Registered through the `pytest11` entry point.

A suite with `select:` adds, after its points, one item per sweep group and seed: it chooses the
group's point on validation from the points this session ran (retraining it on train + val with
`refit: true`) and judges that point under the group's id, as `sftbench check` does. The points
themselves fail only when they fail to run.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import pytest

from . import options as shared
from .api import make_case
from .engine.device import device_for_suite, resolve_device
from .engine.refit import refit_cases
from .engine.runner import RunOptions, run_and_store
from .errors import DatasetUnavailableError, SftbenchError, WeightsUnavailableError
from .regression.baselines import Baseline
from .regression.compare import Status, Verdict
from .regression.gate import bless, default_baselines_dir, judge, pick_baseline
from .report.benchmark_json import write_benchmark_json
from .results.environment import new_run_id
from .results.record import Record
from .results.store import Store
from .results.sweep_choice import selected
from .schema import Suite
from .suite.cases import Case, expand
from .suite.loader import load_suite, read_yaml
from .trust import allow_code

UNAVAILABLE = {DatasetUnavailableError.__name__, WeightsUnavailableError.__name__}
_STATE_KEY = pytest.StashKey["_Session"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sftbench", "sftbench suites")
    for option in (shared.DEVICE, shared.SEEDS, shared.DATA_ROOT, shared.OUT, shared.BENCHMARK_JSON):
        group.addoption(f"--sftbench-{option.name}", default=option.default, help=option.help)
    for flag in (shared.UPDATE_BASELINES, shared.ALLOW_CODE):
        group.addoption(f"--sftbench-{flag.name}", action="store_true", default=flag.default, help=flag.help)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption(f"--sftbench-{shared.ALLOW_CODE.name}"):
        allow_code()  # before collection loads any suite
    config.stash[_STATE_KEY] = _Session(config)
    for axis in ("backbone", "dataset", "strategy"):
        config.addinivalue_line("markers", f"{axis}_<label>: sftbench cases by {axis} (e.g. -m {axis}_full)")


@pytest.hookimpl(trylast=True)  # after any reordering (pytest-randomly): a group needs its points run first
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: isinstance(item, GroupItem))  # stable: every other order is kept


def marker_name(axis: str, label: str) -> str:
    return f"{axis}_" + re.sub(r"\W", "_", label)


def _looks_like_suite(path: Path) -> bool:
    try:
        data = read_yaml(path)  # bounded like every suite: collection reads every YAML file it passes
    except SftbenchError:
        return False
    return isinstance(data, dict) and "matrix" in data and "name" in data


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> Optional[pytest.Collector]:
    if file_path.suffix in (".yaml", ".yml") and _looks_like_suite(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFile(pytest.File):
    def collect(self):  # type: ignore[override]
        session: _Session = self.config.stash[_STATE_KEY]
        try:
            suite = load_suite(self.path)
            cases = expand(suite, source=str(self.path), seeds=shared.parse_seeds(session.option("seeds")))
        except SftbenchError as err:
            raise self.CollectError(str(err)) from None
        for case in cases:
            item = CaseItem.from_parent(self, name=f"{suite.name}::{case.run_key}", case=case, suite=suite)
            _add_markers(item, case, session, self.config)
            yield item
        for group, members in _sweep_groups(cases).items():  # after every point: each chooses from all seeds
            for seed in sorted({case.seed for case in members}):
                item = GroupItem.from_parent(self, name=f"{suite.name}::{group}-seed{seed}", group=members,
                                             seed=seed, suite=suite)
                _add_markers(item, members[0], session, self.config)
                yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, self.CollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _sweep_groups(cases: list[Case]) -> dict[str, list[Case]]:
    groups: dict[str, list[Case]] = {}
    for case in cases:
        if case.select is not None:
            groups.setdefault(case.sweep_group, []).append(case)
    return groups


def _add_markers(item: pytest.Item, case: Case, session: "_Session", config: pytest.Config) -> None:
    for axis, label in (("backbone", case.backbone.label), ("dataset", case.dataset.label),
                        ("strategy", case.strategy.name)):
        name = marker_name(axis, label)
        if name not in session.markers:  # registered, so --strict-markers accepts them
            session.markers.add(name)
            config.addinivalue_line("markers", f"{name}: sftbench {axis} {label}")
        item.add_marker(name)


class CaseFailed(Exception):
    """The item's verdict: carries the sentence pytest shows."""


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, suite: Suite, **kwargs: Any):
        super().__init__(**kwargs)
        self.case, self.suite = case, suite

    def runtest(self) -> None:
        session: _Session = self.config.stash[_STATE_KEY]
        options = session.run_options(self.suite)
        if options is None:
            pytest.skip(session.skip_reason)
        record = run_and_store(self.case, session.store(self.suite.name), options)
        session.records.append(record)
        if not record.ok and record.error is not None and record.error.type in UNAVAILABLE:
            pytest.skip(record.error.message)
        if self.case.select is not None and record.ok:
            return  # a sweep point: its group's item judges the point chosen on validation
        verdict = session.verdict(self.path, self.suite.name, [self.case], record, self.case.case_id)
        _report(self, verdict)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            return f"{self.name}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"sftbench case {self.case.run_key}"


def _report(item: pytest.Item, verdict: Verdict) -> None:
    item.user_properties.append(("sftbench_status", verdict.status.value))
    if verdict.status in (Status.REGRESSED, Status.FAILED):
        raise CaseFailed(f"{verdict.status.value}: {verdict.reason}")
    if verdict.status is Status.NEW:
        item.add_report_section("call", "sftbench", f"NEW: {verdict.reason}")


class GroupItem(CaseItem):
    """One sweep group at one seed: the point chosen on validation over all the group's seeds, as
    `sftbench check` chooses it (refit on train + val if asked), judged at this seed."""

    def __init__(self, *, group: list[Case], seed: int, suite: Suite, **kwargs: Any):
        mine = [case for case in group if case.seed == seed]
        super().__init__(case=mine[0], suite=suite, **kwargs)
        self.group, self.mine = group, mine

    def runtest(self) -> None:
        session: _Session = self.config.stash[_STATE_KEY]
        keys = {case.run_key for case in self.group}
        ran = [r for r in session.records if r.suite == self.suite.name and r.run_key in keys]
        if not any(r.ok and r.seed == self.case.seed for r in ran):
            pytest.skip(f"no point of sweep group {self.case.sweep_group} ran with seed {self.case.seed} in this session")
        options = session.run_options(self.suite)
        for refit in refit_cases(self.mine, ran) if options is not None else []:
            record = run_and_store(refit, session.store(self.suite.name), options)
            session.records.append(record)
            ran.append(record)
        [stand_in] = [r for r in selected(ran) if r.seed == self.case.seed]
        _report(self, session.verdict(self.path, self.suite.name, self.group, stand_in, stand_in.case_id))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"sftbench sweep group {self.case.sweep_group}, seed {self.case.seed}"


class _Session:
    """Per pytest session: one results file per suite, the device, and the records for the end."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.records: list[Record] = []
        self.markers: set[str] = set()
        self._baselines: dict[tuple[Path, str], Optional[Baseline]] = {}  # baseline files, read once per session
        self._stores: dict[str, Store] = {}
        self.run_id = "pytest-" + new_run_id()
        self.skip_reason = ""

    def option(self, name: str) -> Any:
        return self.config.getoption(f"--sftbench-{name}")

    def run_options(self, suite: Suite) -> Optional[RunOptions]:
        """The suite's device, with `requires_gpu` meaning what it means for `sftbench run`."""
        try:
            device = device_for_suite(suite.name, suite.requires_gpu, self.option(shared.DEVICE.name))
        except SftbenchError as err:
            self.skip_reason = str(err)
            return None
        return RunOptions(device, self.option(shared.DATA_ROOT.name))

    def store(self, suite: str) -> Store:
        if suite not in self._stores:
            self._stores[suite] = Store.for_run(Path(self.option(shared.OUT.name)), suite, self.run_id)
        return self._stores[suite]

    def verdict(self, suite_path: Path, suite: str, cases: list[Case], record: Record, case_id: str) -> Verdict:
        """This seed alone against the baseline's seeds (other baseline cases are not MISSING here)."""
        key = (suite_path, record.hardware_key)
        if key not in self._baselines:
            self._baselines[key] = pick_baseline(None, default_baselines_dir(suite_path), suite, key[1])
        [verdict] = judge(cases, [record], self._baselines[key], only={case_id})
        return verdict


@pytest.fixture
def sftbench_case(request: pytest.FixtureRequest):
    """Factory fixture: `record = sftbench_case("resnet18", "cifar10", "linear_probe", epochs=1)`.

    Builds the case with `sftbench.api.make_case` (suite-file validation), runs it on the
    session's `--sftbench-device` and returns its record; a failed case fails the test."""
    session: _Session = request.config.stash[_STATE_KEY]

    def run(backbone: Any, dataset: Any, strategy: Any = "full", **kwargs: Any) -> Record:
        case = make_case(backbone, dataset, strategy, **kwargs)
        options = RunOptions(resolve_device(session.option(shared.DEVICE.name)), session.option(shared.DATA_ROOT.name))
        record = run_and_store(case, session.store(case.suite), options)
        session.records.append(record)
        if not record.ok and record.error is not None:
            if record.error.type in UNAVAILABLE:
                pytest.skip(record.error.message)
            when = f"failed during {record.error.phase}" if record.error.phase else "failed before it started"
            pytest.fail(f"{case.run_key} {when}: {record.error.message}")
        return record

    return run


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state: Optional[_Session] = session.config.stash.get(_STATE_KEY, None)
    if state is None or not state.records:
        return
    target = state.option(shared.BENCHMARK_JSON.name)
    if target:
        write_benchmark_json(Path(target), state.records)
    if state.option(shared.UPDATE_BASELINES.name):
        _update_baselines(session, state)


def _update_baselines(session: pytest.Session, state: _Session) -> None:
    by_suite: dict[str, list[Record]] = {}
    for record in state.records:
        by_suite.setdefault(record.suite, []).append(record)
    suite_paths = {item.suite.name: item.path for item in session.items if isinstance(item, CaseItem)}
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for suite, records in by_suite.items():
        if suite not in suite_paths:  # records of the sftbench_case fixture belong to no suite file
            continue
        for blessing in bless(selected(records), suite, default_baselines_dir(suite_paths[suite])):
            if reporter:
                done = (f"blessed {blessing.cases} case(s) into {blessing.path}" if blessing.blessed
                        else f"wrote nothing to {blessing.path}")
                reporter.write_line(f"sftbench: {done}" + (f"; refused {blessing.refused}" if blessing.refused else ""))

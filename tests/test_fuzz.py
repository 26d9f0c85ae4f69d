"""Fuzzing the suite schema: any YAML document, or any mutation of a shipped suite, either loads
into a Suite or raises ConfigError whose every line names the file. Nothing else, ever.

Runs FUZZ_EXAMPLES examples per property (200 by default) with a derandomised profile, so CI sees
the same inputs on every run; set SFTBENCH_FUZZ_EXAMPLES (and SFTBENCH_FUZZ_RANDOM=1 for fresh seeds)
to search longer locally.
"""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sftbench.errors import ConfigError
from sftbench.schema import Suite
from sftbench.suite.loader import load_suite, parse_suite

FUZZ_EXAMPLES = int(os.environ.get("SFTBENCH_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, derandomize="SFTBENCH_FUZZ_RANDOM" not in os.environ, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SHIPPED = {p.name: yaml.safe_load(p.read_text()) for p in sorted((Path(__file__).parent.parent / "benchmarks").glob("*.yaml"))}
SCRATCH = Path(tempfile.mkdtemp(prefix="sftbench-fuzz-"))
MAX_LINE = 2000  # a message line stays readable whatever the input

KEYS = ["name", "matrix", "backbones", "datasets", "strategies", "defaults", "overrides", "exclude", "seeds",
        "epochs", "batch_size", "optimizer", "lr", "weights", "file", "params", "id", "match", "set", "options",
        "thresholds", "accuracy", "throughput", "baseline_seeds", "train_size", "val_fraction", "requires_gpu"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(KEYS + ["cifar10", "resnet18", "linear_probe", "full",
                                                                  "pretrained", "random", "a:b", "os:path", "..", "/"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12), st.integers()), inner, max_size=4)),
    max_leaves=20)


def check_outcome(load: Any, source: str) -> None:
    """The property: a Suite, or a ConfigError whose lines each name the source file."""
    try:
        suite = load()
    except ConfigError as err:
        lines = str(err).split("\n")
        assert all(line.startswith(source) for line in lines), str(err)[:500]
        assert all(len(line) < MAX_LINE for line in lines)
        return
    assert isinstance(suite, Suite)


@FUZZ
@given(st.one_of(st.text(max_size=300), values.map(lambda v: yaml.safe_dump(v, allow_unicode=True))))
@example("name: &x [*x]\nmatrix: *x")  # a self-referencing alias
@example("a0: &a0 [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    + "name: q\nmatrix: {backbones: *a8, datasets: [x], strategies: [y]}")  # billion laughs
@example("\t\x00")
@example("name: q\nmatrix: {backbones: [resnet18], datasets: [synthetic], strategies: ['..x:Y']}")
def test_any_yaml_document_loads_or_is_a_config_error_naming_the_file(text: str) -> None:
    path = SCRATCH / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_outcome(lambda: load_suite(path), str(path))


def _mutate(data: Any, draw: Any) -> Any:
    """Replace, delete, add or duplicate one node somewhere in the tree."""
    if isinstance(data, (dict, list)) and data and draw(st.booleans()):
        keys = list(data) if isinstance(data, dict) else list(range(len(data)))
        key = draw(st.sampled_from(keys))
        data[key] = _mutate(data[key], draw)
        return data
    action = draw(st.sampled_from(["replace", "delete", "add", "duplicate"]))
    if action == "delete" and isinstance(data, dict) and data:
        del data[draw(st.sampled_from(list(data)))]
    elif action == "delete" and isinstance(data, list) and data:
        data.pop(draw(st.integers(0, len(data) - 1)))
    elif action == "add" and isinstance(data, dict):
        data[draw(st.sampled_from(KEYS))] = draw(values)
    elif action == "duplicate" and isinstance(data, list) and data:
        data.append(copy.deepcopy(data[0]))
    else:
        return draw(values)
    return data


@FUZZ
@given(st.sampled_from(sorted(SHIPPED)), st.data())
def test_any_mutation_of_a_shipped_suite_loads_or_is_a_config_error_naming_the_file(name: str, data: Any) -> None:
    suite = copy.deepcopy(SHIPPED[name])
    for _ in range(data.draw(st.integers(1, 3))):
        suite = _mutate(suite, data.draw)
    check_outcome(lambda: parse_suite(suite, name), name)

from __future__ import annotations

import pytest

from sftbench.errors import ConfigError
from sftbench.suite.cases import expand
from sftbench.suite.loader import load_suite, parse_suite

SRC = "benchmarks/x.yaml"


def suite_with(**changes):
    data = {"name": "t", "matrix": {"backbones": ["test_efficientnet"], "datasets": ["synthetic"], "strategies": ["full"]}}
    data.update(changes)
    return data


def error_of(data) -> str:
    with pytest.raises(ConfigError) as info:
        parse_suite(data, SRC)
    return str(info.value)


@pytest.mark.parametrize(
    "data, expected",
    [
        (suite_with(defaults={"optimizer": {"lr": -0.1}}),
         "benchmarks/x.yaml: defaults.optimizer.lr: -0.1 is invalid: input should be greater than 0"),
        (suite_with(defaults={"epoch": 3}),
         "benchmarks/x.yaml: defaults.epoch: unknown key 'epoch' (did you mean 'epochs'?); remove it (allowed here: "
         "batch_size, channels_last, compile, deterministic, epochs, eval_batch_size, feature_cache, grad_clip_norm, "
         "image_size, label_smoothing, max_steps_per_epoch, optimizer, precision, resources, schedule, seeds, tf32, "
         "timing_warmup_steps)"),
        (suite_with(defaults={"optimizer": {"name": "adam"}}),
         "benchmarks/x.yaml: defaults.optimizer.name: 'adam' is not allowed (did you mean 'adamw'?); use 'sgd' or 'adamw'"),
        (suite_with(defaults={"precision": "fp8"}),
         "benchmarks/x.yaml: defaults.precision: 'fp8' is not allowed; use 'fp32', 'bf16' or 'fp16'"),
        (suite_with(defaults={"seeds": [0, 0]}),
         "benchmarks/x.yaml: defaults.seeds: seeds [0, 0] repeat a value; list each seed once"),
        (suite_with(matrix2=1),
         "benchmarks/x.yaml: matrix2: unknown key 'matrix2' (did you mean 'matrix'?); remove it (allowed here: "
         "baseline_seeds, defaults, description, exclude, matrix, name, overrides, requires_gpu, select, sweep, thresholds, "
         "version)"),
        ({"matrix": suite_with()["matrix"]}, "benchmarks/x.yaml: name: required key 'name' is missing; add it"),
        (suite_with(matrix={"backbones": [{"name": "resnet18", "weights": "imagenet"}], "datasets": ["synthetic"],
                            "strategies": ["full"]}),
         "benchmarks/x.yaml: matrix.backbones[0].weights: weights 'imagenet' is not valid; use 'pretrained', "
         "'random' or {file: PATH}"),
        (suite_with(overrides=[{"match": {"strategy": "ful"}, "set": {"epochs": 2}}]),
         "benchmarks/x.yaml: overrides[0].match.strategy: 'ful' matches no strategy in the matrix "
         "(did you mean 'full'?); use one of ['full']"),
        (suite_with(overrides=[{"match": {"strategy": "full"}, "set": {"optimizer": {"lr": 0}}}]),
         "benchmarks/x.yaml: overrides[0].set.optimizer.lr: 0 is invalid: input should be greater than 0"),
        (suite_with(matrix={"backbones": ["test_efficientnet", "test_efficientnet"], "datasets": ["synthetic"],
                            "strategies": ["full"]}),
         "benchmarks/x.yaml: the matrix yields the same case twice ('test_efficientnet-synthetic-full'); "
         "remove the repeated entry or give one of them a distinct `id:`"),
    ],
)
def test_schema_errors_name_file_key_and_fix(data, expected):
    assert error_of(data) == expected


def test_unknown_names_suggest_close_matches():
    message = error_of({"name": "t", "matrix": {"backbones": ["resnet5O"], "datasets": ["cifar1O"],
                                                "strategies": ["linear_prob"]}})
    assert message.splitlines() == [
        "benchmarks/x.yaml: matrix.backbones[0].name: unknown backbone 'resnet5O' (did you mean 'resnet50' or "
        "'resnet51q' or 'resnet50t'?); use a timm model name (`sftbench list backbones`) or `torchvision:<name>`",
        "benchmarks/x.yaml: matrix.datasets[0].name: unknown dataset 'cifar1O' (did you mean 'cifar10' or "
        "'cifar100'?); run `sftbench list datasets` to see the available ones",
        "benchmarks/x.yaml: matrix.strategies[0]: unknown strategy 'linear_prob' (did you mean 'linear_probe'?); "
        "run `sftbench list strategies` to see the available ones",
    ]


def test_torchvision_names_and_strategy_params_are_checked():
    message = error_of({"name": "t", "matrix": {"backbones": ["torchvision:resnet19"], "datasets": ["synthetic"],
                                                "strategies": [{"name": "full", "params": {"k": 2}}]}})
    assert "unknown torchvision model 'resnet19' (did you mean 'resnet18'" in message
    assert "matrix.strategies[0]: strategy 'full': params.k: unknown parameter (allowed: bn)" in message


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: t\nmatrix:\n  backbones: [a\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+:\d+: YAML syntax error .*; fix the indentation or quoting there"):
        load_suite(path)


def test_non_mapping_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="the file must hold a mapping with `name` and `matrix`, not list"):
        load_suite(path)


def test_expansion_ids_overrides_excludes_and_seeds():
    suite = parse_suite({
        "name": "grid",
        "defaults": {"seeds": [0, 1], "optimizer": {"lr": 0.01}},
        "matrix": {
            "backbones": ["test_efficientnet", {"name": "test_efficientnet", "weights": "random"}],
            "datasets": ["synthetic"],
            "strategies": ["linear_probe", "full"],
        },
        "overrides": [{"match": {"strategy": "linear_probe"}, "set": {"optimizer": {"lr": 0.1}, "epochs": 3}}],
        "exclude": [{"backbone": "test_efficientnet-random", "strategy": "full"}],
    })
    cases = expand(suite)
    assert [c.run_key for c in cases] == [
        "test_efficientnet-synthetic-linear_probe-seed0",
        "test_efficientnet-synthetic-linear_probe-seed1",
        "test_efficientnet-synthetic-full-seed0",
        "test_efficientnet-synthetic-full-seed1",
        "test_efficientnet-random-synthetic-linear_probe-seed0",
        "test_efficientnet-random-synthetic-linear_probe-seed1",
    ]
    probe = cases[0]
    assert probe.train.optimizer.lr == 0.1 and probe.train.epochs == 3
    assert probe.train.optimizer.momentum == 0.9  # deep merge keeps untouched siblings
    assert cases[2].train.optimizer.lr == 0.01
    assert cases[0].spec_hash == cases[1].spec_hash  # seeds pool into one case
    assert len({c.spec_hash for c in cases}) == 3
    assert [c.seed for c in expand(suite, seeds=[7])][:1] == [7]
    assert all(c.train.epochs == 5 for c in expand(suite, epochs=5))


def test_spec_hash_ignores_labels_and_data_location_but_not_hyperparameters():
    def one(**dataset):
        data = {"name": "h", "matrix": {"backbones": ["test_efficientnet"],
                                        "datasets": [{"name": "synthetic", **dataset}], "strategies": ["full"]}}
        return expand(parse_suite(data))[0].spec_hash

    assert one() == one(id="syn", root="/elsewhere")
    assert one() != one(train_size=10)
    assert one() == one(split_seed=None) != one(split_seed=0)  # a new field's default keeps old hashes
    assert len(one()) == 16


def test_init_seed_keeps_old_hashes_at_its_default():
    def one(**backbone):
        data = {"name": "h", "matrix": {"backbones": [{"name": "test_efficientnet", **backbone}],
                                        "datasets": ["synthetic"], "strategies": ["full"]}}
        return expand(parse_suite(data))[0].spec_hash

    assert one() == one(init_seed=None) != one(init_seed=0)


def test_shipped_suites_are_valid():
    from sftbench.suite.discovery import available_suites

    suites = available_suites()
    assert {"quickstart", "cifar10"} <= set(suites)
    for path in suites.values():
        assert expand(load_suite(path))


def test_lbfgs_probe_with_augmentation_is_refused_in_one_sentence(tiny_suite):
    tiny_suite["matrix"]["datasets"][0]["augment"] = "crop_flip"
    tiny_suite["matrix"]["strategies"] = [{"name": "linear_probe", "params": {"probe": "lbfgs"}}]
    with pytest.raises(ConfigError) as err:
        parse_suite(tiny_suite, "s.yaml")
    assert str(err.value) == (
        "s.yaml: strategy 'linear_probe-probelbfgs' with dataset 'synthetic': probe: lbfgs fits the head once on fixed "
        "features, so augment: crop_flip would never be applied; use augment: none, or probe: sgd to train on "
        "augmented images")

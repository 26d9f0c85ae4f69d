from __future__ import annotations

import pytest
import torch

from sftbench.backbones.factory import Backbone, build_backbone
from sftbench.backbones.stages import depth_stages
from sftbench.data.pipeline import BatchPipeline, Preprocessing
from sftbench.data.splits import load_raw, make_splits
from sftbench.engine.fit import FitConfig, FitData, fit
from sftbench.engine.modes import apply_plan, freeze_batchnorm
from sftbench.engine.optim import build_optimizer
from sftbench.engine.verify import check_optimizer
from sftbench.errors import ConfigError, StrategyViolationError
from sftbench.schema import BackboneSpec, DatasetSpec, TrainSpec
from sftbench.strategies.base import ParamGroup, Strategy, TrainPlan
from sftbench.strategies.lookup import STRATEGIES, build_strategy
from sftbench.suite.loader import parse_suite

ARCHS = ["resnet18", "tf_efficientnet_lite0", "test_vit"]


@pytest.fixture(scope="module", params=ARCHS)
def arch(request) -> str:
    return request.param


def backbone(name: str, classes: int = 4) -> Backbone:
    return build_backbone(BackboneSpec(name=name, weights="random"), classes)


def trainable(name: str, strategy: str, epoch: int = 0, epochs: int = 4, **params) -> set[str]:
    b = backbone(name)
    return set(build_strategy(strategy, params).plan(b, epoch, epochs).trainable)


def all_names(name: str) -> list[str]:
    return [n for n, _ in backbone(name).model.named_parameters()]


HEADS = {"resnet18": {"fc.weight", "fc.bias"}, "tf_efficientnet_lite0": {"classifier.weight", "classifier.bias"},
         "test_vit": {"head.weight", "head.bias"}}
LAST_STAGE = {"resnet18": ("layer4.",), "tf_efficientnet_lite0": ("blocks.6.", "conv_head.", "bn2."),
              "test_vit": ("blocks.5.", "norm.")}
SECOND_LAST = {"resnet18": ("layer3.",), "tf_efficientnet_lite0": ("blocks.5.",), "test_vit": ("blocks.4.",)}


def test_exact_trainable_sets(arch):
    names, head = all_names(arch), HEADS[arch]
    assert trainable(arch, "linear_probe") == head
    assert trainable(arch, "full") == set(names)
    assert trainable(arch, "bitfit") == {n for n in names if n.endswith(".bias")} | head
    assert trainable(arch, "last_k", k=1) == {n for n in names if n.startswith(LAST_STAGE[arch])} | head
    assert trainable(arch, "last_k", k=2) == {
        n for n in names if n.startswith(LAST_STAGE[arch] + SECOND_LAST[arch])} | head
    norm_modules = [m for m, mod in backbone(arch).model.named_modules()
                    if isinstance(mod, (torch.nn.BatchNorm2d, torch.nn.LayerNorm))]
    assert trainable(arch, "norm_only") == {f"{m}.{p}" for m in norm_modules for p in ("weight", "bias")} | head


def test_trainable_fraction_ordering(arch):
    b = backbone(arch)
    sizes = {n: p.numel() for n, p in b.model.named_parameters()}
    count = lambda strategy, **p: sum(sizes[n] for n in build_strategy(strategy, p).plan(b, 0, 1).trainable)  # noqa: E731
    assert count("linear_probe") < count("bitfit") < count("last_k", k=1) < count("last_k", k=2) < count("full")


def test_lp_ft_switches_phase_at_lp_epochs():
    b = backbone("resnet18")
    s = build_strategy("lp_ft", {"lp_epochs": 2})
    plans = [s.plan(b, e, 4) for e in range(4)]
    assert [p.phase for p in plans] == ["probe", "probe", "fine_tune", "fine_tune"]
    assert plans[0].trainable == HEADS["resnet18"] and plans[2].trainable == set(all_names("resnet18"))
    assert plans[0].schedule_epochs == (0, 2) and plans[2].schedule_epochs == (2, 4)


def test_llrd_rates_decay_geometrically_by_depth(arch):
    b = backbone(arch)
    plan = build_strategy("llrd", {"decay": 0.5}).plan(b, 0, 1)
    assert plan.trainable == set(all_names(arch))
    scales = [g.lr_scale for g in plan.groups]
    assert scales == sorted(scales) and scales[-1] == 1.0
    assert HEADS[arch] <= set(plan.groups[-1].params)
    for shallow, deep in zip(scales, scales[1:]):
        assert deep / shallow == pytest.approx(2.0)
    first_block = next(g for g in plan.groups if any(n.startswith(("layer1.", "blocks.0.")) for n in g.params))
    assert first_block.lr_scale < 0.5 ** 3


def test_gradual_unfreeze_schedule():
    b = backbone("resnet18")
    s = build_strategy("gradual_unfreeze", {"every": 2})
    trained = [s.plan(b, e, 12).trainable - HEADS["resnet18"] for e in range(12)]
    # resnet18's stages from the top, written out (not from depth_stages, which the strategy uses)
    from_top = [("layer4.",), ("layer3.",), ("layer2.",), ("layer1.",), ("conv1.", "bn1.")]
    names = all_names("resnet18")
    for epoch, got in enumerate(trained):
        unfrozen = from_top[:min(len(from_top), epoch // 2)]
        assert got == {n for n in names if any(n.startswith(p) for stage in unfrozen for p in stage)}, epoch
    assert s.plan(b, 0, 12).phase == "unfrozen_0" and s.plan(b, 2, 12).phase == "unfrozen_1"


def test_stages_of_torchvision_models():
    b = build_backbone(BackboneSpec(name="torchvision:resnet18", weights="random"), 3)
    firsts = [s[0].split(".")[0] for s in depth_stages(b)]
    assert firsts == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]
    assert build_strategy("last_k", {"k": 1}).plan(b, 0, 1).trainable == {
        n for n, _ in b.model.named_parameters() if n.startswith(("layer4.", "fc."))}


# --- training keeps frozen things frozen ------------------------------------------------------


def tiny_data(pipeline_size: int = 32):
    spec = DatasetSpec(name="synthetic", val_fraction=0.0, options={"train": 32, "test": 8, "size": 16})
    splits = make_splits(load_raw(spec), spec, 0)
    return splits


def train_few_steps(b: Backbone, strategy: Strategy, epochs: int = 2) -> None:
    splits = tiny_data()
    pipe = BatchPipeline(Preprocessing(32, b.mean, b.std), torch.device("cpu"))
    cfg = TrainSpec(epochs=epochs, batch_size=8, optimizer={"lr": 0.05}, max_steps_per_epoch=2)
    fit(b, strategy, FitData(splits.train, splits.val), pipe, FitConfig(cfg, seed=0, strategy_name="s"))


@pytest.mark.parametrize("strategy, params", [("linear_probe", {}), ("last_k", {"k": 1}), ("bitfit", {"bn": "eval"})])
def test_frozen_weights_and_bn_statistics_unchanged(strategy, params):
    b = backbone("resnet18")
    s = build_strategy(strategy, params)
    trained = s.plan(b, 0, 2).trainable
    before = {k: v.clone() for k, v in b.model.state_dict().items()}
    train_few_steps(b, s)
    after = b.model.state_dict()
    frozen_params = [n for n, _ in b.model.named_parameters() if n not in trained]
    assert frozen_params and all(torch.equal(before[n], after[n]) for n in frozen_params)
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    frozen_stats = [k for k in stats if s.bn == "eval" or not any(k.rsplit(".", 1)[0] + "." in t for t in trained)]
    assert frozen_stats and all(torch.equal(before[k], after[k]) for k in frozen_stats)
    assert any(not torch.equal(before[n], after[n]) for n in trained)  # something did train


def test_bn_train_policy_updates_statistics_of_trained_stages():
    b = backbone("resnet18")
    before = b.model.layer4[1].bn2.running_mean.clone()
    frozen_before = b.model.layer1[0].bn1.running_mean.clone()
    train_few_steps(b, build_strategy("last_k", {"k": 1}))
    assert not torch.equal(before, b.model.layer4[1].bn2.running_mean)
    assert torch.equal(frozen_before, b.model.layer1[0].bn1.running_mean)


def test_bn_frozen_policy_uses_frozen_batchnorm():
    from torchvision.ops.misc import (
        FrozenBatchNorm2d,  # what timm.layers.freeze_batch_norm_2d produces
    )

    b = backbone("resnet18")
    b.model = freeze_batchnorm(b.model)
    assert isinstance(b.model.bn1, FrozenBatchNorm2d)
    assert not any("bn" in n for n, _ in b.model.named_parameters())
    before = {k: v.clone() for k, v in b.model.state_dict().items()}
    train_few_steps(b, build_strategy("full", {"bn": "frozen"}))
    after = b.model.state_dict()
    bn_buffers = [k for k in before if ".bn" in k or k.startswith("bn1.")]
    assert bn_buffers and all(torch.equal(before[k], after[k]) for k in bn_buffers)  # statistics and affine fixed
    assert not torch.equal(before["conv1.weight"], after["conv1.weight"])  # while the rest trained


def test_a_frozen_tensor_that_changes_fails_the_case():
    b = backbone("resnet18")
    def corrupt(module, inputs, output):  # a buggy layer that writes to its own frozen weight
        module.weight.data.add_(1.0)

    b.model.conv1.register_forward_hook(corrupt)
    with pytest.raises(StrategyViolationError, match=r"strategy 's' \(phase probe\): 1 frozen tensor\(s\) or "
                                                     r"BatchNorm statistics changed during training \(conv1.weight\)"):
        train_few_steps(b, build_strategy("linear_probe", {}))


def test_optimizer_holding_a_frozen_tensor_is_caught():
    b = backbone("resnet18")
    plan = TrainPlan((ParamGroup("head", ("fc.weight", "fc.bias")),), bn="eval")
    apply_plan(b.model, plan)
    leaky = TrainPlan((ParamGroup("head", ("fc.weight", "fc.bias", "conv1.weight")),), bn="eval")
    optimizer = build_optimizer(b.model, leaky, TrainSpec().optimizer)
    with pytest.raises(StrategyViolationError, match=r"the optimizer holds frozen tensors \(conv1.weight\)"):
        check_optimizer(b.model, optimizer, plan, "x")


# --- configuration errors ---------------------------------------------------------------------


def test_unknown_parameter_and_impossible_k_fail_clearly():
    with pytest.raises(ConfigError, match=r"strategy 'last_k': params.kk: unknown parameter \(did you mean 'k'\?\) "
                                          r"\(allowed: bn, k\)"):
        build_strategy("last_k", {"kk": 2})
    with pytest.raises(ConfigError, match=r"strategy 'last_k': params.k: 0 is invalid: input should be greater than 0"):
        build_strategy("last_k", {"k": 0})
    with pytest.raises(ConfigError, match=r"last_k: k=9 exceeds the 5 stages of this backbone; use 1 <= k <= 5"):
        build_strategy("last_k", {"k": 9}).check(backbone("resnet18"))
    with pytest.raises(ConfigError, match="norm_only with bn: frozen leaves no normalisation parameter to train"):
        b = backbone("resnet18")
        b.model = freeze_batchnorm(b.model)
        build_strategy("norm_only", {"bn": "frozen"}).check(b)


def test_user_strategy_by_module_reference(tmp_path, monkeypatch):
    (tmp_path / "my_strategies.py").write_text(
        "from sftbench.strategies import Strategy, TrainPlan, ParamGroup\n"
        "class StemOnly(Strategy):\n"
        "    def plan(self, backbone, epoch, epochs):\n"
        "        names = tuple(n for n, _ in backbone.model.named_parameters() if n.startswith('conv1.'))\n"
        "        return TrainPlan((ParamGroup('stem', names),), bn=self.bn)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SFTBENCH_ALLOW_CODE", "1")  # a suite that names module:Class is code: opted in
    assert trainable("resnet18", "my_strategies:StemOnly") == {"conv1.weight"}
    suite = parse_suite({"name": "u", "matrix": {"backbones": ["resnet18"], "datasets": ["synthetic"],
                                                 "strategies": ["my_strategies:StemOnly"]}})
    assert suite.matrix.strategies[0].label == "my_strategies:StemOnly"
    with pytest.raises(ConfigError, match=r"strategy 'my_strategies:Nope' could not be imported \(AttributeError"):
        build_strategy("my_strategies:Nope", {})


def test_every_registered_strategy_describes_itself():
    names = {e.name for e in STRATEGIES}
    assert names >= {"linear_probe", "full", "last_k", "bitfit", "norm_only", "lp_ft", "llrd", "gradual_unfreeze"}
    assert all(e.description for e in STRATEGIES)


def test_the_runner_freezes_batchnorm_for_bn_frozen(tiny_suite):
    """The `bn: frozen` wiring in the runner, not only the helper: the case trains with
    FrozenBatchNorm2d, whose affine parameters are buffers, so fewer tensors count as parameters."""
    from sftbench.engine.runner import RunOptions, run_case
    from sftbench.suite.cases import expand
    from sftbench.suite.loader import parse_suite

    tiny_suite["defaults"]["epochs"] = 1
    tiny_suite["matrix"]["strategies"] = ["full", {"name": "full", "id": "full_bnfrozen", "params": {"bn": "frozen"}}]
    plain, frozen = (run_case(c, RunOptions(torch.device("cpu"))) for c in expand(parse_suite(tiny_suite)))
    assert plain.ok and frozen.ok, (plain.error_message, frozen.error_message)
    assert (plain.strategy.bn, frozen.strategy.bn) == ("train", "frozen")
    bn_affine = sum(m.weight.numel() + m.bias.numel() for m in backbone("test_efficientnet").model.modules()
                    if isinstance(m, torch.nn.BatchNorm2d))
    assert bn_affine > 0 and plain.params.total - frozen.params.total == bn_affine

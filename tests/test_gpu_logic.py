"""The CUDA-path fixes, tested on the CPU through their logic (fakes and mocks; no GPU here)."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from sftbench.data.pipeline import BatchPipeline, PinnedGather, Preprocessing
from sftbench.data.types import ImageSet
from sftbench.engine import determinism, optim
from sftbench.engine import device as device_module
from sftbench.engine import runner as runner_module
from sftbench.engine.evaluate import evaluate
from sftbench.engine.runner import RunOptions, run_case
from sftbench.engine.timing import MemoryMeter
from sftbench.schema import OptimizerSpec, TrainSpec
from sftbench.strategies.base import ParamGroup, TrainPlan
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

CPU = RunOptions(torch.device("cpu"))


class FakeMemory:
    """A peak-memory counter: `allocate` raises the peak, `reset` brings it down to what is live."""

    def __init__(self):
        self.live = self.peak = 0.0

    def allocate(self, mb: float, keep: float = 0.0) -> None:
        self.peak = max(self.peak, self.live + mb)
        self.live += keep

    def reset(self) -> None:
        self.peak = self.live


def test_steady_peak_leaves_out_autotuning_workspaces_and_keeps_the_cold_peak():
    fake = FakeMemory()
    meter = MemoryMeter(torch.device("cpu"), reader=lambda: fake.peak, resetter=fake.reset)
    meter.start()
    fake.allocate(300, keep=300)  # weights and optimizer state
    fake.allocate(900)  # cuDNN trying candidate algorithms in the first steps
    meter.warm()
    fake.allocate(200)  # steady steps: activations
    meter.new_phase()  # evaluation begins: a new batch shape is tuned
    fake.allocate(700)
    meter.warm()
    fake.allocate(100)
    result = meter.result()
    assert result["peak_mb"] == 500 and result["cold_peak_mb"] == 1200 and result["steady"] is True


def test_a_case_records_a_steady_peak_no_higher_than_its_cold_peak(tiny_suite):
    tiny_suite["matrix"]["strategies"] = ["full"]
    record = run_case(expand(parse_suite(tiny_suite))[0], CPU)
    assert record.memory.steady and 0 < record.memory.peak_mb <= record.memory.cold_peak_mb


def test_padded_eval_batches_have_one_shape_and_give_the_unpadded_predictions():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 5)).eval()
    shapes = []
    forward = lambda x: shapes.append(tuple(x.shape)) or model(x)  # noqa: E731
    data = ImageSet(torch.randint(0, 256, (21, 3, 8, 8), dtype=torch.uint8), torch.arange(21) % 5)
    pipeline = BatchPipeline(Preprocessing(8, (0.5,) * 3, (0.25,) * 3), torch.device("cpu"))
    result = evaluate(model, data, pipeline, TrainSpec(eval_batch_size=8), forward)
    assert shapes == [(8, 3, 8, 8)] * 3  # 21 images: the last batch of 5 is padded to 8
    with torch.no_grad():
        unpadded = model(pipeline.transform(data.images, augment=False)).argmax(1)
    assert torch.equal(result.predictions, unpadded) and len(result.predictions) == 21


def test_pinned_gather_stages_rows_through_two_buffers_and_waits_before_reuse():
    waits, events = [], []

    class FakeEvent:
        def __init__(self):
            self.index = len(events)
            events.append(self)

        def record(self):
            pass

        def synchronize(self):
            waits.append(self.index)

    images = torch.arange(10 * 3 * 2 * 2, dtype=torch.uint8).view(10, 3, 2, 2)
    gather = PinnedGather(images, 4, torch.device("cpu"), pin=lambda t: t, new_event=FakeEvent)
    # on a GPU `.to(device)` copies out of the buffer; on this CPU stand-in it aliases, so clone
    batches = [gather(torch.tensor(ix)).clone() for ix in ([3, 1, 0, 9], [2, 2, 5, 4], [7, 8])]
    assert torch.equal(batches[0], images[[3, 1, 0, 9]]) and torch.equal(batches[2], images[[7, 8]])
    assert waits == [0]  # the third batch reuses buffer 0 only after the first copy's event
    assert gather.buffers[0].data_ptr() != gather.buffers[1].data_ptr()


def test_host_and_device_placement_give_the_same_batches():
    pipeline = BatchPipeline(Preprocessing(8, (0.5,) * 3, (0.25,) * 3, augment="flip"), torch.device("cpu"))
    data = ImageSet(torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8), torch.arange(20))
    runs = []
    for placement in ("device", "host"):
        g = torch.Generator().manual_seed(4)
        placed = pipeline.to_device(data, placement)
        runs.append(list(pipeline.batches(placed, 6, shuffle=True, generator=g, augment=True, drop_last=True)))
    for (xa, ya), (xb, yb) in zip(*runs):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_prepare_case_sets_the_cuda_device_tf32_and_resets_compile_state(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", str(d))))
    monkeypatch.setattr(torch.compiler, "reset", lambda: calls.append(("reset",)))
    monkeypatch.setattr(determinism, "_decided", True)
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:  # the cuBLAS flag lives on a module proxy that monkeypatch cannot restore
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        device_module.prepare_case(torch.device("cuda:1"), deterministic=False, tf32=True)
        assert calls == [("set_device", "cuda:1"), ("reset",)]
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        device_module.prepare_case(torch.device("cpu"), deterministic=True, tf32=True)
        assert calls[-1] == ("reset",) and ("set_device", "cpu") not in calls
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
        torch.use_deterministic_algorithms(True, warn_only=True)  # what the tiny suites' cases set


def test_every_case_resets_compile_state_and_compiles_with_fixed_shapes(tiny_suite, monkeypatch):
    resets, compiled = [], []
    monkeypatch.setattr(torch.compiler, "reset", lambda: resets.append(1))
    monkeypatch.setattr(runner_module.torch, "compile", lambda model, **kw: compiled.append(kw) or model)
    tiny_suite["defaults"]["compile"] = "default"
    for case in expand(parse_suite(tiny_suite)):
        assert run_case(case, CPU).status == "ok"
    assert len(resets) == 2 and compiled == [{"mode": "default", "dynamic": False}] * 2


@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("adamw", "AdamW")])
def test_optimizers_are_fused_on_cuda_only(monkeypatch, name, cls):
    seen = []
    monkeypatch.setattr(torch.optim, cls, lambda groups, **kw: seen.append(kw))
    model = nn.Linear(2, 2)
    plan = TrainPlan(groups=(ParamGroup("all", tuple(n for n, _ in model.named_parameters())),), bn="train")
    optim.build_optimizer(model, plan, OptimizerSpec(name=name))
    monkeypatch.setattr(optim, "params_device_type", lambda model: "cuda")
    optim.build_optimizer(model, plan, OptimizerSpec(name=name))
    assert "fused" not in seen[0] and seen[1]["fused"] is True


def test_determinism_is_decided_once_before_cuda_and_warned_ops_are_recorded(monkeypatch):
    monkeypatch.setattr(determinism, "_decided", False)
    monkeypatch.delenv(determinism.CUBLAS_KEY, raising=False)
    determinism.configure_process(True)
    assert determinism.os.environ[determinism.CUBLAS_KEY] == ":4096:8"
    monkeypatch.delenv(determinism.CUBLAS_KEY)
    determinism.configure_process(True)  # decided already: a later case cannot change it
    assert determinism.CUBLAS_KEY not in determinism.os.environ
    with pytest.warns(UserWarning, match="unrelated"):
        with determinism.record_nondeterministic_ops() as ops:
            warnings.warn("adaptive_avg_pool2d_backward_cuda does not have a deterministic implementation, but you "
                          "set 'torch.use_deterministic_algorithms(True, warn_only=True)'")
            warnings.warn("unrelated")
    assert ops == ["adaptive_avg_pool2d_backward_cuda"]
    assert determinism.determinism_record(True, ops)["nondeterministic_ops"] == ops


def test_feature_extraction_reads_batches_from_where_the_images_live(tmp_path, monkeypatch):
    from sftbench.backbones.factory import build_backbone
    from sftbench.data.features import FeatureCache
    from sftbench.engine.evaluate import autocast
    from sftbench.schema import BackboneSpec

    def whole_split(*args, **kwargs):
        raise AssertionError("feature extraction moved a whole split to the device")

    torch.manual_seed(0)
    b = build_backbone(BackboneSpec(name="test_efficientnet", weights="random"), 3)
    pipe = BatchPipeline(Preprocessing(16, b.mean, b.std), torch.device("cpu"))
    cache = FeatureCache(b.model, b.model.get_submodule(b.head_module), b.head_names, pipe,
                         lambda: autocast(torch.device("cpu"), "fp32"), root=tmp_path, batch=4)
    images = ImageSet(torch.randint(0, 256, (10, 3, 16, 16), dtype=torch.uint8), torch.arange(10) % 3)
    monkeypatch.setattr(BatchPipeline, "to_device", whole_split)
    features = cache.features(images, "d", torch.arange(10))
    b.model.eval()
    with torch.no_grad():
        x = pipe.transform(images.images, augment=False)
        expected = b.model.forward_head(b.model.forward_features(x), pre_logits=True)
    assert torch.allclose(features, expected, atol=1e-5)


def test_tf32_counts_in_the_spec_hash_only_when_switched_off(tiny_suite):
    default = expand(parse_suite(tiny_suite))[0]
    tiny_suite["defaults"]["tf32"] = True
    explicit = expand(parse_suite(tiny_suite))[0]
    tiny_suite["defaults"]["tf32"] = False
    off = expand(parse_suite(tiny_suite))[0]
    assert default.spec_hash == explicit.spec_hash != off.spec_hash

"""Training faults: a NaN stops the case at the step it happens, OOM and constructor errors fail one case."""
from __future__ import annotations

import math
import re

import pytest
import torch

from sftbench.engine import fit as fit_module
from sftbench.engine import runner as runner_module
from sftbench.engine.divergence import DivergenceWatch
from sftbench.engine.runner import RunOptions, run_case
from sftbench.errors import TrainingDivergedError
from sftbench.suite.cases import expand
from sftbench.suite.loader import parse_suite

CPU = RunOptions(torch.device("cpu"))


def _full_case(suite: dict, epochs: int = 3):
    suite["defaults"]["epochs"] = epochs
    suite["matrix"]["strategies"] = ["full"]
    return expand(parse_suite(suite))[0]


def test_watch_names_the_first_bad_step_of_the_epoch():
    watch = DivergenceWatch(torch.device("cpu"))
    for step, loss in enumerate([1.0, 0.5, math.inf, math.nan], start=1):
        watch.observe(torch.tensor(loss))
        if step < 3:
            watch.check(epoch=1, epoch_start=0, step=step)
    with pytest.raises(TrainingDivergedError, match=r"^loss became Inf at epoch 2, step 3;"):
        watch.check(epoch=1, epoch_start=0, step=4)


def test_a_nan_loss_stops_the_case_at_that_step_not_at_the_end_of_its_epochs(tiny_suite, monkeypatch):
    steps = []
    real_step = fit_module._SgdLoop._step

    def step_then_nan(self, phase, x, y):
        loss = real_step(self, phase, x, y)
        steps.append(self.step)
        return loss * math.nan if self.step == 4 else loss  # the 5th step of 9 (3 per epoch)

    monkeypatch.setattr(fit_module._SgdLoop, "_step", step_then_nan)
    record = run_case(_full_case(tiny_suite), CPU)
    assert record.status == "failed" and record.error.phase == "train"
    assert record.error.message.startswith("loss became NaN at epoch 2, step 2;")
    assert len(steps) == 5  # nothing ran after the bad step


def test_out_of_memory_names_the_batch_size_and_peak_and_the_suite_goes_on(tiny_suite, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(runner_module, "fit", oom)
    record = run_case(_full_case(tiny_suite), CPU)
    assert record.status == "failed" and record.error.type == "CaseOutOfMemoryError"
    assert re.match(r"out of memory on cpu in the train phase at batch_size 16 \(peak \d+ MB\); lower `batch_size`",
                    record.error.message)
    monkeypatch.undo()
    assert run_case(_full_case(tiny_suite, epochs=1), CPU).status == "ok"


def test_a_backbone_whose_constructor_raises_fails_with_the_timm_text(tiny_suite):
    tiny_suite["matrix"]["backbones"] = [{"name": "test_efficientnet", "weights": "random",
                                         "kwargs": {"no_such_argument": 1}}]
    record = run_case(_full_case(tiny_suite, epochs=1), CPU)
    assert record.status == "failed" and record.error.phase == "build"
    assert "no_such_argument" in record.error.message and record.error.message.startswith("TypeError: ")

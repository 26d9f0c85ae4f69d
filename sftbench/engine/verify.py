"""Check that training did what the strategy declared.

Before training: the optimizer holds exactly the trainable tensors. After each phase: every
tensor that was frozen, and the running statistics of every BatchNorm that ran in eval mode, are
bit-identical to their values when the phase began.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import StrategyViolationError, listing
from ..strategies.base import TrainPlan


def check_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, plan: TrainPlan, strategy: str) -> None:
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    params = dict(model.named_parameters())
    frozen_held = [n for n, p in params.items() if id(p) in held and n not in plan.trainable]
    missing = [n for n in plan.trainable if id(params[n]) not in held]
    not_grad = [n for n in plan.trainable if not params[n].requires_grad]
    grad_frozen = [n for n, p in params.items() if p.requires_grad and n not in plan.trainable]
    problems = []
    if frozen_held:
        problems.append(f"the optimizer holds frozen tensors ({listing(frozen_held, 5)})")
    if missing:
        problems.append(f"trainable tensors are missing from the optimizer ({listing(missing, 5)})")
    if not_grad or grad_frozen:
        problems.append(f"requires_grad disagrees with the plan ({listing(not_grad + grad_frozen, 5)})")
    if problems:
        raise StrategyViolationError(f"strategy {strategy!r} (phase {plan.phase}): " + "; ".join(problems)
                                     + "; fix the strategy's plan")


def _host_copy(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", copy=True)


class FrozenSnapshot:
    """Copies of what must not change during one phase, compared bit for bit afterwards.

    The copies live in host memory: on a GPU they would hide in every probe's peak memory
    (about 94 MB for a ResNet-50 backbone) and take accelerator memory from the batch.
    """

    def __init__(self, model: nn.Module, plan: TrainPlan):
        self.plan = plan
        self.tensors: dict[str, torch.Tensor] = {
            n: _host_copy(p) for n, p in model.named_parameters() if n not in plan.trainable
        }
        for module_name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.training:
                for buffer_name, buffer in module.named_buffers(recurse=False):
                    self.tensors[f"{module_name}.{buffer_name}"] = _host_copy(buffer)

    def verify(self, model: nn.Module, strategy: str) -> None:
        current = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        changed = [n for n, before in self.tensors.items() if not torch.equal(current[n].detach().cpu(), before)]
        if changed:
            raise StrategyViolationError(
                f"strategy {strategy!r} (phase {self.plan.phase}): {len(changed)} frozen tensor(s) or BatchNorm "
                f"statistics changed during training ({listing(changed, 5)}); a frozen layer was updated — check "
                "the strategy's plan and BN policy"
            )

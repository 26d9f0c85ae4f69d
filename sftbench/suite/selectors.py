"""Which cases an override or an exclude selects: by backbone, dataset and strategy, label or name."""
from __future__ import annotations

from typing import Optional, Union

from ..errors import ConfigError, did_you_mean, short_repr
from ..schema import BackboneSpec, CaseSelector, DatasetSpec, Matrix, StrategySpec


def selects(selector: CaseSelector, b: BackboneSpec, d: DatasetSpec, s: StrategySpec) -> bool:
    def hit(wanted: Optional[Union[str, list[str]]], *candidates: str) -> bool:
        if wanted is None:
            return True
        wanted_list = [wanted] if isinstance(wanted, str) else wanted
        return any(c in wanted_list for c in candidates)

    return (
        hit(selector.backbone, b.label, b.name)
        and hit(selector.dataset, d.label, d.name)
        and hit(selector.strategy, s.label, s.name)
    )


def check_selector(selector: CaseSelector, matrix: Matrix, strategies: list[StrategySpec], where: str) -> None:
    axes = {
        "backbone": [x for b in matrix.backbones for x in (b.label, b.name)],
        "dataset": [x for d in matrix.datasets for x in (d.label, d.name)],
        "strategy": [x for s in [*matrix.strategies, *strategies] for x in (s.label, s.name)],
    }
    for axis, known in axes.items():
        wanted = getattr(selector, axis)
        for value in [wanted] if isinstance(wanted, str) else wanted or []:
            if value not in known:
                raise ConfigError(
                    f"{where}.{axis}: {short_repr(value)} matches no {axis} in the matrix"
                    f"{did_you_mean(value, known)}; use one of {sorted(set(known))}"
                )

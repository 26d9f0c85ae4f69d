"""What a suite may name: backbones (timm, torchvision), datasets and strategies, from the registries.

The loader hands `CATALOG` to pydantic's validation context; the schema's validators call it, so
the schema itself never imports a component. Errors are ValueErrors, which pydantic reports with
their key path; each carries "did you mean ...?" and the fix.
"""
from __future__ import annotations

from typing import Any

from ..backbones.names import check_backbone
from ..data.datasets import DATASETS
from ..errors import ConfigError
from ..strategies.lookup import validate_params


class Catalog:
    def check_backbone(self, name: str) -> None:
        check_backbone(name)

    def check_dataset(self, name: str) -> None:
        if name not in DATASETS:
            raise ValueError(DATASETS.unknown_message(name))

    def check_strategy(self, name: str, params: dict[str, Any]) -> None:
        try:
            validate_params(name, params)
        except ConfigError as err:
            raise ValueError(str(err)) from None


CATALOG = Catalog()

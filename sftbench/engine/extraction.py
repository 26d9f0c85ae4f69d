"""How a case's images are preprocessed and its frozen features cached: one definition, shared by
the runner's probes and `rank`, so both hit the same feature-cache entries."""
from __future__ import annotations

import torch

from ..backbones.factory import Backbone
from ..data.features import FeatureCache
from ..data.pipeline import BatchPipeline, Preprocessing
from ..suite.cases import Case
from .evaluate import autocast


def case_preprocessing(case: Case, backbone: Backbone) -> Preprocessing:
    return Preprocessing(
        image_size=case.train.image_size or backbone.input_size, mean=backbone.mean, std=backbone.std,
        interpolation=backbone.interpolation, augment=case.dataset.augment, channels_last=case.train.channels_last,
    )


def case_feature_cache(case: Case, backbone: Backbone, pipeline: BatchPipeline, device: torch.device) -> FeatureCache:
    return FeatureCache(backbone.model, backbone.model.get_submodule(backbone.head_module), backbone.head_names,
                        pipeline, lambda: autocast(device, case.train.precision), enabled=case.train.feature_cache)

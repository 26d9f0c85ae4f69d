"""Frozen-backbone features, computed once and cached, for linear probes.

A probe trains only the head on a backbone in eval mode without augmentation, so the head's
input is a fixed function of the image. sftbench computes that input (captured by a hook on the
head, so timm and torchvision models alike) once per (backbone state, dataset, preprocessing),
stores it under the cache dir keyed by a content hash, and fills it incrementally: a later seed,
subset or run computes only the images not cached yet.
"""
from __future__ import annotations

import functools
import hashlib
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..errors import SftbenchWarning, first_sentence
from ..paths import cache_dir
from .digest import tensor_digest
from .pipeline import BatchPipeline
from .types import ImageSet

CACHE_VERSION = 2  # 2: features extracted in batches of one fixed shape
HOST_FLUSH_BATCHES = 32  # extracted features move to the host in chunks, not per batch
EXTRACT_BATCH = 64  # images per extraction batch; the last one is padded, so every batch has the same shape
CHECK_IMAGES = 8  # cached images extracted again when a cache file is opened, to prove it still holds
CHECK_TOLERANCE = 1e-2  # of the features' largest magnitude: thread counts and bf16 rounding stay well within


def backbone_digest(model: nn.Module, head_names: frozenset[str]) -> str:
    """Content hash of everything but the head: random inits differ per seed, pretrained do not."""
    state = [(k, v) for k, v in model.state_dict().items()
             if k not in head_names and not k.endswith("num_batches_tracked")]  # unused in eval mode
    return tensor_digest(state)


@dataclass
class FeatureStats:
    computed: int = 0
    reused: int = 0
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return {"computed": self.computed, "reused": self.reused, "extract_seconds": round(self.seconds, 4),
                "cache_files": self.files}


class FeatureCache:
    """Per (backbone, preprocessing, raw split) file holding features for any subset of its images."""

    def __init__(self, model: nn.Module, head: nn.Module, head_names: frozenset[str], pipeline: BatchPipeline,
                 precision_context: Any, root: Optional[Path] = None, enabled: bool = True, batch: int = EXTRACT_BATCH):
        self.model, self.head, self.pipeline = model, head, pipeline
        self.batch = batch
        self.autocast = precision_context
        self.root = (root or cache_dir()) / "features"
        self.enabled = enabled
        self.head_names = head_names
        self.stats = FeatureStats()
        self._loaded: dict[Path, dict[str, Any]] = {}

    @functools.cached_property
    def prefix(self) -> str:
        """Cache key of backbone state and preprocessing; hashed on first use (probes only)."""
        prep = self.pipeline.prep
        return hashlib.blake2b(
            f"v{CACHE_VERSION}|{backbone_digest(self.model, self.head_names)}|{prep.image_size}|{prep.mean}|"
            f"{prep.std}|{prep.interpolation}|{torch.__version__}".encode(), digest_size=12).hexdigest()

    def features(self, raw: ImageSet, raw_digest: str, index: torch.Tensor) -> torch.Tensor:
        """Features (on the device) of raw.images[index], computing only what the cache lacks."""
        path = self.root / f"{self.prefix}-{raw_digest}.pt"
        stored = self._load(path, raw)
        have = stored["have"]
        self.stats.reused += len(index) - int((~have[index]).sum())
        missing = index[~have[index]].unique()
        if len(missing):
            start = time.perf_counter()
            fresh = self._extract(raw.subset(missing), self.batch)
            self.stats.seconds += time.perf_counter() - start
            self.stats.computed += len(missing)
            if stored["features"] is None:
                stored["features"] = torch.zeros(len(raw), fresh.shape[1], dtype=fresh.dtype)
            stored["features"][missing] = fresh
            have[missing] = True
            if self.enabled:
                self._save(path, stored)
        return stored["features"][index].to(self.pipeline.device)

    def _load(self, path: Path, raw: ImageSet) -> dict[str, Any]:
        """The cache file's contents, read once per case (train and val share the training file)."""
        if path not in self._loaded:
            stored = _read_cache_file(path, len(raw)) if self.enabled and path.exists() else None
            if stored is not None and not self._still_holds(stored, raw, path):
                stored = None
            if stored is not None:
                self._loaded[path] = stored
                self.stats.files.append(path.name)
            else:
                self._loaded[path] = {"have": torch.zeros(len(raw), dtype=torch.bool), "features": None}
                if self.enabled:
                    self.stats.files.append(path.name)
        return self._loaded[path]

    def _still_holds(self, stored: dict[str, Any], raw: ImageSet, path: Path) -> bool:
        """Extract a few cached images again and compare. The key names the weights, preprocessing and
        torch version, not the code that runs the backbone: a changed forward pass, a broken eval()
        or a timm upgrade would otherwise be served stale features, hiding the regression it made."""
        cached = stored["have"].nonzero().flatten()[:CHECK_IMAGES]
        if not len(cached):
            return True
        start = time.perf_counter()
        fresh = self._extract(raw.subset(cached), self.batch)
        self.stats.seconds += time.perf_counter() - start
        old = stored["features"][cached]
        scale = float(old.abs().max()) or 1.0
        if fresh.shape == old.shape and float((fresh - old).abs().max()) <= CHECK_TOLERANCE * scale:
            return True
        warnings.warn(SftbenchWarning(f"feature cache file {path} no longer matches what the backbone computes "
                                      "(the code or a library changed); it is rebuilt"), stacklevel=4)
        return False

    @torch.inference_mode()
    def _extract(self, images: ImageSet, batch_size: int) -> torch.Tensor:
        """Head inputs of `images`, in order, read in batches from wherever the images live. Every
        batch has the same shape (the last is padded with copies of its last image), so the kernels
        chosen, and the features, never depend on how many images were missing from the cache."""
        captured: list[torch.Tensor] = []
        on_host: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0].float()))
        was_training = self.model.training
        self.model.eval()
        try:
            for x, _, real in self.pipeline.padded_batches(images, batch_size):
                with self.autocast():
                    self.model(x)
                captured[-1] = captured[-1][:real]
                if len(captured) == HOST_FLUSH_BATCHES:  # one device-to-host sync per this many batches
                    on_host.append(torch.cat(captured).cpu())
                    captured.clear()
        finally:
            hook.remove()
            self.model.train(was_training)
        if captured:
            on_host.append(torch.cat(captured).cpu())
        return torch.cat(on_host).flatten(1)

    @staticmethod
    def _save(path: Path, stored: dict[str, torch.Tensor]) -> None:
        """A cache that cannot be written (disk full, read-only) costs speed, never the case."""
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(stored, tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:  # torch.save reports a full disk as a RuntimeError
            tmp.unlink(missing_ok=True)
            warnings.warn(SftbenchWarning(f"could not write the feature cache {path} ({first_sentence(err, True)}); "
                                          "the case goes on without caching; free disk space under "
                                          "$SFTBENCH_CACHE"), stacklevel=3)


def _read_cache_file(path: Path, n: int) -> Optional[dict[str, Any]]:
    """A cache file's contents, or None (with a warning) when it is unreadable or not for this split:
    a damaged cache costs a re-extraction, never a failed case."""
    try:
        stored = torch.load(path, weights_only=True)
        have, features = stored["have"], stored["features"]
        if have.shape != (n,) or (features is not None and len(features) != n):
            raise ValueError(f"it holds {len(have)} images, the split has {n}")
    except Exception as err:  # truncated, garbled or foreign files all mean: rebuild
        warnings.warn(SftbenchWarning(f"feature cache file {path} is unreadable ({type(err).__name__}: "
                                      f"{str(err)[:120]}); it is rebuilt"), stacklevel=3)
        return None
    return stored

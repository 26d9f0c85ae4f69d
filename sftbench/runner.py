"""Run cases: seed, data, backbone, strategy, fit, evaluate; one record per case, failures isolated."""
from __future__ import annotations

import gc
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

import torch

from .backbones import build_backbone
from .datasets import Splits, load_raw, make_splits
from .errors import ConfigError, SftbenchError
from .evaluation import autocast, classification_metrics, evaluate
from .features import FeatureCache
from .plans import freeze_batchnorm
from .preprocess import BatchPipeline, Preprocessing, choose_placement
from .results import SCHEMA_VERSION, Store, environment, utc_now
from .spec import Case, TrainSpec
from .strategies import build_strategy
from .timing import peak_memory, reset_peak_memory
from .train import FeatureSource, fit, seed_everything


class Observer(Protocol):
    """What a progress display needs to know; every method is optional in spirit (no-ops allowed)."""

    def case_started(self, index: int, total: int, case: Case) -> None: ...
    def epoch_ended(self, epoch: int, epochs: int, loss: float) -> None: ...
    def case_finished(self, record: dict[str, Any]) -> None: ...
    def case_skipped(self, case: Case) -> None: ...


class SilentObserver:
    def case_started(self, index: int, total: int, case: Case) -> None: pass
    def epoch_ended(self, epoch: int, epochs: int, loss: float) -> None: pass
    def case_finished(self, record: dict[str, Any]) -> None: pass
    def case_skipped(self, case: Case) -> None: pass


@dataclass(frozen=True)
class RunOptions:
    device: torch.device
    data_root: Optional[str] = None
    suite_dir: Optional[Path] = None  # for the git commit in the fingerprint


def resolve_device(name: str) -> torch.device:
    """auto | cpu | cuda[:N] | mps, checked against what this machine has."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was asked for but no CUDA GPU is visible; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} does not exist (this machine has {torch.cuda.device_count()} GPU(s))")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' is not available on this machine; use --device cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


class _Phases:
    """Wall time per phase (data, build, train, eval), device-synchronised by the callers' work."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current: Optional[str] = None

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.current = name
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 4)


def _base_record(case: Case, options: RunOptions, run_id: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": case.suite,
        "run_id": run_id,
        "case_id": case.case_id,
        "run_key": case.run_key,
        "seed": case.seed,
        "spec_hash": case.spec_hash,
        "spec": case.to_record(),
        "labels": {"backbone": case.backbone.label, "dataset": case.dataset.label, "strategy": case.strategy.label},
        "env": environment(options.device, options.suite_dir),
        "started_at": utc_now(),
    }


def run_case(case: Case, options: RunOptions, run_id: str = "adhoc", observer: Observer = SilentObserver()) -> dict[str, Any]:
    """Run one case; a failure becomes a record with status `failed`, never an exception.

    KeyboardInterrupt is not caught: an interrupted case leaves no record and is re-run by --resume.
    """
    record = _base_record(case, options, run_id)
    phases = _Phases()
    device = options.device
    try:
        _execute(case, options, record, phases, observer)
        record["status"] = "ok"
    except Exception as err:  # one bad case must not stop the suite
        record["status"] = "failed"
        record["error"] = {
            "type": type(err).__name__,
            "message": str(err) if isinstance(err, SftbenchError) else f"{type(err).__name__}: {err}",
            "phase": phases.current,
            "traceback": "".join(traceback.format_exception(err)) if not isinstance(err, SftbenchError) else None,
        }
    finally:
        record["timings_s"] = {**phases.seconds, "total": round(sum(phases.seconds.values()), 4)}
        record["memory"] = peak_memory(device)
        record["finished_at"] = utc_now()
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return record


def _execute(case: Case, options: RunOptions, record: dict[str, Any], phases: _Phases, observer: Observer) -> None:
    device, cfg = options.device, case.train
    reset_peak_memory(device)
    seed_everything(case.seed, cfg.deterministic)
    with phases("data"):
        splits = make_splits(load_raw(case.dataset, options.data_root), case.dataset, case.seed)
        record["dataset"] = {"source": splits.source, "classes": list(splits.classes), "sizes": splits.sizes()}
    with phases("build"):
        strategy = build_strategy(case.strategy.name, case.strategy.params)
        backbone = build_backbone(case.backbone, splits.num_classes)
        if strategy.bn == "frozen":
            backbone.model = freeze_batchnorm(backbone.model)
        strategy.check(backbone)
        backbone.model.to(device)
        if cfg.channels_last:
            backbone.model.to(memory_format=torch.channels_last)
        forward = torch.compile(backbone.model, mode=cfg.compile) if cfg.compile else backbone.model
        prep = Preprocessing(
            image_size=cfg.image_size or backbone.input_size, mean=backbone.mean, std=backbone.std,
            interpolation=backbone.interpolation, augment=case.dataset.augment, channels_last=cfg.channels_last,
        )
        pipeline = BatchPipeline(prep, device)
        sizes = sum(s.images.numel() for s in (splits.train, splits.val, splits.test))
        placement = choose_placement(case.dataset.placement, sizes, device)
        train, val, test = (pipeline.to_device(s, placement) for s in (splits.train, splits.val, splits.test))
        cache = FeatureCache(backbone.model, backbone.model.get_submodule(backbone.head_module), backbone.head_names,
                             pipeline, lambda: autocast(device, cfg.precision), enabled=cfg.feature_cache)
        record["backbone"] = {"library": backbone.library, "weights_source": backbone.weights_source,
                              "image_size": prep.image_size, "interpolation": prep.interpolation}
        record["data_path"] = {"placement": placement, "channels_last": cfg.channels_last, "compile": cfg.compile}
    with phases("train"):
        fitted = fit(backbone, strategy, train, val, pipeline, cfg, case.seed, observer.epoch_ended,
                     case.strategy.name, _feature_source(cache, splits, cfg), forward)
        record["features"] = cache.stats.to_record()
    with phases("eval"):
        scored = evaluate(backbone.model, test, pipeline, cfg, forward)
    trainable = fitted.plans[-1]["trainable_params"] if fitted.plans else 0
    total = sum(p.numel() for p in backbone.model.parameters())
    record["strategy"] = {"name": case.strategy.name, "params": strategy.params.model_dump(), "bn": strategy.bn,
                          "plans": fitted.plans}
    record["metrics"] = {
        **classification_metrics(scored, splits.num_classes),
        "final_train_loss": fitted.final_train_loss,
        "val_top1": fitted.history[-1]["val_top1"] if fitted.history else None,
    }
    record["throughput"] = {
        "train_path": fitted.train_path,
        "train_samples_per_s": fitted.train_samples_per_s,
        "eval_samples_per_s": scored.samples_per_s,
        "timed_train_samples": fitted.timed_train_samples,
        "timed_train_seconds": round(fitted.timed_train_seconds, 4),
        "train_steps": fitted.steps,
    }
    record["params"] = {"trainable": trainable, "total": total, "trainable_fraction": trainable / total if total else 0.0}
    record["history"] = fitted.history


def _feature_source(cache: FeatureCache, splits: Splits, cfg: TrainSpec) -> FeatureSource:
    """Features of a split, memoised for the case: each split is fetched from the cache once."""
    assert splits.raw is not None and splits.index is not None
    raw, index, memo = splits.raw, splits.index, {}
    batch = cfg.eval_batch_size or 2 * cfg.batch_size

    def get(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in memo:
            source = raw.test if split == "test" else raw.train
            digest = raw.digests["test" if split == "test" else "train"]
            memo[split] = (cache.features(source, digest, index[split], batch),
                           source.labels[index[split]].to(cache.pipeline.device))
        return memo[split]

    return get


def run_cases(
    cases: list[Case], store: Store, options: RunOptions, observer: Observer = SilentObserver(), resume: bool = False,
) -> list[dict[str, Any]]:
    """Run every case, appending each record to the store the moment it exists."""
    done = store.finished_keys() if resume else set()
    records = []
    for index, case in enumerate(cases):
        if (case.run_key, case.spec_hash) in done:
            observer.case_skipped(case)
            continue
        observer.case_started(index, len(cases), case)
        record = run_case(case, options, store.run_id, observer)
        store.append(record)
        observer.case_finished(record)
        records.append(record)
    return records

"""Run cases: seed, data, backbone, strategy, fit, evaluate; one Record per case, failures isolated."""
from __future__ import annotations

import gc
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from ..allocator import steady_allocation
from ..backbones.factory import Backbone, build_backbone
from ..data.digest import tensor_digest
from ..data.features import FeatureCache
from ..data.pipeline import BatchPipeline, choose_placement
from ..data.splits import load_raw, make_splits
from ..data.types import ImageSet, Splits
from ..errors import CaseOutOfMemoryError, SftbenchError
from ..results.environment import environment, utc_now
from ..results.record import SCHEMA_VERSION, PerExample, Record
from ..results.store import Store
from ..strategies.base import Strategy
from ..strategies.lookup import build_strategy
from ..suite.cases import Case
from .calibration import PROCESS_CALIBRATOR
from .determinism import (
    configure_process,
    determinism_record,
    record_nondeterministic_ops,
)
from .device import DeviceRequest, prepare_case, seed_everything
from .evaluate import classification_metrics, evaluate
from .extraction import case_feature_cache, case_preprocessing
from .fit import FeatureSource, FitConfig, FitData, FitResult, fit
from .modes import freeze_batchnorm
from .observer import Observer, SilentObserver
from .timing import MemoryMeter, peak_memory


@dataclass(frozen=True)
class RunOptions:
    device: torch.device  # Ray: the driver's, for the records it writes itself; workers use `request`
    data_root: Optional[str] = None
    suite_dir: Optional[Path] = None  # for the git commit in the fingerprint
    request: Optional[DeviceRequest] = None  # set when the device is decided where the case runs (Ray)
    ray_node_id: Optional[str] = None  # the Ray node running the case, for its record


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


@dataclass
class _Built:
    """A case's model and data, ready to train."""

    backbone: Backbone
    strategy: Strategy
    pipeline: BatchPipeline
    train: ImageSet
    val: ImageSet
    test: ImageSet
    cache: FeatureCache
    forward: Any


def run_case(case: Case, options: RunOptions, run_id: str = "adhoc",
             observer: Observer = SilentObserver()) -> Record:
    """Run one case; a failure becomes a record with status `failed`, never an exception.

    KeyboardInterrupt is not caught: an interrupted case leaves no record and is re-run by --resume.
    """
    steady_allocation()  # before the fingerprint and the first timing (sftbench/allocator.py)
    fields = _identity(case, options, run_id)
    calibrated = PROCESS_CALIBRATOR.bracket(options.device)  # the machine's speed just before the case
    phases, memory = _Phases(), MemoryMeter(options.device)
    try:
        with record_nondeterministic_ops() as warned:
            _execute(case, options, fields, phases, observer, memory)
        fields["status"] = "ok"
    except torch.OutOfMemoryError:
        fields["status"] = "failed"
        fields["error"] = _error(_out_of_memory(case, options.device, phases.current), phases.current)
    except Exception as err:  # one bad case must not stop the suite
        fields["status"] = "failed"
        fields["error"] = _error(err, phases.current)
    finally:
        fields["timings_s"] = {**phases.seconds, "total": round(sum(phases.seconds.values()), 4)}
        fields["memory"] = memory.result()
        # .get: a BaseException (a test timeout, SystemExit) passes through here with no status set
        fields["determinism"] = determinism_record(case.train.deterministic, warned if fields.get("status") == "ok" else [])
        fields["finished_at"] = utc_now()
        gc.collect()
        if options.device.type == "cuda":
            torch.cuda.empty_cache()
    if calibrated is not None and fields["status"] == "ok":
        fields["env"]["calibration"] = calibrated()  # ... and just after it
    record = Record.model_validate(fields)
    if record.throughput is not None:  # the comparable cost, stored as the record derives it
        record.throughput.images_seen = record.images_seen
        wall = record.train_wall_samples_per_s
        record.throughput.train_wall_samples_per_s = round(wall, 3) if wall is not None else None
    return record


def _identity(case: Case, options: RunOptions, run_id: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION, "suite": case.suite, "run_id": run_id, "case_id": case.case_id,
        "run_key": case.run_key, "seed": case.seed, "spec_hash": case.spec_hash, "spec": case.to_record(),
        "labels": {"backbone": case.backbone.label, "dataset": case.dataset.label, "strategy": case.strategy.label},
        "env": environment(options.device, options.suite_dir, options.ray_node_id), "started_at": utc_now(),
    }


def failed_record(case: Case, options: RunOptions, run_id: str, kind: str, message: str) -> Record:
    """The record of a case that died outside `run_case` (its worker process was killed)."""
    fields = {**_identity(case, options, run_id), "status": "failed", "finished_at": utc_now(), "timings_s": {},
              "error": {"type": kind, "message": message, "phase": None, "traceback": None}}
    return Record.model_validate(fields)


def _out_of_memory(case: Case, device: torch.device, phase: Optional[str]) -> CaseOutOfMemoryError:
    peak = peak_memory(device)["peak_mb"]  # read before the cache is emptied
    return CaseOutOfMemoryError(
        f"out of memory on {device} in the {phase} phase at batch_size {case.train.batch_size} (peak {peak:.0f} MB); "
        "lower `batch_size`, use precision bf16, or `placement: host`"
    )


def _error(err: Exception, phase: Optional[str]) -> dict[str, Any]:
    ours = isinstance(err, SftbenchError)
    return {"type": type(err).__name__, "message": str(err) if ours else f"{type(err).__name__}: {err}",
            "phase": phase, "traceback": None if ours else "".join(traceback.format_exception(err))}


def _execute(case: Case, options: RunOptions, fields: dict[str, Any], phases: _Phases, observer: Observer,
             memory: MemoryMeter) -> None:
    device, cfg = options.device, case.train
    prepare_case(device, cfg.deterministic, cfg.tf32)
    memory.start()
    seed_everything(case.seed)
    with phases("data"):
        splits = make_splits(load_raw(case.dataset, options.data_root), case.dataset, case.seed)
        fields["dataset"] = {"source": splits.source, "classes": list(splits.classes), "sizes": splits.sizes()}
        test_digest = tensor_digest([("images", splits.test.images), ("labels", splits.test.labels)])
    with phases("build"):
        built = _build(case, splits, device, fields)
    with phases("train"):
        data = FitData(built.train, built.val, _feature_source(built.cache, splits))
        config = FitConfig(cfg, case.seed, case.strategy.name, built.forward, observer.epoch_ended, memory)
        fitted = fit(built.backbone, built.strategy, data, built.pipeline, config)
        fields["features"] = built.cache.stats.to_record()
    with phases("eval"):
        scored = evaluate(built.backbone.model, built.test, built.pipeline, cfg, built.forward, memory)
    fields.update(_outcome(case, built, fitted, scored, splits.num_classes))
    fields["per_example"] = PerExample.from_bools((scored.predictions == scored.labels).numpy(), test_digest)


def _build(case: Case, splits: Splits, device: torch.device, fields: dict[str, Any]) -> _Built:
    cfg = case.train
    strategy = build_strategy(case.strategy.name, case.strategy.params)
    backbone = _initialised_backbone(case, splits.num_classes)
    if strategy.bn == "frozen":
        backbone.model = freeze_batchnorm(backbone.model)
    strategy.check(backbone)
    backbone.model.to(device)
    if cfg.channels_last:
        backbone.model.to(memory_format=torch.channels_last)
    # fixed shapes everywhere (padded eval, drop_last train): one graph per case, never dynamic
    forward = torch.compile(backbone.model, mode=cfg.compile, dynamic=False) if cfg.compile else backbone.model
    prep = case_preprocessing(case, backbone)
    pipeline = BatchPipeline(prep, device)
    sizes = sum(s.images.numel() for s in (splits.train, splits.val, splits.test))
    placement = choose_placement(case.dataset.placement, sizes, device)
    train, val, test = (pipeline.to_device(s, placement) for s in (splits.train, splits.val, splits.test))
    cache = case_feature_cache(case, backbone, pipeline, device)
    fields["backbone"] = {"library": backbone.library, "weights_source": backbone.weights_source,
                          "image_size": prep.image_size, "interpolation": prep.interpolation}
    fields["data_path"] = {"placement": placement, "channels_last": cfg.channels_last, "compile": cfg.compile,
                           "tf32": cfg.tf32 if device.type == "cuda" else None}
    return _Built(backbone, strategy, pipeline, train, val, test, cache, forward)


def _initialised_backbone(case: Case, num_classes: int) -> Backbone:
    """The model's initial weights from the run's seed, or from the backbone's `init_seed` in a forked
    RNG, so that a fixed start leaves the seed's own stream (data order, augmentation) untouched."""
    init_seed = case.backbone.init_seed
    with torch.random.fork_rng(devices=[], enabled=init_seed is not None):
        if init_seed is not None:
            torch.manual_seed(init_seed)
        return build_backbone(case.backbone, num_classes)


def _outcome(case: Case, built: _Built, fitted: FitResult, scored: Any, num_classes: int) -> dict[str, Any]:
    trainable = fitted.plans[-1]["trainable_params"] if fitted.plans else 0
    total = sum(p.numel() for p in built.backbone.model.parameters())
    return {
        "strategy": {"name": case.strategy.name, "params": built.strategy.params.model_dump(),
                     "bn": built.strategy.bn, "plans": fitted.plans},
        "metrics": {**classification_metrics(scored, num_classes), "final_train_loss": fitted.final_train_loss,
                    "val_top1": fitted.history[-1]["val_top1"] if fitted.history else None},
        "throughput": {
            "train_path": fitted.train_path, "train_samples_per_s": fitted.train_samples_per_s,
            "eval_samples_per_s": scored.samples_per_s, "timed_train_samples": fitted.timed_train_samples,
            "timed_train_seconds": round(fitted.timed_train_seconds, 4), "train_steps": fitted.steps,
            "train_windows": fitted.train_windows, "eval_windows": scored.windows,
            "data_samples_per_s": fitted.data_samples_per_s, "data_windows": fitted.data_windows,
        },
        "params": {"trainable": trainable, "total": total, "trainable_fraction": trainable / total if total else 0.0},
        "history": fitted.history,
    }


def _feature_source(cache: FeatureCache, splits: Splits) -> FeatureSource:
    """Features of a split, memoised for the case: each split is fetched from the cache once."""
    assert splits.raw is not None and splits.index is not None
    raw, index, memo = splits.raw, splits.index, {}

    def get(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in memo:
            source = raw.test if split == "test" else raw.train
            digest = raw.digests["test" if split == "test" else "train"]
            memo[split] = (cache.features(source, digest, index[split]),
                           source.labels[index[split]].to(cache.pipeline.device))
        return memo[split]

    return get


def run_and_store(case: Case, store: Store, options: RunOptions, observer: Observer = SilentObserver()) -> Record:
    """Run one case and append its record the moment it exists: the one run-then-append workflow."""
    record = run_case(case, options, store.run_id, observer)
    store.append(record)
    observer.case_finished(record)
    return record


def run_cases(cases: list[Case], store: Store, options: RunOptions, observer: Observer = SilentObserver(),
              resume: bool = False) -> list[Record]:
    """Run every case (skipping, with `resume`, those the store already holds as finished)."""
    configure_process(any(c.train.deterministic for c in cases))  # before the first case starts CUDA
    records = []
    for index in unfinished(cases, store, observer, resume):
        observer.case_started(index, len(cases), cases[index])
        records.append(run_and_store(cases[index], store, options, observer))
    return records


def unfinished(cases: list[Case], store: Store, observer: Observer, resume: bool) -> list[int]:
    """Indices of the cases to run; with `resume`, those the store holds as finished are skipped."""
    done = store.finished_keys() if resume else set()
    todo = []
    for index, case in enumerate(cases):
        if (case.run_key, case.spec_hash) in done:
            observer.case_skipped(case)
        else:
            todo.append(index)
    return todo

"""Strategy lookup: a registered name, an entry-point plugin, or `package.module:Class`."""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, did_you_mean, first_sentence, short_repr
from ..trust import code_allowed, refuse_code
from . import builtin  # noqa: F401  (registers the built-in strategies)
from .base import ENTRY_POINT_GROUP, STRATEGIES, Params, Strategy

__all__ = ["STRATEGIES", "build_strategy", "resolve", "validate_params"]


def _load_entry_points() -> None:
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in STRATEGIES:
            try:
                STRATEGIES.register(entry.name, f"plugin ({entry.value})")(entry.load())
            except Exception:  # a broken plugin must not break sftbench; naming it reports the error
                continue


def resolve(name: str) -> type[Strategy]:
    """A registered name, an entry-point plugin, or `package.module:Class`."""
    if ":" in name:
        if not code_allowed():  # checked before anything is imported: importing runs the module
            raise refuse_code(f"strategy {short_repr(name)}")
        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except Exception as err:  # importing runs the module: it may raise anything
            raise ConfigError(f"strategy {short_repr(name)} could not be imported ({first_sentence(err, True)}); "
                              "check the `module:Class` path and that the module is importable") from None
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise ConfigError(f"strategy {short_repr(name)} is not a subclass of sftbench.Strategy; derive from it")
        return cls
    if name not in STRATEGIES:
        _load_entry_points()
    return STRATEGIES.get(name).factory


def validate_params(name: str, params: dict[str, Any]) -> Params:
    cls = resolve(name)
    try:
        return cls.Params.model_validate(params)
    except ValidationError as err:
        allowed = sorted(cls.Params.model_fields)
        problems = "; ".join(
            f"params.{'.'.join(map(str, e['loc']))}: "
            + (f"unknown parameter{did_you_mean(str(e['loc'][-1]), allowed)} (allowed: {', '.join(allowed)})"
               if e["type"] == "extra_forbidden" else f"{short_repr(e.get('input'))} is invalid: {e['msg'][0].lower()}{e['msg'][1:]}")
            for e in err.errors()
        )
        raise ConfigError(f"strategy {short_repr(name)}: {problems}") from None


def build_strategy(name: str, params: dict[str, Any]) -> Strategy:
    return resolve(name)(validate_params(name, params))

"""Freezing strategies: the Strategy base and its plans, the built-in strategies, lookup by name.

User strategies subclass `Strategy` (importable from here or from `sftbench`)."""
from .base import LbfgsProbe, ParamGroup, Params, Strategy, TrainPlan

__all__ = ["LbfgsProbe", "ParamGroup", "Params", "Strategy", "TrainPlan"]

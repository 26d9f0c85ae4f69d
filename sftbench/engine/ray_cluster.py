"""What a Ray cluster has and what it can still add, as the driver sees it: its live nodes' resources,
and the autoscaler's node types where Ray exposes them (the cluster config in Ray's GCS, which Ray
Train reads too). A task runs on one node, so a demand is checked against nodes, not the total."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from ..suite.cases import Case

EPSILON = 1e-9
ALWAYS = ("CPU", "GPU")  # every demand names these two; the rest are custom resources


@dataclass(frozen=True)
class Demand:
    """What one case's task asks of the cluster: CPUs, GPUs and any custom resources."""

    amounts: tuple[tuple[str, float], ...]  # (Ray resource name, amount per task), CPU and GPU first

    @classmethod
    def of(cls, case: Case, gpu_by_default: bool, extra: Optional[Mapping[str, float]] = None) -> "Demand":
        """`gpus` unset asks for one GPU when the device wants one; `extra` (--ray-resources) adds to every case."""
        wanted = case.train.resources
        gpus = wanted.gpus if wanted.gpus is not None else (1.0 if gpu_by_default else 0.0)
        custom = {**(extra or {}), **wanted.custom}
        return cls((("CPU", wanted.cpus or 1.0), ("GPU", gpus), *sorted(custom.items())))

    @property
    def cpus(self) -> float:
        return dict(self.amounts)["CPU"]

    @property
    def gpus(self) -> float:
        return dict(self.amounts)["GPU"]

    @property
    def custom(self) -> dict[str, float]:
        return {name: amount for name, amount in self.amounts if name not in ALWAYS}

    def fits(self, free: Mapping[str, float]) -> bool:
        return all(amount <= free.get(name, 0.0) + EPSILON for name, amount in self.amounts if amount > 0)

    def take(self, free: dict[str, float]) -> None:
        for name, amount in self.amounts:
            free[name] = free.get(name, 0.0) - amount

    def __str__(self) -> str:
        return describe(dict(self.amounts), self.custom)


def describe(resources: Mapping[str, float], names: Mapping[str, float]) -> str:
    """`1 CPU, 0 GPU, trainer 1`: CPU and GPU always, then the custom resources in `names`."""
    parts = [f"{resources.get('CPU', 0.0):g} CPU", f"{resources.get('GPU', 0.0):g} GPU"]
    return ", ".join(parts + [f"{name} {resources.get(name, 0.0):g}" for name in sorted(names)])


@dataclass(frozen=True)
class NodeType:
    """One of the autoscaler's node types: each node's resources, and how many it may start (-1: no limit)."""

    resources: dict[str, float]
    max_count: int


@dataclass(frozen=True)
class ClusterView:
    nodes: list[dict[str, float]]  # every live node's total resources
    node_types: Optional[list[NodeType]] = None  # None: the autoscaler's limits are not known

    @property
    def total(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for node in self.nodes:
            for name, amount in node.items():
                total[name] = total.get(name, 0.0) + amount
        return total

    def runs_now(self, demand: Demand) -> bool:
        """Some live node is large enough for the task (it may be busy)."""
        return any(demand.fits(node) for node in self.nodes)

    def can_add(self, demand: Demand) -> bool:
        """The autoscaler can start a node type large enough for the task."""
        return any(t.max_count != 0 and demand.fits(t.resources) for t in self.node_types or [])

    def has_gpus(self) -> bool:
        return self.total.get("GPU", 0.0) > 0 or any(t.resources.get("GPU", 0.0) > 0 for t in self.node_types or [])

    def largest(self, demand: Demand) -> str:
        """The live node closest to the demand (ties: the one with more of what it asks for), described in
        the demand's terms."""
        names = [name for name, _ in demand.amounts]
        best = max(self.nodes, default={}, key=lambda n: (sum(min(n.get(k, 0.0), v) for k, v in demand.amounts),
                                                          sum(n.get(k, 0.0) for k in names)))
        return describe(best, demand.custom)

    def shortfall(self, demand: Demand) -> str:
        """One sentence: the demand, what the cluster has, and what its autoscaler could add."""
        scaling = ("; its autoscaler's node types add none that large either "
                   f"({'; '.join(describe(t.resources, demand.custom) for t in self.node_types)})"
                   if self.node_types else "")
        return (f"the case asks for {demand} per task, but no node of the Ray cluster has that (largest: "
                f"{self.largest(demand)}; whole cluster: {describe(self.total, demand.custom)}){scaling}")


def read_cluster(ray: Any) -> ClusterView:
    nodes = [{k: float(v) for k, v in n["Resources"].items()} for n in ray.nodes() if n.get("Alive")]
    return ClusterView(nodes, autoscaler_node_types(ray))


def autoscaler_node_types(ray: Any) -> Optional[list[NodeType]]:
    """The node types an autoscaling cluster can add, from the cluster config Ray keeps in its GCS;
    None where there is no autoscaler (a fixed `ray start` cluster) or this Ray does not expose it."""
    try:
        config = ray._private.state.state.get_cluster_config()
    except Exception:  # an older or newer Ray without this (private) accessor: fall back to --ray-wait
        return None
    groups = getattr(config, "node_group_configs", None) if config is not None else None
    if not groups:
        return None
    return [NodeType({k: float(v) for k, v in dict(g.resources).items()}, int(g.max_count)) for g in groups]

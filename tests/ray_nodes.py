"""A real multi-node Ray cluster on this machine, for tests: a head and worker nodes, each a `ray start
--block` process in its own process group (so stopping one kills exactly its Ray processes, never a Ray the
user runs), on free ports, with a temp dir of its own (so a plain `ray.init()` elsewhere never finds it)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

RAY = str(Path(sys.executable).parent / "ray")
AGENT_PORTS = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
               "--metrics-export-port", "--node-manager-port", "--object-manager-port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalCluster:
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    port: int = field(default_factory=free_port)
    nodes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_head(self, cpus: int, gpus: int = 0) -> None:
        self._start(["--head", "--port", str(self.port),
                     "--include-dashboard", "false", "--temp-dir", self.temp_dir], cpus, gpus, None)

    def add_node(self, cpus: int, gpus: int = 0, resources: Optional[dict[str, float]] = None) -> subprocess.Popen:
        return self._start(["--address", self.address], cpus, gpus, resources)

    def _start(self, where: list[str], cpus: int, gpus: int, resources: Optional[dict[str, float]]) -> subprocess.Popen:
        ports = [arg for name in AGENT_PORTS for arg in (name, str(free_port()))]
        extra = ["--resources", json.dumps(resources)] if resources else []
        command = [RAY, "start", *where, "--num-cpus", str(cpus), "--num-gpus", str(gpus), *ports, *extra,
                   "--disable-usage-stats", "--block"]
        node = subprocess.Popen(command, env=self.env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.nodes.append(node)
        return node

    def wait_for(self, ray, count: int, timeout: float = 90.0) -> None:
        """Until `count` nodes are alive (the driver must already be connected)."""
        deadline = time.monotonic() + timeout
        while sum(n["Alive"] for n in ray.nodes()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} Ray nodes did not come up within {timeout:.0f} s")
            time.sleep(0.2)

    def connect(self, ray, timeout: float = 90.0) -> None:
        """Once the head's GCS port accepts connections (ray.init itself retries for minutes)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.nodes[0].poll() is not None:
                    raise TimeoutError(f"the Ray head on port {self.port} did not come up") from None
                time.sleep(0.2)
        ray.init(address=self.address, log_to_driver=False)

    def stop_node(self, node: subprocess.Popen) -> None:
        """`ray start --block` stops its own processes on SIGTERM (under a second; a SIGTERM to the whole group
        takes it ~30 s); SIGKILL to the group then leaves no process of this node behind."""
        try:
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.wait(timeout=20)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self.stop_node(node)

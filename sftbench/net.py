"""A fast, cached "can we reach the hubs?" probe, so offline runs fail in a second, not after retries."""
from __future__ import annotations

import functools
import os
import socket


@functools.lru_cache(maxsize=None)
def online(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    if os.environ.get("SFTBENCH_OFFLINE") or os.environ.get("HF_HUB_OFFLINE"):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

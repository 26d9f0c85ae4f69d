"""A fast, cached "can we reach the hubs?" probe, so offline runs fail in a second, not after retries."""
from __future__ import annotations

import functools
import socket

from .trust import env_flag


@functools.lru_cache(maxsize=None)
def online(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    if env_flag("SFTBENCH_OFFLINE") or env_flag("HF_HUB_OFFLINE"):  # "0" means online, as Hugging Face reads it
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

"""sftbench: a pytest-style benchmark and regression suite for transfer learning."""
from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("sftbench")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

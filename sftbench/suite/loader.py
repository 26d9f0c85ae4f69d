"""YAML -> validated `Suite`: names are checked through the catalog in pydantic's validation context."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from ..limits import MAX_SUITE_BYTES, MAX_YAML_NODES
from ..schema import Suite
from .cases import expand
from .catalog import CATALOG
from .messages import format_validation_error


def parse_suite(data: Any, source: str = "<suite>") -> Suite:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a mapping with `name` and `matrix`, not {type(data).__name__}")
    try:
        suite = Suite.model_validate(data, context={"catalog": CATALOG})
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None
    expand(suite, source=source)  # surfaces override/exclude/id errors at load time
    return suite


def load_suite(path: Union[str, Path]) -> Suite:
    path = Path(path)
    return parse_suite(_anchor_roots(read_yaml(path), path.parent), str(path))


def read_yaml(path: Path) -> Any:
    """A suite file's YAML (safe_load: tags build no objects), bounded in bytes and in the values its
    aliases expand to, so a few hundred crafted bytes cannot cost minutes when the spec is hashed."""
    limit = MAX_SUITE_BYTES.value
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"cannot read suite file {str(path)!r} ({why}); check the path") from None
    if len(raw) > limit:
        raise ConfigError(MAX_SUITE_BYTES.exceeded(f"suite file {path}", f"holds more than {limit:,} bytes"))
    if _flow_depth(text) > MAX_FLOW_DEPTH:  # PyYAML's scanner is quadratic in it: 100k `[` cost 27 s
        raise ConfigError(f"{path}: the YAML nests `[` and `{{` more than {MAX_FLOW_DEPTH} deep; flatten it")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error ({problem}); fix the indentation or quoting there") from None
    except RecursionError:
        raise ConfigError(f"{path}: the YAML nests too deeply to read; flatten it") from None
    _check_expanded_size(data, str(path))
    return data


MAX_FLOW_DEPTH = 200  # no suite nests its lists and mappings a tenth as deep


def _flow_depth(text: str) -> int:
    """The deepest nesting of flow brackets, counted roughly (quotes and comments are not parsed): only a
    file hundreds of brackets deep reaches the limit, and parsing such a file is what the limit prevents."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def _check_expanded_size(data: Any, source: str) -> None:
    """Count values as hashing and validation will see them (an alias counted each time it is used), stopping
    at the limit: the walk costs at most the limit, whatever the aliases would expand to."""
    limit, seen, stack = MAX_YAML_NODES.value, 0, [data]
    while stack:
        value = stack.pop()
        seen += 1
        if seen > limit:
            raise ConfigError(MAX_YAML_NODES.exceeded(source, "expands (YAML aliases included) to more values"))
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _anchor_roots(data: Any, folder: Path) -> Any:
    """A dataset's relative `root:` (after ~ and $VARS) is relative to its suite file, so a suite
    and the image folder beside it work from any working directory."""
    matrix = data.get("matrix") if isinstance(data, dict) else None
    datasets = matrix.get("datasets") if isinstance(matrix, dict) else None
    if not isinstance(datasets, list):
        return data
    for entry in datasets:
        if isinstance(entry, dict) and isinstance(entry.get("root"), str) and entry["root"]:
            root = Path(os.path.expanduser(os.path.expandvars(entry["root"])))
            entry["root"] = str(root if root.is_absolute() else (folder / root).resolve())
    return data

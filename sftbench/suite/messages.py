"""Turn pydantic validation errors into one sentence per problem: file, key path, fix."""
from __future__ import annotations

import re
import typing
from typing import Any, Optional

from pydantic import BaseModel, ValidationError

from .. import schema
from ..errors import did_you_mean, short_repr

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int) or not _PLAIN_KEY.match(str(part)):  # odd keys are quoted: one line, always
            out += f"[{part}]" if isinstance(part, int) else f"[{short_repr(str(part))}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def _model_at(root: Optional[type[BaseModel]], loc: tuple[Any, ...]) -> Optional[type[BaseModel]]:
    """Follow a location through field annotations to the model that holds its last key."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue  # list index: the element type was unwrapped with the field
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        fld = current.model_fields.get(part)
        if fld is None:
            return None
        current = _unwrap(fld.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """list[X] / Optional[X] / Union[str, X] -> the BaseModel X inside, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def _explain(error: dict[str, Any], root: Optional[type[BaseModel]]) -> str:
    kind, loc, value = error["type"], error["loc"], error.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(root, loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        hint = did_you_mean(key, allowed)
        return f"unknown key {short_repr(key)}{hint}; remove it" + (f" (allowed here: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return f"required key {short_repr(str(loc[-1]))} is missing; add it"
    msg = error["msg"]
    if kind in ("value_error", "assertion_error"):
        return msg.split(", ", 1)[1] if msg.startswith(("Value error, ", "Assertion failed, ")) else msg
    if kind == "string_pattern_mismatch":
        return f"{short_repr(value)} is not a safe name; use letters, digits, '_', '.' and '-', starting with a letter or digit"
    if kind == "literal_error":
        options = error.get("ctx", {}).get("expected", "")
        return f"{short_repr(value)} is not allowed{did_you_mean(str(value), _literal_options(options))}; use {options}"
    return f"{short_repr(value)} is invalid: {msg[0].lower() + msg[1:]}"


def _literal_options(expected: str) -> list[str]:
    return [part.strip(" '") for part in expected.replace(" or ", ",").split(",") if part.strip(" '")]


def format_validation_error(
    err: ValidationError, source: str, prefix: tuple[Any, ...] = (), root: Optional[type[BaseModel]] = None
) -> str:
    """One line per problem: `<file>: <key.path>: <what is wrong>; <the fix>`."""
    root = root or _root_model(err)
    lines = []
    for error in err.errors():
        loc = tuple(error["loc"])
        lines.append(f"{source}: {_dotted(prefix + loc)}: {_explain(error, root)}")
    return "\n".join(dict.fromkeys(lines))


def _root_model(err: ValidationError) -> Optional[type[BaseModel]]:
    return getattr(schema, err.title, None)

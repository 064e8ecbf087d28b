"""Pydantic validation errors as mentor's one-sentence messages (field, value, what is
expected), shared by the recipe schema, method parameters and checkpoint metadata."""

from __future__ import annotations

import reprlib
from typing import Any

from pydantic import BaseModel, ValidationError

from .registry import suggest


def _allowed_keys(loc: tuple, root: Any) -> list[str]:
    """Field names of the model reached by following ``loc`` from ``root``."""
    model: Any = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _inner_model(field.annotation)
    return list(model.model_fields) if model is not None else []


def _inner_model(annotation):
    import typing
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None


def fmt_loc(loc: tuple) -> str:
    """``a.b[0].c``; a key that is not plain text (empty, blank-edged, unprintable: a newline)
    is quoted, ``a['\\n']``, so a message stays one readable line."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif not isinstance(part, str) or not part.strip() or part != part.strip() \
                or not part.isprintable():
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out


_EXPECT = {
    "greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}", "less_than_equal": "must be <= {le}",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "float_type": "must be a number",
    "float_parsing": "must be a number", "bool_type": "must be true or false",
    "bool_parsing": "must be true or false", "string_type": "must be a string",
    "list_type": "must be a list", "dict_type": "must be a mapping",
    "model_type": "must be a mapping", "model_attributes_type": "must be a mapping",
    "literal_error": "must be one of {expected}", "too_short": "must have at least "
    "{min_length} item(s)", "string_pattern_mismatch": "must match {pattern}",
    "string_too_long": "must have at most {max_length} characters",
}


def _root_model(err: ValidationError, prefix: tuple, default: Any) -> Any:
    """The model ``err`` was raised by: ``default`` (the recipe), or a method's parameter
    model (found by its class name among the registered methods) when ``prefix`` points into
    a method."""
    if not prefix:
        return default
    from .registry import METHODS
    for entry in METHODS.entries():
        params = getattr(entry.obj, "params", None)
        if params is not None and params.__name__ == err.title:
            return params
    return None


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 200, 200, 200
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters. Built with a bounded repr: a value of a
    hostile file (a YAML alias bomb expands to 10^9 items) is never printed in full."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def format_errors(err: ValidationError, prefix: tuple = (), model: Any = None,
                  default: Any = None) -> list[str]:
    """One sentence per pydantic error: field, value, expectation.

    ``model`` is the pydantic model that raised ``err`` (default: ``default`` -- the recipe
    schema, which :func:`mentor.recipe.format_errors` passes -- or the method parameter model
    when ``prefix`` is given); it supplies "did you mean" hints.
    """
    root = model or _root_model(err, prefix, default)
    out = []
    for e in err.errors():
        rel = tuple(e["loc"])
        loc = prefix + rel
        where = fmt_loc(loc) or "recipe"
        kind = e["type"]
        value = e.get("input")
        if kind == "extra_forbidden":
            if root is None or root is default:
                allowed = _allowed_keys(loc[:-1], default) if default is not None else []
            else:
                allowed = _allowed_keys(rel[:-1], root)
                if model is None and not rel[:-1]:  # a method's parameters sit next to its
                    allowed += ["name", "label"]    # own 'name' and 'label'
            hint = suggest(loc[-1], allowed)
            if not hint and allowed:
                hint = f"; expected one of: {', '.join(allowed)}"
            out.append(f"unknown key '{where}' with value {short(value)}{hint}")
        elif kind == "missing":
            out.append(f"{where} is required")
        elif kind in _EXPECT and isinstance(value, float) and value != value:
            out.append(f"{where} must be a number, got NaN")  # NaN fails every bound
        elif kind in _EXPECT:
            ctx = {k: (f"{v:g}" if isinstance(v, float) else v)
                   for k, v in (e.get("ctx") or {}).items()}
            expect = _EXPECT[kind].format(**ctx)
            out.append(f"{where} {expect}, got {short(value)}")
        elif kind == "value_error":
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            out.append(f"{where}: {msg}")
        else:
            out.append(f"{where}: {e['msg']}, got {short(value)}")
    return out

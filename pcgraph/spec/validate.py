"""Turn pydantic's validation errors into one located, readable line each."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core.errors import Issue
from ..core.registry import suggest
from .source import SourceMap

_UNION_KINDS = {"family", "transform", "prior"}  # keys whose value is a tagged union


def union_member(tp, tag):
    """The model of a tagged union ``tp`` whose ``type`` is ``tag`` (tags are unique)."""
    for member in typing.get_args(tp):
        m = _unwrap(member)
        if isinstance(m, type) and issubclass(m, BaseModel) and m.model_fields.get("type") and m.model_fields["type"].default == tag:
            return m
    return None


def _unwrap(tp):
    """Strip Annotated/Optional layers."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin is typing.Union:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
            else:
                return tp
        else:
            return tp


def _field(model: type[BaseModel], key: str):
    for name, f in model.model_fields.items():
        if name == key or f.alias == key:
            return f.annotation
    return None


def model_fields_at(root: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names (spec spelling) of the model reached by following ``loc``."""
    tp: Any = root
    for el in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            tp = _field(tp, el)
            if tp is None:
                return None
        elif origin in (list, tuple):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif origin is typing.Union:
            match = union_member(tp, el)
            if match is None:
                continue
            tp = match
        else:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return None


def clean_path(loc: tuple, data: Any) -> tuple:
    """Follow pydantic's ``loc`` through the raw data, dropping union-branch labels."""
    path: list = []
    cur = data
    for i, el in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(cur, dict):
            if el in cur:
                path.append(el)
                cur = cur[el]
            elif last:
                path.append(el)
        elif isinstance(cur, list):
            if isinstance(el, int) and 0 <= el < len(cur):
                path.append(el)
                cur = cur[el]
            elif last and isinstance(el, int):
                path.append(el)
        else:
            break
    return tuple(path)


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        text = repr(value)
        return text if len(text) < 60 else text[:57] + "..."
    return repr(value)


def _message(err: dict, path: tuple, root: type[BaseModel]) -> tuple[tuple, str, bool]:
    """(path, message, point-at-key) for one pydantic error."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    loc = tuple(err["loc"])
    if kind == "missing":
        key = loc[-1]
        parent = path[:-1] if path and path[-1] == key else path
        return parent, f"missing required key '{key}'", False
    if kind == "extra_forbidden":
        allowed = model_fields_at(root, loc[:-1]) or []
        hint = suggest(path[-1], allowed)
        if not hint and allowed:
            hint = f" (allowed: {', '.join(allowed)})"
        return path, f"unknown key '{path[-1]}'{hint}", True
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key = str(path[-1]) if path else ""
        what = key if key in _UNION_KINDS else "type"
        names = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        if kind == "union_tag_not_found":
            return path, f"a {what} mapping needs 'type' (one of: {', '.join(names)})", False
        tag = ctx.get("tag")
        return path, f"unknown {what} '{tag}'{suggest(tag, names)}; known: {', '.join(names)}", False
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        names = [t.strip().strip("'") for t in expected.replace(" or ", ",").split(",") if t.strip()]
        return path, f"{_show(value)} is not one of {', '.join(names)}{suggest(value, names)}", False
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values())) if ctx else "?"
        return path, f"must be {op} {bound}, got {_show(value)}", False
    if kind == "string_pattern_mismatch":
        return path, f"{_show(value)} does not match the pattern {ctx.get('pattern')}", False
    if kind in ("too_short", "too_long"):
        return path, f"{err['msg'][0].lower() + err['msg'][1:]}", False
    msg = err["msg"]
    msg = msg[0].lower() + msg[1:]
    return path, (msg if "got" in msg else f"{msg}, got {_show(value)}"), False


def translate(exc: ValidationError, data: Any, smap: SourceMap, root: type[BaseModel]) -> list[Issue]:
    found = []
    for err in exc.errors():
        path = clean_path(tuple(err["loc"]), data)
        found.append((err, *_message(err, path, root)))
    found = _misspelt_required(found)
    grouped: dict[tuple, list[tuple[str, bool]]] = {}
    for _, path, msg, at_key in found:
        grouped.setdefault(path, [])
        if msg not in [m for m, _ in grouped[path]]:
            grouped[path].append((msg, at_key))
    issues = []
    for path, msgs in grouped.items():
        text = msgs[0][0] if len(msgs) == 1 else "; or ".join(m for m, _ in msgs)
        issues.append(smap.issue(path, text, key=msgs[0][1]))
    issues.sort(key=lambda i: (i.location.line or 0, i.location.col or 0) if i.location else (0, 0))
    return issues


def _misspelt_required(found: list) -> list:
    """An unknown key close to a required key missing beside it (``form:`` for
    ``from:``) is one problem, said once: the unknown key, suggesting the missing one."""
    missing = {}  # parent path -> the required keys missing there
    for err, path, _, _ in found:
        if err["type"] == "missing":
            missing.setdefault(path, []).append(str(err["loc"][-1]))
    explained, out = set(), []
    for err, path, msg, at_key in found:
        if err["type"] == "extra_forbidden" and path[:-1] in missing:
            close = difflib.get_close_matches(str(path[-1]), missing[path[:-1]], n=1, cutoff=0.5)
            if close:
                explained.add((path[:-1], close[0]))
                msg = f"unknown key '{path[-1]}' (did you mean '{close[0]}'?)"
        out.append((err, path, msg, at_key))
    return [f for f in out if not (f[0]["type"] == "missing" and (f[1], str(f[0]["loc"][-1])) in explained)]

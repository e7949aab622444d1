"""``--set dotted.path=value`` overrides, checked against the spec models."""

from __future__ import annotations

import copy
import re
import typing
from typing import Any

import yaml
from pydantic import BaseModel

from ..core.errors import Issue, Location, SpecError
from ..core.registry import suggest
from .limits import MAX_DEPTH, BoundedLoader, LimitExceeded
from .source import SourceMap
from .validate import field_of, unwrap, union_member

_FREE_DICTS = {"options", "fields"}  # mappings whose keys the user invents


def parse_value(text: str):
    """The YAML value of ``text`` (plain text when it is not YAML); LimitExceeded when
    it is deeper or expands further than a spec may (see ``limits``)."""
    if text.strip() == "":
        return ""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except LimitExceeded:
        raise
    except yaml.YAMLError:
        return text
    finally:
        loader.dispose()


def apply_overrides(data: Any, smap: SourceMap, overrides: list[str], root: type[BaseModel]) -> Any:
    """Return a copy of ``data`` with each ``path=value`` applied; raise SpecError
    naming every path that does not exist in the spec language."""
    data = copy.deepcopy(data) if data is not None else {}
    issues: list[Issue] = []
    for text in overrides:
        where = Location(f"--set {text}")
        if "=" not in text:
            issues.append(Issue((text,), "an override reads dotted.path=value", where))
            continue
        path_text, value_text = text.split("=", 1)
        parts = [p for p in path_text.strip().split(".")]
        if not path_text.strip() or any(p == "" for p in parts):
            issues.append(Issue((path_text,), "empty key in the dotted path", where))
            continue
        if len(parts) > MAX_DEPTH:
            issues.append(
                Issue(
                    (parts[0],), f"the dotted path has {len(parts)} keys, more than the {MAX_DEPTH} a spec can nest",
                    where
                )
            )
            continue
        try:
            value = parse_value(value_text)
        except LimitExceeded as e:
            issues.append(
                Issue(tuple(parts), f"{e.problem} (at column {e.problem_mark.column + 1} of the value)", where)
            )
            continue
        problem = _assign(data, parts, value, root)
        if problem:
            bad_path, msg = problem
            issues.append(Issue(tuple(bad_path), msg, where))
        else:
            smap.overrides[tuple(_spec_path(data, parts))] = text
    if issues:
        raise SpecError(issues)
    return data


def _spec_path(data, parts):
    out: list = []
    cur = data
    for p in parts:
        if isinstance(cur, list):
            idx = _index(cur, p)
            out.append(idx)
            cur = cur[idx] if idx is not None and idx < len(cur) else None
        else:
            out.append(p)
            cur = cur.get(p) if isinstance(cur, dict) else None
    return out


def _index(items: list, part: str):
    if part.lstrip("-").isdigit():
        i = int(part)
        return i if 0 <= i < len(items) else None
    for i, item in enumerate(items):  # edges may be addressed by name
        if isinstance(item, dict) and item.get("name") == part:
            return i
    default = re.fullmatch(r"e(\d+)", part)  # an unnamed edge's default name (e0, e1, ... in file order)
    if default:
        i = int(default.group(1))
        if i < len(items) and isinstance(items[i], dict) and not items[i].get("name"):
            return i
    return None


class _Refused(Exception):
    """An override that cannot be applied: (path reached, message)."""


_DONE = object()  # the value was set


def _in_model(tp, cur, part, last, value, done):
    sub = field_of(tp, part)
    if sub is None:
        names = [f.alias or n for n, f in tp.model_fields.items()]
        raise _Refused(
            done + [part], f"unknown key '{part}'{suggest(part, names)} in {'.'.join(map(str, done)) or 'the spec'}"
        )
    if not isinstance(cur, dict):
        raise _Refused(done, "cannot set a key inside a non-mapping value")
    if last:
        if value is None:  # `key=null` removes the key: the spec language's default applies
            cur.pop(part, None)
        else:
            cur[part] = value
        return _DONE
    nxt = cur.get(part)
    if isinstance(nxt, str) and typing.get_origin(unwrap(sub)) is typing.Union:
        nxt = {"type": nxt}  # shorthand family/transform -> mapping, to set an option
        cur[part] = nxt
    elif nxt is None:
        nxt = {} if not _is_list(sub) else []
        cur[part] = nxt
    return nxt, sub, part


def _in_dict(tp, cur, part, last, value, done):
    if not isinstance(cur, dict):
        raise _Refused(done, "cannot set a key inside a non-mapping value")
    if part not in cur and (not done or done[-1] not in _FREE_DICTS):
        raise _Refused(done + [part], f"no '{part}' in {'.'.join(map(str, done))}{suggest(part, list(cur))}")
    if last:
        cur[part] = value
        return _DONE
    return cur.setdefault(part, {}), typing.get_args(tp)[1], part


def _in_list(tp, cur, part, last, value, done):
    if not isinstance(cur, list):
        raise _Refused(done, "cannot index a non-list value")
    idx = _index(cur, part)
    if idx is None:
        raise _Refused(
            done + [part],
            f"no item '{part}' in {'.'.join(map(str, done))} ({len(cur)} items; use an index, an edge's name or its "
            f"default name e0, e1, ...)",
        )
    if last:
        cur[idx] = value
        return _DONE
    return cur[idx], typing.get_args(tp)[0], idx


def _in_free(tp, cur, part, last, value, done):
    if not (tp is Any and isinstance(cur, dict)):
        raise _Refused(done + [part], f"'{'.'.join(map(str, done))}' has no sub-keys")
    if last:
        cur[part] = value
        return _DONE
    return cur.setdefault(part, {}), tp, part


def _assign(data, parts, value, root):
    """Walk model and data together; set the value; return (path, message) on error."""
    tp: Any = root
    cur = data
    done: list = []
    try:
        for i, part in enumerate(parts):
            tp = unwrap(tp)
            origin = typing.get_origin(tp)
            if origin is typing.Union:  # family / transform / prior: pick the member by its type
                tag = cur.get("type") if isinstance(cur, dict) else None
                tp = union_member(tp, tag)
                if tp is None:
                    return done, f"set '{'.'.join(map(str, done))}' to a mapping with a known 'type' first"
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                step = _in_model
            elif origin is dict:
                step = _in_dict
            elif origin in (list, tuple):
                step = _in_list
            else:
                step = _in_free
            got = step(tp, cur, part, i == len(parts) - 1, value, done)
            if got is _DONE:
                return None
            cur, tp, part = got
            done.append(part)
    except _Refused as r:
        return r.args[0], r.args[1]
    return None


def _is_list(tp) -> bool:
    return typing.get_origin(unwrap(tp)) in (list, tuple)

"""Safe YAML loading that remembers where every key and value sits in the file."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from ..core.errors import Issue, Location, SpecError
from .limits import BoundedLoader, LimitExceeded, too_big

# Tags the safe loader understands; anything else (``!!python/object``, custom tags) is refused.
_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in (
        "str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary", "merge", "omap", "pairs", "set",
        "value"
    )
}


@dataclass
class SourceMap:
    """Positions of the values (and of mapping keys) of one YAML document, by path."""

    file: str
    values: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    keys: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    #: paths set from the command line: path -> the ``--set`` text
    overrides: dict[tuple, str] = field(default_factory=dict)

    def locate(self, path: tuple, key: bool = False) -> Location:
        """The position of ``path`` (its key if ``key``), else of its nearest ancestor."""
        path = tuple(path)
        for i in range(len(path), -1, -1):  # a value set by --set (or inside one) is located there
            if path[:i] in self.overrides:
                return Location(f"--set {self.overrides[path[:i]]}")
        for i in range(len(path), -1, -1):
            p = path[:i]
            table = self.keys if (key and i == len(path)) else self.values
            if p in table:
                line, col = table[p]
                return Location(self.file, line, col)
            if p in self.keys:
                line, col = self.keys[p]
                return Location(self.file, line, col)
        return Location(self.file, 1, 1)

    def issue(self, path: tuple, message: str, key: bool = False) -> Issue:
        return Issue(tuple(path), message, self.locate(path, key))


def _pos(mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _walk(node, path: tuple, smap: SourceMap, issues: list[Issue]) -> None:
    smap.values.setdefault(path, _pos(node.start_mark))
    if node.tag not in _STANDARD_TAGS:
        short = node.tag.replace("tag:yaml.org,2002:", "!!")
        issues.append(
            Issue(
                path, f"YAML tag '{short}' is not allowed: specs are plain data (nothing is executed)",
                Location(smap.file, *_pos(node.start_mark))
            )
        )
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for knode, vnode in node.value:
            if knode.tag == "tag:yaml.org,2002:merge":
                _walk(vnode, path, smap, issues)
                continue
            key = knode.value if isinstance(knode, yaml.ScalarNode) else str(knode.start_mark)
            if key in seen:
                issues.append(
                    Issue(
                        path + (key,), f"duplicate key '{key}' (first at line {seen[key]})",
                        Location(smap.file, *_pos(knode.start_mark))
                    )
                )
            seen[key] = knode.start_mark.line + 1
            smap.keys.setdefault(path + (key,), _pos(knode.start_mark))
            _walk(vnode, path + (key,), smap, issues)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), smap, issues)


def _path_at_error(text: str) -> tuple:
    """The mapping/sequence path the parser had reached when it failed."""
    stack: list = []  # frames: ["map", key or None, expecting_key] / ["seq", index]
    path: tuple = ()
    try:
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            top = stack[-1] if stack else None
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if top is not None and top[0] == "map":
                    top[2] = True
                if isinstance(ev, yaml.MappingStartEvent):
                    stack.append(["map", None, True])
                else:
                    stack.append(["seq", -1])
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
            elif isinstance(ev, (yaml.ScalarEvent, yaml.AliasEvent)):
                if top is None:
                    continue
                if top[0] == "map":
                    if top[2]:
                        top[1] = getattr(ev, "value", None)
                        top[2] = False
                    else:
                        top[2] = True
                else:
                    top[1] += 1
            if (
                isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
                and len(stack) >= 2
                and stack[-2][0] == "seq"
            ):
                stack[-2][1] += 1
            path = tuple(f[1] for f in stack if f[1] is not None and f[1] != -1)
    except yaml.YAMLError:
        pass
    return path


def load_yaml(text: str, file: str) -> tuple[object, SourceMap]:
    """Parse one YAML document safely; return (data, source map) or raise SpecError."""
    smap = SourceMap(file)
    if too_big(len(text)):
        raise SpecError(Issue(None, too_big(len(text)), Location(file)))
    loader = BoundedLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except LimitExceeded as e:
            raise SpecError(Issue(e.path or ("<spec>",), e.problem, Location(file, *_pos(e.problem_mark)))) from None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            loc = Location(file, *_pos(mark)) if mark else Location(file)
            msg = f"invalid YAML: {e.problem or e}" + (f" ({e.context})" if e.context else "")
            raise SpecError(Issue(_path_at_error(text) or ("yaml",), msg, loc)) from None
        except yaml.YAMLError as e:
            raise SpecError(Issue(("yaml",), f"invalid YAML: {e}", Location(file))) from None
        if node is None:
            msg = "the file is empty: a spec needs name, nodes and edges"
            raise SpecError(Issue(("<spec>",), msg, Location(file, 1, 1)))
        issues: list[Issue] = []
        _walk(node, (), smap, issues)
        if issues:
            raise SpecError(issues)
        try:
            data = loader.construct_document(node)
        except LimitExceeded as e:  # the value's path is known from the walk above
            at = _pos(e.problem_mark)
            path = max((p for p, pos in smap.values.items() if pos == at), key=len, default=("<spec>",))
            raise SpecError(Issue(path, e.problem, Location(file, *at))) from None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            msg = f"invalid YAML: {e.problem}"
            raise SpecError(Issue(("yaml",), msg, Location(file, *_pos(mark)) if mark else Location(file)))
    finally:
        loader.dispose()
    return data, smap

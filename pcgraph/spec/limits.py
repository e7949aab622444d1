"""Bounds on what a spec file may ask of the YAML loader.

A spec is a few kilobytes of YAML, nests about six levels deep (``train.inference.
optimizer.lr``) and holds a few hundred values. The bounds below are far above that
and far below what would exhaust the stack or the memory of the machine reading it:

* ``MAX_BYTES``: the file (or text) size, 2 MiB;
* ``MAX_DEPTH``: mappings and sequences nested inside each other, 100 levels;
* ``MAX_VALUES``: values in the document once every alias is expanded, 100 000;
* integers fit in 64 bits (sizes computed from them then stay small numbers).

Aliases (``*name``) are counted as what they stand for, so a few hundred bytes of
anchors that refer to anchors (an "alias bomb", whose expansion grows as 9^levels)
are refused at the alias that crosses the bound, before anything is expanded. An
alias inside the mapping or sequence it refers to (a structure containing itself)
is refused too.
"""

from __future__ import annotations

import os

import yaml

from ..core.errors import Issue, Location, SpecError

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 100
MAX_VALUES = 100_000


class LimitExceeded(yaml.MarkedYAMLError):
    """The document is larger, deeper or more self-referring than a spec can be, or
    holds a value that cannot be made (an integer past 64 bits, a 13th month)."""

    def __init__(self, problem: str, mark, path: tuple = ()):
        super().__init__(problem=problem, problem_mark=mark)
        self.path = path  # keys and indices down to the offending value, as far as known


class BoundedLoader(yaml.SafeLoader):
    """The safe loader with the composer bounded in depth and in expanded size.

    Composition shares an anchored node among its aliases, so it stays cheap; the
    bounds are checked while composing, before any recursive walk over the node tree
    (position tracking, construction, copying, validation) could expand it."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0  # mappings and sequences open around the node being composed
        self.values = 0  # values composed so far, an alias counting as its expansion
        self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded values, height)
        self.path: list = []  # keys and indices down to the node being composed

    def compose_node(self, parent, index):
        # ``index``: a sequence item's position, a mapping value's key node, None for a key
        step = (
            index
            if isinstance(index, int)
            else getattr(index, "value", None)
            if isinstance(index, yaml.ScalarNode)
            else None
        )
        if step is not None:
            self.path.append(step)
        try:
            return self._compose(parent, index)
        finally:
            if step is not None:
                self.path.pop()

    def _compose(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors:
            return self._alias(event)
        collection = isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
        if collection and self.depth >= MAX_DEPTH:
            msg = (
                f"the YAML nests mappings and sequences more than {MAX_DEPTH} levels deep (a spec needs fewer than 10)"
            )
            raise LimitExceeded(msg, event.start_mark, tuple(self.path[:1]))  # the top-level key it is under
        self._count(1, event.start_mark)
        self.depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        inner = [self.sizes[id(c)] for c in children]
        self.sizes[id(node)] = (
            1 + sum(s for s, _ in inner),
            1 + max((h for _, h in inner), default=0) if collection else 0,
        )
        return node

    def _alias(self, event):
        node = self.anchors[event.anchor]
        if id(node) not in self.sizes:
            raise LimitExceeded(
                f"alias *{event.anchor} sits inside the mapping or sequence it refers to: a spec cannot contain itself",
                event.start_mark, tuple(self.path)
            )
        size, height = self.sizes[id(node)]
        if self.depth + height > MAX_DEPTH:
            msg = (
                f"alias *{event.anchor} nests mappings and sequences more than {MAX_DEPTH} levels deep (a spec needs "
                f"fewer than 10)"
            )
            raise LimitExceeded(msg, event.start_mark, tuple(self.path[:1]))
        self._count(size, event.start_mark, event.anchor)
        return super().compose_node(None, None)

    def construct_object(self, node, deep=False):
        """A value YAML can write but Python cannot make (a date like 2024-13-45) is a
        problem of the text at that node, not a crash."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:
            raise LimitExceeded(f"cannot read the value '{_short(node.value)}': {e}", node.start_mark) from None

    def construct_yaml_int(self, node):
        """Integers of at most 64 bits: a longer digit string is refused before Python
        converts it (which takes quadratic time) and before sizes are computed with it."""
        text = self.construct_scalar(node)
        if sum(c.isalnum() for c in text) > 66 or abs(value := super().construct_yaml_int(node)).bit_length() > 64:
            raise LimitExceeded(
                f"the integer '{_short(text)}' does not fit in 64 bits (no spec value needs more)", node.start_mark
            )
        return value

    def _count(self, n: int, mark, anchor: str | None = None) -> None:
        self.values += n
        if self.values > MAX_VALUES:
            what = f"alias *{anchor} expands the document" if anchor is not None else "the document grows"
            raise LimitExceeded(
                f"{what} past {MAX_VALUES:,} values (a spec holds a few hundred; aliases may not multiply the input)",
                mark, tuple(self.path)
            )


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def _short(text) -> str:
    text = str(text)
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"


def too_big(size: int) -> str | None:
    """The sentence refusing ``size`` bytes (or characters) of spec, or None when within bounds."""
    if size <= MAX_BYTES:
        return None
    return f"the spec is larger than {MAX_BYTES // (1024 * 1024)} MiB (a spec is a few kilobytes): refusing to read it"


def read_bounded(path: str | os.PathLike) -> str:
    """The text of a spec file, reading no more than ``MAX_BYTES`` + 1 bytes of it;
    SpecError when it is larger. OSError and UnicodeDecodeError pass through."""
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    problem = too_big(len(raw))
    if problem:
        raise SpecError(Issue(None, problem, Location(str(path))))
    return raw.decode("utf-8")

"""The dataset registry: names, option models and the fields each dataset gives,
plus the loading entry point ``load_dataset``.

The spec and graph stages only need the names, options and fields to check a spec;
loading (``Dataset.load``) reads files or generates data and returns tensors.
"""

from __future__ import annotations

import os
import pathlib
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from ..core.errors import DataError, Issue
from ..core.registry import Registry, suggest

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..graph import PCGraph

#: {"train": {field: tensor[N, ...]}, "test": {field: tensor[M, ...]}}
Splits = Dict[str, Dict[str, "torch.Tensor"]]
SPLITS = ("train", "test")

IMAGE_FIELDS = ("image", "label")
TEXT_FIELDS = ("tokens", "next_tokens")

#: the environment variable naming the data directory
DATA_ENV = "PCGRAPH_DATA"


class DatasetOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageOptions(DatasetOptions):
    subset: Optional[PositiveInt] = Field(None, description="use the first N training examples")
    test_subset: Optional[PositiveInt] = Field(None, description="use the first N test examples")


class Dataset:
    name: ClassVar[str]
    Options: ClassVar[type[DatasetOptions]] = DatasetOptions
    #: the fields the dataset gives; None when they follow the spec (synthetic)
    fields: ClassVar[tuple[str, ...] | None] = None
    description: ClassVar[str] = ""
    #: the sub-directory of the data directory holding the files; None: nothing to fetch
    folder: ClassVar[str | None] = None

    def load(self, options: DatasetOptions, data_dir: pathlib.Path, graph: "PCGraph | None") -> Splits:
        """{"train": {field: tensor[N, ...]}, "test": {field: tensor[M, ...]}} on the CPU."""
        raise NotImplementedError(f"dataset '{self.name}' cannot be loaded")

    def present(self, data_dir: pathlib.Path) -> bool | None:
        """Whether the files are in ``data_dir``; None when the dataset needs none."""
        return None


datasets: Registry[type[Dataset]] = Registry("dataset")


def register(cls):
    return datasets.register(cls.name)(cls)


# ------------------------------------------------------------------ paths and messages
def default_data_dir() -> pathlib.Path:
    """``$PCGRAPH_DATA``, else ``$XDG_CACHE_HOME/pcgraph``, else ``~/.cache/pcgraph``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "pcgraph"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The data directory: ``data_dir`` if given, else ``default_data_dir()``."""
    if data_dir is not None and str(data_dir) != "":
        return pathlib.Path(data_dir).expanduser()
    return default_data_dir()


def fetch_command(name: str, data_dir: pathlib.Path | None = None) -> str:
    """The command that fetches dataset ``name`` into ``data_dir``."""
    cmd = f"pcgraph data fetch {name}"
    if data_dir is not None and pathlib.Path(data_dir).expanduser().absolute() != default_data_dir().absolute():
        cmd += f" --data-dir {data_dir}"
    return cmd


def data_error(message: str, path: tuple = ("data", "dataset")) -> DataError:
    return DataError(Issue(path, message))


# ------------------------------------------------------------------ loading
def load_dataset(data_spec: Any, graph: "PCGraph | None" = None, data_dir: str | os.PathLike | None = None) -> Splits:
    """Load the dataset a spec's ``data:`` section names.

    ``data_spec`` is a ``DataSpec`` (or a mapping of one; None: the graph's spec's).
    Returns {"train": {...}, "test": {...}} keyed by the field names the spec's nodes
    bind: ``data_spec.fields`` renames (spec field -> dataset field) are applied,
    and so are the ``subset``/``test_subset`` options (first N examples; ``text``
    draws its windows at random across the corpus itself)."""
    from ..spec.models import DataSpec

    if data_spec is None:
        if graph is None or graph.spec.data is None:
            raise DataError(Issue(("data",), "the spec has no data section: nothing to load"))
        data_spec = graph.spec.data
    if not isinstance(data_spec, DataSpec):
        try:
            data_spec = DataSpec.model_validate(data_spec)
        except ValidationError as exc:
            raise DataError([Issue(("data",) + tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from None
    try:
        return _load(data_spec, graph, resolve_data_dir(data_dir))
    except DataError as exc:
        raise _located(exc, graph) from None


def _load(d, graph, data_dir: pathlib.Path) -> Splits:
    if d.dataset not in datasets:
        raise data_error(datasets.unknown(d.dataset))
    cls = datasets.get(d.dataset)
    options = validate_options(cls, d.options)
    splits = cls().load(options, data_dir, graph)
    for split in SPLITS:
        if split not in splits:
            raise data_error(f"{cls.name}: the loader gave no '{split}' split")
    out: Splits = {}
    for split in SPLITS:
        given = splits[split]
        fields = dict(given)
        for spec_field, ds_field in d.fields.items():
            if ds_field not in given:
                raise data_error(
                    f"dataset '{cls.name}' has no field '{ds_field}'{suggest(ds_field, given)}; it gives {', '.join(given)}",
                    ("data", "fields", spec_field),
                )
            fields[spec_field] = given[ds_field]
        limit = getattr(options, "subset" if split == "train" else "test_subset", None)
        if limit is not None:  # a copy, so that the full tensors can be freed
            fields = {k: v[:limit].clone() if v.shape[0] > limit else v for k, v in fields.items()}
        out[split] = fields
    if graph is not None:
        check_fits(out, graph)
    return out


def option_problems(cls: type[Dataset], options: Any) -> list[tuple[tuple, str, bool]]:
    """(path, message, names_a_key) for each problem of ``options`` as the dataset's options."""
    try:
        cls.Options.model_validate(options or {})
    except ValidationError as exc:
        out = []
        for e in exc.errors():
            loc = ("data", "options") + tuple(e["loc"])
            if e["type"] == "extra_forbidden":
                key = e["loc"][-1]
                out.append((loc, f"unknown option '{key}' of dataset '{cls.name}'{suggest(key, list(cls.Options.model_fields))}", True))
            else:
                out.append((loc, f"{e['msg']}, got {e.get('input')!r}", False))
        return out
    return []


def validate_options(cls: type[Dataset], options: Any) -> DatasetOptions:
    if isinstance(options, cls.Options):
        return options
    problems = option_problems(cls, options)
    if problems:
        raise DataError([Issue(path, msg) for path, msg, _ in problems])
    return cls.Options.model_validate(options or {})


def check_fits(splits: Splits, graph: "PCGraph") -> None:
    """Every bound node finds its field; token ids and class indices are in range."""
    issues = []
    for name, n in graph.nodes.items():
        if n.bind is None:
            continue
        p = ("nodes", name, "bind")
        for split, fields in splits.items():
            if n.bind not in fields:
                issues.append(Issue(p, f"the {split} split has no field '{n.bind}' for node '{name}'{suggest(n.bind, fields)} (fields: {', '.join(fields)})"))
                break
            t = fields[n.bind]
            if t.numel() == 0 or t.is_floating_point():
                continue
            lo, hi = int(t.min()), int(t.max())
            if n.role == "input" and n.dtype == "long":
                vocab = graph.vocab_of(name)
                if vocab is not None and (hi >= vocab or lo < 0):
                    issues.append(Issue(p, f"field '{n.bind}' holds token ids {lo}..{hi} ({split} split), but the embedding reading node '{name}' has vocab {vocab}"))
                    break
            elif n.family == "categorical" and tuple(t.shape[1:]) == tuple(n.shape[:-1]):
                k = n.shape[-1]
                if hi >= k or lo < 0:
                    issues.append(Issue(p, f"field '{n.bind}' holds class indices {lo}..{hi} ({split} split), but node '{name}' has {k} classes"))
                    break
    if issues:
        src = graph.source
        raise DataError([Issue(i.path, i.message, src.locate(i.path, key=True) if src is not None else None) for i in issues])


def _located(exc: DataError, graph) -> DataError:
    """Attach the spec position to problems that have none."""
    src = getattr(graph, "source", None) if graph is not None else None
    if src is None or all(getattr(i, "location", None) is not None for i in exc.issues):
        return exc
    issues = []
    for i in exc.issues:
        if isinstance(i, Issue) and i.location is None:
            i = Issue(i.path, i.message, src.locate(i.path))
        issues.append(i)
    return type(exc)(issues)

"""The dataset registry: names, option models and the fields each dataset gives,
plus the loading entry point ``load_dataset``.

The spec and graph stages only need the names, options and fields to check a spec;
loading (``Dataset.load``) reads files or generates data and returns tensors.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, ClassVar, Dict, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from ..core.errors import DataError, Issue
from ..core.lazy import torch
from ..core.registry import Registry, suggest
from ..spec.models import DataSpec
from .check import GraphFacts, check_fits, graph_facts, located

#: {"train": {field: tensor[N, ...]}, "test": {field: tensor[M, ...]}}
Splits = Dict[str, Dict[str, "torch.Tensor"]]
SPLITS = ("train", "test")

IMAGE_FIELDS = ("image", "label")
#: the ten classes of the image datasets (digits, mnist, fashion_mnist, cifar10)
TEN_CLASSES = tuple(range(10))
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
    #: the fields holding class indices (a float vector node bound to one takes them as
    #: one-hot rows, and so does a query's integer value for it)
    index_fields: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: the sub-directory of the data directory holding the files; None: nothing to fetch
    folder: ClassVar[str | None] = None
    #: the class indices of a labelled dataset, held by its first index field (what a
    #: stream's drift and tasks name); None for a dataset without labels
    classes: ClassVar[tuple[int, ...] | None] = None

    @classmethod
    def label_field(cls) -> str | None:
        """The field holding each example's class (one of ``classes``), if it has one."""
        return cls.index_fields[0] if cls.classes is not None and cls.index_fields else None

    def load(self, options: DatasetOptions, data_dir: pathlib.Path, graph: GraphFacts | None) -> Splits:
        """{"train": {field: tensor[N, ...]}, "test": {field: tensor[M, ...]}} on the CPU;
        ``graph``: what the dataset may need of the graph (synthetic: its bound nodes)."""
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


def fetch_hint(name: str, data_dir: pathlib.Path | None = None, what: str = "them") -> str:
    """How to get missing files: the fetch command, or the folder that holds them."""
    return (
        f"fetch {what} with: {fetch_command(name, data_dir)} (or, if they are in another folder, give it with "
        f"--data-dir)"
    )


def data_error(message: str, path: tuple = ("data", "dataset")) -> DataError:
    return DataError(Issue(path, message))


# ------------------------------------------------------------------ loading
def load_dataset(
    data_spec: Any, graph: Any = None, data_dir: str | os.PathLike | None = None, *, teacher: Any = None
) -> Splits:
    """Load the dataset a spec's ``data:`` section names.

    ``data_spec`` is a ``DataSpec`` (or a mapping of one; None: the graph's spec's).
    ``graph`` is a GraphFacts, or an object whose ``data_facts()`` gives one (a
    PCGraph). Returns {"train": {...}, "test": {...}} keyed by the field names the
    spec's nodes bind: ``data_spec.fields`` renames (spec field -> dataset field) are
    applied, and so are the ``subset``/``test_subset`` options (first N examples;
    ``text`` draws its windows at random across the corpus itself). ``teacher``: the
    network that gives ``synthetic`` its targets ({bind: inputs} -> {node: predictions});
    ``pcgraph.load_data`` passes the graph's own, compiled."""
    facts = graph_facts(graph, teacher)
    if data_spec is None:
        if facts is None or facts.data is None:
            raise DataError(Issue(("data",), "the spec has no data section: nothing to load"))
        data_spec = facts.data
    if not isinstance(data_spec, DataSpec):
        try:
            data_spec = DataSpec.model_validate(data_spec)
        except ValidationError as exc:
            raise DataError([Issue(("data",) + tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from None
    try:
        return _load(data_spec, facts, resolve_data_dir(data_dir))
    except DataError as exc:
        raise located(exc, facts) from None


def _load(d: DataSpec, facts: GraphFacts | None, data_dir: pathlib.Path) -> Splits:
    if d.dataset not in datasets:
        raise data_error(datasets.unknown(d.dataset))
    cls = datasets.get(d.dataset)
    options = validate_options(cls, d.options)
    splits = cls().load(options, data_dir, facts)
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
                    f"dataset '{cls.name}' has no field '{ds_field}'{suggest(ds_field, given)}; it gives "
                    f"{', '.join(given)}",
                    ("data", "fields", spec_field),
                )
            fields[spec_field] = given[ds_field]
        limit = getattr(options, "subset" if split == "train" else "test_subset", None)
        if limit is not None:  # a copy, so that the full tensors can be freed
            fields = {k: v[:limit].clone() if v.shape[0] > limit else v for k, v in fields.items()}
        out[split] = fields
    if facts is not None:
        check_fits(out, facts)
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
                out.append(
                    (
                        loc,
                        f"unknown option '{key}' of dataset '{cls.name}'{suggest(key, list(cls.Options.model_fields))}",
                        True,
                    )
                )
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

"""The dataset registry: names, option models and the fields each dataset gives.

Loading is lazy (see the loader modules); the spec and graph stages only need the
names, options and fields to check a spec.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from ..registry import Registry


class DatasetOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dataset:
    name: ClassVar[str]
    Options: ClassVar[type[DatasetOptions]] = DatasetOptions
    #: the fields the dataset gives; None when they follow the spec (synthetic)
    fields: ClassVar[tuple[str, ...] | None] = None
    description: ClassVar[str] = ""


datasets: Registry[type[Dataset]] = Registry("dataset")


def register(cls):
    return datasets.register(cls.name)(cls)

"""Inference schedules, one module each, registered by name.

A schedule says which free nodes an inference step updates together, in what order,
and whether the weights take a step after every inference step. To add one, write
``pcgraph/schedules/<name>.py`` with a ``Schedule`` subclass decorated by
``@register("<name>")``; this package imports every module in it, and the spec's
``train.inference.schedule`` accepts the name.
"""

from __future__ import annotations

from ..core.registry import Registry, import_modules
from .base import Schedule

schedules: Registry[type[Schedule]] = Registry("schedule")


def register(name: str):
    """Class decorator: register a Schedule under ``name`` (which it takes as ``name``)."""

    def deco(cls):
        cls.name = name
        return schedules.register(name)(cls)

    return deco


def get(name: "str | Schedule") -> Schedule:
    """The schedule called ``name`` (a Schedule is returned as it is)."""
    if isinstance(name, Schedule):
        return name
    if name not in schedules:
        raise ValueError(schedules.unknown(name))
    return schedules.get(name)()


import_modules(__name__, __path__)

__all__ = ["Schedule", "schedules", "register", "get"]

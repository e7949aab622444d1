"""Distribution families, one module each, registered by name.

To add a family, write ``pcgraph/families/<name>.py`` with a ``Family`` subclass
decorated by ``@register``; this package imports every module in it.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..registry import Registry
from .base import Family, FamilyOptions

families: Registry[type[Family]] = Registry("family")


def register(cls):
    """Class decorator: register a Family under ``cls.name``."""
    fields = cls.Options.model_fields
    if "type" not in fields or fields["type"].default != cls.name:
        raise TypeError(f"{cls.__name__}.Options needs `type: Literal['{cls.name}'] = '{cls.name}'`")
    return families.register(cls.name)(cls)


for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base",):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Family", "FamilyOptions", "families", "register"]

"""Distribution families, one module each, registered by name.

To add a family, write ``pcgraph/families/<name>.py`` with a ``Family`` subclass
decorated by ``@register``; this package imports every module in it.
"""

from __future__ import annotations

from ..core.registry import Registry, import_modules
from .base import Family, FamilyOptions

families: Registry[type[Family]] = Registry("family")


def register(cls):
    """Class decorator: register a Family under ``cls.name``."""
    return families.register_typed(cls)


import_modules(__name__, __path__)

__all__ = ["Family", "FamilyOptions", "families", "register"]

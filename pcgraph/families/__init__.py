"""Distribution families, one module each, registered by name.

To add a family, write ``pcgraph/families/<name>.py`` with a ``Family`` subclass
decorated by ``@register``; this package imports every module in it.
"""

from __future__ import annotations

from ..core.registry import Registry, import_modules
from .base import Family, FamilyOptions

families: Registry[type[Family]] = Registry("family")


def register(name: str):
    """Class decorator: register a Family under ``name``, which becomes its ``name``
    and the ``type`` its options take in a spec."""
    return families.register_typed(name)


import_modules(__name__, __path__)

__all__ = ["Family", "FamilyOptions", "families", "register"]

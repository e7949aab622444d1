"""Edge transforms, one module each, registered by name.

To add a transform, write ``pcgraph/transforms/<name>.py`` with a ``Transform``
subclass decorated by ``@register``; this package imports every module in it.
"""

from __future__ import annotations

from ..core.registry import Registry, import_modules
from .base import ShapeError, Transform, TransformOptions, fmt

transforms: Registry[type[Transform]] = Registry("transform")


def register(name: str):
    """Class decorator: register a Transform under ``name``, which becomes its ``name``
    and the ``type`` its options take in a spec."""
    return transforms.register_typed(name)


import_modules(__name__, __path__)

__all__ = ["ShapeError", "Transform", "TransformOptions", "transforms", "register", "fmt"]

"""Edge transforms, one module each, registered by name.

To add a transform, write ``pcgraph/transforms/<name>.py`` with a ``Transform``
subclass decorated by ``@register``; this package imports every module in it.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..registry import Registry
from .base import ShapeError, Transform, TransformOptions, fmt

transforms: Registry[type[Transform]] = Registry("transform")


def register(cls):
    fields = cls.Options.model_fields
    if "type" not in fields or fields["type"].default != cls.name:
        raise TypeError(f"{cls.__name__}.Options needs `type: Literal['{cls.name}'] = '{cls.name}'`")
    return transforms.register(cls.name)(cls)


for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base",):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["ShapeError", "Transform", "TransformOptions", "transforms", "register", "fmt"]

"""The dataset loaders, one module per file format; importing this package
registers every dataset they define."""

from __future__ import annotations

from ...core.registry import import_modules

import_modules(__name__, __path__, skip=())

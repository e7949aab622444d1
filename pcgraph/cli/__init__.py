"""The ``pcgraph`` command line. ``app`` holds the verbs (each imports what it
needs when it runs, so ``--help``, ``validate`` and ``schema`` never load torch),
``data`` the ``pcgraph data`` group, ``tools`` how errors reach the user."""

from .app import main

__all__ = ["main"]

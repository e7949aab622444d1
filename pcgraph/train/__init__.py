"""Training: the Trainer loop, metrics, checkpoints and run directories."""

from .trainer import Callback, Interrupted, JsonlLogger, Trainer

__all__ = ["Trainer", "Callback", "JsonlLogger", "Interrupted"]

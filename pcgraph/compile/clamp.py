"""Clamping: a batch's data fields -> the tensors clamped nodes hold, and the
per-example noise of sampling nodes."""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from ..core.errors import DataError, Issue
from .tokens import token_problem


class Clamping:
    """The Program's data side (a mixin of Program)."""

    def _clamp(self, name: str, value: Any, batch_size: int | None) -> torch.Tensor:
        info = self.nodes[name]
        if not torch.is_tensor(value):
            try:
                value = torch.as_tensor(value)
            except Exception as e:  # noqa: BLE001 - reported as a data error
                raise DataError(Issue(("nodes", name, "bind"), f"data field '{info.bind}' for node '{name}' is not array-like: {e}", info.location)) from None
        value = value.to(self.device_, non_blocking=True)
        if batch_size is not None and value.shape[:1] != (batch_size,):
            raise DataError(
                Issue(("nodes", name, "bind"), f"data field '{info.bind}' has batch size {value.shape[0] if value.dim() else 0}, other fields have {batch_size}", info.location)
            )
        per = tuple(value.shape[1:])
        if info.role == "input":
            if info.dtype == "long":
                if value.is_floating_point() or value.is_complex():
                    raise DataError(Issue(("nodes", name, "bind"), f"data field '{info.bind}' holds {value.dtype} but node '{name}' takes integer tokens (dtype long)", info.location))
                value = value.long()
                problem = token_problem(self.graph, name, value)
                if problem is not None:
                    raise DataError(Issue(("nodes", name, "bind"), f"data field '{info.bind}' for node '{name}': {problem}", info.location))
            elif not value.is_floating_point() and info.shape and per == info.shape[:-1]:
                value = torch.nn.functional.one_hot(value.long(), info.shape[-1]).to(self.dtype)  # class indices
                per = info.shape
            else:
                value = value.to(self.dtype)
            if per != info.shape:
                if value[0].numel() == math.prod(info.shape):
                    value = value.reshape((value.shape[0],) + info.shape)
                else:
                    raise DataError(
                        Issue(("nodes", name, "bind"), f"data field '{info.bind}' has per-sample shape {list(per)}, node '{name}' has shape {list(info.shape)}", info.location)
                    )
            return value
        fam = self.families[name]
        problem = fam.check_data(value)
        if problem is not None and value.is_floating_point() and value[0].numel() == math.prod(info.param_shape):
            value = value.reshape((value.shape[0],) + info.param_shape)
            problem = fam.check_data(value)
        if problem is not None:
            raise DataError(Issue(("nodes", name, "bind"), f"data field '{info.bind}' does not fit {info.family} node '{name}': {problem} (dtype {value.dtype})", info.location))
        return fam.from_data(value)

    def clamped_from_batch(self, batch: Mapping[str, Any], *, targets: bool = True) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        size = None
        for n in self.inputs + (self.targets if targets else []):
            info = self.nodes[n]
            if info.bind not in batch:
                if info.role == "input":
                    raise DataError(Issue(("nodes", n, "bind"), f"the batch has no field '{info.bind}' for input node '{n}' (fields: {', '.join(batch)})", info.location))
                continue
            out[n] = self._clamp(n, batch[info.bind], size)
            size = out[n].shape[0]
        if size is None:
            raise DataError(Issue(("<spec>",), "the batch binds no node"))
        return out

    def _per_example(self, draw, batch_size: int) -> torch.Tensor:
        """``draw(batch_size)``, a random tensor with one row per example; drawn for the
        whole batch and sliced when this batch is ``self.rows`` of a larger one."""
        if self.rows is None:
            return draw(batch_size)
        start, stop, total = self.rows
        if stop - start != batch_size:
            raise ValueError(f"the batch has {batch_size} examples, but rows {start}:{stop} of {total} were announced")
        return draw(total)[start:stop]

    def draw_noise(self, batch_size: int, noise: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        out = {}
        like = torch.empty(0, dtype=self.dtype, device=self.device_)
        for n in self.sampling:
            if noise is not None and n in noise:
                out[n] = noise[n].to(self.device_, self.dtype)
            else:
                out[n] = self._per_example(lambda b, n=n: self.families[n].sample_noise(b, like), batch_size)
        return out


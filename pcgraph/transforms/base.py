"""The edge-transform interface.

A transform is built from its options, its input shapes and the target node's
parameter shape (widths are never repeated in a spec: they are read off the
target). Its class is plain Python, so reading and checking a spec never imports
torch; an instance keeps its parameters and buffers in ``module`` (an
``nn.Module`` the Program saves, moves and optimises) and reads them as
attributes (``self.weight``). It declares

* ``param_shapes``: the shape rule -- check the shapes, return the parameter shapes;
* ``output_shape``: the output shape where the inputs fix it (a block step then needs
  no ``width`` or ``shape``);
* ``reset_parameters``: initialisation suited to the edge's activation;
* ``forward(*inputs)``: batched inputs -> batched output;
* the closed-form vector-Jacobian products ``vjp`` (and, where adding into a
  gradient inside the product saves a pass, ``vjp_into``) used by the fast inference
  path; gradients in and out are plain tensors. The default
  here differentiates ``forward`` with autograd; every built-in transform writes its
  own (a test fails for a registered transform that does not).
"""

from __future__ import annotations

import math
from typing import ClassVar, Sequence

from pydantic import BaseModel, ConfigDict

from ..core.lazy import nn, torch
from ..core.activations import Activation


class TransformOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShapeError(ValueError):
    """The transform cannot map these input shapes to the target shape."""


Shape = tuple[int, ...]


def fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


class Transform:
    name: ClassVar[str]
    Options: ClassVar[type[TransformOptions]] = TransformOptions
    #: number of source nodes; None means one or more, concatenated along the last axis
    arity: ClassVar[int | None] = 1
    #: dtype each input must have: "float" or "long"
    input_dtype: ClassVar[str] = "float"
    #: whether ``forward`` always returns new memory, never an input or a view of one
    #: (an activation may then be applied to its output in place without checking)
    new_output: ClassVar[bool] = False

    def __init__(self, options: TransformOptions, in_shapes: Sequence[Shape], out_shape: Shape, activation: Activation):
        """``activation``: the nonlinearity that follows the edge (it sets the init)."""
        self.module = nn.Module()
        self.module.forward = self.forward  # so that module(*inputs) and torch.func work too
        # the module's own tables, read directly (attribute lookup on nn.Module is slow
        # and these run several times per inference step)
        self._parameters = self.module._parameters
        self._buffers = self.module._buffers
        #: {name: parameter} and {name: buffer} of this edge (the module's own tables)
        self.params = self._parameters
        self.buffers = self._buffers
        self.options = options
        self.in_shapes = [tuple(s) for s in in_shapes]
        self.out_shape = tuple(out_shape)
        self.activation = activation
        for pname, shape in self.param_shapes(options, self.in_shapes, self.out_shape).items():
            self.module.register_parameter(pname, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    def __getattr__(self, name: str):
        # called only when ordinary lookup fails: parameters and buffers by name
        d = self.__dict__
        for table in ("_parameters", "_buffers"):
            if name in d.get(table, ()):
                return d[table][name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __call__(self, *inputs):
        return self.forward(*inputs)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        self.module.register_buffer(name, tensor, persistent=persistent)

    def parameters(self):
        return self.module.parameters()

    def to(self, *args, **kwargs) -> "Transform":
        """Move or cast the parameters and buffers (as ``nn.Module.to``)."""
        self.module.to(*args, **kwargs)
        return self

    def named_parameters(self):
        return self.module.named_parameters()

    # -- shape rule ------------------------------------------------------
    @classmethod
    def param_shapes(cls, options, in_shapes: list[Shape], out_shape: Shape) -> dict[str, Shape]:
        raise NotImplementedError

    @classmethod
    def output_shape(cls, options, in_shapes: list[Shape]) -> Shape | None:
        """The output shape when the inputs and options alone fix it (flatten, pooling),
        else None: the transform maps to whatever shape its target has."""
        return None

    @classmethod
    def param_count(cls, options, in_shapes, out_shape) -> int:
        return sum(math.prod(s) for s in cls.param_shapes(options, in_shapes, out_shape).values())

    # -- numerics ----------------------------------------------------------
    def reset_parameters(self) -> None:
        for p in self.parameters():
            nn.init.zeros_(p)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def vjp(
        self, inputs: Sequence[torch.Tensor], grad_out: torch.Tensor, need_inputs: Sequence[bool], need_params: bool
    ):
        """(input grads or None, {param name: grad of the batch sum} or None)."""
        with torch.enable_grad():
            ins = [
                x.detach().requires_grad_(bool(n)) if x.is_floating_point() else x for x, n in zip(inputs, need_inputs)
            ]
            out = self.forward(*ins)
            wrt = [x for x, n in zip(ins, need_inputs) if n]
            named = list(self.named_parameters()) if need_params else []
            wrt_all = wrt + [p for _, p in named]
            if not wrt_all:
                return [None] * len(ins), {}
            grads = torch.autograd.grad(out, wrt_all, grad_out, allow_unused=True)
        it = iter(grads[: len(wrt)])
        gin = [next(it) if n else None for n in need_inputs]
        gin = [torch.zeros_like(x) if (n and g is None) else g for x, n, g in zip(inputs, need_inputs, gin)]
        gp = {}
        for (k, p), g in zip(named, grads[len(wrt) :]):
            gp[k] = torch.zeros_like(p) if g is None else g
        return gin, gp

    def vjp_into(self, acc, inputs, grad_out, k: int):
        """``acc + (d out / d input_k)^T grad_out``: input k's gradient added to ``acc``
        (None: nothing yet). ``acc`` belongs to the caller, who gives it up: it may be
        changed in place and returned. The result is a new tensor (never ``grad_out``
        or an input), so that the caller may add to it in turn. Write it where adding
        inside the product saves a pass over memory (a matmul's accumulate)."""
        need = [i == k for i in range(len(inputs))]
        g = self.vjp(inputs, grad_out, need, False)[0][k]
        if acc is not None:
            return acc.add_(g)
        return g.clone() if any(shares_memory(g, t) for t in (grad_out, *inputs)) else g

    def support(self) -> torch.Tensor | None:
        """Boolean mask of the output entries that can be finite logits (None: all).
        A categorical node fed only by masked edges keeps its states on this support."""
        return None

    def describe(self, args: Sequence[str]) -> str:
        """A readable expression of this transform applied to ``args``."""
        return f"{self.name}({', '.join(args)})"


def shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` is ``b`` or a view of its memory."""
    return a is b or a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def bmm_into(acc, a: torch.Tensor, b: torch.Tensor, scale: float = 1.0):
    """``vjp_into`` for an input gradient ``scale * (a @ b)`` of batched matrices
    [B, n, m]: the product accumulates inside the matmul."""
    if acc is None:
        out = torch.bmm(a, b)
        return out if scale == 1.0 else out.mul_(scale)
    if acc.is_contiguous():
        return acc.baddbmm_(a, b, alpha=scale)
    return torch.baddbmm(acc, a, b, alpha=scale)


def init_weight(w: torch.Tensor, activation: Activation, fan_in: int | None = None, kaiming: bool = False) -> None:
    """Glorot-uniform with the activation's gain for saturating activations (tanh,
    sigmoid, identity, hardtanh); He-uniform for rectifiers (relu, leaky_relu, gelu,
    softplus), and for any activation with ``kaiming``."""
    if activation.init == "kaiming" or kaiming:
        fan = fan_in if fan_in is not None else nn.init._calculate_fan_in_and_fan_out(w)[0]
        bound = activation.gain * math.sqrt(3.0 / fan)
        nn.init.uniform_(w, -bound, bound)
    else:
        nn.init.xavier_uniform_(w, gain=activation.gain)

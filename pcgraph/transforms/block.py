"""block: several single-input transforms applied one after another, as one edge.

Nodes are distributions, edges are computation: deterministic glue between two
random values (a layernorm, a feed-forward MLP, a residual sum) needs no node of its
own. A block writes it on one edge::

    {type: block, residual: true, steps: [layernorm, {type: mlp, hidden: [128]}]}

predicts ``h + mlp(layernorm(h))`` from its source ``h``. Each step is any registered
transform that reads one float value, with its own options, plus keys of the block:

* ``width`` (or ``shape``): the last-axis width (or the whole per-sample shape) of
  the step's output; by default a step whose input fixes its output (``flatten``,
  pooling) gives that, any other keeps its input's shape, and the last step maps to
  the target's;
* ``residual``: add the step's input to its output (equal shapes);
* ``then``: an activation applied to the step's output (after its residual).

The block's own ``residual`` adds the block's input to the last step's output; the
edge's ``activation`` follows as on any edge. Shapes are checked step by step by each
step's own shape rule. Step k's parameters are the block's ``s{k}_<name>`` (so
``share`` ties them by that name), initialised by the step's own rule for the
activation that follows it. The vector-Jacobian product reruns the steps (without
autograd) and carries the gradient back through each step's own ``vjp``.
"""

from __future__ import annotations

import sys
from typing import Annotated, List, Literal, Optional, Union

from pydantic import BeforeValidator, Field, PositiveInt, create_model
from pydantic_core import PydanticCustomError

from ..core import activations
from ..core.registry import import_modules
from . import register, transforms
from .base import ShapeError, Transform, TransformOptions, fmt

# every other transform registers first, so that the steps' union below lists them all
import_modules(__package__, sys.modules[__package__].__path__, skip=("base", "block"))

STEP_KEYS = ("width", "shape", "residual", "then")


def _fits(cls) -> bool:
    """A step reads one float value: the previous step's output."""
    return cls.arity in (1, None) and cls.input_dtype == "float"


def _step_model(cls):
    clash = set(STEP_KEYS) & set(cls.Options.model_fields)
    if clash:
        raise TypeError(f"transform '{cls.name}' has option(s) {sorted(clash)}, which a block step uses for itself")
    return create_model(
        f"{cls.Options.__name__}Step",
        __base__=cls.Options,
        width=(Optional[PositiveInt], Field(None, description="last-axis width of the step's output (default: kept)")),
        shape=(Optional[List[PositiveInt]], Field(None, min_length=1, description="per-sample shape of the step's output")),
        residual=(bool, Field(False, description="add the step's input to its output")),
        then=(Optional[Literal[activations.ACTIVATION_NAMES]], Field(None, description="activation after the step")),  # type: ignore[valid-type]
    )


STEP_MODELS = {name: _step_model(cls) for name, cls in transforms.items() if _fits(cls)}


def _check_step(value):
    """``"layernorm"`` -> ``{"type": "layernorm"}``; a transform a step cannot be is
    named with the reason (rather than as an unknown type)."""
    if isinstance(value, str):
        value = {"type": value}
    if isinstance(value, dict):
        t = value.get("type")
        if t == "block":
            raise PydanticCustomError("block_step", "a block step cannot be another block, got type 'block' (list its steps in this block)")
        if isinstance(t, str) and t in transforms and t not in STEP_MODELS:
            cls = transforms.get(t)
            why = f"reads {cls.arity} source nodes" if cls.arity not in (1, None) else "reads integer token ids"
            raise PydanticCustomError(
                "block_step", f"a block step reads one float value (the previous step's output), got transform '{t}', which {why}"
            )
    return value


_union = tuple(STEP_MODELS.values())
StepSpec = Annotated[
    Annotated[Union[_union], Field(discriminator="type")],  # type: ignore[valid-type]
    BeforeValidator(_check_step, json_schema_input_type=Union[Literal[tuple(STEP_MODELS)], Union[_union]]),  # type: ignore[valid-type]
]


class BlockOptions(TransformOptions):
    type: Literal["block"] = "block"
    steps: List[StepSpec] = Field(min_length=1, description="transforms applied in order, each to the previous one's output")  # type: ignore[valid-type]
    residual: bool = Field(False, description="add the block's input to its output (equal shapes)")


def _located(msg: str, path: tuple) -> ShapeError:
    err = ShapeError(msg)
    err.path = path  # where in the transform's options the problem is
    return err


def plan(options, in_shape, out_shape):
    """[(step transform class, step options, input shape, output shape, param shapes)],
    checked step by step; a ShapeError carries ``path`` (steps.K or residual)."""
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if options.residual and in_shape != out_shape:
        raise _located(f"a residual block adds its input to its output, so it needs equal shapes, got {fmt(in_shape)} -> {fmt(out_shape)}", ("residual",))
    shape, last, out = in_shape, len(options.steps) - 1, []
    for k, st in enumerate(options.steps):
        where = ("steps", k)
        if st.width is not None and st.shape is not None:
            raise _located(f"step {k} ({st.type}) gives both width and shape; give one", where)
        scls = transforms.get(st.type)
        fixed = scls.output_shape(st, [shape])  # flatten, pooling: the input fixes the output
        if k == last:
            nxt = out_shape
            want = tuple(st.shape) if st.shape is not None else nxt[:-1] + (st.width,) if st.width is not None else nxt
            if want != nxt:
                raise _located(f"step {k} ({st.type}) is the last, so its output is the target's {fmt(nxt)}, not {fmt(want)}", where)
        elif st.shape is not None:
            nxt = tuple(st.shape)
        elif fixed is not None:
            nxt = tuple(fixed[:-1]) + (st.width,) if st.width is not None else tuple(fixed)
        else:
            nxt = shape[:-1] + (st.width,) if st.width is not None else shape
        try:
            pshapes = scls.param_shapes(st, [shape], nxt)
        except ShapeError as ex:
            said = k == last or st.width or st.shape or fixed is not None
            raise _located(f"step {k}: {ex}" + ("" if said else " (a step keeps its input's shape unless it gives width or shape)"), where) from None
        if st.residual and nxt != shape:
            raise _located(f"step {k} ({st.type}) adds its input to its output, so it needs equal shapes, got {fmt(shape)} -> {fmt(nxt)}", where)
        out.append((scls, st, shape, nxt, pshapes))
        shape = nxt
    return out


@register
class Block(Transform):
    name = "block"
    Options = BlockOptions

    @classmethod
    def param_shapes(cls, options, in_shapes, out_shape):
        steps = plan(options, in_shapes[0], out_shape)
        return {f"s{k}_{n}": s for k, step in enumerate(steps) for n, s in step[4].items()}

    def __init__(self, options, in_shapes, out_shape, activation):
        super().__init__(options, in_shapes, out_shape, activation)
        steps = plan(options, self.in_shapes[0], self.out_shape)
        built = []
        for k, (scls, st, sin, sout, pshapes) in enumerate(steps):
            # the nonlinearity after the step sets its initialisation: its own, else the edge's
            after = activations.get(st.then) if st.then else activation if k == len(steps) - 1 else activations.get("identity")
            sub = scls(st, [sin], sout, after)
            for b, buf in list(sub._buffers.items()):
                self.register_buffer(f"s{k}_{b}", buf, persistent=False)
            then = activations.get(st.then) if st.then else None
            # the step module is held outside the module tree: its parameters and
            # buffers are the block's, bound before each use (``share`` may replace them)
            built.append((sub, tuple(pshapes), tuple(sub._buffers), bool(st.residual), then))
        self._steps = built
        self.reset_parameters()

    def _bind(self, k: int):
        sub, pnames, bnames, _, _ = self._steps[k]
        for n in pnames:
            sub._parameters[n] = self._parameters[f"s{k}_{n}"]
        for n in bnames:
            sub._buffers[n] = self._buffers[f"s{k}_{n}"]
        return sub

    def reset_parameters(self):
        for k in range(len(self.__dict__.get("_steps", ()))):
            self._bind(k).reset_parameters()

    def _run(self, x):
        """[(step input, step output before its ``then``, after it)] of every step."""
        h, out = x, []
        for k, (_, _, _, residual, then) in enumerate(self._steps):
            y = self._bind(k).forward(h)
            if residual:
                y = y + h
            nxt = then.fn(y) if then is not None else y
            out.append((h, y, nxt))
            h = nxt
        return out

    def forward(self, x):
        h = self._run(x)[-1][2]
        return h + x if self.options.residual else h

    def vjp(self, inputs, grad_out, need_inputs, need_params):
        if not need_inputs[0] and not need_params:
            return [None], None
        run = self._run(inputs[0])
        gp = {} if need_params else None
        g = grad_out  # the gradient on step k's output (after its ``then``)
        for k in range(len(run) - 1, -1, -1):
            _, _, _, residual, then = self._steps[k]
            h, y, nxt = run[k]
            gy = then.grad_pre(g, y, nxt) if then is not None else g
            need_in = k > 0 or bool(need_inputs[0])
            gin, sgp = self._bind(k).vjp([h], gy, [need_in], need_params)
            if need_params:
                gp.update((f"s{k}_{n}", t) for n, t in sgp.items())
            if not need_in:
                break
            g = gin[0] + gy if residual else gin[0]
        gx = None
        if need_inputs[0]:
            gx = g + grad_out if self.options.residual else g
        return [gx], gp

    def describe(self, args):
        s, compound = args[0], False  # compound: a sum, parenthesised where it is an argument
        for k, (_, _, _, residual, _) in enumerate(self._steps):
            arg = f"({s})" if compound else s
            d = self._bind(k).describe([arg])
            if compound:
                d = d.replace(f"({arg})", arg)  # f((a + b)) -> f(a + b)
            compound = residual or " + " in d and not d.endswith(")")
            if residual:
                d = f"{arg} + {d}"
            then = self.options.steps[k].then
            if then:
                d, compound = f"{then}({d})", False
            s = d
        return f"{args[0]} + {s}" if self.options.residual else s

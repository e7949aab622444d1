"""Pydantic models of the spec language (``extra="forbid"`` everywhere).

Families and transforms are discriminated unions built from their registries, so a
new family or transform module appears here (and in the JSON Schema) by itself.
A family or transform may be written as a bare name (``linear``) or as a mapping
with ``type`` and options (``{type: linear, bias: false}``).
"""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    model_validator,
)

from ..core import activations
from ..core.constants import ENERGIES, GEMM_BACKENDS
from ..families import families
from ..schedules import schedules
from ..transforms import transforms

NAME_PATTERN = r"^[a-z0-9_-]+$"
NODE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _shorthand(value: Any) -> Any:
    """``"linear"`` -> ``{"type": "linear"}``."""
    return {"type": value} if isinstance(value, str) else value


def _tagged_union(members: list[type[BaseModel]]):
    union = Union[tuple(members)] if len(members) > 1 else members[0]
    names = tuple(m.model_fields["type"].default for m in members)
    shorthand = Literal[names]  # type: ignore[valid-type]
    return Annotated[
        Annotated[union, Field(discriminator="type")] if len(members) > 1 else union,
        BeforeValidator(_shorthand, json_schema_input_type=Union[shorthand, union]),
    ]


FamilySpec = _tagged_union([cls.Options for _, cls in families.items()])
TransformSpec = _tagged_union([cls.Options for _, cls in transforms.items()])


# ----------------------------------------------------------------------- priors
class StandardNormalPrior(Strict):
    type: Literal["standard_normal"] = "standard_normal"


class GaussianPrior(Strict):
    type: Literal["gaussian"] = "gaussian"
    mean: float = 0.0
    variance: PositiveFloat = 1.0


PriorSpec = _tagged_union([StandardNormalPrior, GaussianPrior])


# ------------------------------------------------------------------------ nodes
class NodeSpec(Strict):
    """A node: its per-sample shape, role, data binding and distribution family."""

    shape: List[PositiveInt] = Field(min_length=1, description="per-sample shape (batch axis implicit)")
    role: Literal["latent", "input", "target"] = "latent"
    bind: Optional[str] = Field(None, description="data field of a clamped (input/target) node")
    dtype: Literal["float", "long"] = "float"
    family: Optional[FamilySpec] = None  # type: ignore[valid-type]
    prior: Optional[PriorSpec] = None  # type: ignore[valid-type]


def _as_text(value: Any) -> Any:
    """A path written as a number (``init_from: 2024``) is still a path."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class EdgeSpec(Strict):
    """An edge: a transform of one or more source nodes, summed into the target's prediction."""

    from_: Annotated[
        List[Annotated[str, Field(min_length=1)]],
        Field(alias="from", min_length=1),
        BeforeValidator(_listify, json_schema_input_type=Union[str, List[str]]),
    ]
    to: str
    transform: TransformSpec = Field(default_factory=lambda: transforms.get("linear").Options())  # type: ignore[valid-type]
    activation: Literal[activations.ACTIVATION_NAMES] = "identity"  # type: ignore[valid-type]
    name: Optional[str] = Field(None, pattern=NODE_PATTERN)
    share: Optional[str] = Field(None, description="name of an edge whose parameters this edge reuses")


# ------------------------------------------------------------------------- data
class DriftSpec(Strict):
    """Concept drift: every ``every`` iterations the labels of ``classes`` are
    permuted anew (a seeded permutation), in the training and the test data alike."""

    every: PositiveInt = Field(description="iterations between two permutations of the labels")
    classes: List[NonNegativeInt] = Field(min_length=2, description="the labels that are permuted among themselves")


class StreamSpec(Strict):
    """Training as a stream of weight steps (iterations) instead of epochs."""

    iterations: Optional[PositiveInt] = Field(
        None,
        description="weight steps of the whole run (tasks share them equally); default: train.epochs passes over "
        "the training examples",
    )
    eval_every: Optional[PositiveInt] = Field(
        None, description="iterations between test evaluations; default: one pass over the training examples"
    )
    train_examples: Optional[PositiveInt] = Field(
        None,
        description="a fixed seeded subset of the training split, balanced over the dataset's classes where it has "
        "them",
    )
    drift: Optional[DriftSpec] = None
    tasks: Optional[List[Annotated[List[NonNegativeInt], Field(min_length=1)]]] = Field(
        None, min_length=1, description="continual learning: the classes of each task, trained one task after the other"
    )


class DataSpec(Strict):
    dataset: str
    batch_size: PositiveInt = 64
    eval_batch_size: Optional[PositiveInt] = None
    fields: Dict[str, str] = Field(default_factory=dict, description="spec field -> dataset field")
    options: Dict[str, Any] = Field(default_factory=dict, description="dataset-specific options")
    stream: Optional[StreamSpec] = Field(
        None, description="train for a number of iterations, with drift or tasks (see docs/training.md)"
    )


# ------------------------------------------------------------------------ train
class OptimizerSpec(Strict):
    type: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: PositiveFloat = 0.1
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    nesterov: bool = False
    betas: tuple[Annotated[float, Field(ge=0.0, lt=1.0)], Annotated[float, Field(ge=0.0, lt=1.0)]] = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0


class StateOptimizerSpec(OptimizerSpec):
    """A state optimiser. ``precondition`` scales each node's step by the inverse
    curvature of its own energy terms (a Gaussian of variance s2 moves by s2 * dE/dx);
    ``guard`` takes each sample's steps at a fraction alpha of the optimiser's (1 to
    start with) and, when a whole inference step has raised the sample's energy, puts
    the sample back where the step started and halves its alpha (Song et al. 2024)."""

    precondition: bool = False
    guard: bool = False


def default_state_optimizer() -> StateOptimizerSpec:
    """What inference uses when a spec names no optimizer: a preconditioned step of
    one inverse curvature, guarded so that no step raises a sample's energy."""
    return StateOptimizerSpec(type="sgd", lr=1.0, precondition=True, guard=True)


#: the weight of the loss terms in a PC training step's E-step when the spec leaves
#: both ``train.weights.nudge`` and ``train.inference.optimizer`` out
DEFAULT_NUDGE = 1e-4


class InferenceSpec(Strict):
    steps: NonNegativeInt = Field(32, description="T: inference steps per batch")
    optimizer: StateOptimizerSpec = Field(
        default_factory=default_state_optimizer,
        description="default: {type: sgd, lr: 1.0, precondition: true, guard: true}; a named optimizer gets exactly "
        "what it names",
    )
    schedule: Optional[Literal[tuple(schedules.names())]] = Field(  # type: ignore[valid-type]
        None,
        description="; ".join(f"{name}: {cls.description}" for name, cls in schedules.items())
        + ". Default: carry on a DAG with init forward when the spec names no optimizer, else sweep",
    )
    init: Literal["forward", "zeros", "normal"] = "forward"
    update: Literal["natural", "gradient"] = Field(
        "natural", description="state update of categorical/bernoulli nodes: natural (mirror descent) or plain gradient"
    )
    eval_steps: Optional[NonNegativeInt] = Field(
        None, description="inference steps used to predict on graphs without a forward pass (cyclic); default: steps"
    )

    @property
    def prediction_steps(self) -> int:
        """The inference steps that predicting and querying take: eval_steps, else steps."""
        return self.steps if self.eval_steps is None else self.eval_steps


class WeightsSpec(Strict):
    optimizer: OptimizerSpec = Field(default_factory=lambda: OptimizerSpec(type="adam", lr=1e-4))
    updates: PositiveInt = 1
    gradient: Literal["equilibrium", "arrival"] = Field(
        "equilibrium",
        description="equilibrium: the EM algorithm -- T inference steps with the targets clamped, then the gradient of"
        " the energy at the inferred state; arrival: each edge's gradient when the error first reaches its target in"
        " a reverse-topological sweep from the forward pass (Z-IL: exactly backprop's gradient, computed locally)",
    )
    nudge: Optional[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        None,
        description="beta: the weight of the loss terms (clamped targets, priors) in the energy a training step's"
        " E-step relaxes on; the weight gradient is divided by it. 1: the targets fully clamped (the energy as written;"
        f" prospective configuration); small: the update approaches backprop's. Default: {DEFAULT_NUDGE:g} when the"
        " spec names no inference optimizer and inference starts from a forward pass (a DAG), else 1",
    )
    grad_clip: Optional[PositiveFloat] = None


class TrainSpec(Strict):
    method: Literal["pc", "bp"] = "pc"
    energy: Literal[ENERGIES] = "kl"  # type: ignore[valid-type]
    epochs: PositiveInt = Field(10, description="epochs to train (a resumed run continues up to this many)")
    seed: int = 0
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda|cuda:\d+|mps)$")
    dtype: Literal["float32", "float64"] = "float32"
    topology: Literal["dag", "cyclic"] = "dag"
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    weights: WeightsSpec = Field(default_factory=WeightsSpec)
    compile: bool = False
    kernels: Literal[(GEMM_BACKENDS[0], "auto", *GEMM_BACKENDS[1:])] = Field(  # type: ignore
        "default",
        description="GEMM kernels of linear edges (BP and PC alike): default (torch: MKL on CPU, cuBLAS on CUDA),"
        " onednn, onednn-packed (weights reordered once per update), or auto (time them per shape when compiling,"
        " keep the fastest)",
    )
    checkpoint_every: PositiveInt = Field(1, description="epochs between checkpoints")
    log_every: PositiveInt = Field(1, description="batches between progress updates")
    max_batches: Optional[PositiveInt] = Field(None, description="cap on training batches per epoch (quick runs)")
    init_from: Annotated[Optional[str], BeforeValidator(_as_text)] = Field(
        None,
        min_length=1,
        description="a run directory whose trained weights the run starts from (states and optimiser fresh)",
    )

    @model_validator(mode="after")
    def _resolve_inference_defaults(self):
        """The library's default E-step when the spec names no inference optimizer and
        inference starts from a forward pass (a DAG): the carry schedule and a small
        nudge. Otherwise the sweep and the targets fully clamped (nudge 1): a named
        optimizer gets the classic rule, and without a forward pass the gradient divided
        by a small nudge would magnify the errors a start from zero leaves unrelaxed."""
        named = "optimizer" in self.inference.model_fields_set
        forward = self.topology == "dag" and self.inference.init == "forward"
        if self.inference.schedule is None:
            self.inference.schedule = "carry" if forward and not named else "sweep"
        if self.weights.nudge is None:
            self.weights.nudge = DEFAULT_NUDGE if forward and not named else 1.0
        return self


# ------------------------------------------------------------------------- spec
class Spec(Strict):
    """A predictive-coding network: nodes, edges, data and training."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, title="pcgraph spec")

    name: str = Field(pattern=NAME_PATTERN)
    description: Optional[str] = None
    data: Optional[DataSpec] = None
    nodes: Dict[Annotated[str, Field(pattern=NODE_PATTERN)], NodeSpec] = Field(min_length=1)
    edges: List[EdgeSpec] = Field(default_factory=list)
    train: TrainSpec = Field(default_factory=TrainSpec)

    _source: Any = PrivateAttr(default=None)

    @property
    def source(self):
        """The SourceMap the spec came from (file positions for error messages)."""
        return self._source

    def located(self, smap) -> "Spec":
        """This spec, remembering ``smap`` as where it came from."""
        self._source = smap
        return self

    def to_data(self) -> dict:
        """Plain data (YAML-ready), with the spec's own key names."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

"""The bench-mlp model and its training steps written against each peer library.

Runs inside a peer's own virtual environment (jax, and pcx or FabricPC); it never
imports pcgraph or torch. The model is the one of ``benchmarks/bench-mlp.yaml``:

    h1 ~ N(tanh(W1 x + b1), 1), h2 ~ N(tanh(W2 h1 + b2), 1), h3 ~ N(tanh(W3 h2 + b3), 1),
    label ~ Categorical(softmax(W4 h3 + b4))

with the energy per sample  sum_l 1/2 |h_l - mu_l|^2 + cross-entropy(label, W4 h3 + b4),
states initialised by a forward pass, T steps of plain SGD (lr 0.1) on every sample's
own energy, then one Adam step (lr 1e-4) on the batch-mean energy's weight gradient.

Weights travel between frameworks as a list of (W [out, in], b [out]) numpy arrays,
pcgraph's (and torch's) layout.
"""

from __future__ import annotations

import numpy as np

SIZES = (784, 512, 512, 512, 10)
BATCH = 256
T_STEPS = 8
STATE_LR = 0.1
WEIGHT_LR = 1e-4


def init_weights(seed: int = 0, sizes=SIZES, dtype=np.float32) -> list[tuple[np.ndarray, np.ndarray]]:
    """Uniform(+-1/sqrt(fan_in)) weights and biases, [out, in] / [out] (torch's default)."""
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        out.append((rng.uniform(-bound, bound, (fan_out, fan_in)).astype(dtype), rng.uniform(-bound, bound, fan_out).astype(dtype)))
    return out


def random_batch(seed: int = 0, batch: int = BATCH, sizes=SIZES, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic batch like pcgraph's: pixels uniform in [0, 1), class indices."""
    rng = np.random.default_rng(seed)
    return rng.random((batch, sizes[0])).astype(dtype), rng.integers(0, sizes[-1], batch)


# ----------------------------------------------------------------------------- pcx
def pcx_model(weights):
    """A pcx EnergyModule holding ``weights``: Linear layers, one Vode per layer, the
    last with pcx's cross-entropy energy and its value frozen to the one-hot label."""
    import jax
    import jax.numpy as jnp
    import pcx.nn as pxnn
    import pcx.predictive_coding as pxc

    class MLP(pxc.EnergyModule):
        def __init__(self):
            super().__init__()
            self.layers = [pxnn.Linear(w.shape[1], w.shape[0]) for w, _ in weights]
            self.vodes = [pxc.Vode() for _ in weights[:-1]] + [pxc.Vode(pxc.ce_energy)]
            self.vodes[-1].h.frozen = True

        def __call__(self, x, y):
            for v, layer in zip(self.vodes[:-1], self.layers[:-1]):
                x = v(jax.nn.tanh(layer(x)))
            x = self.vodes[-1](self.layers[-1](x))
            if y is not None:
                self.vodes[-1].set("h", y)
            return self.vodes[-1].get("u")

    model = MLP()
    for layer, (w, b) in zip(model.layers, weights):
        layer.nn.weight.set(jnp.asarray(w))
        layer.nn.bias.set(jnp.asarray(b))
    return model


def pcx_functions():
    """pcx's recommended jitted pieces (as in its tutorials): forward init, the
    batch-summed energy, and the inference loop. Returns (infer, train_step)."""
    import jax
    import pcx.functional as pxf
    import pcx.nn as pxnn
    import pcx.predictive_coding as pxc
    import pcx.utils as pxu

    vode_mask = pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0))

    @pxf.vmap(vode_mask, in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    @pxf.vmap(vode_mask, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
    def energy(x, *, model):
        y_ = model(x, None)
        return jax.lax.psum(model.energy(), "batch"), y_

    def settle(T, x, y, model, optim_h):
        model.train()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(x, y, model=model)
        optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))
        for _ in range(T):
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                _, g = pxf.value_and_grad(pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]), has_aux=True)(energy)(x, model=model)
            optim_h.step(model, g["model"])
        optim_h.clear()
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            (e, _), g = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy)(x, model=model)
        return e, g["model"]

    @pxf.jit(static_argnums=0)
    def infer(T, x, y, *, model, optim_h):
        """Energy (batch sum) at the settled states and the weight gradient of it."""
        return settle(T, x, y, model, optim_h)

    @pxf.jit(static_argnums=0)
    def train_step(T, x, y, *, model, optim_w, optim_h):
        e, g = settle(T, x, y, model, optim_h)
        optim_w.step(model, g, scale_by=1.0 / x.shape[0])
        return e

    return infer, train_step


def pcx_grads_as_list(grads_model, n_layers: int):
    """The weight gradients pcx returns for the model, as [(dW [out, in], db [out])]."""
    out = []
    for k in range(n_layers):
        layer = grads_model.layers[k].nn
        out.append((np.asarray(layer.weight.get()), np.asarray(layer.bias.get())))
    return out


def pcx_case(method: str, weights, x, y_int, T: int = T_STEPS):
    """A zero-argument training step for the benchmark (pc: pcx; bp: plain jax/optax)."""
    import jax
    import jax.numpy as jnp
    import optax

    if method == "bp":
        return jax_bp_case(weights, x, y_int)
    import pcx.nn as pxnn
    import pcx.utils as pxu

    model = pcx_model(weights)
    optim_h = pxu.Optim(lambda: optax.sgd(STATE_LR))
    optim_w = pxu.Optim(lambda: optax.adam(WEIGHT_LR), pxu.M(pxnn.LayerParam)(model))
    _, train_step = pcx_functions()
    xj, yj = jnp.asarray(x), jax.nn.one_hot(jnp.asarray(y_int), weights[-1][0].shape[0], dtype=jnp.asarray(x).dtype)

    def step():
        return train_step(T, xj, yj, model=model, optim_w=optim_w, optim_h=optim_h)

    return step


def jax_bp_case(weights, x, y_int):
    """Backprop on the same MLP in plain jax + optax (pcx has no BP step of its own)."""
    import jax
    import jax.numpy as jnp
    import optax

    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]
    opt = optax.adam(WEIGHT_LR)
    state = {"params": params, "opt": opt.init(params)}
    xj, yj = jnp.asarray(x), jnp.asarray(y_int)

    def loss(p, x, y):
        h = x
        for w, b in p[:-1]:
            h = jnp.tanh(h @ w.T + b)
        logits = h @ p[-1][0].T + p[-1][1]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def train_step(p, o, x, y):
        value, g = jax.value_and_grad(loss)(p, x, y)
        updates, o = opt.update(g, o, p)
        return optax.apply_updates(p, updates), o, value

    def step():
        state["params"], state["opt"], value = train_step(state["params"], state["opt"], xj, yj)
        return value

    return step


# ------------------------------------------------------------------------ FabricPC
def fabricpc_structure(sizes=SIZES, T: int = T_STEPS):
    """The MLP as a FabricPC graph: an identity input node, tanh Linear nodes with
    Gaussian energy, a softmax Linear output with cross-entropy energy."""
    from fabricpc.core.activations import SoftmaxActivation, TanhActivation
    from fabricpc.core.energy import CrossEntropyEnergy
    from fabricpc.core.inference import InferenceSGD
    from fabricpc.core.topology import Edge
    from fabricpc.graph_assembly import TaskMap, graph
    from fabricpc.nodes import IdentityNode, Linear

    nodes = [IdentityNode(shape=(sizes[0],), name="x")]
    for k, width in enumerate(sizes[1:-1]):
        nodes.append(Linear(shape=(width,), activation=TanhActivation(), name=f"h{k + 1}"))
    nodes.append(Linear(shape=(sizes[-1],), activation=SoftmaxActivation(), energy=CrossEntropyEnergy(), name="y"))
    edges = [Edge(source=a, target=b.slot("in")) for a, b in zip(nodes[:-1], nodes[1:])]
    structure = graph(nodes=nodes, edges=edges, task_map=TaskMap(x=nodes[0], y=nodes[-1]), inference=InferenceSGD(eta_infer=STATE_LR, infer_steps=T))
    return structure, [n.name for n in nodes]


def fabricpc_params(structure, names, weights, dtype):
    """FabricPC parameters holding ``weights`` (its layout: W [in, out], b [1, out])."""
    import jax
    import jax.numpy as jnp
    from fabricpc.core.types import GraphParams
    from fabricpc.graph_initialization import initialize_params

    params = initialize_params(structure, jax.random.PRNGKey(0))
    nodes = dict(params.nodes)
    for src, dst, (w, b) in zip(names[:-1], names[1:], weights):
        node = nodes[dst]
        (key,) = node.weights
        nodes[dst] = node._replace(weights={key: jnp.asarray(w.T, dtype=dtype)}, biases={"b": jnp.asarray(b[None, :], dtype=dtype)})
    return GraphParams(nodes=nodes)


def fabricpc_grads_as_list(grads, names):
    out = []
    for dst in names[1:]:
        node = grads.nodes[dst]
        (key,) = node.weights
        out.append((np.asarray(node.weights[key]).T, np.asarray(node.biases["b"]).reshape(-1)))
    return out


def fabricpc_infer(structure, names, weights, x, y_int, dtype):
    """FabricPC's own PC pieces (trainer.build_clamps, initialize_graph_state,
    run_inference, graph_energy, pc_weight_gradients) on one batch, jitted.
    Returns the energy summed over the batch after the forward init and at the settled
    states, and the mean weight gradients."""
    import jax
    import jax.numpy as jnp
    from fabricpc.core.energy import graph_energy
    from fabricpc.core.inference import run_inference
    from fabricpc.graph_initialization.state_initializer import initialize_graph_state
    from fabricpc.training.trainer import build_clamps, pc_weight_gradients

    params = fabricpc_params(structure, names, weights, dtype)
    batch = {"x": jnp.asarray(x, dtype=dtype), "y": jax.nn.one_hot(jnp.asarray(y_int), weights[-1][0].shape[0], dtype=dtype)}

    @jax.jit
    def settle(params, batch):
        clamps = build_clamps(batch, structure, clamp_target=True)
        state = initialize_graph_state(structure, batch["x"].shape[0], jax.random.PRNGKey(0), clamps=clamps, params=params)
        e0 = graph_energy(state, structure)
        state = run_inference(params, state, clamps, structure)
        # state.energy holds what the last step's forward phase recorded, before its
        # latent update; FabricPC's own forward phase gives it at the settled states.
        settled = type(structure.config["inference"]).forward_value_and_grad(params, state, clamps, structure)
        return e0, graph_energy(settled, structure), pc_weight_gradients(params, state, structure, clamps)

    e0, e, g = settle(params, batch)
    return float(e0), float(e), fabricpc_grads_as_list(g, names)


def fabricpc_case(method: str, weights, x, y_int, T: int = T_STEPS):
    """A zero-argument training step, algorithm pc or backprop: the jitted step that
    FabricPC's own ``train`` loop runs per batch (parameters and optimiser state donated)."""
    import jax
    import jax.numpy as jnp
    import optax
    from fabricpc.training.trainer import _make_step

    structure, names = fabricpc_structure(T=T)
    params = fabricpc_params(structure, names, weights, jnp.asarray(x).dtype)
    opt = optax.adam(WEIGHT_LR)
    state = {"params": params, "opt": opt.init(params)}
    step_fn = _make_step(structure, opt, algorithm="pc" if method == "pc" else "backprop", with_state=False, donate=True)
    batch = {"x": jnp.asarray(x), "y": jax.nn.one_hot(jnp.asarray(y_int), weights[-1][0].shape[0], dtype=jnp.asarray(x).dtype)}
    key = jax.random.PRNGKey(0)

    def step():
        state["params"], state["opt"], metrics = step_fn(state["params"], state["opt"], batch, key)
        return metrics["energy"]

    return step


CASES = {"pcx": pcx_case, "fabricpc": fabricpc_case}

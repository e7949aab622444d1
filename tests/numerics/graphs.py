"""Small graphs for the numerical tests, and a helper to compile them in float64."""

import torch

import pcgraph
from pcgraph.compile import compile_graph

D = torch.float64

# two inputs, a multi-input edge, a skip connection, two targets
DAG = """
name: dag
nodes:
  a:  {shape: [5], role: input, bind: a}
  b:  {shape: [4], role: input, bind: b}
  h1: {shape: [6], family: gaussian}
  h2: {shape: [6], family: gaussian}
  h3: {shape: [5], family: gaussian}
  y1: {shape: [3], family: TARGET, role: target, bind: y1}
  y2: {shape: [4], family: TARGET, role: target, bind: y2}
edges:
  - {from: a, to: h1, activation: tanh}
  - {from: b, to: h2, activation: tanh}
  - {from: [h1, h2], to: h3, activation: tanh}
  - {from: a, to: h3}
  - {from: h3, to: y1}
  - {from: h1, to: y1, activation: tanh}
  - {from: h3, to: y2, activation: sigmoid}
"""

M3 = """
name: m3
nodes:
  image: {shape: [12], role: input, bind: image}
  h1: {shape: [10], family: gaussian}
  h2: {shape: [8], family: categorical}
  h3: {shape: [10], family: gaussian}
  label: {shape: [4], family: categorical, role: target, bind: label}
edges:
  - {from: image, to: h1, activation: tanh}
  - {from: h1, to: h2}
  - {from: h2, to: h3, activation: tanh}
  - {from: h3, to: label}
"""

VAE = """
name: vae
nodes:
  image: {shape: [12], role: input, bind: image}
  enc: {shape: [8], family: gaussian}
  z: {shape: [3], family: gaussian_meanvar, prior: standard_normal}
  dec: {shape: [8], family: gaussian}
  recon: {shape: [12], family: gaussian, role: target, bind: image}
edges:
  - {from: image, to: enc, activation: hardtanh}
  - {from: enc, to: z}
  - {from: z, to: dec, activation: hardtanh}
  - {from: dec, to: recon, activation: sigmoid}
"""

TRANSFORMER = """
name: tlm
nodes:
  tokens: {shape: [6], role: input, bind: tokens, dtype: long}
  x:    {shape: [6, 8], family: gaussian}
  q:    {shape: [6, 8], family: gaussian}
  k:    {shape: [6, 8], family: gaussian}
  v:    {shape: [6, 8], family: gaussian}
  attn: {shape: [6, 6], family: categorical}
  ctx:  {shape: [6, 8], family: gaussian}
  h:    {shape: [6, 8], family: gaussian}
  hn:   {shape: [6, 8], family: gaussian}
  next: {shape: [6, 11], family: categorical, role: target, bind: next_tokens}
edges:
  - {from: tokens, to: x, transform: {type: embedding, vocab: 11, positional: learned}, name: embed}
  - {from: x, to: q}
  - {from: x, to: k}
  - {from: x, to: v}
  - {from: [q, k], to: attn, transform: {type: attention_scores, causal: true}}
  - {from: [attn, v], to: ctx, transform: attention_apply}
  - {from: ctx, to: h}
  - {from: x, to: h, transform: identity}
  - {from: h, to: hn, transform: layernorm}
  - {from: hn, to: next, share: embed}
"""

# every family and several transforms in one graph (for fast == plain checks)
MIXED = """
name: mixed
nodes:
  img:  {shape: [1, 6, 6], role: input, bind: img}
  c:    {shape: [2, 6, 6], family: {type: gaussian, output: tanh}}
  p:    {shape: [2, 3, 3], family: gaussian}
  f:    {shape: [18], family: {type: gaussian, variance: learned}}
  bits: {shape: [7], family: bernoulli}
  cat:  {shape: [5], family: categorical}
  top:  {shape: [4], family: gaussian_meanvar, prior: {type: gaussian, mean: 0.5, variance: 2.0}}
  g:    {shape: [5], family: gaussian}
  y:    {shape: [3], family: categorical, role: target, bind: y}
  r:    {shape: [7], family: bernoulli, role: target, bind: r}
edges:
  - {from: img, to: c, transform: {type: conv2d, kernel: 3, padding: 1}, activation: relu}
  - {from: c, to: p, transform: {type: avgpool2d, kernel: 2}}
  - {from: p, to: f, transform: flatten}
  - {from: f, to: bits}
  - {from: [f, bits], to: cat}
  - {from: top, to: g, activation: gelu}
  - {from: [cat, g], to: y, transform: {type: mlp, hidden: [6]}}
  - {from: bits, to: r}
  - {from: g, to: r, activation: softplus}
  - {from: cat, to: g, transform: {type: linear, bias: false}, activation: leaky_relu}
"""

# strided convolution, overlapping max-pooling, a gate (elementwise product) and a
# layernorm without affine parameters (for fast == plain checks)
GATED = """
name: gated
nodes:
  img:  {shape: [1, 6, 6], role: input, bind: img}
  c:    {shape: [2, 3, 3], family: gaussian}
  p:    {shape: [2, 2, 2], family: gaussian}
  a:    {shape: [6], family: gaussian}
  gate: {shape: [6], family: gaussian}
  m:    {shape: [6], family: gaussian}
  n:    {shape: [6], family: gaussian}
  y:    {shape: [3], family: categorical, role: target, bind: y}
edges:
  - {from: img, to: c, transform: {type: conv2d, kernel: 3, stride: 2, padding: 1}, activation: tanh}
  - {from: c, to: p, transform: {type: maxpool2d, kernel: 2, stride: 1}}
  - {from: p, to: a, transform: {type: block, steps: [{type: flatten, shape: [8]}, linear]}, activation: tanh}
  - {from: p, to: gate, activation: sigmoid,
     transform: {type: block, steps: [{type: flatten, shape: [8]}, {type: mlp, hidden: [5], activation: gelu}]}}
  - {from: [a, gate], to: m, transform: elementwise_mul}
  - {from: m, to: n, transform: {type: layernorm, affine: false}}
  - {from: n, to: y}
"""

# sinusoidal positions, attention without a mask, and a block on the context
ATTEND = """
name: attend
nodes:
  tokens: {shape: [5], role: input, bind: tokens, dtype: long}
  x:    {shape: [5, 6], family: gaussian}
  q:    {shape: [5, 6], family: gaussian}
  k:    {shape: [5, 6], family: gaussian}
  v:    {shape: [5, 6], family: gaussian}
  attn: {shape: [5, 5], family: categorical}
  ctx:  {shape: [5, 6], family: gaussian}
  h:    {shape: [5, 6], family: gaussian}
  next: {shape: [5, 7], family: categorical, role: target, bind: next_tokens}
edges:
  - {from: tokens, to: x, transform: {type: embedding, vocab: 7, positional: sinusoidal}}
  - {from: x, to: q}
  - {from: x, to: k}
  - {from: x, to: v, transform: {type: linear, bias: false}}
  - {from: [q, k], to: attn, transform: attention_scores}
  - {from: [attn, v], to: ctx, transform: attention_apply}
  - {from: ctx, to: h,
     transform: {type: block, residual: true, steps: [layernorm, {type: mlp, hidden: [8], then: tanh}]}}
  - {from: h, to: next}
"""


def program(text, energy="kl", seed=0, overrides=(), **kw):
    spec = pcgraph.loads_spec(text, "test.yaml", overrides=list(overrides))
    graph = pcgraph.build_graph(spec)
    torch.manual_seed(seed)
    return compile_graph(graph, energy=energy, device="cpu", dtype=D, **kw)


def batch_for(prog, B=4, seed=0):
    """Random data for every bound node, shaped and typed by the nodes."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for n in prog.inputs + prog.targets:
        info = prog.nodes[n]
        if info.dtype == "long":
            out[info.bind] = torch.randint(0, prog.graph.vocab_of(n), (B,) + info.shape, generator=gen)
        elif info.role == "target" and info.family == "categorical":
            out[info.bind] = torch.randint(0, info.shape[-1], (B,) + info.shape[:-1], generator=gen)
        elif info.role == "target" and info.family == "bernoulli":
            out[info.bind] = torch.rand((B,) + info.shape, generator=gen, dtype=D)
        elif info.bind in out:
            continue
        else:
            out[info.bind] = torch.rand((B,) + info.shape, generator=gen, dtype=D)
    return out

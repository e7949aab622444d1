"""The small specs several test files share: a classifier with one hidden Gaussian
layer (input -> tanh -> hidden -> categorical target), sized and trained per test,
and a short stream with drift on digits."""


def classifier(name: str = "tiny", *, x: int = 8, h: int = 16, y: int = 4, data: str | None = None,
               train: str | None = None, names: tuple[str, str, str] = ("x", "h", "y"), binds=None) -> str:
    """The spec's YAML text. ``data``: the data section's flow mapping (None: none);
    ``train``: the ``train:`` section as written (one line or a block); ``names``:
    the input, hidden and target nodes; ``binds``: their fields (default: their names)."""
    i, hid, t = names
    bi, bt = binds or (i, t)
    lines = [f"name: {name}"] + ([f"data: {data}"] if data else []) + [
        "nodes:",
        f"  {i}: {{shape: [{x}], role: input, bind: {bi}}}",
        f"  {hid}: {{shape: [{h}], family: gaussian}}",
        f"  {t}: {{shape: [{y}], family: categorical, role: target, bind: {bt}}}",
        "edges:",
        f"  - {{from: {i}, to: {hid}, activation: tanh}}",
        f"  - {{from: {hid}, to: {t}}}",
    ]
    return "\n".join(lines + ([train] if train else [])) + "\n"


#: trained for a few epochs (the trainer's, compare's and the run files' tests)
TRAINED = classifier(
    data="{dataset: synthetic, batch_size: 32, options: {n_train: 512, n_test: 256, seed: 3}}",
    train="train:\n  epochs: 4\n  inference: {steps: 8, optimizer: {type: sgd, lr: 0.1}}\n"
    "  weights: {optimizer: {type: adam, lr: 0.01}}",
)
#: one quick epoch (the command line's runs)
QUICK = classifier(
    h=8, data="{dataset: synthetic, batch_size: 32, options: {n_train: 160, n_test: 64, seed: 1}}",
    train="train: {epochs: 1, inference: {steps: 4}}",
)
#: timed by bench
BENCHED = classifier("tiny-bench", x=12, h=10, y=3, data="{dataset: synthetic, batch_size: 16}",
                     train="train: {inference: {steps: 4}}")
#: with linear edges whose GEMM kernels are chosen
KERNELS = classifier(
    "mlp", x=12, h=9, y=4, data="{dataset: synthetic, batch_size: 8}", names=("image", "h1", "label"),
    train="train: {inference: {steps: 3}, weights: {optimizer: {type: adam, lr: 0.01}}}",
)

#: a short stream on digits with drift: a sigmoid MLP without bias and a Gaussian target, values
#: by SGD with the sync schedule and equilibrium weight gradients (the streams' and grids' tests)
STREAM = """\
name: stream
data:
  dataset: digits
  batch_size: 16
  stream:
    iterations: 23
    eval_every: 8
    train_examples: 200
    drift: {every: 5, classes: [5, 6, 7, 8, 9]}
nodes:
  image: {shape: [64], role: input, bind: image}
  h: {shape: [12], family: {type: gaussian, output: sigmoid}}
  label: {shape: [10], family: gaussian, role: target, bind: label}
edges:
  - {from: image, to: h, transform: {type: linear, bias: false}}
  - {from: h, to: label, transform: {type: linear, bias: false}}
train:
  inference: {steps: 4, optimizer: {type: sgd, lr: 0.1}, schedule: sync}
  weights: {optimizer: {type: sgd, lr: 0.5}, gradient: equilibrium}
"""


def digits_loop(train: str) -> str:
    """A cyclic classifier on digits (image -> h1 <-> h2 -> label, tanh, 32 wide), with
    ``train`` the ``train:`` section as written (the cyclic training and query tests)."""
    return (
        "name: loop\n"
        "data: {dataset: digits, batch_size: 32}\n"
        "nodes:\n"
        "  image: {shape: [64], role: input, bind: image}\n"
        "  h1: {shape: [32], family: gaussian}\n"
        "  h2: {shape: [32], family: gaussian}\n"
        "  label: {shape: [10], family: categorical, role: target, bind: label}\n"
        "edges:\n"
        "  - {from: image, to: h1, activation: tanh}\n"
        "  - {from: h1, to: h2, activation: tanh}\n"
        "  - {from: h2, to: h1, activation: tanh}\n"
        "  - {from: h2, to: label}\n" + train.rstrip("\n") + "\n"
    )

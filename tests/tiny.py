"""The small specs several test files share: a classifier with one hidden Gaussian
layer (input -> tanh -> hidden -> categorical target), sized and trained per test."""


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

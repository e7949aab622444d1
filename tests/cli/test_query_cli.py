"""``pcgraph query`` on small runs trained in the test: classification by clamping the
image reproduces ``pcgraph eval``; clamped values are the data; masks hold the
observed half; prior samples make an image grid; mistakes exit 2 with one line."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
import torch
from PIL import Image

from pcgraph.cli import main
from pcgraph.data import load_dataset
from pcgraph.spec.models import DataSpec
from pcgraph.train.run import train_run
from tests.conftest import SPECS
from tests.tiny import digits_loop


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataSpec(dataset="digits"))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "clf"
    train_run(
        SPECS / "digits-m2.yaml", ["train.epochs=1", "train.max_batches=8", "train.device=cpu"], out=out, progress=False
    )
    return out


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    train_run(
        SPECS / "digits-vae.yaml", ["train.epochs=1", "train.max_batches=4", "train.device=cpu"], out=out,
        progress=False
    )
    return out


def test_inferred_label_has_the_accuracy_eval_reports(classifier, digits, tmp_path):
    r = run("eval", classifier)
    assert r.exit_code == 0, r.output
    expected = json.loads(r.output)["accuracy"]
    r = run("query", classifier, "--clamp", "image=test", "--infer", "label", "--batch-size", "50", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "query.json").read_text())
    label = report["nodes"]["label"]
    assert label["role"] == "predicted" and label["shape"] == [10]
    assert abs(label["accuracy"] - expected) < 1e-9
    probs = np.array(label["value"])
    assert probs.shape == (64, 10) and np.allclose(probs.sum(1), 1.0, atol=1e-4)
    assert label["value_truncated"] and report["examples"] == 360
    truth = digits["test"]["label"]
    assert label["truth"] == truth[:64].tolist()
    image = report["nodes"]["image"]
    assert image["role"] == "clamped"
    assert np.allclose(np.array(image["value"]), digits["test"]["image"][:64].reshape(64, 64).numpy(), atol=1e-5)
    assert {"image.png", "label.csv", "energy.csv"} <= set(report["files"])


def test_clamped_label_range_and_literal(classifier):
    r = run("query", classifier, "--clamp", "image=test[10:13]", "--infer", "label")
    assert r.exit_code == 0, r.output
    assert "3 example(s)" in r.output and "label" in r.output


def test_mask_holds_the_observed_half_and_frees_the_rest(vae, digits, tmp_path):
    r = run(
        "query", vae, "--clamp", "image=test[0:4]", "--mask", "image=left-half", "--infer", "recon", "--out", tmp_path
    )
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "query.json").read_text())
    image = report["nodes"]["image"]
    assert image["role"] == "partly clamped" and image["observed"] == 0.5
    value = np.array(image["value"]).reshape(4, 8, 8)
    truth = digits["test"]["image"][:4].reshape(4, 8, 8).numpy()
    assert np.allclose(value[:, :, :4], truth[:, :, :4], atol=1e-6)
    assert not np.allclose(value[:, :, 4:], truth[:, :, 4:], atol=1e-3)
    assert "mse_unobserved" in image and "mse" in report["nodes"]["recon"]
    assert (tmp_path / "image.observed.png").exists()


def test_a_reconstruction_query_is_the_models_reconstruction(vae, tmp_path):
    """Nothing is observed below the bottleneck, so the encoder and decoder give their
    forward pass: the mse that eval reports (up to the bottleneck's sample)."""
    r = run("eval", vae)
    assert r.exit_code == 0, r.output
    expected = json.loads(r.output)["mse"]
    r = run("query", vae, "--clamp", "image=test", "--infer", "recon", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "query.json").read_text())
    assert report["nodes"]["recon"]["role"] == "predicted" and report["steps"] == 0
    assert abs(report["nodes"]["recon"]["mse"] - expected) < 0.1 * expected


CYCLIC = digits_loop(
    "train: {topology: cyclic, epochs: 1, max_batches: 10, device: cpu, inference: {steps: 8, init: zeros}}"
)


def test_a_cyclic_classifiers_label_query_has_evals_accuracy(tmp_path, digits):
    spec = tmp_path / "loop.yaml"
    spec.write_text(CYCLIC)
    train_run(spec, out=tmp_path / "run", progress=False)
    r = run("eval", tmp_path / "run")
    assert r.exit_code == 0, r.output
    evaluated = json.loads(r.output)
    r = run("query", tmp_path / "run", "--clamp", "image=test", "--infer", "label", "--out", tmp_path / "q")
    assert r.exit_code == 0, r.output
    label = json.loads((tmp_path / "q" / "query.json").read_text())["nodes"]["label"]
    assert label["role"] == "predicted"
    assert abs(label["accuracy"] - evaluated["accuracy"]) < 1e-9
    # the loss is the labels' cross-entropy under that same prediction
    from pcgraph.train.run import load_run

    _, program = load_run(tmp_path / "run")
    probs = program.predict({"image": digits["test"]["image"]})["label"]
    nll = -torch.log(probs[torch.arange(probs.shape[0]), digits["test"]["label"]]).mean()
    assert abs(evaluated["loss"] - float(nll)) < 1e-4


def test_prior_samples_make_an_image_grid(vae, tmp_path):
    r = run("query", vae, "--clamp", "z=prior", "--samples", "8", "--infer", "recon", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "query.json").read_text())
    assert report["nodes"]["z"]["role"] == "clamped"
    z = report["nodes"]["z"]["value"]
    assert np.allclose(z["mean"], 0.0) and np.allclose(z["variance"], 1.0)  # the prior's parameters
    samples = np.array(z["sample"])
    assert samples.shape == (8, 4) and samples.std() > 0.3
    recon = np.array(report["nodes"]["recon"]["value"])
    assert recon.shape == (8, 64) and recon.min() >= 0.0 and recon.max() <= 1.0  # sigmoid output
    grid = Image.open(tmp_path / "recon.png")
    assert grid.size == ((8 * 9 + 1) * 4, (1 * 9 + 1) * 4)  # 8 tiles of 8x8 pixels, 1 px gaps, 4x scale


@pytest.mark.parametrize(
    "args, message",
    [
        (["--clamp", "imag=test"], "no node 'imag' (did you mean 'image'?)"),
        (["--clamp", "image=tset[0:4]"], "--clamp: image=tset[0:4]: 'tset[0:4]' is not a split (train, test)"),
        (["--clamp", "image"], "--clamp: expects NODE=VALUE, got 'image'"),
        (
            ["--clamp", "image=test[0:4]", "--mask", "recon=left-half"],
            "--mask: recon=left-half: the node needs a value",
        ),
        (["--clamp", "image=test[5:5]"], "selects no examples"),
        (["--clamp", "enc=test[0:4]"], "--clamp: enc=test[0:4]: node 'enc' binds no data field"),
    ],
)
def test_mistakes_exit_2_with_one_line(vae, args, message):
    r = run("query", vae, *args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """digits-gen: label (a float input bound to class indices) -> h1 -> h2 -> image [64]."""
    out = tmp_path_factory.mktemp("runs") / "gen"
    train_run(
        SPECS / "digits-gen.yaml",
        ["train.epochs=1", "train.max_batches=2", "train.device=cpu"],
        out=out,
        progress=False,
    )
    return out


@pytest.mark.parametrize(
    "value, message",
    [
        (
            "image=[1,2,3]",
            "node 'image' has shape [64], so its value is one example of 64 numbers or a batch [N, 64], not shape [3]",
        ),
        (
            "image=[0.5,0.5]",
            "node 'image' has shape [64], so its value is one example of 64 numbers or a batch [N, 64], not shape [2]",
        ),
        (
            "h1=[1,2,3]",
            "node 'h1' has shape [64], so its value is one example of 64 numbers or a batch [N, 64], not shape [3]",
        ),
        (
            "label=[[1,2]]",
            "node 'label' has shape [10], so its value is one example of 10 numbers, a batch [N, 10], or a class "
            "index (or N of them), not shape [1, 2]",
        ),
    ],
)
def test_a_literal_that_fits_no_example_names_the_node_shape(gen, value, message):
    r = run("query", gen, "--clamp", value)
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [f"--clamp: {value}: {message}"]


def test_a_file_that_fits_no_example_names_the_node_shape(gen, tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((5, 7), dtype=np.float32))
    r = run("query", gen, "--clamp", f"image={tmp_path / 'v.npy'}")
    assert r.exit_code == 2, r.output
    assert "node 'image' has shape [64]" in r.output and "not shape [5, 7]" in r.output


def test_literals_of_one_example_or_a_batch_are_clamped_as_written(gen, tmp_path):
    ramp = [round(i / 64, 4) for i in range(64)]
    ones = [[1] * 64, [0] * 64]  # integers on a 64-pixel node are pixel values, not class indices
    for value, rows in ((ramp, [ramp]), ([ramp, ramp[::-1], ramp], [ramp, ramp[::-1], ramp]), (ones, ones)):
        r = run("query", gen, "--clamp", f"image={json.dumps(value)}", "--out", tmp_path)
        assert r.exit_code == 0, r.output
        report = json.loads((tmp_path / "query.json").read_text())
        assert report["examples"] == len(rows)
        assert np.allclose(np.array(report["nodes"]["image"]["value"]), np.array(rows, dtype=np.float32), atol=1e-6)
    # on the label, bound to class indices, integers are classes: one-hot rows
    for value, classes in (("3", [3]), ("[1,2,7]", [1, 2, 7])):
        r = run("query", gen, "--clamp", f"label={value}", "--out", tmp_path)
        assert r.exit_code == 0, r.output
        label = np.array(json.loads((tmp_path / "query.json").read_text())["nodes"]["label"]["value"])
        assert (label == np.eye(10)[classes]).all()


@pytest.mark.slow
def test_vae_reconstructions_beat_the_mean_image(tmp_path, digits):
    out = tmp_path / "vae"
    train_run(SPECS / "digits-vae.yaml", ["train.epochs=10", "train.device=cpu"], out=out, progress=False)
    r = run("query", out, "--clamp", "image=test", "--infer", "recon", "--out", tmp_path / "q")
    assert r.exit_code == 0, r.output
    mse = json.loads((tmp_path / "q" / "query.json").read_text())["nodes"]["recon"]["mse"]
    train, test = digits["train"]["image"].reshape(-1, 64), digits["test"]["image"].reshape(-1, 64)
    baseline = float(((test - train.mean(0)) ** 2).mean())
    assert mse < 0.7 * baseline
    r = run("eval", out)
    assert r.exit_code == 0, r.output
    assert abs(mse - json.loads(r.output)["mse"]) < 0.1 * json.loads(r.output)["mse"]


LM = """\
name: lm
nodes:
  tokens: {shape: [6], role: input, bind: tokens, dtype: long}
  x: {shape: [6, 8], family: gaussian}
  q: {shape: [6, 8], family: gaussian}
  k: {shape: [6, 8], family: gaussian}
  attn: {shape: [6, 6], family: categorical}
  ctx: {shape: [6, 8], family: gaussian}
  next: {shape: [6, 11], family: categorical, role: target, bind: next_tokens}
edges:
  - {from: tokens, to: x, transform: {type: embedding, vocab: 11, positional: learned}}
  - {from: x, to: q}
  - {from: x, to: k}
  - {from: [q, k], to: attn, transform: {type: attention_scores, causal: true}}
  - {from: [attn, x], to: ctx, transform: attention_apply}
  - {from: ctx, to: next}
"""


def test_greedy_generation_follows_the_forward_pass_and_slides_its_window():
    import pcgraph
    from pcgraph.compile import compile_graph
    from pcgraph.train.generate import generate

    torch.manual_seed(3)
    prog = compile_graph(pcgraph.build_graph(pcgraph.loads_spec(LM, "lm.yaml")), device="cpu")
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    seq = generate(prog, "tokens", prompt, 7)
    assert seq.shape == (2, 10) and torch.equal(seq[:, :3], prompt)
    # independently: the forward pass (Program.predict) on the last 6 tokens, padded
    want = prompt.clone()
    for _ in range(7):
        window = want[:, -6:]
        padded = torch.cat([window, torch.zeros(2, 6 - window.shape[1], dtype=torch.long)], 1)
        probs = prog.predict({"tokens": padded})["next"]
        want = torch.cat([want, probs[:, window.shape[1] - 1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(seq, want)


def test_a_prompt_shorter_than_the_window_generates(tmp_path):
    """A generation prompt is any number of tokens (padded or slid by ``generate``),
    not one example of the token input's shape."""
    out = tmp_path / "lm"
    train_run(
        SPECS / "synthetic-lm.yaml", ["train.epochs=1", "train.max_batches=2", "train.device=cpu"], out=out,
        progress=False
    )
    r = run("query", out, "--clamp", "tokens=[5, 4]", "--generate", "3", "--out", tmp_path / "g")
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "g" / "query.json").read_text())
    assert report["prompt_length"] == 2 and len(report["generated"]) == 1 and report["generated"][0][:2] == [5, 4]
    assert len(report["generated"][0]) == 5

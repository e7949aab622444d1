"""The ``pcgraph`` command line: validate | inspect | schema | compile | train | eval | query | compare |
bench | diagnose | data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .tools import EXIT_INVALID, data_dir_option, device_option, reports_errors, set_option
from ..core.constants import ENERGIES
from ..core.errors import CompileError, Issue, Location, PcgraphError, TrainError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pcgraph")
def main():
    """Predictive-coding networks declared as graphs: validate, inspect, compile,
    train and compare them against backprop."""


def _load(path: str, overrides=()):
    from ..graph import build_graph
    from ..spec import load_spec

    return build_graph(load_spec(path, overrides))


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@reports_errors
def validate(specs):
    """Check SPEC files; print every problem as FILE:LINE:COL: path: message."""
    from ..graph.report import check_spec

    failed = []
    for path in specs:
        g, issues = check_spec(path)
        if issues:
            failed.append(path)
            for issue in issues:
                click.echo(str(issue), err=True)
            continue
        click.echo(f"{path}: ok ({g.name}: {len(g.nodes)} nodes, {len(g.edges)} edges, {g.params_total:,} parameters)")
    if failed:
        sys.exit(EXIT_INVALID)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "dot", "mermaid"]), default="table", show_default=True
)
@set_option
@reports_errors
def inspect(spec, fmt, overrides):
    """Show the graph: nodes, edges, shapes, parameter counts."""
    from ..graph.views import FORMATS

    click.echo(FORMATS[fmt](_load(spec, overrides)))


@main.command()
@reports_errors
def schema():
    """Print the JSON Schema of the spec language."""
    from ..spec import schema_json

    click.echo(schema_json())


@main.command("compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--energy", type=click.Choice(ENERGIES), default=None, help="default: the spec's train.energy")
@click.option("--print", "show", is_flag=True, help="print the program: per node its prediction and energy term")
@device_option("cpu")
@set_option
@click.option(
    "--explain", is_flag=True,
    help="also show each linear edge's GEMM kernel candidates, their times and the one it runs"
)
@reports_errors
def compile_cmd(spec, energy, show, device, overrides, explain):
    """Compile SPEC to a program and (with --print) show it."""
    from ..compile import compile_graph
    from ..compile.kernels import explain as explain_kernels

    graph = _load(spec, overrides)
    needs_kl = [n for n in graph.nodes.values() if n.family_cls is not None and n.family_cls.needs_kl]
    if energy not in (None, "kl") and needs_kl:
        n = needs_kl[0]
        msg = f"family '{n.family}' on node '{n.name}' has no standard-PC form: use --energy kl"
        raise CompileError(Issue(("nodes", n.name, "family"), msg, Location(f"--energy {energy}")))
    prog = compile_graph(graph, energy=energy, device=device)
    if show:
        click.echo(prog.listing())
    else:
        n = sum(p.numel() for p in prog.parameters())
        click.echo(f"{spec}: compiled {prog.graph.name} (energy {prog.energy_kind}, {n:,} parameters on {prog.device})")
    if explain:
        click.echo(explain_kernels(prog))


@main.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@set_option
@click.option("--out", type=click.Path(file_okay=False), help="run directory (default runs/<name>-<method>-<time>)")
@device_option()
@data_dir_option
@click.option(
    "--resume", type=click.Path(file_okay=False, exists=True), default=None,
    help="continue the run in this directory (extend a finished one with --set train.epochs=N)"
)
@click.option("--quiet", is_flag=True, help="no progress output")
@click.option(
    "--log", type=click.Choice(["tensorboard"]), default=None,
    help='also write TensorBoard scalars to RUN_DIR/tensorboard (pip install "pcgraph[tensorboard]")'
)
@click.option(
    "--nproc", type=click.IntRange(1), default=1, show_default=True,
    help="data-parallel processes on this machine (started through torchrun)"
)
@reports_errors
def train(spec, overrides, out, device, data_dir, resume, quiet, log, nproc):
    """Train SPEC (method bp or pc, energy kl or gaussian) and write a run directory.
    Under torchrun (or with --nproc) the processes train data-parallel."""
    from ..train import distributed
    from ..train.run import summary_line, train_run
    from ..train.trainer import Interrupted

    if spec is None and resume is None:
        raise click.UsageError("give a SPEC to train, or --resume RUN_DIR")
    if spec is not None and resume is not None:
        msg = (
            f"a resumed run keeps the spec saved in {Path(resume) / 'spec.resolved.yaml'}, so {spec} would be "
            f"ignored: drop it and change values with --set"
        )
        raise TrainError(Issue(None, msg, Location(f"--resume {resume}")))
    if nproc > 1 and distributed.world_size() == 1:
        from ..train.launch import launch, prepare, worker_args

        out = prepare(nproc, spec, overrides, out=out, device=device, resume=resume)
        sys.exit(
            launch(
                nproc,
                worker_args(
                    spec, overrides, out=out, device=device, data_dir=data_dir, resume=resume, quiet=quiet, log=log
                ),
            )
        )
    try:
        trainer, summary, out_dir = train_run(
            spec, overrides, out=out, device=device, data_dir=data_dir, resume=resume, progress=not quiet, log=log
        )
    except Interrupted as e:
        if distributed.is_writer():
            click.echo(
                f"{e.message}; continue with: pcgraph train --resume "
                f"{e.out_dir if e.out_dir is not None else '<run dir>'}",
                err=True,
            )
        sys.exit(130)
    except PcgraphError as e:
        if not distributed.is_writer() and not isinstance(e, distributed.PeerLost):
            sys.exit(2)  # rank 0 reports it
        raise
    if not distributed.is_writer():
        return
    click.echo(summary_line(summary))
    click.echo(f"run directory: {out_dir}")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--methods", default=None,
    help="comma-separated: bp, pc-kl, pc-f, bp-f, pc-zil (PC-KL with the gradient at arrival: backprop computed"
    " locally) [default: bp,pc-f,pc-kl, leaving out any the spec cannot train]"
)
@click.option(
    "--seeds", default=1, show_default=True, type=click.IntRange(1), help="runs per method (seeds train.seed, +1, ...)"
)
@set_option
@click.option(
    "--grid", "grid", multiple=True, metavar="PATH=V1,V2,...",
    help="run every method at each of these values (repeatable: every combination), "
    "e.g. train.weights.optimizer.lr=0.1,0.01"
)
@click.option(
    "--select", default=None, metavar="METRIC",
    help="the metric whose mean over seeds picks each method's best grid point "
    "[default: mean_error for a stream, else loss]"
)
@click.option(
    "--out", type=click.Path(file_okay=False), default=None,
    help="output folder (default runs/compare-<name>); rerun to resume"
)
@device_option()
@data_dir_option
@click.option("--quiet", is_flag=True)
@click.option(
    "--log", type=click.Choice(["tensorboard"]), default=None,
    help="also write TensorBoard scalars to each run's tensorboard/ folder"
)
@reports_errors
def compare(spec, methods, seeds, overrides, grid, select, out, device, data_dir, quiet, log):
    """Train SPEC with several methods and seeds (same data order and initial
    weights per seed), at every point of a --grid; write compare.json (with each
    method's best point), compare.md and compare.png."""
    from ..train.compare import compare as run_compare
    from ..train.compare import parse_methods

    result = run_compare(
        spec, None if methods is None else parse_methods(methods), seeds, overrides, grid=grid, select=select,
        out=out, device=device, data_dir=data_dir, progress=not quiet, log=log
    )
    click.echo(result["table"])
    for f in result.get("failures", []):
        click.echo(f"failed: {f['method']} seed {f['seed']}: {f['error']}")
    click.echo(f"results in {result['out']}: compare.json, compare.md, compare.png")


@main.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--split", default="test", show_default=True)
@device_option()
@data_dir_option
@reports_errors
def eval_cmd(run_dir, split, device, data_dir):
    """Evaluate the checkpoint in RUN_DIR on a split; print and write eval-SPLIT.json."""
    from ..train.run import eval_run

    result = eval_run(run_dir, split, device=device, data_dir=data_dir)
    click.echo(json.dumps(result, indent=2))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--clamp", "clamps", multiple=True, required=True, metavar="NODE=SOURCE",
    help="SOURCE: test[0:16] | test | FILE (.npy .pt .png .txt) | 3 | JSON list | prior"
)
@click.option(
    "--infer", "infer", multiple=True, metavar="NODE", help="inferred nodes to report (default: every node not clamped)"
)
@click.option(
    "--mask", "masks", multiple=True, metavar="NODE=MASK",
    help="clamp NODE only in part: left-half | right-half | top-half | bottom-half | random-half | FILE (1 = observed)"
)
@click.option(
    "--steps", type=click.IntRange(0), default=None, help="inference steps (default: the spec's eval_steps or steps)"
)
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="state learning rate (default: the spec's)"
)
@click.option(
    "--samples", type=click.IntRange(1), default=None,
    help="examples when no split gives them (default 16 with a prior, else 1)"
)
@click.option(
    "--out", type=click.Path(file_okay=False), default=None,
    help="write query.json and per-node images, token lists and tables here"
)
@click.option(
    "--batch-size", type=click.IntRange(1), default=None,
    help="examples per batch (default: the spec's eval batch size)"
)
@click.option(
    "--generate", type=click.IntRange(1), default=None, help="continue the clamped token input by this many tokens"
)
@click.option(
    "--temperature", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="sampling temperature for --generate (0: greedy)"
)
@click.option("--seed", default=0, show_default=True)
@device_option()
@data_dir_option
@reports_errors
def query(
    run_dir, clamps, infer, masks, steps, lr, samples, out, batch_size, generate, temperature, seed, device, data_dir
):
    """Clamp nodes of the model in RUN_DIR and infer the others; print a summary."""
    from ..train.query_run import query_run, summary_lines

    report = query_run(
        run_dir, clamps, infer, masks, steps=steps, lr=lr, samples=samples, out=out, device=device, data_dir=data_dir,
        batch_size=batch_size, seed=seed, generate=generate, temperature=temperature
    )
    click.echo("\n".join(summary_lines(report)))


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--steps", type=click.IntRange(1), default=20, show_default=True, help="timed steps per method and round")
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True)
@click.option(
    "--rounds",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="alternating BP/PC timing blocks (their spread is reported)",
)
@device_option()
@click.option(
    "--compile",
    "compile_mode",
    type=click.Choice(["default", "reduce-overhead", "max-autotune"]),
    default=None,
    help="run both steps under torch.compile (reduce-overhead: CUDA graphs)",
)
@click.option("--no-memory", is_flag=True, help="skip the peak-memory measurement")
@set_option
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line")
@reports_errors
def bench(spec, steps, warmup, rounds, device, compile_mode, no_memory, overrides, as_json):
    """Time a PC training step against a BP step on the same graph and batch."""
    from ..train.bench import format_result, run_bench

    r = run_bench(
        spec, overrides, steps=steps, warmup=warmup, rounds=rounds, device=device, compile_mode=compile_mode,
        memory=not no_memory
    )
    click.echo(format_result(r))
    if as_json:
        click.echo(json.dumps(r))


@main.command()
@click.argument("source", metavar="RUN_DIR|SPEC", type=click.Path(exists=True))
@click.option("--split", default="test", show_default=True, help="the split the batch comes from")
@click.option(
    "--batch-size", type=click.IntRange(1), default=None, help="examples in the batch (default: the spec's batch size)"
)
@click.option(
    "--steps", "-T", type=click.IntRange(0), default=None,
    help="inference steps (default: the spec's train.inference.steps)"
)
@click.option("--fresh", is_flag=True, help="a run directory's freshly initialised weights instead of its checkpoint's")
@set_option
@click.option("--out", type=click.Path(file_okay=False), default=None, help="write diagnose.json and diagnose.png here")
@device_option()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON instead of tables")
@reports_errors
def diagnose(source, split, batch_size, steps, fresh, overrides, out, device, data_dir, as_json):
    """On one batch, with the model's current weights: per-node energy before and
    after inference, the step the error reaches each node, steps that raised the
    energy, and per weight the cosine and norm ratio of PC's gradient against BP's."""
    from ..train.diagnose import run_diagnose
    from ..train.diagnose_report import format_report, write_report

    r = run_diagnose(
        source, overrides, split=split, batch_size=batch_size, steps=steps, device=device, data_dir=data_dir,
        fresh=fresh
    )
    click.echo(
        json.dumps(r) if as_json else format_report(r, title=f"{source} ({r['weights']} weights, {split} split)")
    )
    if out is not None:
        files = write_report(r, out)
        if not as_json:
            click.echo(f"wrote {', '.join(str(f) for f in files)}")


def _attach_commands() -> None:
    """Every other module of this package that defines ``command`` (a click command or
    group) adds it: a new command is one file beside this one."""
    import importlib
    import pkgutil

    from . import __path__ as here

    for m in pkgutil.iter_modules(here):
        if m.name not in ("app", "tools"):
            cmd = getattr(importlib.import_module(f"{__package__}.{m.name}"), "command", None)
            if cmd is not None:
                main.add_command(cmd)


_attach_commands()

if __name__ == "__main__":  # pragma: no cover
    main()

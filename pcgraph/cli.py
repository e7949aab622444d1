"""The ``pcgraph`` command line: validate | inspect | schema | compile | train | eval | compare | bench | data."""

from __future__ import annotations

import functools
import sys

import click

from .errors import PcgraphError

EXIT_INVALID = 2


def reports_errors(fn):
    """Print a PcgraphError as its located lines and exit 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PcgraphError as e:
            for line in e.lines:
                click.echo(line, err=True)
            sys.exit(EXIT_INVALID)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pcgraph")
def main():
    """Predictive-coding networks declared as graphs: validate, inspect, compile,
    train and compare them against backprop."""


def _load(path: str, overrides=()):
    from .graph import build_graph
    from .spec import load_spec

    return build_graph(load_spec(path, overrides))


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@reports_errors
def validate(specs):
    """Check SPEC files; print every problem as FILE:LINE:COL: path: message."""
    failed = []
    for path in specs:
        try:
            g = _load(path)
        except PcgraphError as e:
            failed.append(e)
            for line in e.lines:
                click.echo(line, err=True)
            continue
        click.echo(f"{path}: ok ({g.name}: {len(g.nodes)} nodes, {len(g.edges)} edges, {g.params_total:,} parameters)")
    if failed:
        sys.exit(EXIT_INVALID)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "dot", "mermaid"]), default="table", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="override a spec value (dotted path)")
@reports_errors
def inspect(spec, fmt, overrides):
    """Show the graph: nodes, edges, shapes, parameter counts."""
    from .inspect import FORMATS

    click.echo(FORMATS[fmt](_load(spec, overrides)))


@main.command()
@reports_errors
def schema():
    """Print the JSON Schema of the spec language."""
    from .spec import schema_json

    click.echo(schema_json())


@main.command("compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--energy", type=click.Choice(["kl", "gaussian"]), default=None, help="default: the spec's train.energy")
@click.option("--print", "show", is_flag=True, help="print the program: per node its prediction and energy term")
@click.option("--device", default="cpu", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE")
@reports_errors
def compile_cmd(spec, energy, show, device, overrides):
    """Compile SPEC to a program and (with --print) show it."""
    from .compile import compile as build

    prog = build(_load(spec, overrides), energy=energy, device=device)
    if show:
        click.echo(prog.listing())
    else:
        n = sum(p.numel() for p in prog.parameters())
        click.echo(f"{spec}: compiled {prog.graph.name} (energy {prog.energy_kind}, {n:,} parameters on {prog.device})")


if __name__ == "__main__":  # pragma: no cover
    main()

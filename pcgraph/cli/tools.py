"""Shared pieces of the command line: the options several commands take, declared
once, and how errors reach the user."""

from __future__ import annotations

import functools
import sys

import click

from ..core.errors import PcgraphError

#: exit status for an invalid spec, a bad option value or unusable data
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


DATA_DIR_HELP = "datasets folder (default: $PCGRAPH_DATA, else $XDG_CACHE_HOME/pcgraph or ~/.cache/pcgraph)"

#: ``--set PATH=VALUE`` (repeatable): the overrides of spec values
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="override a spec value (dotted path), e.g. train.method=bp; KEY=null removes the key so its default applies",
)
#: ``--data-dir DIR``: where datasets live
data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)


def device_option(default: str | None = None):
    """``--device``: the device to run on (``default``: None for the spec's train.device)."""
    where = "" if default is not None else " (default: the spec's train.device)"
    return click.option(
        "--device", default=default, show_default=default is not None, help=f"cpu, cuda, cuda:N or mps{where}"
    )

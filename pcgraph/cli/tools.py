"""Shared pieces of the command line: how errors reach the user."""

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

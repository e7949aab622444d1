"""What every source shares: the declaration of a remote file, its retrieval with
pooch (download, checksum, cache) and the one-sentence failure reasons.

Downloads are cached in ``DATA_DIR/downloads/<dataset>/`` under their own names; a
file already there with the declared hash is used without downloading it again. A
download goes to a temporary file first and replaces nothing unless its hash
matches, so a failure never removes what the cache held.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

import pooch
import requests

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "pcgraph-data-fetch"
#: the data directory's sub-folder holding the downloaded files
DOWNLOADS = "downloads"
#: the file written beside fetched data saying where it came from
SOURCE_FILE = "pcgraph-source.json"


class SourceFailed(Exception):
    """This source could not deliver (network, checksum, bad archive); the next
    source may still work."""


@dataclass(frozen=True)
class Remote:
    """A file a source reads: where it is and its published hash ("sha256:...",
    "sha512:...", "md5:..."; None: not known, the file is not cached)."""

    url: str
    known_hash: str | None
    fname: str


@dataclass
class Context:
    data_dir: pathlib.Path
    url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    log: Callable[[str], None] = lambda msg: None


@dataclass
class Source:
    name: str
    what: str
    run: Callable[[Context], str]
    #: tried by --source auto
    auto: bool = True
    #: --source auto hands it --url (the package sources take --url only when chosen by name)
    auto_url: bool = False


@dataclass
class FetchResult:
    dataset: str
    source: str | None
    folder: pathlib.Path | None
    message: str
    failures: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ downloaders
def local_path(url: str) -> pathlib.Path | None:
    """The file a ``file://`` URL or a plain path names; None for other URLs."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return pathlib.Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and url[1:3] in (":\\", ":/")):
        return pathlib.Path(url).expanduser()
    return None


def copy_local(url: str, output_file, pooch_obj=None) -> None:
    """A pooch downloader for ``file://`` URLs and plain paths: copies the file."""
    src = local_path(url)
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src}")
    with open(src, "rb") as f:
        with open(output_file, "wb") as out:
            shutil.copyfileobj(f, out)


def choose_downloader(url: str, timeout: float, log: Callable[[str], None]):
    """The downloader for ``url``; it logs each real download (a cache hit logs nothing)."""
    if local_path(url) is not None:
        inner = copy_local
    elif urllib.parse.urlparse(url).scheme in ("http", "https"):
        inner = pooch.HTTPDownloader(progressbar=False, timeout=timeout, headers={"User-Agent": USER_AGENT})
    else:
        inner = pooch.choose_downloader(url, progressbar=False)

    def download(url, output_file, pooch_obj):
        log(f"downloading {url}")
        return inner(url, output_file, pooch_obj)

    return download


# ------------------------------------------------------------------ failure reasons
_HASH = re.compile(r"^(\w+) hash of downloaded file .*?expected (\S+) but got (\S+?)\.")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def reason(exc: BaseException, timeout: float) -> str:
    """A short phrase saying why a download failed."""
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}".strip()
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {timeout:g} s"
    text = str(exc)
    m = _ERRNO.search(text)
    if m:
        return m.group(1).strip().rstrip(".")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "cannot connect"
    return text.splitlines()[0] if text else type(exc).__name__


def checksum_reason(exc: ValueError, url: str) -> str:
    """One sentence for pooch's hash mismatch (expected vs got), else its own words."""
    m = _HASH.match(str(exc))
    if m is None:
        return f"{url}: {exc}"
    alg, want, got = m.groups()
    want = want.split(":", 1)[-1]  # pooch names the algorithm in front of the expected hash
    return f"{url}: the downloaded file's {alg.upper()} {got} does not match the published {want}"


# ------------------------------------------------------------------ retrieval
def retrieve(
    remote: Remote, ctx: Context, folder: str | pathlib.Path, processor: Any = None, url: str | None = None
) -> Any:
    """Download ``remote`` (from ``url`` if given: another copy of the same file) with
    pooch into ``DATA_DIR/downloads/<folder>`` (or the path ``folder``), checked against
    its hash, and hand it to ``processor`` (pooch's protocol). Returns what
    pooch.retrieve returns; SourceFailed says in one sentence why not."""
    url = url or remote.url
    cache = folder if isinstance(folder, pathlib.Path) else ctx.data_dir / DOWNLOADS / folder
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        return pooch.retrieve(
            url,
            remote.known_hash,
            fname=remote.fname,
            path=cache,
            processor=processor,
            downloader=choose_downloader(url, ctx.timeout, ctx.log),
            progressbar=False,
        )
    except ValueError as e:
        if "hash of downloaded file" in str(e):
            raise SourceFailed(checksum_reason(e, url)) from None
        raise SourceFailed(f"{url}: {e}") from None
    except (requests.exceptions.RequestException, OSError) as e:
        raise SourceFailed(f"{url}: {reason(e, ctx.timeout)}") from None
    finally:
        logger.setLevel(level)


def _tmp_base(ctx: Context) -> pathlib.Path:
    base = ctx.data_dir / ".tmp"
    base.mkdir(parents=True, exist_ok=True)
    return base


def tempdir(ctx: Context, name: str) -> tempfile.TemporaryDirectory:
    """A temporary folder under ``DATA_DIR/.tmp`` (removed with its contents)."""
    return tempfile.TemporaryDirectory(prefix=f"{name}-", dir=_tmp_base(ctx))


# ------------------------------------------------------------------ provenance
def write_source(folder: pathlib.Path, **info) -> None:
    info["fetched"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    (folder / SOURCE_FILE).write_text(json.dumps(info, indent=2) + "\n")


def read_source(folder: pathlib.Path) -> dict | None:
    try:
        return json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def as_text(raw: bytes) -> str:
    """UTF-8 if it decodes, else Latin-1; line ends normalised to \\n."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")

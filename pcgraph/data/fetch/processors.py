"""pooch processors that unpack what the sources download, safely.

``SafeUntar`` unpacks a tar archive (any compression Python reads) and ``DebData``
the data archive of a Debian package (an ar archive holding ``data.tar.*``). Only
regular files and folders are written; a member with an absolute name or a '..'
part refuses the whole archive before anything is written.
"""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import tarfile

from .base import SourceFailed


def _safe_name(name: str) -> pathlib.PurePosixPath | None:
    """The member name as a relative path, or None when it is absolute or climbs out."""
    p = pathlib.PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return None
    if any(part == ".." for part in p.parts):
        return None
    parts = [x for x in p.parts if x not in ("", ".")]
    return pathlib.PurePosixPath(*parts) if parts else pathlib.PurePosixPath(".")


def _write_member(tar: tarfile.TarFile, m: tarfile.TarInfo, target: pathlib.Path) -> bool:
    """Write one member; False when it is neither a file nor a folder (skipped)."""
    if m.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return False
    if not m.isfile():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        shutil.copyfileobj(tar.extractfile(m), out)
    os.chmod(target, 0o644)
    return True


def safe_extract(archive: tarfile.TarFile | str | os.PathLike, dest: str | os.PathLike) -> list[pathlib.Path]:
    """Extract a tar archive into ``dest`` (see the module doc); returns the files written."""
    own = not isinstance(archive, tarfile.TarFile)
    tar = tarfile.open(archive, "r:*") if own else archive
    try:
        members = tar.getmembers()
        for m in members:
            if _safe_name(m.name) is None:
                raise SourceFailed(f"unsafe path in archive: {m.name!r} (absolute or with '..'); nothing extracted")
        dest = pathlib.Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written = []
        for m in members:
            target = dest / _safe_name(m.name)
            if root != target.resolve() and root not in target.resolve().parents:
                raise SourceFailed(f"unsafe path in archive: {m.name!r} leaves the destination")
            if _write_member(tar, m, target):
                written.append(target)
        return written
    finally:
        if own:
            tar.close()


class SafeUntar:
    """pooch processor: unpack the downloaded tar archive into ``extract_dir``;
    returns that folder."""

    def __init__(self, extract_dir: str | os.PathLike):
        self.extract_dir = pathlib.Path(extract_dir)

    def __call__(self, fname: str, action: str, pooch) -> pathlib.Path:
        try:
            safe_extract(fname, self.extract_dir)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise SourceFailed(f"{pathlib.Path(fname).name}: not a readable tar archive: {e}") from None
        return self.extract_dir


def read_ar(data: bytes) -> dict[str, bytes]:
    """The members of a Unix ar archive (the container of a .deb)."""
    if not data.startswith(b"!<arch>\n"):
        raise SourceFailed("not an ar archive (a .deb starts with '!<arch>')")
    out, i = {}, 8
    while i + 60 <= len(data):
        head = data[i : i + 60]
        if head[58:60] != b"`\n":
            raise SourceFailed("damaged ar header")
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(head[48:58].decode("ascii").strip())
        out[name] = data[i + 60 : i + 60 + size]
        i += 60 + size + (size & 1)
    return out


class DebData:
    """pooch processor: unpack a .deb's data archive (its files under their installed
    paths) into ``extract_dir``; returns that folder."""

    def __init__(self, extract_dir: str | os.PathLike):
        self.extract_dir = pathlib.Path(extract_dir)

    def __call__(self, fname: str, action: str, pooch) -> pathlib.Path:
        name = pathlib.Path(fname).name
        try:
            members = read_ar(pathlib.Path(fname).read_bytes())
        except SourceFailed as e:
            raise SourceFailed(f"{name}: {e}") from None
        data = next(((k, v) for k, v in members.items() if k.startswith("data.tar")), None)
        if data is None:
            raise SourceFailed(f"{name}: no data.tar member")
        try:
            tar = tarfile.open(fileobj=io.BytesIO(data[1]), mode="r:*")
        except tarfile.TarError:
            raise SourceFailed(f"{name}: Python cannot read its {data[0]}") from None
        with tar:
            safe_extract(tar, self.extract_dir)
        return self.extract_dir

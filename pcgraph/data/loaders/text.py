"""``text``: plain-text files -> a sentencepiece tokenizer -> windows of token ids.

The corpus is every file named by the ``files`` option (a folder contributes the
files under it that match ``pattern``, recursively; default: the data directory's
``text/`` folder). Each file's last ``test_fraction`` of characters (cut at a line
break) is the test split, unless ``test_files`` names the test text. A
sentencepiece model (``model_type`` bpe or unigram, ``vocab_size`` pieces) is
trained on the training text only, and both splits are encoded: each unit of text
(a paragraph, or a line with ``unit: line``) is followed by the end-of-sentence
token. The model and the encoded ids are cached under
``DATA_DIR/text/cache/<key>/``, where the key hashes the files (path, size,
modification time) and the options that change the tokens.

Examples are non-overlapping windows of ``seq_len`` tokens: ``tokens`` is a window,
``next_tokens`` the same window shifted by one token (the token that follows each
position). ``subset`` / ``test_subset`` draw that many windows at random from all of
a split's windows (every book, not the first ones), with the fixed ``subset_seed``:
the same options give the same windows in every run and for every method.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import List, Literal, Optional

from pydantic import Field, PositiveInt

from ...core.lazy import np
from ..dataset import TEXT_FIELDS, Dataset, DatasetOptions, data_error, fetch_hint, register
from ..dataset import resolve_data_dir, validate_options
from .windows import sample_windows, windows

#: bump when the cached format or the tokenization recipe changes
CACHE_VERSION = 1
#: sentences sentencepiece samples to train on (it shuffles larger inputs)
TRAIN_SENTENCES = 2_000_000
#: the longest line (bytes) sentencepiece trains on
MAX_SENTENCE_BYTES = 16384


class TextOptions(DatasetOptions):
    files: Optional[List[str]] = Field(
        None,
        description="text files, folders or glob patterns (default: the data directory's text/ folder); relative paths "
        "start at the data directory",
    )
    test_files: Optional[List[str]] = Field(
        None, description="files holding the test text (default: the last test_fraction of each training file)"
    )
    pattern: str = Field("*.txt", description="which files of a folder to read (recursively)")
    vocab_size: PositiveInt = 8001
    seq_len: PositiveInt = 32
    test_fraction: float = Field(0.05, gt=0, lt=1)
    subset: Optional[PositiveInt] = Field(
        None, description="use N training windows drawn at random from the whole corpus (seeded by subset_seed)"
    )
    test_subset: Optional[PositiveInt] = Field(
        None, description="use N test windows drawn at random from the whole test text (seeded by subset_seed)"
    )
    subset_seed: int = Field(
        0, description="seed of the subset and test_subset draws (fixed, so every run and method sees the same windows)"
    )
    model_type: Literal["bpe", "unigram"] = "bpe"
    max_chars: Optional[PositiveInt] = Field(None, description="read at most this many characters (quick runs)")
    unit: Literal["paragraph", "line"] = Field(
        "paragraph",
        description="paragraph: blank-line separated blocks, line breaks inside are spaces (books); line: one sentence "
        "per line (One Billion Word)",
    )


@dataclass
class TextCorpus:
    """A prepared corpus: the cache folder, the tokenizer model and the encoded ids."""

    cache: pathlib.Path
    model_path: pathlib.Path
    train_ids: np.ndarray
    test_ids: np.ndarray
    meta: dict

    def tokenizer(self):
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=str(self.model_path))


# --------------------------------------------------------------------- files
def _resolve(entry: str, data_dir: pathlib.Path) -> pathlib.Path:
    p = pathlib.Path(os.path.expanduser(entry))
    return p if p.is_absolute() else data_dir / p


def list_files(
    entries: list[str] | None, pattern: str, data_dir: pathlib.Path, what: str = "files"
) -> list[pathlib.Path]:
    """The files ``entries`` name, in a fixed order: folders (recursively, files
    matching ``pattern``) and glob patterns are expanded and sorted; the cache
    folder is skipped."""
    default = entries is None
    entries = [str(data_dir / "text")] if default else entries
    cache = (data_dir / "text" / "cache").resolve()
    out: list[pathlib.Path] = []
    for entry in entries:
        p = _resolve(entry, data_dir)
        if p.is_dir():
            found = sorted(f for f in p.rglob(pattern) if f.is_file() and cache not in f.resolve().parents)
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif glob.has_magic(str(p)):
            matches = sorted(pathlib.Path(m) for m in glob.glob(str(p), recursive=True))
            out.extend(m for m in matches if m.is_file())
        elif not default:
            raise data_error(
                f"text: {what}: no such file or folder: {p}",
                ("data", "options", "test_files" if what == "test_files" else "files"),
            )
    seen: set = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def read_texts(paths: list[pathlib.Path], max_chars: int | None) -> list[str]:
    """The files' texts (UTF-8, undecodable bytes replaced, any line ending read as
    \\n), stopping once ``max_chars`` characters are read (cut at a line break)."""
    texts = []
    left = max_chars
    for path in paths:
        with open(path, encoding="utf-8", errors="replace", newline=None) as f:
            text = f.read() if left is None else f.read(left + 1)
        if left is not None:
            if len(text) > left:
                cut = text.rfind("\n", 0, left)
                text = text[: cut + 1] if cut > 0 else text[:left]
                texts.append(text)
                break
            left -= len(text)
        texts.append(text)
        if left is not None and left <= 0:
            break
    return texts


def split_text(text: str, test_fraction: float) -> tuple[str, str]:
    """(train, test): the test part is the last ``test_fraction`` of the characters,
    starting at the first line break at or after that point."""
    target = int(round(len(text) * (1.0 - test_fraction)))
    cut = text.find("\n", target)
    if cut == -1:
        cut = text.rfind("\n", 0, target)
    if cut <= 0:
        cut = target
    return text[:cut], text[cut:]


_PARAGRAPH = re.compile(r"\n[ \t\f\v]*\n")


def units(text: str, unit: str) -> list[str]:
    """Paragraphs (blank-line separated, inner whitespace collapsed) or lines."""
    if unit == "line":
        parts = text.split("\n")
    else:
        parts = _PARAGRAPH.split(text)
    return [u for u in (" ".join(p.split()) for p in parts) if u]


def _training_lines(texts: list[str]):
    for text in texts:
        for line in text.split("\n"):
            line = line.strip()
            if line:
                yield line


# ------------------------------------------------------------------- prepare
def _fingerprint(paths: list[pathlib.Path]) -> list:
    out = []
    for p in paths:
        st = p.stat()
        out.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    return out


def cache_key(options: TextOptions, train_paths, test_paths) -> str:
    desc = {
        "version": CACHE_VERSION, "files": _fingerprint(train_paths),
        "test_files": _fingerprint(test_paths) if test_paths is not None else None,
        "test_fraction": None if test_paths is not None else options.test_fraction, "vocab_size": options.vocab_size,
        "model_type": options.model_type, "max_chars": options.max_chars, "unit": options.unit
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:20]


def _no_text(data_dir: pathlib.Path, options: TextOptions) -> Exception:
    if options.files is None:
        folder = data_dir / "text"
        return data_error(
            f"text: no text files in {folder} (looked for {options.pattern} recursively); "
            f"{fetch_hint('text', data_dir, 'English books')}"
            f"; or add .txt files there, or set data.options.files"
        )
    return data_error(
        f"text: data.options.files names no readable file (pattern {options.pattern!r} in folders)",
        ("data", "options", "files"),
    )


def _train_tokenizer(lines, options: TextOptions) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines, model_writer=model, vocab_size=options.vocab_size, model_type=options.model_type,
            bos_id=-1, eos_id=2, unk_id=0, input_sentence_size=TRAIN_SENTENCES, shuffle_input_sentence=True,
            max_sentence_length=MAX_SENTENCE_BYTES, num_threads=max(1, os.cpu_count() or 1), minloglevel=2
        )
    except RuntimeError as e:
        msg = str(e)
        m = re.search(r"Vocabulary size (?:is )?too (?:high|large).*?<= ?(\d+)", msg)
        if m:
            raise data_error(
                f"text: vocab_size {options.vocab_size} is too large for this corpus: sentencepiece can make at most "
                f"{m.group(1)} pieces from it;"
                f" lower data.options.vocab_size (and the embedding's vocab) or use more text",
                ("data", "options", "vocab_size"),
            ) from None
        if "smaller than required_chars" in msg or "too small" in msg.lower():
            raise data_error(
                f"text: vocab_size {options.vocab_size} is too small for this corpus's characters: "
                f"{msg.splitlines()[-1]}",
                ("data", "options", "vocab_size"),
            ) from None
        raise data_error(
            f"text: sentencepiece could not train a tokenizer: {msg.splitlines()[-1] if msg else e!r}"
        ) from None
    return model.getvalue()


def _encode(sp, texts: list[str], unit: str) -> np.ndarray:
    eos = sp.eos_id()
    pieces = [u for t in texts for u in units(t, unit)]
    if not pieces:
        return np.zeros(0, dtype=np.int32)
    encoded = sp.encode(pieces, out_type=int, num_threads=max(1, os.cpu_count() or 1))
    total = sum(len(e) for e in encoded) + len(encoded)
    out = np.empty(total, dtype=np.int32)
    i = 0
    for e in encoded:
        n = len(e)
        out[i : i + n] = e
        out[i + n] = eos
        i += n + 1
    return out


def _corpus_paths(options: TextOptions, data_dir: pathlib.Path) -> tuple[list[pathlib.Path], list[pathlib.Path] | None]:
    """(training files, test files or None) that the options name."""
    train_paths = list_files(options.files, options.pattern, data_dir)
    if not train_paths:
        raise _no_text(data_dir, options)
    test_paths = None
    if options.test_files is not None:
        test_paths = list_files(options.test_files, options.pattern, data_dir, "test_files")
        if not test_paths:
            raise data_error("text: data.options.test_files names no readable file", ("data", "options", "test_files"))
    return train_paths, test_paths


def _cached(cache: pathlib.Path) -> TextCorpus | None:
    """The corpus cached in ``cache``, or None when there is none (or it is damaged)."""
    meta_path = cache / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        return TextCorpus(
            cache, cache / "tokenizer.model", np.load(cache / "train.npy"), np.load(cache / "test.npy"), meta
        )
    except (OSError, ValueError):
        return None  # a damaged cache is rebuilt


def _split_texts(options: TextOptions, train_paths, test_paths) -> tuple[list[str], list[str]]:
    """(training texts, test texts): the test files' texts, else each file's last part."""
    texts = read_texts(train_paths, options.max_chars)
    if test_paths is not None:
        return texts, read_texts(test_paths, options.max_chars)
    halves = [split_text(t, options.test_fraction) for t in texts]
    return [h[0] for h in halves], [h[1] for h in halves]


def _write_cache(
    cache: pathlib.Path, model: bytes, sp, train_ids: np.ndarray, test_ids: np.ndarray, meta: dict
) -> None:
    """Write the corpus into ``cache`` at once (a folder renamed into place)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        (tmp / "tokenizer.model").write_bytes(model)
        (tmp / "tokenizer.vocab").write_text(
            "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n" for i in range(sp.get_piece_size())), encoding="utf-8"
        )
        np.save(tmp / "train.npy", train_ids)
        np.save(tmp / "test.npy", test_ids)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        if cache.exists():
            shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cache / "meta.json").is_file():
            raise


def prepare_text(options=None, data_dir=None) -> TextCorpus:
    """Train (or reuse) the tokenizer and encode the corpus; see the module doc."""
    import sentencepiece as spm

    options = validate_options(Text, options)
    data_dir = resolve_data_dir(data_dir)
    train_paths, test_paths = _corpus_paths(options, data_dir)
    cache = data_dir / "text" / "cache" / cache_key(options, train_paths, test_paths)
    corpus = _cached(cache)
    if corpus is not None:
        return corpus
    train_texts, test_texts = _split_texts(options, train_paths, test_paths)
    n_train_chars = sum(len(t) for t in train_texts)
    if not any(t.strip() for t in train_texts):
        raise (
            _no_text(data_dir, options)
            if n_train_chars == 0
            else data_error("text: the training text is empty (only whitespace)")
        )
    model = _train_tokenizer(_training_lines(train_texts), options)
    sp = spm.SentencePieceProcessor(model_proto=model)
    train_ids = _encode(sp, train_texts, options.unit)
    test_ids = _encode(sp, test_texts, options.unit)
    meta = {
        "version": CACHE_VERSION, "files": [str(p) for p in train_paths],
        "test_files": [str(p) for p in test_paths] if test_paths is not None else None, "train_chars": n_train_chars,
        "test_chars": sum(len(t) for t in test_texts), "train_tokens": int(train_ids.size),
        "test_tokens": int(test_ids.size), "vocab_size": sp.get_piece_size(), "eos_id": sp.eos_id(),
        "options": options.model_dump(exclude={"seq_len", "subset", "test_subset", "subset_seed"})
    }
    _write_cache(cache, model, sp, train_ids, test_ids, meta)
    return TextCorpus(cache, cache / "tokenizer.model", train_ids, test_ids, meta)


def text_tokenizer(options=None, data_dir=None):
    """The sentencepiece processor of the ``text`` dataset with these options (a
    mapping or TextOptions): ``.decode(ids)`` turns token ids back into text."""
    return prepare_text(options, data_dir).tokenizer()


@register
class Text(Dataset):
    name = "text"
    Options = TextOptions
    fields = TEXT_FIELDS
    folder = "text"
    description = "plain-text files -> sentencepiece tokens in windows of seq_len"

    def load(self, options, data_dir, graph):
        corpus = prepare_text(options, data_dir)
        out = {}
        for stream, (split, ids, limit) in enumerate(
            (("train", corpus.train_ids, options.subset), ("test", corpus.test_ids, options.test_subset))
        ):
            if limit is None:
                tokens, nxt = windows(ids, options.seq_len)
            else:  # the draw happens here, so the registry's first-N cut keeps all of it
                tokens, nxt = sample_windows(ids, options.seq_len, limit, options.subset_seed, stream)
            if tokens.shape[0] == 0:
                raise data_error(
                    f"text: the {split} split holds {ids.size} tokens, fewer than seq_len + 1 = "
                    f"{options.seq_len + 1}; use more text"
                    + (" or a larger test_fraction" if split == "test" and options.test_files is None else "")
                )
            out[split] = {"tokens": tokens, "next_tokens": nxt}
        return out

    def present(self, data_dir):
        return bool(list_files(None, TextOptions().pattern, pathlib.Path(data_dir)))

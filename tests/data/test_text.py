"""text: a generated English-like corpus -> sentencepiece windows."""

import random

import pytest
import torch

import pcgraph.data.loaders.text as text_mod
from pcgraph.data import load_dataset, text_tokenizer
from pcgraph.data.loaders.text import prepare_text
from pcgraph.core.errors import DataError

WORDS = (
    "the of and to in a is that it was for on are as with his they at be this from have or by one had not but what "
    "all were "
    "when we there can an your which their said if do will each about how up out them then she many some so these "
    "would other"
).split()


def corpus(seed=0, paragraphs=60, width=60):
    """Paragraphs of lowercase sentences, hard-wrapped at ``width``, blank-line separated."""
    rnd = random.Random(seed)
    paras = []
    for _ in range(paragraphs):
        sentences = [
            " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 12))) + "." for _ in range(rnd.randint(1, 4))
        ]
        words, lines, line = " ".join(sentences).split(), [], ""
        for w in words:
            if line and len(line) + 1 + len(w) > width:
                lines.append(line)
                line = w
            else:
                line = f"{line} {w}" if line else w
        lines.append(line)
        paras.append("\n".join(lines))
    return "\n\n".join(paras) + "\n"


def norm(s):
    return " ".join(s.split())


OPTS = {"vocab_size": 60, "seq_len": 8}


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "book.txt").write_text(corpus(0))
    return tmp_path


def test_windows_shapes_and_shift(data_dir):
    d = load_dataset({"dataset": "text", "options": OPTS}, None, data_dir)
    for split in ("train", "test"):
        t, n = d[split]["tokens"], d[split]["next_tokens"]
        assert t.dtype == torch.int64 and n.dtype == torch.int64
        assert t.shape == n.shape and t.shape[1] == 8 and t.shape[0] > 0
        assert int(t.min()) >= 0 and int(t.max()) < 60
        # next_tokens is tokens shifted by one: within a window and across windows
        assert torch.equal(n[:, :-1], t[:, 1:])
        assert torch.equal(n[:-1, -1], t[1:, 0])
    assert d["train"]["tokens"].shape[0] > 5 * d["test"]["tokens"].shape[0]


def test_decode_gives_back_the_corpus(data_dir):
    text = (data_dir / "text" / "book.txt").read_text()
    corpus_info = prepare_text(OPTS, data_dir)
    sp = text_tokenizer(OPTS, data_dir)
    eos = sp.eos_id()
    units = []
    for ids in (corpus_info.train_ids, corpus_info.test_ids):
        ids = ids.tolist()
        assert ids[-1] == eos
        cur = []
        for i in ids:
            if i == eos:
                units.append(sp.decode(cur))
                cur = []
            else:
                cur.append(i)
    # every unit is a paragraph (or the two halves of the one the split cut)
    assert norm(" ".join(units)) == norm(text)
    paragraphs = [norm(p) for p in text.split("\n\n")]
    assert sum(u in paragraphs for u in units) >= len(paragraphs) - 1
    # a sentence round-trips
    s = "the of and to in a is that it was."
    assert sp.decode(sp.encode(s)) == s


def test_test_split_is_the_tail(data_dir):
    text = (data_dir / "text" / "book.txt").read_text()
    c = prepare_text({**OPTS, "test_fraction": 0.2}, data_dir)
    sp = c.tokenizer()
    test_text = sp.decode([i for i in c.test_ids.tolist() if i != sp.eos_id()])
    train_text = sp.decode([i for i in c.train_ids.tolist() if i != sp.eos_id()])
    assert norm(text).endswith(norm(test_text))
    assert norm(text).startswith(norm(train_text))
    frac = c.meta["test_chars"] / (c.meta["train_chars"] + c.meta["test_chars"])
    assert 0.15 < frac < 0.25


def test_cache_is_reused(data_dir, monkeypatch):
    a = load_dataset({"dataset": "text", "options": OPTS}, None, data_dir)
    caches = list((data_dir / "text" / "cache").iterdir())
    assert len(caches) == 1 and (caches[0] / "tokenizer.model").is_file()

    def boom(*args, **kwargs):
        raise AssertionError("the tokenizer was trained again")

    monkeypatch.setattr(text_mod, "_train_tokenizer", boom)
    b = load_dataset({"dataset": "text", "options": {**OPTS, "seq_len": 4}}, None, data_dir)  # seq_len: same cache
    assert torch.equal(a["train"]["tokens"].flatten()[:40], b["train"]["tokens"].flatten()[:40])
    with pytest.raises(AssertionError, match="trained again"):
        load_dataset({"dataset": "text", "options": {**OPTS, "vocab_size": 61}}, None, data_dir)


def test_changed_file_gets_a_new_cache(data_dir):
    load_dataset({"dataset": "text", "options": OPTS}, None, data_dir)
    (data_dir / "text" / "book.txt").write_text(corpus(1))
    load_dataset({"dataset": "text", "options": OPTS}, None, data_dir)
    assert len(list((data_dir / "text" / "cache").iterdir())) == 2


def test_vocab_too_large_is_a_clear_error(data_dir):
    with pytest.raises(DataError) as e:
        load_dataset({"dataset": "text", "options": {"vocab_size": 8001}}, None, data_dir)
    msg = str(e.value)
    assert "\n" not in msg and "vocab_size 8001 is too large" in msg and "at most" in msg


def test_no_text_names_the_fetch_command(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset({"dataset": "text"}, None, tmp_path)
    assert "pcgraph data fetch text" in str(e.value) and str(tmp_path / "text") in str(e.value)


def test_max_chars_caps_the_text(data_dir):
    c = prepare_text({**OPTS, "max_chars": 2000}, data_dir)
    assert c.meta["train_chars"] + c.meta["test_chars"] <= 2000
    full = prepare_text(OPTS, data_dir)
    assert full.meta["train_chars"] + full.meta["test_chars"] > 2000


def test_one_billion_word_layout(tmp_path):
    """Many files, one sentence per line, no .txt suffix; a held-out file for test."""
    rnd = random.Random(3)
    train = tmp_path / "lm1b" / "training-monolingual.tokenized.shuffled"
    held = tmp_path / "lm1b" / "heldout-monolingual.tokenized.shuffled"
    train.mkdir(parents=True)
    held.mkdir(parents=True)
    lines_per_file = 80
    for k in range(3):
        sents = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 10))) + " ." for _ in range(lines_per_file)]
        (train / f"news.en-0000{k + 1}-of-00100").write_text("\n".join(sents) + "\n")
    (held / "news.en.heldout-00000-of-00050").write_text(
        "\n".join(" ".join(rnd.choice(WORDS) for _ in range(6)) + " ." for _ in range(30)) + "\n"
    )
    opts = {
        "files": ["lm1b/training-monolingual.tokenized.shuffled"],  # relative to the data dir
        "pattern": "news.en-*",
        "test_files": ["lm1b/heldout-monolingual.tokenized.shuffled/news.en.heldout-*"],
        "unit": "line",
        "vocab_size": 60,
        "seq_len": 16,
    }
    c = prepare_text(opts, tmp_path)
    eos = c.tokenizer().eos_id()
    assert int((c.train_ids == eos).sum()) == 3 * lines_per_file  # one end-of-sentence per line
    assert int((c.test_ids == eos).sum()) == 30
    assert len(c.meta["files"]) == 3
    d = load_dataset({"dataset": "text", "options": opts}, None, tmp_path)
    assert d["train"]["tokens"].shape[1] == 16


def test_files_option_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset({"dataset": "text", "options": {"files": ["nowhere.txt"]}}, None, tmp_path)


def test_unit_paragraph_vs_line(data_dir):
    text = (data_dir / "text" / "book.txt").read_text()
    n_lines = sum(1 for ln in text.splitlines() if ln.strip())
    n_paras = len([p for p in text.split("\n\n") if p.strip()])
    para = prepare_text(OPTS, data_dir)
    line = prepare_text({**OPTS, "unit": "line"}, data_dir)
    eos = para.tokenizer().eos_id()
    n_para_units = int((para.train_ids == eos).sum() + (para.test_ids == eos).sum())
    n_line_units = int((line.train_ids == eos).sum() + (line.test_ids == eos).sum())
    assert n_para_units in (n_paras, n_paras + 1)  # +1 when the split cuts a paragraph
    assert n_line_units == n_lines


def test_latin1_and_crlf_files_are_read(tmp_path):
    (tmp_path / "text").mkdir()
    body = corpus(5).replace("\n", "\r\n").encode("utf-8") + "caf\xe9\r\n".encode("latin-1")
    (tmp_path / "text" / "a.txt").write_bytes(body)
    c = prepare_text(OPTS, tmp_path)
    assert c.train_ids.size > 0


# ------------------------------------------------------------------ subsets
def book(letters: str, seed: int, paragraphs: int = 40) -> str:
    """A book whose words use only ``letters``: which book a window of text came
    from shows in the letters it decodes to."""
    rnd = random.Random(seed)
    paras = []
    for _ in range(paragraphs):
        words = ["".join(rnd.choice(letters) for _ in range(rnd.randint(2, 5))) for _ in range(rnd.randint(8, 20))]
        paras.append(" ".join(words) + ".")
    return "\n\n".join(paras) + "\n"


ALPHABETS = ["abcd", "efgh", "ijkl", "mnop", "qrst"]


@pytest.fixture
def library(tmp_path):
    (tmp_path / "text").mkdir()
    for k, letters in enumerate(ALPHABETS):
        (tmp_path / "text" / f"book{k}.txt").write_text(book(letters, k))
    return tmp_path


def books_of(sp, rows) -> set:
    seen = set()
    for row in rows:
        text = sp.decode([int(i) for i in row])
        seen |= {k for k, letters in enumerate(ALPHABETS) if any(c in text for c in letters)}
    return seen


def test_subset_draws_windows_from_every_book_and_is_deterministic(library):
    opts = {"vocab_size": 40, "seq_len": 8}
    full = load_dataset({"dataset": "text", "options": opts}, None, library)
    sp = text_tokenizer(opts, library)
    n_train, n_test = full["train"]["tokens"].shape[0], full["test"]["tokens"].shape[0]
    k, k_test = n_train // 10, n_test // 3
    sub_opts = {**opts, "subset": k, "test_subset": k_test}
    a = load_dataset({"dataset": "text", "options": sub_opts}, None, library)
    b = load_dataset({"dataset": "text", "options": sub_opts}, None, library)
    # the first tenth of the windows lies in the first book; a draw reaches them all
    assert books_of(sp, full["train"]["tokens"][:k]) == {0}
    assert books_of(sp, a["train"]["tokens"]) == set(range(len(ALPHABETS)))
    assert books_of(sp, a["test"]["tokens"]) == set(range(len(ALPHABETS)))
    for split, size in (("train", k), ("test", k_test)):
        assert a[split]["tokens"].shape == (size, 8)
        assert torch.equal(a[split]["tokens"], b[split]["tokens"])  # same windows every time
        assert torch.equal(a[split]["next_tokens"][:, :-1], a[split]["tokens"][:, 1:])
        # each drawn window is a distinct window of the split itself, its next tokens with it
        rows = {tuple(r) for r in torch.cat([full[split]["tokens"], full[split]["next_tokens"]], 1).tolist()}
        drawn = [tuple(r) for r in torch.cat([a[split]["tokens"], a[split]["next_tokens"]], 1).tolist()]
        assert len(set(drawn)) == size and set(drawn) <= rows
    # train and test come from disjoint text, so no window is in both
    assert not {tuple(r) for r in a["train"]["tokens"].tolist()} & {tuple(r) for r in full["test"]["tokens"].tolist()}
    other = load_dataset({"dataset": "text", "options": {**sub_opts, "subset_seed": 1}}, None, library)
    assert not torch.equal(other["train"]["tokens"], a["train"]["tokens"])


def test_subset_larger_than_the_corpus_keeps_every_window_in_order(library):
    opts = {"vocab_size": 40, "seq_len": 8}
    full = load_dataset({"dataset": "text", "options": opts}, None, library)
    big = load_dataset({"dataset": "text", "options": {**opts, "subset": 10**6, "test_subset": 10**6}}, None, library)
    for split in ("train", "test"):
        assert torch.equal(big[split]["tokens"], full[split]["tokens"])

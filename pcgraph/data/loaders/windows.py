"""Examples of the ``text`` dataset: non-overlapping windows of a token stream."""

from __future__ import annotations

from ...core.lazy import np, torch


def n_windows(ids: np.ndarray, seq_len: int) -> int:
    """How many non-overlapping windows of ``seq_len`` tokens (plus the next one) ``ids`` holds."""
    return max(0, (int(ids.size) - 1) // seq_len)


def windows(ids: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows: (tokens [N, L], next_tokens [N, L]), next = shifted by one."""
    n = n_windows(ids, seq_len)
    a = torch.from_numpy(np.asarray(ids[: n * seq_len + 1], dtype=np.int64))
    return a[: n * seq_len].reshape(n, seq_len), a[1 : n * seq_len + 1].reshape(n, seq_len)


def sample_windows(
    ids: np.ndarray, seq_len: int, count: int, seed: int, stream: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` of the windows of ``windows(ids, seq_len)``, distinct and drawn
    uniformly at random from all of them (in the drawn order) with the generator
    seeded by (``seed``, ``stream``); all of them, in order, when there are no more
    than ``count``. Only the drawn windows are copied out of ``ids``."""
    n = n_windows(ids, seq_len)
    if count >= n:
        return windows(ids, seq_len)
    rng = np.random.default_rng([seed, stream])
    starts = rng.choice(n, size=count, replace=False).astype(np.int64) * seq_len
    at = starts[:, None] + np.arange(seq_len + 1)
    a = torch.from_numpy(np.asarray(ids[at], dtype=np.int64))
    return a[:, :-1].contiguous(), a[:, 1:].contiguous()

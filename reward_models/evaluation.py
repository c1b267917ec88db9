"""How well a learned reward model ranks architectures: the paper's top-k precision.

The paper (Sec. IV-B) scores RankNet by the top-10 precision on 100 test architectures: the share of
the model's ten best that are among the ten best by the user's true metric. True metrics tie often
-- params and FLOPs take only 28 values in the topology space, and a constraint metric scores every
violating architecture 0 -- so "the ten best" is defined with ties: an architecture counts as a hit
when its true value is at least the k-th largest true value. A model is therefore never punished
for choosing between architectures its user cannot tell apart. Ties in the *model's* scores are
broken by position (the first listed wins), which never helps the model.
"""

from __future__ import annotations

import numpy as np

__all__ = ["top_k_precision", "pairwise_accuracy"]


def top_k_precision(scores: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Share of the ``k`` best architectures by ``scores`` that are among the ``k`` best by ``truth``.

    Args:
        scores: model scores (higher is better), one per architecture.
        truth: the user's true utilities (higher is better), same order.
        k: how many top architectures to compare (<= the number of architectures).

    Returns:
        A value in [0, 1]; ties in ``truth`` count as described in the module docs.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(truth, dtype=np.float64).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"scores and truth must have the same length, got {s.size} and {t.size}")
    if not 1 <= k <= s.size:
        raise ValueError(f"k must be in 1..{s.size} (the number of architectures), got {k}")
    if np.isnan(t).any():
        raise ValueError("truth holds nan; drop architectures without a true value first")
    s = np.where(np.isnan(s), -np.inf, s)
    top = np.argsort(-s, kind="stable")[:k]
    kth_best = np.sort(t)[::-1][k - 1]
    return float(np.mean(t[top] >= kth_best))


def pairwise_accuracy(scores: np.ndarray, truth: np.ndarray) -> float:
    """Share of pairs with different true values that ``scores`` order correctly (ties in scores: half)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(truth, dtype=np.float64).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"scores and truth must have the same length, got {s.size} and {t.size}")
    ds = np.sign(s[:, None] - s[None, :])
    dt = np.sign(t[:, None] - t[None, :])
    mask = dt > 0
    if not mask.any():
        raise ValueError("every true value is equal; pairwise accuracy is undefined")
    return float(np.mean(np.where(ds[mask] == 0, 0.5, (ds[mask] > 0).astype(np.float64))))

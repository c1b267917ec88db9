"""The Bradley-Terry / RankNet preference probability, in exactly one function.

Everything in :mod:`reward_models` that turns two scores into a preference -- RankNet training, the
metric-family posterior's likelihood, the noisy synthetic users and active pair selection -- calls
:func:`preference_probability`, so the
model a user is simulated with and the model that is fitted to that user are the same model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["preference_probability"]


def preference_probability(score_a: Any, score_b: Any, temperature: float = 1.0) -> Any:
    """Probability that ``a`` is preferred to ``b``: ``sigmoid((score_a - score_b) / temperature)``.

    This is RankNet's pairwise probability (Burges et al., 2005) and the Bradley-Terry model with
    ``exp(score)`` as strength. Works on numpy arrays (returns an ``np.ndarray``) and on torch tensors
    (returns a tensor that autograd can differentiate), broadcasting as either library does.

    Args:
        score_a: scores of the first architectures.
        score_b: scores of the second architectures.
        temperature: > 0; larger values make preferences noisier (``inf`` gives 0.5 everywhere).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    diff = (score_a - score_b) / temperature
    if hasattr(diff, "sigmoid"):  # a torch tensor: keep the autograd graph
        return diff.sigmoid()
    diff = np.asarray(diff, dtype=np.float64)
    # Numerically stable logistic: exp never overflows on either side.
    e = np.exp(-np.abs(diff))
    return np.where(diff >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

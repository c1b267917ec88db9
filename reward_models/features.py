"""The features of learned reward models: which metrics, and how they are normalised (no torch).

Shared by :mod:`reward_models.ranknet` (the network's inputs) and :mod:`reward_models.posterior`
(the metric-family hypotheses), so that both read an architecture the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from natsbench_gym.errors import MissingMetricError
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric, MetricStats

__all__ = ["DEFAULT_FEATURES", "REPRESENTATIONS", "FeatureNormaliser", "parse_feature", "resolve_features"]

logger = logging.getLogger(__name__)

#: The paper's metric set L; "accuracy" is the scoring context's accuracy metric.
DEFAULT_FEATURES: tuple[str, ...] = ("accuracy", "latency", "params", "flops")
#: Feature normalisations: min-max utility and rank, or one of them.
REPRESENTATIONS = ("both", "utility", "rank")


def parse_feature(name: str) -> Metric | None:
    """``None`` stands for the context's accuracy metric."""
    if name.lower() in ("accuracy", "acc"):
        return None
    return Metric.parse(name)


def resolve_features(features: Sequence[str] | None, context: ScoringContext) -> tuple[Metric, ...]:
    """The metrics named by ``features`` (``None``: :data:`DEFAULT_FEATURES`, leaving out those the
    context lacks), in order, without duplicates."""
    names = features if features is not None else DEFAULT_FEATURES
    out: list[Metric] = []
    for name in names:
        metric = parse_feature(name) or context.accuracy_metric
        if not context.has(metric):
            if features is None:
                logger.debug("RankNet: %s is not available in this context; left out of the features", metric.value)
                continue
            raise MissingMetricError(
                f"RankNet feature {metric.value} is not available for {context.dataset.value} on "
                f"{context.benchmark.name}; choose features among "
                f"{', '.join(m.value for m in Metric if context.has(m))}"
            )
        if metric not in out:
            out.append(metric)
    if not out:
        raise MissingMetricError("none of the RankNet features is available in this scoring context")
    return tuple(out)


# --- features -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FeatureNormaliser:
    """Maps raw metric values to the network's inputs (utilities, 1 = best), from space-wide statistics.

    Attributes:
        metrics: the metrics, in input order.
        representation: ``"both"``, ``"utility"`` or ``"rank"``.
        minimum, maximum: space-wide min and max of each metric (min-max utility).
        rank_values, rank_levels: per metric, increasing values and their mid-rank in [0, 1]
            (rank utility, by interpolation).
    """

    metrics: tuple[Metric, ...]
    representation: str
    minimum: tuple[float, ...]
    maximum: tuple[float, ...]
    rank_values: tuple[np.ndarray, ...] = field(repr=False)
    rank_levels: tuple[np.ndarray, ...] = field(repr=False)

    @classmethod
    def from_context(cls, metrics: Sequence[Metric], context: ScoringContext, representation: str, grid: int) -> FeatureNormaliser:
        """Statistics over every architecture of the context's space."""
        lo, hi, rv, rl = [], [], [], []
        for m in metrics:
            # the space's distribution as the backend knows it (never a whole-space live training)
            v = context.space_values(m)
            if v.size == 0:
                raise MissingMetricError(f"no {m.value} values in this context to normalise RankNet features with")
            stats = context.stats(m)
            lo.append(stats.min)
            hi.append(stats.max)
            v = np.sort(v)
            uniq, first = np.unique(v, return_index=True)
            last = np.append(first[1:], v.size) - 1
            mid = (first + last) / 2.0 / max(v.size - 1, 1)  # mid-rank of ties, in [0, 1]
            if uniq.size > grid:
                keep = np.unique(np.linspace(0, uniq.size - 1, grid).round().astype(np.int64))
                uniq, mid = uniq[keep], mid[keep]
            rv.append(uniq.astype(np.float64))
            rl.append(mid.astype(np.float64))
        return cls(tuple(metrics), representation, tuple(lo), tuple(hi), tuple(rv), tuple(rl))

    @property
    def num_inputs(self) -> int:
        return len(self.metrics) * (2 if self.representation == "both" else 1)

    @property
    def input_names(self) -> tuple[str, ...]:
        names = []
        if self.representation in ("both", "utility"):
            names += [f"utility:{m.value}" for m in self.metrics]
        if self.representation in ("both", "rank"):
            names += [f"rank:{m.value}" for m in self.metrics]
        return tuple(names)

    def transform(self, metrics: Mapping[Metric, np.ndarray]) -> np.ndarray:
        """``(n, num_inputs)`` inputs from ``{Metric: values}`` (nan stays nan)."""
        cols_u, cols_r = [], []
        for i, m in enumerate(self.metrics):
            if m not in metrics:
                raise MissingMetricError(f"RankNet needs {m.value}, which the metrics given do not hold")
            v = np.asarray(metrics[m], dtype=np.float64).reshape(-1)
            if self.representation in ("both", "utility"):
                u = np.clip(MetricStats(self.minimum[i], self.maximum[i], 0.0).normalize(v), 0.0, 1.0)
                cols_u.append(u if m.higher_is_better else 1.0 - u)
            if self.representation in ("both", "rank"):
                r = np.interp(v, self.rank_values[i], self.rank_levels[i])
                r = np.where(np.isnan(v), np.nan, r)
                cols_r.append(r if m.higher_is_better else 1.0 - r)
        return np.stack(cols_u + cols_r, axis=1)

    def to_dict(self) -> dict[str, Any]:
        """A ``torch.save``-able dict (model files); torch is imported here, only when saving."""
        import torch

        return {
            "metrics": [m.value for m in self.metrics],
            "representation": self.representation,
            "minimum": list(self.minimum),
            "maximum": list(self.maximum),
            "rank_values": [torch.from_numpy(a.copy()) for a in self.rank_values],
            "rank_levels": [torch.from_numpy(a.copy()) for a in self.rank_levels],  # tensors: weights_only loading
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureNormaliser:
        return cls(
            tuple(Metric.parse(m) for m in d["metrics"]),
            str(d["representation"]),
            tuple(float(x) for x in d["minimum"]),
            tuple(float(x) for x in d["maximum"]),
            tuple(np.asarray(t, dtype=np.float64) for t in d["rank_values"]),
            tuple(np.asarray(t, dtype=np.float64) for t in d["rank_levels"]),
        )

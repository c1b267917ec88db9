"""What a person sees of one architecture: every metric, with its unit and its percentile in the space.

:class:`MetricCatalog` reads each metric of the scoring context once for the whole search space and
keeps it sorted, so the percentile of any value is a binary search. Percentiles are of the raw value
(the share of the space at or below it); whether higher is better is said beside it, not folded in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric

__all__ = ["MetricCatalog", "MetricView", "format_value"]


@dataclass(frozen=True)
class MetricView:
    """One metric of one architecture, ready to show.

    Attributes:
        metric: the metric.
        value: its value, ``None`` where the data has none for this architecture.
        percentile: share of the space (0-100) with a value at or below ``value``; ``None`` with it.
    """

    metric: Metric
    value: float | None
    percentile: float | None

    @property
    def label(self) -> str:
        return self.metric.label

    @property
    def unit(self) -> str:
        return self.metric.unit

    @property
    def text(self) -> str:
        """The value with its unit (``"91.20 %"``), or ``"n/a"``."""
        return "n/a" if self.value is None else f"{format_value(self.value)} {self.unit}"

    def to_json(self) -> dict:
        return {
            "key": self.metric.value,
            "label": self.label,
            "unit": self.unit,
            "value": self.value,
            "text": self.text,
            "percentile": self.percentile,
            "higher_is_better": self.metric.higher_is_better,
        }


def format_value(value: float) -> str:
    """Four significant digits, at most two decimals for numbers above 10 (``91.20``, ``0.3714``)."""
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    return f"{value:.4g}"


class MetricCatalog:
    """Every metric of a scoring context, for values, percentiles and features.

    A table backend answers for the whole space at once, so everything is loaded up front. A backend
    that must train to answer (live training) is asked only about the architectures shown (the
    ``candidates`` and whatever :meth:`describe` is asked about), and percentiles are taken over the
    distribution it knows (``context.space_values``); unknown architectures are ``nan``.

    Args:
        context: the benchmark, dataset, budget and latency device the metrics come from.
        metrics: the metrics to show (default: every metric the context has, in :class:`Metric` order).
        candidates: official indices of the architectures that will be shown (used by lazy backends).
    """

    def __init__(
        self, context: ScoringContext, metrics: Sequence[Metric] | None = None, candidates: Sequence[int] | None = None
    ) -> None:
        self.context = context
        self.metrics: tuple[Metric, ...] = tuple(metrics) if metrics is not None else tuple(m for m in Metric if context.has(m))
        size = context.benchmark.space.size
        self.whole_space = context.benchmark.capabilities.whole_space
        if self.whole_space:
            self._columns = context.query(None, self.metrics)
            self._known = np.ones(size, dtype=bool)
        else:
            self._columns = {m: np.full(size, np.nan) for m in self.metrics}
            self._known = np.zeros(size, dtype=bool)
            if candidates is not None:
                self._ensure(np.asarray(candidates, dtype=np.int64))
        self._sorted = {
            m: np.sort(col[~np.isnan(col)]) if self.whole_space else np.sort(context.space_values(m))
            for m, col in self._columns.items()
        }

    def _ensure(self, indices: np.ndarray) -> None:
        missing = np.unique(indices[~self._known[indices]])
        if missing.size:
            fresh = self.context.query(missing, self.metrics)
            for m in self.metrics:
                self._columns[m][missing] = fresh[m]
            self._known[missing] = True

    def values(self, indices: Sequence[int] | np.ndarray | None = None) -> dict[Metric, np.ndarray]:
        """``{Metric: array}`` of the architectures with these official indices (``None``: the whole
        space, ``nan`` where a lazy backend has not been asked)."""
        if indices is None:
            return dict(self._columns)
        idx = np.asarray(indices, dtype=np.int64)
        self._ensure(idx)
        return {m: col[idx] for m, col in self._columns.items()}

    def percentile(self, metric: Metric, values: np.ndarray | float) -> np.ndarray:
        """Share (0-100) of the space whose ``metric`` is at or below each value (``nan`` stays ``nan``)."""
        ranked = self._sorted[metric]
        values = np.asarray(values, dtype=np.float64)
        out = 100.0 * np.searchsorted(ranked, values, side="right") / max(ranked.size, 1)
        return np.where(np.isnan(values), np.nan, out)

    def describe(self, index: int) -> list[MetricView]:
        """Every metric of the architecture with official index ``index``."""
        views = []
        self._ensure(np.array([int(index)], dtype=np.int64))
        for metric in self.metrics:
            value = float(self._columns[metric][int(index)])
            if math.isnan(value):
                views.append(MetricView(metric, None, None))
            else:
                views.append(MetricView(metric, value, float(self.percentile(metric, value))))
        return views

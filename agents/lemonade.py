"""LEMONADE (Elsken, Metzen & Hutter, ICLR 2019): multi-objective evolution over a Pareto front.

The population is the non-dominated set of everything evaluated so far, over the search accuracy
(the env's, validation by default; maximised) and cheap objectives (parameters, FLOPs, latency;
minimised). Each generation draws parents from the front with probability inversely proportional to
a kernel density estimate of the front in the (standardised, log) cheap-objective space, so sparsely
covered trade-offs are explored first; children are one-decision mutations of their parents; the
front is then recomputed over front + children. Non-dominated sorting and the hypervolume come from
pymoo, the KDE from scikit-learn.

Differences from the paper's LEMONADE, both forced by the setting:

* children come from mutation, not network morphisms (there are no weights to inherit on a benchmark);
* the second KDE stage, which pre-selects children by their cheap objectives *before* training them,
  is left out: an agent learns an architecture's metrics only by evaluating it through the env, and
  reading them from the benchmark beforehand would reach around the env.

The reward the env gives is not used by the evolution; it only picks the architecture reported as
``result.best`` (so the same search is "scored" under each fixed metric). LEMONADE is not
personalized (as in the paper).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.base import Evaluation, SearchAgent
from agents.proposals import mutate_architecture, sample_architecture
from natsbench_gym.rewards import utility
from natsbench_gym.types import Metric

__all__ = ["LEMONADE", "DEFAULT_CHEAP_OBJECTIVES"]

DEFAULT_CHEAP_OBJECTIVES: tuple[Metric, ...] = (Metric.PARAMS, Metric.FLOPS, Metric.LATENCY)


class LEMONADE(SearchAgent):
    """Multi-objective evolution keeping the Pareto front; parents drawn inversely to a KDE.

    Args:
        population_size: random architectures evaluated first (the paper: 10).
        num_children: children per generation (the paper's sample size: 5).
        cheap_objectives: cost metrics minimised besides the accuracy; those the env's benchmark lacks
            are dropped (default: params, FLOPs, latency).
        bandwidth: KDE bandwidth in standardised units; ``None``: Scott's rule.
        seed: seeds sampling, parent choice and mutation; the same seed gives the same history.

    Attributes:
        front: the current non-dominated set (during and after a search), in evaluation order.

    The result's ``info`` holds ``front`` (the final non-dominated set), ``hypervolume`` (of the front
    in the space of normalised losses ``1 - utility``, reference point 1 in every objective) and
    ``objectives`` (their names).
    """

    name = "lemonade"

    def __init__(
        self,
        population_size: int = 10,
        num_children: int = 5,
        cheap_objectives: Sequence[Metric | str] = DEFAULT_CHEAP_OBJECTIVES,
        bandwidth: float | None = None,
        seed: int | None = None,
    ) -> None:
        if population_size < 1 or num_children < 1:
            raise ValueError(f"population_size and num_children must be >= 1, got {population_size}, {num_children}")
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0 (or None for Scott's rule), got {bandwidth}")
        super().__init__(seed=seed)
        self.population_size = int(population_size)
        self.num_children = int(num_children)
        self.cheap_objectives = tuple(Metric.parse(m) for m in cheap_objectives)
        self.bandwidth = bandwidth
        self.front: list[Evaluation] = []

    # --- objectives --------------------------------------------------------------------------------
    def objectives(self) -> tuple[Metric, ...]:
        """The accuracy the env searches on, then the cheap objectives its benchmark has."""
        context = self.env.unwrapped.context
        return (context.accuracy_metric, *(m for m in self.cheap_objectives if context.has(m)))

    def _objective_matrix(self, evaluations: Sequence[Evaluation]) -> np.ndarray:
        """Rows to minimise: ``-accuracy`` then the costs; a missing value counts as the worst."""
        objectives = self.objectives()
        rows = []
        for ev in evaluations:
            row = []
            for m in objectives:
                v = ev.metrics.get(m.value, math.nan)
                v = math.inf if math.isnan(v) else (-v if m.higher_is_better else v)
                row.append(v)
            rows.append(row)
        out = np.array(rows, dtype=np.float64)
        if np.isinf(out).any():  # pymoo compares finite numbers; a missing value loses to every real one
            finite = out[np.isfinite(out)]
            out[np.isinf(out)] = (finite.max() if finite.size else 0.0) + 1.0
        return out

    def non_dominated(self, evaluations: Sequence[Evaluation]) -> list[Evaluation]:
        """The non-dominated evaluations (one per architecture), in evaluation order."""
        from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

        unique: dict[int, Evaluation] = {}
        for ev in evaluations:
            unique.setdefault(ev.index, ev)
        evs = sorted(unique.values(), key=lambda e: e.step)
        if len(evs) <= 1:
            return evs
        front = NonDominatedSorting().do(self._objective_matrix(evs), only_non_dominated_front=True)
        return [evs[i] for i in sorted(int(j) for j in front)]

    def parent_probabilities(self, front: Sequence[Evaluation]) -> np.ndarray:
        """Probability of each front member to be a parent: proportional to ``1 / KDE density`` of its
        cheap objectives (log scale, standardised over the front)."""
        from sklearn.neighbors import KernelDensity

        cheap = self.objectives()[1:]
        if len(front) == 1 or not cheap:
            return np.full(len(front), 1.0 / len(front))
        x = self._objective_matrix(front)[:, 1:]
        x = np.log(np.maximum(x, 0.0) + 1e-6)
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
        kde = KernelDensity(bandwidth="scott" if self.bandwidth is None else self.bandwidth).fit(x)
        density = np.exp(kde.score_samples(x))
        weights = 1.0 / np.maximum(density, 1e-300)
        return weights / weights.sum()

    # --- search ------------------------------------------------------------------------------------
    def _search(self) -> None:
        self.front = []
        initial = []
        try:
            for _ in range(self.population_size):
                initial.append(self.evaluate(sample_architecture(self.env, self.rng)))
        finally:
            self.front = self.non_dominated(initial)
        while True:
            probs = self.parent_probabilities(self.front)
            parents = self.rng.choice(len(self.front), size=self.num_children, replace=True, p=probs)
            children = []
            try:
                for i in parents.tolist():
                    children.append(self.evaluate(mutate_architecture(self.env, self.front[i].encoding, self.rng)))
            finally:
                self.front = self.non_dominated(self.front + children)

    def hypervolume(self, evaluations: Sequence[Evaluation]) -> float:
        """Hypervolume (pymoo) of ``evaluations`` over normalised losses ``1 - utility``, reference point 1."""
        from pymoo.indicators.hv import HV

        if not evaluations:
            return 0.0
        context = self.env.unwrapped.context
        cols = []
        for m in self.objectives():
            values = np.array([ev.metrics.get(m.value, math.nan) for ev in evaluations])
            cols.append(1.0 - np.nan_to_num(utility(m, values, context), nan=0.0))
        return float(HV(ref_point=np.ones(len(cols)))(np.stack(cols, axis=1)))

    def _result_info(self) -> dict[str, Any]:
        if self.env is None or not self.history:
            return {"front": list(self.front), "hypervolume": 0.0}
        return {
            "front": list(self.front),
            "hypervolume": self.hypervolume(self.front),
            "objectives": [m.value for m in self.objectives()],
        }

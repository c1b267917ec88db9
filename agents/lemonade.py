"""LEMONADE (Elsken, Metzen & Hutter, ICLR 2019): multi-objective evolution over a Pareto front.

The population is the non-dominated set of everything evaluated so far, over the search accuracy
(the env's, validation by default; maximised) and cheap objectives (parameters, FLOPs, latency;
minimised). Each generation has the paper's two KDE stages (Elsken et al., Alg. 1):

1. draw ``num_proposals`` parents from the front with probability inversely proportional to a kernel
   density estimate of the front in the (standardised, log) cheap-objective space, so sparsely covered
   trade-offs are explored first, and make one child of each by a one-decision mutation;
2. ask the env for the children's cheap objectives, which need no training
   (``env.unwrapped.training_free_metrics``: no evaluation is spent, no accuracy is seen), and accept
   ``num_children`` of them, drawn without replacement with probability inversely proportional to the
   same density at their cheap objectives (children already evaluated, or proposed twice, only when
   too few new ones remain); only the accepted children are evaluated (trained).

The front is then recomputed over front + accepted children. With ``num_proposals == num_children``
every child is accepted and the second stage is off (the behaviour before it existed).
Non-dominated sorting and the hypervolume come from pymoo, the KDE from scikit-learn.

Difference from the paper's LEMONADE, forced by the setting: children come from mutation, not
network morphisms (there are no weights to inherit on a benchmark).

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
from agents.errors import AgentConfigError, UnsupportedEnvError
from agents.proposals import mutate_architecture, sample_architecture
from natsbench_gym.envs.base import TRAINING_FREE_METRICS
from natsbench_gym.rewards import utility
from natsbench_gym.types import Metric

__all__ = ["LEMONADE", "DEFAULT_CHEAP_OBJECTIVES"]

DEFAULT_CHEAP_OBJECTIVES: tuple[Metric, ...] = (Metric.PARAMS, Metric.FLOPS, Metric.LATENCY)


class LEMONADE(SearchAgent):
    """Multi-objective evolution keeping the Pareto front; parents drawn inversely to a KDE.

    Args:
        population_size: random architectures evaluated first (the paper: 10).
        num_children: children evaluated per generation (the paper's sample size: 5).
        num_proposals: children proposed per generation, of which ``num_children`` are accepted by
            the second KDE stage on their training-free cheap objectives; ``None``: ``num_children``
            (no pre-screening).
        cheap_objectives: cost metrics minimised besides the accuracy; those the env's benchmark lacks
            are dropped (default: params, FLOPs, latency). They must need no training
            (``natsbench_gym.envs.base.TRAINING_FREE_METRICS``) for the pre-screening.
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
        num_proposals: int | None = None,
    ) -> None:
        if population_size < 1 or num_children < 1:
            raise AgentConfigError(
                f"population_size and num_children must be >= 1, got {population_size}, {num_children}; "
                "the paper uses 10 and 5"
            )
        if num_proposals is not None and num_proposals < num_children:
            raise AgentConfigError(
                f"num_proposals must be >= num_children={num_children}, got {num_proposals}; the second KDE stage "
                "accepts num_children of the proposals (None: propose num_children, no pre-screening)"
            )
        if bandwidth is not None and not bandwidth > 0:
            raise AgentConfigError(f"bandwidth must be > 0 (or None for Scott's rule), got {bandwidth}")
        super().__init__(seed=seed)
        self.population_size = int(population_size)
        self.num_children = int(num_children)
        self.num_proposals = self.num_children if num_proposals is None else int(num_proposals)
        self.cheap_objectives = tuple(Metric.parse(m) for m in cheap_objectives)
        if self.num_proposals > self.num_children:
            costly = [m.value for m in self.cheap_objectives if m not in TRAINING_FREE_METRICS]
            if costly:
                raise AgentConfigError(
                    f"pre-screening children (num_proposals > num_children) needs training-free cheap objectives "
                    f"({', '.join(m.value for m in TRAINING_FREE_METRICS)}); {', '.join(costly)} needs training; "
                    "drop it from cheap_objectives or use num_proposals=None"
                )
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
        if len(front) == 1 or not self.objectives()[1:]:
            return np.full(len(front), 1.0 / len(front))
        cheap = self._objective_matrix(front)[:, 1:]
        return _normalised(1.0 / self._density(cheap, cheap))

    def acceptance_probabilities(self, front: Sequence[Evaluation], children_cheap: np.ndarray) -> np.ndarray:
        """Probability of each proposed child to be evaluated: proportional to ``1 / KDE density`` of the
        front at the child's cheap objectives (rows of ``children_cheap``, in :meth:`objectives` order
        without the accuracy), so children that would fill a sparse region of the front come first."""
        n = len(children_cheap)
        if n == 0 or not self.objectives()[1:]:
            return np.full(n, 1.0 / max(n, 1))
        return _normalised(1.0 / self._density(self._objective_matrix(front)[:, 1:], np.asarray(children_cheap)))

    def _density(self, reference: np.ndarray, points: np.ndarray) -> np.ndarray:
        """KDE of ``reference`` (rows of cheap objectives; log scale, standardised over ``reference``)
        evaluated at ``points``; one reference row gives a unit-bandwidth Gaussian around it."""
        from sklearn.neighbors import KernelDensity

        def log(x):
            return np.log(np.maximum(np.nan_to_num(x, nan=np.inf, posinf=np.inf), 0.0) + 1e-6)

        ref, pts = log(reference), log(points)
        finite = np.isfinite(ref).all(axis=1)
        ref = ref[finite] if finite.any() else np.zeros((1, ref.shape[1]))
        mean, std = ref.mean(axis=0), ref.std(axis=0)
        scale = np.where(std > 0, std, 1.0)
        ref, pts = (ref - mean) / scale, (pts - mean) / scale
        pts = np.where(np.isfinite(pts), pts, ref.max(axis=0) + 3.0)  # a missing cost: far from everything
        bandwidth = (1.0 if len(ref) == 1 else "scott") if self.bandwidth is None else self.bandwidth
        kde = KernelDensity(bandwidth=bandwidth).fit(ref)
        return np.maximum(np.exp(kde.score_samples(pts)), 1e-300)

    # --- search ------------------------------------------------------------------------------------
    def _search(self) -> None:
        self.front = []
        initial = []
        try:
            encodings = [sample_architecture(self.env, self.rng) for _ in range(self.population_size)]
            self.prefetch(encodings)
            for encoding in encodings:
                initial.append(self.evaluate(encoding))
        finally:
            self.front = self.non_dominated(initial)
        while not self.exhausted:  # checked here too, so no pre-screening is done for nothing
            probs = self.parent_probabilities(self.front)
            parents = self.rng.choice(len(self.front), size=self.num_proposals, replace=True, p=probs)
            proposals = [mutate_architecture(self.env, self.front[i].encoding, self.rng) for i in parents.tolist()]
            children = []
            try:
                accepted = self._accept(proposals)
                self.prefetch(accepted)  # the children train at once on a parallel live backend
                for encoding in accepted:
                    children.append(self.evaluate(encoding))
            finally:
                self.front = self.non_dominated(self.front + children)

    def _accept(self, proposals: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """The second KDE stage: ``num_children`` of ``proposals``, chosen on training-free metrics."""
        if len(proposals) <= self.num_children:
            return proposals
        base = self.env.unwrapped
        if not hasattr(base, "training_free_metrics"):
            raise UnsupportedEnvError(
                f"{type(base).__name__} has no training_free_metrics(archs); LEMONADE's pre-screening "
                "(num_proposals > num_children) needs it; use num_proposals=None"
            )
        cheap = base.training_free_metrics(proposals)
        missing = np.full(len(proposals), np.nan)
        columns = [np.asarray(cheap.get(m, missing), dtype=np.float64) for m in self.objectives()[1:]]
        matrix = np.stack(columns, axis=1) if columns else np.zeros((len(proposals), 0))
        weights = self.acceptance_probabilities(self.front, matrix)
        # New architectures first: a child already evaluated, or proposed twice, adds nothing to the front.
        evaluated = {ev.encoding for ev in self.history}
        fresh = np.array([p not in evaluated and p not in proposals[:i] for i, p in enumerate(proposals)])
        order = []
        for pool in (fresh, ~fresh):
            idx = np.flatnonzero(pool)
            k = min(self.num_children - len(order), idx.size)
            if k > 0:
                order += self.rng.choice(idx, size=k, replace=False, p=_normalised(weights[idx])).tolist()
        return [proposals[i] for i in order]

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


def _normalised(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    return weights / weights.sum()

"""A Bayesian posterior over the MONAS-style metric family: what ten judgments can pin down.

The paper frames the Preference Executor's learning problem as finding, among the metrics a user
may pursue, the one that is pursued (Sec. IV-A). This module makes that family explicit and puts a
posterior on it. A *hypothesis* is one utility function of an architecture's normalised metrics
(the same features as RankNet: accuracy, latency, params, FLOPs, oriented so that 1 is best):

* **selective**: one metric's utility (``h_accuracy``, ``h_latency``, ... of Eqs. 3-5);
* **weighted**: a weighted sum of the utilities, weights drawn from a flat Dirichlet (Eq. 6 and
  every other trade-off);
* **constraint**: one metric's utility where another metric is at least its ``q``-quantile over the
  space (rank utility >= ``q``; a cost at most its ``1 - q`` quantile), 0 elsewhere, for ``q`` on a
  grid (Eqs. 7-8 at the median and at every other threshold);
* **target** (off unless ``family_prior`` gives it mass): ``w * u_o - (1 - w) * |u_c - t|``, one
  metric's utility less the distance of another metric from a target level ``t`` (min-max utility,
  i.e. linear in the metric's own units): "the best accuracy at about 5 ms", a sweet spot, the one
  non-monotone structure of the family.

Each judgment has a Bradley-Terry likelihood with a lapse,
``P(a > b | h) = lapse / 2 + (1 - lapse) * sigmoid((u_h(a) - u_h(b)) / temperature)``, a tie
counting as half a win for each side (the RankNet target 0.5). The posterior over the hypotheses is
exact (a finite set), so fitting is a matrix product and takes about a millisecond.

:class:`MetricFamilyPosterior` is a reward model on its own (score = posterior-mean utility) and
gives :meth:`~MetricFamilyPosterior.member_scores` (utilities of hypotheses drawn from the
posterior) for disagreement-based active pair selection. Its main use is as RankNet's prior
(``RankNetConfig.prior = "metric-family"``, the default): RankNet scores
``c * posterior_mean(x) + residual(x)``, so with few judgments it ranks like the best-supported
metrics of the family, and with many it can learn a preference outside the family.

The family is an assumption, stated here so that it can be checked: it is the paper's metric set
generalised to every weight vector and threshold (and, with the target structures, a sweet spot).
A user outside it (a band, a threshold on two metrics at once, a non-linear trade-off) is still
learnable by RankNet's network, only more slowly.

The hypotheses depend on the config alone (the Dirichlet draws use ``seed``), never on the
judgments' order, so the same judgments and config give the same posterior.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from natsbench_gym.errors import MissingMetricError
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from reward_models.bradley_terry import preference_probability
from reward_models.errors import NotFittedError, PreferenceDataError
from reward_models.features import FeatureNormaliser, resolve_features
from reward_models.preferences import Comparison, PreferenceDataset

__all__ = ["MetricFamilyConfig", "MetricFamilyPosterior", "FAMILIES"]

#: Names of the hypothesis families, in the order of ``MetricFamilyConfig.family_prior``.
FAMILIES = ("selective", "weighted", "constraint", "target")
#: How the score averages the hypotheses (``MetricFamilyConfig.decision``).
DECISIONS = ("structure", "credible", "mean")


@dataclass(frozen=True)
class MetricFamilyConfig:
    """Settings of :class:`MetricFamilyPosterior`.

    Attributes:
        weighted_samples: Dirichlet weight vectors in the weighted family.
        dirichlet_alpha: concentration of the Dirichlet (1: flat over the simplex).
        thresholds: rank-utility levels ``q`` of the constraint family (a cost at most its
            ``1 - q`` quantile over the space; an accuracy at least its ``q`` quantile).
        family_prior: prior mass of the selective, weighted, constraint and target families
            (normalised; three numbers leave the target family out, as a fourth of 0 does: its
            hypotheses are then not built at all, so posteriors and model files are those of a
            family without it).
        target_levels: target levels ``t`` of the target family (min-max utility of the metric).
        target_weights: weights ``w`` of the objective in the target family.
        temperature: Bradley-Terry temperature, in utility units (utilities are in [0, 1]).
        lapse: probability of an answer unrelated to the utility (robustness to a careless click).
        posterior_samples: hypotheses drawn by :meth:`MetricFamilyPosterior.member_scores`.
        decision: which hypotheses the score averages (see :meth:`MetricFamilyPosterior.mean_utility`):
            ``"structure"`` (default) those of the most probable *structure* -- one selective
            metric, the weighted sums, or one (objective, constrained metric) pair of the
            constraints -- weighted by their posterior; ``"credible"`` the most probable hypotheses
            holding ``credible_mass`` of the posterior; ``"mean"`` all of them.
        credible_mass: the mass of the credible set for ``decision="credible"``.
        seed: seeds the Dirichlet draws and the posterior samples.
    """

    weighted_samples: int = 8000
    dirichlet_alpha: float = 1.0
    thresholds: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
    family_prior: tuple[float, ...] = (1.0, 1.0, 1.0, 0.0)
    target_levels: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
    target_weights: tuple[float, ...] = (0.25, 0.5, 0.75)
    temperature: float = 0.001
    lapse: float = 0.05
    posterior_samples: int = 32
    decision: str = "structure"
    credible_mass: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.weighted_samples, bool) or not isinstance(self.weighted_samples, int) or self.weighted_samples < 0:
            raise ValueError(f"weighted_samples must be an int >= 0, got {self.weighted_samples!r}")
        if isinstance(self.posterior_samples, bool) or not isinstance(self.posterior_samples, int) or self.posterior_samples < 1:
            raise ValueError(f"posterior_samples must be an int >= 1, got {self.posterior_samples!r}")
        if not (math.isfinite(self.dirichlet_alpha) and self.dirichlet_alpha > 0):
            raise ValueError(f"dirichlet_alpha must be > 0, got {self.dirichlet_alpha!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {self.decision!r}")
        if not 0 < self.credible_mass <= 1:
            raise ValueError(f"credible_mass must be in (0, 1], got {self.credible_mass!r}")
        if not 0 <= self.lapse < 1:
            raise ValueError(f"lapse must be in [0, 1), got {self.lapse!r}")
        object.__setattr__(self, "thresholds", tuple(float(q) for q in self.thresholds))
        if any(not 0 < q < 1 for q in self.thresholds):
            raise ValueError(f"thresholds must lie in (0, 1), got {self.thresholds!r}")
        prior = tuple(float(p) for p in self.family_prior)
        if len(prior) == len(FAMILIES) - 1:
            prior = (*prior, 0.0)
        if len(prior) != len(FAMILIES) or any(not (math.isfinite(p) and p >= 0) for p in prior) or sum(prior) <= 0:
            raise ValueError(
                f"family_prior must be 3 or 4 non-negative masses ({', '.join(FAMILIES)}) with a positive sum, got {self.family_prior!r}"
            )
        object.__setattr__(self, "family_prior", prior)
        for name in ("target_levels", "target_weights"):
            values = tuple(float(v) for v in getattr(self, name))
            if not values or any(not 0 < v < 1 for v in values):
                raise ValueError(f"{name} must be a non-empty sequence of numbers in (0, 1), got {getattr(self, name)!r}")
            object.__setattr__(self, name, values)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")


@dataclass(frozen=True, eq=False)
class _Hypotheses:
    """The finite hypothesis set over ``f`` features: linear rows, then constraint rows, then
    target rows (only when the target family has prior mass)."""

    weights: np.ndarray  # (h_lin, f): selective vertices, then Dirichlet draws
    objective: np.ndarray  # (h_con,) feature index of the constrained hypotheses' objective
    constrained: np.ndarray  # (h_con,) feature index of the constrained metric
    level: np.ndarray  # (h_con,) rank-utility threshold
    family: np.ndarray  # (h,) index into FAMILIES
    structure: np.ndarray  # (h,) 0..f-1 selective metric, f weighted, f+1+j the j-th pair's constraints, then targets
    log_prior: np.ndarray = field(repr=False)  # (h,)
    t_objective: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (h_tgt,) objective feature
    t_metric: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (h_tgt,) feature held near a level
    t_level: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (h_tgt,) target level (min-max utility)
    t_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (h_tgt,) the objective's weight

    @classmethod
    def build(cls, f: int, cfg: MetricFamilyConfig) -> _Hypotheses:
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, f, 0x4D46]))
        draws = rng.dirichlet(np.full(f, cfg.dirichlet_alpha), size=cfg.weighted_samples) if f > 1 else np.ones((0, 1))
        weights = np.concatenate([np.eye(f), draws], axis=0)
        pairs = [(o, c) for o in range(f) for c in range(f) if o != c]
        levels = np.asarray(cfg.thresholds, dtype=np.float64)
        objective = np.repeat(np.array([p[0] for p in pairs], dtype=np.int64), levels.size)
        constrained = np.repeat(np.array([p[1] for p in pairs], dtype=np.int64), levels.size)
        level = np.tile(levels, len(pairs))
        pair_id = np.repeat(np.arange(len(pairs), dtype=np.int64), levels.size)
        # the target family: per (objective, metric) pair, every level and weight
        if cfg.family_prior[3] > 0 and pairs:
            tl, tw = np.asarray(cfg.target_levels, dtype=np.float64), np.asarray(cfg.target_weights, dtype=np.float64)
            per = tl.size * tw.size
            t_objective = np.repeat(np.array([p[0] for p in pairs], dtype=np.int64), per)
            t_metric = np.repeat(np.array([p[1] for p in pairs], dtype=np.int64), per)
            t_level = np.tile(np.repeat(tl, tw.size), len(pairs))
            t_weight = np.tile(tw, len(pairs) * tl.size)
            t_pair = len(pairs) + np.repeat(np.arange(len(pairs), dtype=np.int64), per)
        else:
            t_objective = t_metric = t_pair = np.zeros(0, np.int64)
            t_level = t_weight = np.zeros(0)
        family = np.concatenate(
            [np.zeros(f, np.int64), np.ones(draws.shape[0], np.int64), np.full(objective.size, 2, np.int64), np.full(t_objective.size, 3, np.int64)]
        )
        counts = np.bincount(family, minlength=len(FAMILIES)).astype(np.float64)
        mass = np.asarray(cfg.family_prior, dtype=np.float64) * (counts > 0)
        mass = mass / mass.sum()
        with np.errstate(divide="ignore"):
            log_prior = np.log(mass[family]) - np.log(counts[family])
        structure = np.concatenate([np.arange(f, dtype=np.int64), np.full(draws.shape[0], f, np.int64), f + 1 + pair_id, f + 1 + t_pair])
        return cls(weights, objective, constrained, level, family, structure, log_prior, t_objective, t_metric, t_level, t_weight)

    def structure_names(self, names: Sequence[str]) -> list[str]:
        """A name per structure id: the selective metrics, ``"weighted"``, the constraint pairs, then the targets."""
        out = [f"selective: {n}" for n in names] + ["weighted"]
        seen: dict[int, str] = {}
        h_lin, h_con = self.weights.shape[0], self.objective.size
        for c in range(h_con):
            seen.setdefault(int(self.structure[h_lin + c]), f"constraint: {names[self.objective[c]]} where {names[self.constrained[c]]}")
        for t in range(self.t_objective.size):
            seen.setdefault(int(self.structure[h_lin + h_con + t]), f"target: {names[self.t_objective[t]]} with {names[self.t_metric[t]]} near a level")
        return out + [seen[i] for i in sorted(seen)]

    @property
    def size(self) -> int:
        return self.family.size

    def utilities(self, u: np.ndarray, r: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Utilities ``(len(rows), n)`` of min-max utilities ``u`` and rank utilities ``r`` (``(n, f)``)."""
        rows = np.arange(self.size) if rows is None else np.asarray(rows, dtype=np.int64)
        h_lin, h_con = self.weights.shape[0], self.objective.size
        out = np.empty((rows.size, u.shape[0]), dtype=np.float64)
        lin = rows < h_lin
        if lin.any():
            out[lin] = self.weights[rows[lin]] @ u.T
        con = (rows >= h_lin) & (rows < h_lin + h_con)
        if con.any():
            c = rows[con] - h_lin
            feasible = r[:, self.constrained[c]].T >= self.level[c][:, None]
            out[con] = np.where(feasible, u[:, self.objective[c]].T, 0.0)
        tgt = rows >= h_lin + h_con
        if tgt.any():
            t = rows[tgt] - h_lin - h_con
            w = self.t_weight[t][:, None]
            out[tgt] = w * u[:, self.t_objective[t]].T - (1.0 - w) * np.abs(u[:, self.t_metric[t]].T - self.t_level[t][:, None])
        return out

    def describe(self, row: int, names: Sequence[str]) -> str:
        h_lin, h_con = self.weights.shape[0], self.objective.size
        if row < len(names):
            return f"selective: {names[row]}"
        if row < h_lin:
            return "weighted: " + " + ".join(f"{w:.2f} {n}" for w, n in zip(self.weights[row], names, strict=True))
        if row < h_lin + h_con:
            c = row - h_lin
            return f"constraint: {names[self.objective[c]]} where {names[self.constrained[c]]} rank >= {self.level[c]:.2f}"
        t = row - h_lin - h_con
        w = self.t_weight[t]
        return f"target: {w:.2f} {names[self.t_objective[t]]} - {1 - w:.2f} |{names[self.t_metric[t]]} - {self.t_level[t]:.2f}|"


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    if not np.isfinite(m):
        return m
    return m + float(np.log(np.sum(np.exp(x - m))))


class MetricFamilyPosterior:
    """Posterior over the metric family (see the module docs); a reward model once fitted.

    Args:
        metrics: the features, in order (the context's accuracy metric, latency, params, FLOPs by
            default, as :class:`~reward_models.ranknet.RankNetRewardModel` resolves them).
        config: the family and likelihood settings; keyword arguments override its fields.

    The space-wide normalisation comes from a
    :class:`~reward_models.features.FeatureNormaliser` with ``representation="both"`` (min-max
    utilities for the objectives, rank utilities for the thresholds), passed to :meth:`fit_arrays`.
    """

    name = "metric-family-posterior"
    #: Reward-model protocol: a refit changes the scores, so consumers ask afresh, never precompute.
    precomputable = False

    def __init__(self, config: MetricFamilyConfig | None = None, *, population: Any = None, **overrides: Any) -> None:
        config = config or MetricFamilyConfig()
        if overrides:
            config = MetricFamilyConfig(**{**config.__dict__, **overrides})
        self.config = config
        self.population = population
        self.normaliser: Any = None
        self.log_posterior: np.ndarray | None = None
        #: With a population prior: the share of the posterior that comes from the population
        #: component (its prior weight before any judgment; Bayes' rule moves it), else ``None``.
        self.population_share: float | None = None
        #: With a population prior: log Bayes factor of the population component against the flat
        #: prior on the judgments (below ``-log 3``: the judgments disagree with earlier users).
        self.population_evidence: float | None = None
        #: With a population prior: the population's weight in the prior that was used, learned
        #: from the judgments (``population.weight``, or 0 when the judgments disagree with it).
        self.population_weight: float | None = None
        self._hyp: _Hypotheses | None = None

    @property
    def is_fitted(self) -> bool:
        return self.log_posterior is not None

    @classmethod
    def from_state(cls, config: MetricFamilyConfig, normaliser: Any, log_posterior: np.ndarray) -> MetricFamilyPosterior:
        """Rebuild a fitted posterior (the hypotheses follow from the config; used by model files)."""
        model = cls(config)
        model.normaliser = normaliser
        model._hyp = _Hypotheses.build(len(normaliser.metrics), config)
        log_posterior = np.asarray(log_posterior, dtype=np.float64)
        if log_posterior.shape != (model._hyp.size,):
            raise ValueError(f"log_posterior has shape {log_posterior.shape}; this config has {model._hyp.size} hypotheses")
        model.log_posterior = log_posterior
        return model

    @classmethod
    def prior(cls, context: ScoringContext, features: Sequence[str] | None = None, population: Any = None, **overrides: Any) -> MetricFamilyPosterior:
        """The posterior before any judgment (the family's prior, mixed with ``population``'s when
        given: a :class:`~reward_models.library.PopulationPrior`), usable as a model: its draws let a
        pair selector choose the first pairs by what the family could mean, not at random."""
        metrics = resolve_features(tuple(features) if features else None, context)
        normaliser = FeatureNormaliser.from_context(metrics, context, "both", 2048)
        empty = np.zeros((0, 2 * len(metrics)))
        return cls(population=population, **overrides).fit_features(empty, empty, np.zeros(0), normaliser)

    # --- fitting ---------------------------------------------------------------------------------
    def fit(self, comparisons: PreferenceDataset | Iterable[Comparison], context: ScoringContext, features: Sequence[str] | None = None) -> MetricFamilyPosterior:
        """Posterior given judgments; metrics come from ``context`` (features as RankNet's)."""
        cs = comparisons.comparisons if isinstance(comparisons, PreferenceDataset) else tuple(comparisons)
        if not cs:
            raise PreferenceDataError("the metric-family posterior needs at least one comparison to fit")
        metrics = resolve_features(tuple(features) if features else None, context)
        normaliser = FeatureNormaliser.from_context(metrics, context, "both", 2048)
        a = np.array([c.arch_a.index for c in cs], dtype=np.int64)
        b = np.array([c.arch_b.index for c in cs], dtype=np.int64)
        y = np.array([c.outcome.target for c in cs], dtype=np.float64)
        archs, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        x = normaliser.transform(context.query(archs, list(metrics)))
        return self.fit_features(x[inverse[: a.size]], x[inverse[a.size :]], y, normaliser)

    def fit_features(self, xa: np.ndarray, xb: np.ndarray, targets: np.ndarray, normaliser: Any) -> MetricFamilyPosterior:
        """Posterior from the normalised features (``representation="both"``) of each pair's two sides."""
        if getattr(normaliser, "representation", None) != "both":
            raise ValueError("the metric-family posterior needs features with representation='both' (utility and rank)")
        xa, xb = np.asarray(xa, dtype=np.float64), np.asarray(xb, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
        if np.isnan(xa).any() or np.isnan(xb).any():
            raise MissingMetricError("a judged architecture lacks one of the posterior's features")
        f = len(normaliser.metrics)
        self.normaliser = normaliser
        self._hyp = _Hypotheses.build(f, self.config)
        log_likelihood = self.log_likelihood(xa, xb, y)
        self.log_posterior = self._log_prior(log_likelihood) + log_likelihood
        return self

    def _log_prior(self, log_likelihood: np.ndarray) -> np.ndarray:
        """The family's prior, or (with a population prior) its mixture with the population's."""
        hyp, cfg = self._hyp, self.config
        self.population_share = self.population_evidence = self.population_weight = None
        if self.population is None:
            return hyp.log_prior
        key = (cfg.seed, cfg.weighted_samples, cfg.dirichlet_alpha, hyp.size)
        pop = self.population.population_distribution(hyp, [m.value for m in self.normaliser.metrics], cfg.thresholds, key=key)
        if pop is None:
            return hyp.log_prior
        with np.errstate(divide="ignore"):
            log_pop = np.log(pop)
        log_z_flat = _logsumexp(hyp.log_prior + log_likelihood)
        log_z_pop = _logsumexp(log_pop + log_likelihood)
        self.population_evidence = float(log_z_pop - log_z_flat)
        # The weight is learned from the judgments (empirical Bayes): the mixture's marginal
        # likelihood (1 - w) Z_flat + w Z_pop is linear in w, so its maximum over [0, weight] is
        # the population's full weight when the population explains the judgments at least as
        # well as the flat prior, and 0 otherwise -- a user unlike the library gets the cold posterior.
        w = float(self.population.weight) if self.population_evidence >= 0.0 else 0.0
        self.population_weight = w
        if w <= 0.0:
            self.population_share = 0.0
            return hyp.log_prior
        if w >= 1.0:
            self.population_share = 1.0
            return log_pop
        self.population_share = float(1.0 / (1.0 + np.exp(np.log1p(-w) - np.log(w) - self.population_evidence)))
        with np.errstate(divide="ignore"):
            return np.logaddexp(np.log1p(-w) + hyp.log_prior, np.log(w) + log_pop)

    def log_likelihood(self, xa: np.ndarray, xb: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Log-likelihood of each hypothesis for judgments ``y`` (1: a, 0: b, 0.5: tie), shape ``(h,)``."""
        hyp = self._require_hypotheses()
        if y.size == 0:
            return np.zeros(hyp.size)
        pa = np.clip(self._pair_probabilities(hyp, xa, xb), 1e-300, 1.0 - 1e-16)  # only reachable with lapse = 0
        return np.log(pa) @ y + np.log1p(-pa) @ (1.0 - y)

    def log_evidence(self, xa: np.ndarray, xb: np.ndarray, y: np.ndarray) -> float:
        """The family's log marginal likelihood of judgments ``y`` on the pairs' normalised features
        (``representation="both"``), under the family's own prior (no population): how well the
        family explains them, comparable across feature sets (e.g. one device's latency against
        another's) since the hypotheses and prior are the same. Needs no fit."""
        xa, xb = np.asarray(xa, dtype=np.float64), np.asarray(xb, dtype=np.float64)
        f = xa.shape[1] // 2
        if self._hyp is None or self._hyp.weights.shape[1] != f:
            self._hyp = _Hypotheses.build(f, self.config)
        return _logsumexp(self._hyp.log_prior + self.log_likelihood(xa, xb, np.asarray(y, dtype=np.float64)))

    def predictive_probability(self, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        """Posterior predictive ``P(a preferred to b)`` of each pair ``(n,)`` from the pairs'
        normalised features (``representation="both"``): each hypothesis' Bradley-Terry probability
        with the lapse, averaged under the whole posterior (not only the decision's structure)."""
        hyp = self._require_hypotheses()
        xa, xb = np.asarray(xa, dtype=np.float64), np.asarray(xb, dtype=np.float64)
        return self.posterior @ self._pair_probabilities(hyp, xa, xb)

    def _pair_probabilities(self, hyp: _Hypotheses, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        """``P(a preferred)`` of each pair under each hypothesis, ``(h, pairs)``: the one
        Bradley-Terry function of reward_models, mixed with the lapse."""
        f = xa.shape[1] // 2
        ua, ub = hyp.utilities(xa[:, :f], xa[:, f:]), hyp.utilities(xb[:, :f], xb[:, f:])
        eps = self.config.lapse
        return eps / 2 + (1.0 - eps) * preference_probability(ua, ub, self.config.temperature)

    def _require_hypotheses(self) -> _Hypotheses:
        if self._hyp is None:
            raise NotFittedError("this metric-family posterior is not fitted: call fit(comparisons, context)")
        return self._hyp

    # --- the posterior -------------------------------------------------------------------------------
    @property
    def posterior(self) -> np.ndarray:
        """Posterior probability of each hypothesis, ``(h,)``."""
        if self.log_posterior is None:
            raise NotFittedError("this metric-family posterior is not fitted: call fit(comparisons, context)")
        lp = self.log_posterior - self.log_posterior.max()
        p = np.exp(lp)
        return p / p.sum()

    def family_posterior(self) -> dict[str, float]:
        """Posterior mass of the selective, weighted and constraint families (and the target family
        when the config gives it prior mass)."""
        p = self.posterior
        built = [i for i, name in enumerate(FAMILIES) if i < 3 or (self._hyp.family == i).any()]
        return {FAMILIES[i]: float(p[self._hyp.family == i].sum()) for i in built}

    def top_hypotheses(self, k: int = 5) -> list[tuple[float, str]]:
        """The ``k`` most probable hypotheses, described in words."""
        p = self.posterior
        names = [m.value for m in self.normaliser.metrics]
        order = np.argsort(-p, kind="stable")[:k]
        return [(float(p[i]), self._hyp.describe(int(i), names)) for i in order]

    def _split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = len(self.normaliser.metrics)
        if x.ndim != 2 or x.shape[1] != 2 * f:
            raise ValueError(f"expected features of shape (n, {2 * f}), got {x.shape}")
        return x[:, :f], x[:, f:]

    def structure_posterior(self) -> dict[str, float]:
        """Posterior mass of each structure (a selective metric, the weighted sums, or one
        objective/constrained-metric pair of the constraints), most probable first."""
        hyp, p = self._require_hypotheses(), self.posterior
        mass = np.bincount(hyp.structure, weights=p, minlength=hyp.structure.max() + 1)
        names = hyp.structure_names([m.value for m in self.normaliser.metrics])
        return {names[i]: float(mass[i]) for i in np.argsort(-mass, kind="stable")}

    def explain(self, k: int = 3, min_mass: float = 0.01) -> list[tuple[float, str]]:
        """The ``k`` most probable structures in words, with their posterior mass.

        A constraint is given with its posterior-mean threshold in the metric's own units, e.g.
        ``(0.82, "best test accuracy with flops at most 110.5")``.
        """
        hyp, p = self._require_hypotheses(), self.posterior
        metrics = self.normaliser.metrics
        mass = np.bincount(hyp.structure, weights=p, minlength=hyp.structure.max() + 1)
        f, h_lin = len(metrics), hyp.weights.shape[0]
        out = []
        for sid in np.argsort(-mass, kind="stable")[:k]:
            if mass[sid] < min_mass:
                break
            if sid < f:
                text = f"{metrics[sid].label} only ({'higher' if metrics[sid].higher_is_better else 'lower'} is better)"
            elif sid == f:
                rows = np.flatnonzero(hyp.structure == f)
                w = p[rows] @ hyp.weights[rows] / p[rows].sum()
                text = "a trade-off: " + ", ".join(f"{m.label} {100 * x:.0f}%" for m, x in zip(metrics, w, strict=True))
            elif hyp.family[np.flatnonzero(hyp.structure == sid)[0]] == 3:
                rows = np.flatnonzero(hyp.structure == sid)
                t = rows - h_lin - hyp.objective.size
                o, j = metrics[hyp.t_objective[t[0]]], int(hyp.t_metric[t[0]])
                level = float(p[rows] @ hyp.t_level[t] / p[rows].sum())  # min-max utility of the target
                con = metrics[j]
                lo, hi = self.normaliser.minimum[j], self.normaliser.maximum[j]
                value = lo + level * (hi - lo) if con.higher_is_better else hi - level * (hi - lo)
                text = f"best {o.label} with {con.label} near {value:.4g}"
            else:
                rows = np.flatnonzero(hyp.structure == sid)
                c = rows - h_lin
                o, j = metrics[hyp.objective[c[0]]], int(hyp.constrained[c[0]])
                level = float(p[rows] @ hyp.level[c] / p[rows].sum())  # rank utility of the threshold
                con = metrics[j]
                quantile = level if con.higher_is_better else 1.0 - level
                value = float(np.interp(quantile, self.normaliser.rank_levels[j], self.normaliser.rank_values[j]))
                bound = "at least" if con.higher_is_better else "at most"
                text = f"best {o.label} with {con.label} {bound} {value:.4g}"
            out.append((float(mass[sid]), text))
        return out

    def decision_weights(self) -> np.ndarray:
        """The weights of the hypotheses in the score (``config.decision``), summing to 1."""
        decision = self.config.decision
        if decision == "mean":
            return self.posterior
        if decision == "credible":
            return self.credible_weights()
        hyp, p = self._require_hypotheses(), self.posterior
        mass = np.bincount(hyp.structure, weights=p)
        w = np.where(hyp.structure == int(np.argmax(mass)), p, 0.0)
        return w / w.sum()

    def credible_weights(self) -> np.ndarray:
        """Posterior restricted to its credible set (the most probable hypotheses holding
        ``credible_mass`` of the mass), renormalised."""
        p = self.posterior
        mass = self.config.credible_mass
        if mass >= 1:
            return p
        order = np.argsort(-p, kind="stable")
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), mass * (1 - 1e-12))) + 1]
        w = np.zeros_like(p)
        w[keep] = p[keep]
        return w / w.sum()

    def mean_utility(self, x: np.ndarray, min_weight: float = 1e-9) -> np.ndarray:
        """The score: mean utility ``(n,)`` of normalised features ``x`` (``(n, 2f)``) under
        :meth:`decision_weights`.

        By default the mean runs over the most probable structure only (Bayesian model selection,
        then averaging within the model) rather than over the whole posterior, because the top of
        a ranking is fragile: the best architectures by accuracy differ by thousandths of a
        utility, so a constraint hypothesis with 2 % of the mass that zeroes the slowest 5 % of the
        space would reorder them on its own although the accuracy metric holds 85 %. Active pair
        selection (:meth:`member_scores`) still sees the whole posterior, so it asks about what
        separates the structures.
        """
        hyp = self._require_hypotheses()
        u, r = self._split(np.asarray(x, dtype=np.float64))
        p = self.decision_weights()
        h_lin = hyp.weights.shape[0]
        out = u @ (p[:h_lin] @ hyp.weights)  # the linear part collapses to one weight vector
        rows = np.flatnonzero(p[h_lin:] > min_weight) + h_lin
        if rows.size:
            out = out + p[rows] @ hyp.utilities(u, r, rows)
        return out

    def sample_utilities(self, x: np.ndarray, samples: int | None = None) -> np.ndarray:
        """Utilities ``(samples, n)`` under hypotheses drawn from the posterior (seeded by the config)."""
        hyp = self._require_hypotheses()
        u, r = self._split(np.asarray(x, dtype=np.float64))
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, 0x53]))
        rows = rng.choice(hyp.size, size=samples or self.config.posterior_samples, p=self.posterior)
        return hyp.utilities(u, r, rows)

    # --- the reward-model interface ---------------------------------------------------------------------
    def required_metrics(self, context: ScoringContext | None = None) -> tuple[Metric, ...]:
        self._require_hypotheses()
        return self.normaliser.metrics

    def score_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        """Posterior-mean utility of ``n`` architectures (higher is better)."""
        self._require_hypotheses()
        return self.mean_utility(self.normaliser.transform(metrics))

    def member_scores(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        """Scores ``(posterior_samples, n)`` under posterior draws, for disagreement-based selection.

        Each row is a drawn hypothesis' utility divided by the temperature, so that
        ``sigmoid(s_a - s_b)`` is that hypothesis' preference probability (without the lapse).
        """
        self._require_hypotheses()
        return self.sample_utilities(self.normaliser.transform(metrics)) / self.config.temperature

    def loss_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        return -self.score_many(metrics, context)

    def __repr__(self) -> str:
        if not self.is_fitted:
            return "MetricFamilyPosterior(not fitted)"
        fam = ", ".join(f"{k} {v:.2f}" for k, v in self.family_posterior().items())
        return f"MetricFamilyPosterior({fam})"

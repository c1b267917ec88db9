"""BoTorch's preference Gaussian process as a reward model, and BoTorch's EUBO as a pair selector.

The peer of :class:`~reward_models.ranknet.RankNetRewardModel` (docs/personalization.md compares
them in the same interactive loop):

* :class:`PairwiseGPRewardModel` -- ``botorch.models.PairwiseGP`` (Chu & Ghahramani's preference GP,
  Laplace approximation, fitted with ``PairwiseLaplaceMarginalLogLikelihood``) on the same features
  as RankNet (the paper's four metrics as min-max utilities over the space). It scores by the
  posterior mean and gives posterior draws as ``member_scores``, so the project's own selectors work
  with it too.
* :class:`BoTorchEUBOSelector` -- the pair with the largest ``AnalyticExpectedUtilityOfBestOption``
  (EUBO; Lin et al., AISTATS 2022) under that GP, among the candidates' pairs.

BoTorch is an optional extra: ``pip install "natsbench-gym[botorch]"``; this module imports it only
when a model is fitted or a pair chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from reward_models.errors import NotFittedError, PreferenceDataError
from reward_models.features import FeatureNormaliser, resolve_features
from reward_models.preferences import Comparison, PreferenceDataset
from reward_models.selection import PairBatch, PairSelector, RandomPairSelector, pick_pairs

__all__ = ["PairwiseGPRewardModel", "BoTorchEUBOSelector"]

logger = logging.getLogger(__name__)


def _botorch():
    try:
        import botorch  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError('the PairwiseGP reward model needs BoTorch: pip install "natsbench-gym[botorch]"') from exc


class PairwiseGPRewardModel:
    """A reward model learned by BoTorch's ``PairwiseGP`` from pairwise judgments.

    Args:
        features: metric names as RankNet's (``None``: the paper's four the context has).
        samples: posterior draws returned by :meth:`member_scores`.
        seed: seeds the posterior draws (the fit itself is deterministic).

    Ties carry no information for ``PairwiseGP`` (its likelihood has no tie) and are left out.
    """

    name = "pairwise-gp"
    #: Reward-model protocol: a refit changes the scores.
    precomputable = False

    def __init__(self, features: Sequence[str] | None = None, samples: int = 64, seed: int = 0) -> None:
        self.features = None if features is None else tuple(features)
        self.samples = int(samples)
        self.seed = int(seed)
        self.normaliser: FeatureNormaliser | None = None
        self.gp: Any = None
        self.mode = "pairwise-gp"

    @property
    def is_fitted(self) -> bool:
        return self.normaliser is not None

    def fit(self, comparisons: PreferenceDataset | Iterable[Comparison], context: ScoringContext) -> PairwiseGPRewardModel:
        """Fit the GP's hyperparameters and Laplace posterior to the judgments."""
        _botorch()
        import torch
        from botorch.exceptions.errors import ModelFittingError
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import PairwiseGP, PairwiseLaplaceMarginalLogLikelihood

        cs = comparisons.comparisons if isinstance(comparisons, PreferenceDataset) else tuple(comparisons)
        if not cs:
            raise PreferenceDataError("the PairwiseGP needs at least one comparison to fit")
        metrics = resolve_features(self.features, context)
        self.normaliser = FeatureNormaliser.from_context(metrics, context, "utility", 2048)
        archs = np.unique([i for c in cs for i in (c.arch_a.index, c.arch_b.index)])
        pos = {int(a): i for i, a in enumerate(archs)}
        x = torch.from_numpy(self.normaliser.transform(context.query(archs, list(metrics))))
        decided = [c for c in cs if c.outcome.target != 0.5]
        self.gp = None
        if decided:
            winners = [(pos[c.arch_a.index], pos[c.arch_b.index]) if c.outcome.target > 0.5 else (pos[c.arch_b.index], pos[c.arch_a.index]) for c in decided]
            torch.manual_seed(self.seed)
            gp = PairwiseGP(x, torch.tensor(winners, dtype=torch.long))
            try:
                fit_gpytorch_mll(PairwiseLaplaceMarginalLogLikelihood(gp.likelihood, gp))
            except ModelFittingError as exc:
                # BoTorch gives up on the hyperparameters now and then (about 1 fit in 500 here): keep
                # the Laplace posterior at its default hyperparameters rather than lose the judgments
                logger.warning("PairwiseGP: hyperparameter fit failed (%s); using the default hyperparameters", exc)
            self.gp = gp
        return self

    def _inputs(self, metrics: Mapping[Metric, np.ndarray]):
        import torch

        if not self.is_fitted:
            raise NotFittedError("this PairwiseGP is not fitted: call fit(comparisons, context)")
        return torch.from_numpy(self.normaliser.transform(metrics))

    def required_metrics(self, context: ScoringContext | None = None) -> tuple[Metric, ...]:
        if not self.is_fitted:
            raise NotFittedError("this PairwiseGP is not fitted: call fit(comparisons, context)")
        return self.normaliser.metrics

    def score_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        """Posterior mean utility of ``n`` architectures (0 everywhere when every judgment was a tie)."""
        import torch

        x = self._inputs(metrics)
        if self.gp is None:
            return np.zeros(x.shape[0])
        with torch.no_grad():
            return self.gp.posterior(x).mean.reshape(-1).numpy().astype(np.float64)

    def member_scores(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        """``(samples, n)`` joint posterior draws of the utility (seeded)."""
        import torch

        x = self._inputs(metrics)
        if self.gp is None:
            return np.zeros((1, x.shape[0]))
        with torch.no_grad():
            torch.manual_seed(self.seed)
            draws = self.gp.posterior(x).rsample(torch.Size([self.samples]))
        return draws.reshape(self.samples, -1).numpy().astype(np.float64)

    def loss_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        return -self.score_many(metrics, context)

    def __repr__(self) -> str:
        return f"PairwiseGPRewardModel(fitted={self.is_fitted})"


class BoTorchEUBOSelector(PairSelector):
    """The pairs with the largest BoTorch ``AnalyticExpectedUtilityOfBestOption`` under a fitted
    :class:`PairwiseGPRewardModel`, each architecture at most once per batch while possible; random
    pairs (``fallback``) without such a model."""

    name = "botorch-eubo"

    def __init__(self, fallback: PairSelector | None = None) -> None:
        self.fallback = fallback or RandomPairSelector()

    def _select(self, population, n, rng, excluded, model, context):
        if not isinstance(model, PairwiseGPRewardModel) or model.gp is None or context is None:
            return self.fallback._select(population, n, rng, excluded, None, None)
        import torch
        from botorch.acquisition.preference import AnalyticExpectedUtilityOfBestOption

        x = model._inputs(context.query(population, list(model.normaliser.metrics)))
        ii, jj = np.triu_indices(len(population), k=1)
        keep = np.array([(min(a, b), max(a, b)) not in excluded for a, b in zip(population[ii].tolist(), population[jj].tolist(), strict=True)], dtype=bool)
        ii, jj = ii[keep], jj[keep]
        with torch.no_grad():
            value = AnalyticExpectedUtilityOfBestOption(pref_model=model.gp)(torch.stack([x[ii], x[jj]], dim=1)).numpy()
        ranking = np.lexsort((rng.random(len(value)), -value))
        return PairBatch(tuple(pick_pairs(ranking, population[ii], population[jj], n, rng)), self.name)

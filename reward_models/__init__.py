"""Reward models for personalised NAS: fixed metrics, pairwise preferences and RankNet.

The paper's framework as small swappable parts:

* :mod:`reward_models.fixed` -- builders of the paper's fixed metrics (Eqs. 3-8; the metrics and the
  reward-model protocol live in :mod:`natsbench_gym.rewards`), user-built ones and MONAS's reward;
* :mod:`reward_models.preferences` -- comparison records and their append-only JSON Lines store;
* :mod:`reward_models.selection` -- the *Evaluation Generator*: random (Alg. 2) and active pair selection;
* :mod:`reward_models.human_preference` -- the *Human Preference* component: the :class:`Judge`
  protocol and synthetic users (any metric, optional noise, :data:`EXTRA_USERS`) standing in for a person;
* :mod:`reward_models.ranknet` -- the *Preference Executor*: RankNet, a learned reward model, in
  parts (network, :class:`PreferenceLoss`, a swappable :class:`RankNetTrainer`, the prior step);
* :mod:`reward_models.features` -- which metrics a learned model reads and how they are normalised;
* :mod:`reward_models.posterior` -- a Bayesian posterior over the metric family (selective,
  weighted, constraint metrics), RankNet's default prior (numpy only);
* :mod:`reward_models.bradley_terry` -- ``P(a preferred) = sigmoid(s_a - s_b)``, in one function.

Importing this package does not import torch; :class:`RankNetRewardModel`, :class:`RankNetTrainer`,
:class:`PreferenceLoss` (and the rest of :mod:`reward_models.ranknet`) load it on first use.

Example:
    >>> import numpy as np  # doctest: +SKIP
    >>> from reward_models import RandomPairSelector, RankNetRewardModel, SyntheticUser
    >>> user = SyntheticUser("weighted", context)  # doctest: +SKIP
    >>> pairs = RandomPairSelector().select(population, 10, np.random.default_rng(0))  # doctest: +SKIP
    >>> model = RankNetRewardModel().fit(user.judge_many(pairs, np.random.default_rng(1)), context)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from natsbench_gym.rewards import make_fixed_metric
from reward_models.bradley_terry import preference_probability
from reward_models.devices import DeviceChoiceModel
from reward_models.errors import ModelFileError, NotFittedError, PairSelectionError, PreferenceDataError
from reward_models.fixed import (
    PAPER_METRICS,
    MONASReward,
    constraint,
    h_accuracy,
    h_accuracy_constraint,
    h_flop_constraint,
    h_flops,
    h_latency,
    h_params,
    h_weighted,
    loss_many,
    weighted_sum,
)
from reward_models.human_preference import (
    EXTRA_USERS,
    Judge,
    NoiseModel,
    SyntheticUser,
    UtilityUser,
    make_synthetic_preference,
)
from reward_models.posterior import MetricFamilyConfig, MetricFamilyPosterior
from reward_models.preferences import ArchRef, Comparison, LoadReport, Outcome, PreferenceDataset
from reward_models.selection import (
    ActivePairSelector,
    Confidence,
    EUBOPairSelector,
    PairBatch,
    PairSelector,
    RandomPairSelector,
    make_selector,
    recommendation_confidence,
)

if TYPE_CHECKING:
    from reward_models.ranknet import PreferenceLoss, RankNetConfig, RankNetRewardModel, RankNetTrainer

__all__ = [
    "preference_probability",
    "PAPER_METRICS",
    "make_fixed_metric",
    "h_accuracy",
    "h_latency",
    "h_params",
    "h_flops",
    "h_weighted",
    "h_flop_constraint",
    "h_accuracy_constraint",
    "weighted_sum",
    "constraint",
    "loss_many",
    "MONASReward",
    "Outcome",
    "ArchRef",
    "Comparison",
    "LoadReport",
    "PreferenceDataset",
    "PairBatch",
    "PairSelector",
    "RandomPairSelector",
    "ActivePairSelector",
    "EUBOPairSelector",
    "Confidence",
    "recommendation_confidence",
    "make_selector",
    "Judge",
    "NoiseModel",
    "SyntheticUser",
    "UtilityUser",
    "EXTRA_USERS",
    "make_synthetic_preference",
    "RankNetConfig",
    "RankNetRewardModel",
    "RankNetTrainer",
    "PreferenceLoss",
    "MetricFamilyConfig",
    "MetricFamilyPosterior",
    "DeviceChoiceModel",
    "PreferenceDataError",
    "PairSelectionError",
    "NotFittedError",
    "ModelFileError",
]

_LAZY = {"RankNetConfig", "RankNetRewardModel", "RankNetTrainer", "PreferenceLoss"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # importing torch costs seconds; pay it only when a RankNet is wanted
        from reward_models import ranknet

        return getattr(ranknet, name)
    raise AttributeError(f"module 'reward_models' has no attribute {name!r}")

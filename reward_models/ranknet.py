"""RankNet, the paper's *Preference Executor*: pairwise judgments in, a reward model out.

A small siamese network scores each architecture from a feature vector of its normalised metrics;
the probability that ``a`` is preferred to ``b`` is ``sigmoid(s_a - s_b)``
(:func:`~reward_models.bradley_terry.preference_probability`), fitted to the judgments with binary
cross-entropy (a tie is the target 0.5). The fitted model is a
:class:`natsbench_gym.rewards.RewardModel`: environments use it as their reward and agents as their
fitness through ``score_many(metrics, context)``, without knowing it is a RankNet.

## Design (what generalises from ten judgments)

With 1-10 comparisons almost any network fits the data; what it predicts elsewhere is decided by
its inductive bias. Ours rests on four documented assumptions, none of which knows which metric
the user pursues:

1. **Features are utilities.** Each metric (accuracy, latency, params, FLOPs by default -- the
   paper's metric set) enters oriented so that higher is better, in two normalisations: the paper's
   min-max scaling over the whole space, and the metric's rank (mid-rank quantile) over the whole
   space. Min-max keeps magnitudes (a weighted sum of utilities is linear in it); ranks spread the
   crowded top of skewed metrics (the best accuracies differ by hundredths in min-max terms), so a
   small weight on another metric does not reorder the top of the ranking.
2. **More is better (monotonicity).** By default (``monotone=True``) every weight from a feature
   and into the output is kept non-negative (``|w|`` reparametrisation) and the hidden units are
   increasing (``tanh``), so the score never decreases when one utility grows. Every metric of the
   paper satisfies this, constraints included (crossing a threshold in the right direction never
   hurts), and so does any user who wants "better" metrics. It removes most of the hypotheses ten
   judgments cannot rule out: a feature that is anti-correlated with the judgments gets weight 0
   instead of a negative one. Users with non-monotone wishes ("about 5 ms") need
   ``monotone=False``, or ``monotone="auto"`` (an option; measured in docs/personalization.md): monotone until the
   judgments contradict every monotone utility -- at least :data:`MIN_VIOLATIONS` judged pairs,
   and at least :data:`MIN_VIOLATION_SHARE` of the judged pairs in which one architecture is at
   least as good on every feature, prefer the dominated one -- then the network is trained without
   the constraint (and the monotone metric family is not accepted as the model).
3. **Linear first.** The network is a linear skip connection plus one small hidden layer, with
   weight decay: a weighted sum of utilities (MONAS's form) is the simplest explanation, and the
   hidden layer adds the thresholds that constraint metrics need as judgments accumulate.
4. **The metric family first** (``prior="metric-family"``, the default). Before the network, a
   Bayesian posterior over the MONAS-style metric family -- every selective metric, every weighted
   sum, every "maximise X where Y is within its q-quantile" constraint
   (:mod:`reward_models.posterior`) -- is fitted to the judgments (a millisecond). When its
   credible-set mean utility orders at least ``1 - prior_tolerance`` (90 %) of the decided judgments
   as they were judged, it *is* the model (mode ``"prior"``): the network is not trained, and
   :meth:`RankNetRewardModel.member_scores` returns hypotheses drawn from the posterior, so
   disagreement-based active selection asks about what separates the surviving hypotheses. When it
   does not (a preference outside the family, or a judge who contradicts themself more), the network
   is trained with that mean utility as one more monotone input (mode ``"prior+network"``).
   ``acceptance="likelihood"`` replaces the 90 % rule by a held-out one (:func:`cross_validate`):
   the prior alone is kept when it orders every judgment as judged, else when its cross-validated
   log-likelihood of the judgments is within one standard error of the network's (a careless judge inside the family
   keeps the prior; measured in docs/personalization.md and docs/table1.md).
   In the Table I setting the prior lifts the top-10 precision after 10 actively chosen comparisons to 0.94-1.00
   on every metric of the paper (docs/table1.md, which also shows its limits on preferences outside
   the family); ``prior=None`` is the plain RankNet of the paper.

## Parts

:meth:`RankNetRewardModel.fit` runs four parts, each usable and tested on its own (as imitation
splits preference model, loss and trainer): :meth:`JudgedPairs.build` checks the judgments and turns
them into features; :func:`fit_prior` fits the metric-family posterior and :meth:`PriorFit.explains`
is the acceptance rule; otherwise a :class:`RankNetModule` (the network) is trained by a
:class:`RankNetTrainer` on the :class:`PreferenceLoss` (Bradley-Terry cross-entropy through the one
:func:`~reward_models.bradley_terry.preference_probability`). The trainer is swappable:
``RankNetRewardModel(trainer=...)`` takes any object with ``train(module, inputs, a, b, targets,
seed) -> TrainingReport``.

Training (:class:`RankNetTrainer`) is full-batch Adam, with the loss's gradient written out in numpy
by default (``engine="numpy"``: the same steps as torch autograd to rounding, ~7x faster on these
small batches; ``engine="torch"`` runs autograd); it stops when the training loss stops improving, or -- from 250
judgments on, when a held-out fifth holds at least ``min_validation_pairs`` (50) pairs -- when the
loss on that held-out fifth does. Below that a held-out split costs more than it saves: in the
Table I setting, holding out 20 of 100 pairs lowered the constraint metrics' top-10 precision from
0.57 to 0.42 and helped no metric.
Initialisation, the validation split and bootstrap weights come from ``seed`` only, so the same
comparisons and seed give the same scores. ``ensemble=M`` trains ``M`` members at once (batched);
the score is their mean and :meth:`RankNetRewardModel.member_scores` gives each member's score, for
disagreement-based active pair selection.

Example:
    >>> from reward_models.ranknet import RankNetRewardModel  # doctest: +SKIP
    >>> model = RankNetRewardModel(seed=0).fit(dataset, context)  # doctest: +SKIP
    >>> rewards = model.score_many(context.query(None, model.required_metrics(context)), context)  # doctest: +SKIP
    >>> model.save("user.pt"); same = RankNetRewardModel.load("user.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from natsbench_gym.errors import MissingMetricError, UnknownNameError
from natsbench_gym.fileio import atomic_path
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from reward_models.bradley_terry import preference_probability
from reward_models.errors import ModelFileError, NotFittedError, PreferenceDataError
from reward_models.features import DEFAULT_FEATURES, REPRESENTATIONS, FeatureNormaliser, parse_feature, resolve_features
from reward_models.posterior import MetricFamilyConfig, MetricFamilyPosterior
from reward_models.preferences import Comparison, PreferenceDataset

__all__ = [
    "RankNetConfig",
    "RankNetModule",
    "PreferenceLoss",
    "RankNetTrainer",
    "TrainingReport",
    "JudgedPairs",
    "PriorFit",
    "fit_prior",
    "CrossValidation",
    "cross_validate",
    "ACCEPTANCE_RULES",
    "TRAINING_ENGINES",
    "FeatureNormaliser",
    "RankNetRewardModel",
    "DEFAULT_FEATURES",
]

logger = logging.getLogger(__name__)

_REPRESENTATIONS = REPRESENTATIONS
_PRIORS = ("metric-family",)
#: How RankNet decides that its metric-family prior alone is the model (``RankNetConfig.acceptance``).
ACCEPTANCE_RULES = ("agreement", "likelihood")
_FILE_FORMAT = "natsbench-gym/ranknet"
_FILE_VERSION = 2


@dataclass(frozen=True)
class RankNetConfig:
    """Hyperparameters of :class:`RankNetRewardModel` (the defaults are the ones of docs/table1.md).

    Attributes:
        features: metric names (``"accuracy"`` = the context's accuracy metric); ``None``: the
            paper's four (:data:`DEFAULT_FEATURES`) that the context has.
        representation: ``"both"`` (min-max utility and rank), ``"utility"`` or ``"rank"``.
        hidden: hidden units per member (0: a linear model).
        monotone: keep the score non-decreasing in every utility (see the module docs); ``"auto"``:
            only until the judgments demand a non-monotone utility (see the module docs).
        ensemble: number of members trained together.
        bootstrap: train each member on a Poisson(1) bootstrap of the pairs (more member diversity).
        weight_decay: L2 penalty (Adam's) of the linear skip weights.
        hidden_weight_decay: L2 penalty of the hidden layer (``None``: ``weight_decay``); larger
            values make the network stay closer to a weighted sum until the judgments need more.
        learning_rate: Adam step size (this and the fields down to ``min_validation_pairs``, and
            ``bootstrap``, configure the default :class:`RankNetTrainer`).
        max_epochs: full-batch steps at most.
        patience: epochs without improvement before stopping.
        tolerance: smallest loss decrease that counts as an improvement.
        validation_fraction: share of pairs held out for early stopping, when it is used.
        min_validation_pairs: hold out only when at least this many pairs would be held out.
        engine: how the default trainer computes gradients: ``"numpy"`` (closed form; default, ~10x
            faster on RankNet's small batches) or ``"torch"`` (autograd; :class:`RankNetTrainer`).
        rank_grid: at most this many points of each metric's rank curve are kept (and saved).
        prior: ``"metric-family"`` (default): a Bayesian posterior over the MONAS-style metric
            family (:mod:`reward_models.posterior`) is fitted first; when it explains the judgments
            the model scores with it and the network is not trained, otherwise its mean utility is
            an extra (monotone) input of the network (in the ``"prior"`` mode no network exists, so
            ``ensemble`` and the training settings do not apply; the members are posterior draws).
            ``None``: the plain RankNet.
        prior_tolerance: the family "explains" the judgments when its mean utility orders at
            least ``1 - prior_tolerance`` of the decided (non-tie) pairs the way they were judged
            (``acceptance="agreement"``).
        acceptance: when the prior alone is the model: ``"agreement"`` (default: the
            ``prior_tolerance`` rule above) or ``"likelihood"``: the prior is kept when it orders
            every decided judgment as judged, and otherwise (from 2 judgments; one is judged by the
            agreement rule) when its held-out log-likelihood of the
            judgments, cross-validated in ``cv_folds`` folds, is no more than one standard error
            below that of the network with the prior as input (:func:`cross_validate`,
            :attr:`CrossValidation.prefers_prior`); a careless judge inside the family keeps the
            prior, a preference the family cannot express gets the network.
        cv_folds: folds of that cross-validation (at most one per judgment).
        prior_use: how the network uses the prior when it is trained: ``"input"`` (default: the
            posterior's mean utility is one more monotone input) or ``"residual"`` (the score is
            ``c * prior + network``, with ``c`` the prior's own Bradley-Terry scale fitted on the
            judgments, so the network, pulled to zero by its weight decay, learns only what the
            prior gets wrong: regularised toward the prior).
        target_prior: prior mass of the metric family's *target* structures (one metric less the
            distance of another from a level: a sweet spot; :mod:`reward_models.posterior`), against
            1 for each of the selective, weighted and constraint families; 0 (default): the family
            has no target structures, as in the paper.
        seed: seeds initialisation, validation split and bootstrap.
    """

    features: tuple[str, ...] | None = None
    representation: str = "both"
    hidden: int = 16
    monotone: bool | str = True
    ensemble: int = 1
    bootstrap: bool = False
    weight_decay: float = 1e-3
    hidden_weight_decay: float | None = None
    learning_rate: float = 0.02
    max_epochs: int = 1000
    patience: int = 50
    tolerance: float = 1e-4
    validation_fraction: float = 0.2
    min_validation_pairs: int = 50
    engine: str = "numpy"
    rank_grid: int = 2048
    prior: str | None = "metric-family"
    prior_tolerance: float = 0.1
    acceptance: str = "agreement"
    cv_folds: int = 5
    prior_use: str = "input"
    target_prior: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.features is not None:
            if isinstance(self.features, str) or not self.features:
                raise ValueError(f"features must be a non-empty sequence of metric names, got {self.features!r}")
            object.__setattr__(self, "features", tuple(str(f) for f in self.features))
            for f in self.features:
                parse_feature(f)
        if self.representation not in _REPRESENTATIONS:
            raise UnknownNameError("feature representation", self.representation, _REPRESENTATIONS)
        for name, low in (("hidden", 0), ("ensemble", 1), ("rank_grid", 2), ("cv_folds", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if self.monotone != "auto" and not isinstance(self.monotone, (bool, np.bool_)):
            raise ValueError(f"monotone must be True, False or 'auto', got {self.monotone!r}")
        if self.hidden_weight_decay is None:
            object.__setattr__(self, "hidden_weight_decay", self.weight_decay)
        _check_training_settings(self)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if self.prior is not None and self.prior not in _PRIORS:
            raise UnknownNameError("RankNet prior", self.prior, (*_PRIORS, "None"))
        if self.prior_use not in ("input", "residual"):
            raise UnknownNameError("RankNet prior_use", self.prior_use, ("input", "residual"))
        if self.acceptance not in ACCEPTANCE_RULES:
            raise UnknownNameError("RankNet acceptance rule", self.acceptance, ACCEPTANCE_RULES)
        if not 0 <= self.prior_tolerance < 1:
            raise ValueError(f"prior_tolerance must be in [0, 1), got {self.prior_tolerance!r}")
        if isinstance(self.target_prior, bool) or not isinstance(self.target_prior, (int, float)) or not (0 <= self.target_prior < math.inf):
            raise ValueError(f"target_prior must be a number >= 0 (0: no target structures), got {self.target_prior!r}")


#: How :class:`RankNetTrainer` computes gradients: closed-form numpy (default) or torch autograd.
TRAINING_ENGINES = ("numpy", "torch")


# --- the network ----------------------------------------------------------------------------------
class RankNetModule(nn.Module):
    """The RankNet base network for ``members`` independent members, evaluated in one batch.

    ``score(x) = v . tanh(W x + b) + u . x`` per member, with ``W``, ``v``, ``u`` used as ``|.|`` when
    ``monotone``. Siamese use: the same network scores both architectures of a pair.

    Args:
        inputs: feature dimension.
        hidden: hidden units (0: linear).
        members: ensemble size.
        monotone: non-negative weights (score non-decreasing in every input).
        generator: seeds the initialisation.
    """

    def __init__(self, inputs: int, hidden: int, members: int = 1, monotone: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.inputs, self.hidden, self.members, self.monotone = inputs, hidden, members, monotone
        g = generator

        def randn(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=g, dtype=torch.float64)

        self.skip = nn.Parameter(randn(members, inputs) / math.sqrt(inputs))
        if hidden:
            self.w_in = nn.Parameter(randn(members, inputs, hidden) / math.sqrt(inputs))
            self.b_in = nn.Parameter(0.5 * randn(members, 1, hidden))
            self.w_out = nn.Parameter(randn(members, hidden) / math.sqrt(hidden))

    def _w(self, w: torch.Tensor) -> torch.Tensor:
        return w.abs() if self.monotone else w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(members, n)`` of inputs ``(n, inputs)``, or of per-member inputs ``(members, n, inputs)``."""
        own = "m" if x.dim() == 3 else ""
        out = torch.einsum(f"{own}nd,md->mn", x, self._w(self.skip))
        if self.hidden:
            h = torch.tanh(torch.einsum(f"{own}nd,mdh->mnh", x, self._w(self.w_in)) + self.b_in)
            out = out + torch.einsum("mnh,mh->mn", h, self._w(self.w_out))
        return out

    def parameter_groups(self, weight_decay: float, hidden_weight_decay: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups: the linear skip weights, and the hidden layer (if any), each
        with its own L2 penalty."""
        groups = [{"params": [self.skip], "weight_decay": weight_decay}]
        hidden = [p for name, p in self.named_parameters() if name != "skip"]
        if hidden:
            groups.append({"params": hidden, "weight_decay": hidden_weight_decay})
        return groups


# --- the loss ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreferenceLoss:
    """Bradley-Terry cross-entropy of judged pairs, the loss RankNet is trained with.

    ``P(a preferred) = preference_probability(s_a, s_b)`` (the one function of
    :mod:`reward_models.bradley_terry`), compared with the target (1, 0, or 0.5 for a tie) by binary
    cross-entropy, optionally weighted per member and pair (bootstrap weights), averaged over the
    pairs and summed over the members (they are independent, so each member's gradient is its own).
    """

    def __call__(
        self, scores: torch.Tensor, a: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The loss of member scores ``(members, n)`` on pairs ``(a[i], b[i])`` (positions into the
        scores) with targets ``(members, pairs)`` (or ``(pairs,)``, broadcast)."""
        return self.per_member(scores, a, b, targets, weights).sum()

    def per_member(
        self, scores: torch.Tensor, a: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Each member's loss ``(members,)`` (their sum is the loss)."""
        p = preference_probability(scores[:, a], scores[:, b])
        loss = nn.functional.binary_cross_entropy(p, targets.expand_as(p), reduction="none")
        if weights is not None:
            loss = loss * weights
        return loss.mean(dim=1)


# --- the trainer ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingReport:
    """How a :class:`RankNetTrainer` run went.

    Attributes:
        epochs: full-batch steps taken.
        best_epoch: the step whose weights were kept (the lowest monitored loss).
        best_loss: that loss, per member.
        monitored: ``"validation"`` (a held-out share of the pairs) or ``"training"``.
        validation_pairs: pairs held out (0 when the training loss is monitored).
        history: the monitored loss after every step.
    """

    epochs: int
    best_epoch: int
    best_loss: float
    monitored: str
    validation_pairs: int
    history: tuple[float, ...] = ()


@dataclass(frozen=True)
class RankNetTrainer:
    """Full-batch Adam with early stopping: RankNet's default trainer.

    A trainer is anything with ``train(module, inputs, a, b, targets, seed) -> TrainingReport``;
    pass another one as ``RankNetRewardModel(trainer=...)``. The default is built from the model's
    :class:`RankNetConfig` (:meth:`from_config`), so the config's training fields only apply to it.

    Every step uses all training pairs. Two engines run the same algorithm (the same
    initialisation, split, bootstrap weights, Adam update and stopping rule): ``"numpy"`` (default)
    computes the loss's gradient in closed form with numpy, ``"torch"`` by autograd. They agree to
    rounding on every step (the tests check a step against autograd), and over hundreds of steps the
    rounding makes the fitted weights differ as two runs of one algorithm on two machines would.
    The numpy engine exists for speed: RankNet's tensors are tiny (tens of pairs, five members), so
    autograd's per-operation cost dominates, and a step takes 0.1-0.4 ms instead of 1-2 ms on the 2-core
    machine (``benchmarks/bench_ranknet.py``), which keeps an interactive round's refit
    under a second. A custom ``loss`` needs ``engine="torch"``.

    It stops when the monitored loss has not improved by more
    than ``tolerance`` for ``patience`` steps, and keeps the weights of the best step. (The training
    loss of a step is the one its gradient came from, i.e. of the weights before the step's update;
    the weights kept are those after it. The held-out loss is measured after the update.) The loss on a
    held-out ``validation_fraction`` of the pairs is monitored once that holds at least
    ``min_validation_pairs`` pairs, the training loss before.

    Attributes:
        learning_rate: Adam step size.
        weight_decay: L2 penalty of the linear skip weights.
        hidden_weight_decay: L2 penalty of the hidden layer (``None``: ``weight_decay``).
        max_epochs: steps at most.
        patience: steps without improvement before stopping.
        tolerance: smallest loss decrease that counts as an improvement.
        validation_fraction: share of pairs held out, when that is done.
        min_validation_pairs: hold out only when at least this many pairs would be held out.
        bootstrap: with several members, weight each member's pairs by a Poisson(1) bootstrap.
        engine: ``"numpy"`` (closed-form gradients; default) or ``"torch"`` (autograd).
        loss: the loss (default :class:`PreferenceLoss`; another one needs ``engine="torch"``).
    """

    learning_rate: float = 0.02
    weight_decay: float = 1e-3
    hidden_weight_decay: float | None = None
    max_epochs: int = 1000
    patience: int = 50
    tolerance: float = 1e-4
    validation_fraction: float = 0.2
    min_validation_pairs: int = 50
    bootstrap: bool = False
    engine: str = "numpy"
    loss: PreferenceLoss = field(default_factory=PreferenceLoss)

    def __post_init__(self) -> None:
        if self.hidden_weight_decay is None:
            object.__setattr__(self, "hidden_weight_decay", self.weight_decay)
        _check_training_settings(self)
        if self.engine == "numpy" and type(self.loss) is not PreferenceLoss:
            raise ValueError(
                f"the numpy engine computes PreferenceLoss's gradient in closed form; a custom loss "
                f"({type(self.loss).__name__}) needs RankNetTrainer(engine='torch', loss=...)"
            )

    @classmethod
    def from_config(cls, config: RankNetConfig) -> RankNetTrainer:
        """The trainer with the training fields of ``config``."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls) if f.name != "loss"})

    def split(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(training, validation)`` positions of ``n`` pairs (validation empty when too few)."""
        n_val = int(round(self.validation_fraction * n))
        use_val = n_val >= self.min_validation_pairs and n - n_val >= 1
        perm = rng.permutation(n)
        return (perm[n_val:], perm[:n_val]) if use_val else (perm, perm[:0])

    def train(
        self, module: RankNetModule, inputs: np.ndarray, a: np.ndarray, b: np.ndarray, targets: np.ndarray, seed: int,
        offset: np.ndarray | None = None, weights: np.ndarray | None = None, per_member: bool = False,
    ) -> TrainingReport:
        """Train ``module`` in place on pairs ``(a[i], b[i])`` of rows of ``inputs`` with targets
        ``P(a preferred)``; leave it in eval mode with the best step's weights.

        The validation split and the bootstrap weights are drawn from ``seed`` alone. ``offset``
        (one value per row of ``inputs``, or per member and row) is added to the module's scores
        (RankNet's residual use of its prior). ``inputs`` may be per member, ``(members, rows,
        inputs)``. ``weights`` ``(members, pairs)`` replaces the bootstrap weights (0 leaves a pair
        out of a member's loss: RankNet's cross-validation trains one member per fold this way).
        ``per_member``: each member stops on its own monitored loss and keeps its own best step
        (members are independent: Adam is elementwise and the loss a sum), so that a member's
        weights depend on its own pairs only; by default the members' summed loss decides for all.
        The report then gives the last member's stop and the members' mean best loss.
        """
        rng = np.random.default_rng(seed)
        members = module.members
        train, val = self.split(a.size, rng)
        use_val = val.size > 0
        if weights is not None:
            weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), (members, a.size))[:, train]
        elif self.bootstrap and members > 1:
            weights = rng.poisson(1.0, size=(members, train.size)).astype(np.float64)
        else:
            weights = np.ones((members, train.size))
        if self.engine == "numpy":
            return _NumpyTraining(self, module, inputs, offset, weights).run(a, b, targets, train, val, per_member)
        xt = torch.from_numpy(inputs)
        shift = torch.zeros(()) if offset is None else torch.from_numpy(np.asarray(offset, dtype=np.float64))
        ta, tb = torch.from_numpy(a[train]), torch.from_numpy(b[train])
        ty = torch.from_numpy(targets[train]).expand(members, -1)
        tw = torch.from_numpy(weights)
        va, vb, vy = torch.from_numpy(a[val]), torch.from_numpy(b[val]), torch.from_numpy(targets[val]).expand(members, -1)
        opt = torch.optim.Adam(module.parameter_groups(self.weight_decay, self.hidden_weight_decay), lr=self.learning_rate, foreach=True)

        if per_member:
            return self._train_per_member(module, xt, shift, opt, ta, tb, ty, tw, va, vb, vy, use_val, val.size)
        stop, best_state, epoch = _EarlyStopping(self.tolerance, self.patience), None, 0
        with _one_thread():
            for epoch in range(1, self.max_epochs + 1):
                opt.zero_grad()
                loss = self.loss(module(xt) + shift, ta, tb, ty, tw)
                loss.backward()
                opt.step()
                if use_val:
                    with torch.no_grad():
                        monitored = float(self.loss(module(xt) + shift, va, vb, vy, None)) / members
                else:
                    monitored = float(loss.detach()) / members
                if stop.step(epoch, monitored):
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                elif stop.done:
                    break
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        return stop.report(epoch, use_val, val.size)

    def _train_per_member(self, module, xt, shift, opt, ta, tb, ty, tw, va, vb, vy, use_val, n_val) -> TrainingReport:
        stop = _EarlyStopping(self.tolerance, self.patience, module.members)
        best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        epoch = 0
        with _one_thread():
            for epoch in range(1, self.max_epochs + 1):
                opt.zero_grad()
                losses = self.loss.per_member(module(xt) + shift, ta, tb, ty, tw)
                losses.sum().backward()
                opt.step()
                if use_val:
                    with torch.no_grad():
                        monitored = self.loss.per_member(module(xt) + shift, va, vb, vy, None)
                else:
                    monitored = losses.detach()
                improved = stop.step(epoch, monitored.numpy())
                if improved.any():
                    _member_slices(module.state_dict(), best_state, torch.from_numpy(improved))
                if stop.done:
                    break
        module.load_state_dict(best_state)
        module.eval()
        return stop.report(epoch, use_val, n_val)


class _EarlyStopping:
    """The trainer's stopping rule, shared by both engines: the monitored loss must improve by more
    than ``tolerance`` within ``patience`` steps; for the members' summed loss (``members=None``) or
    for each member on its own (then a stopped member's later improvements do not count)."""

    def __init__(self, tolerance: float, patience: int, members: int | None = None) -> None:
        self.tolerance, self.patience = tolerance, patience
        self.per_member = members is not None
        self.best_loss: Any = np.full(members, math.inf) if self.per_member else math.inf
        self.best_epoch: Any = np.zeros(members, dtype=np.int64) if self.per_member else 0
        self.stopped: Any = np.zeros(members, dtype=bool) if self.per_member else False
        self.history: list[float] = []

    def step(self, epoch: int, monitored: Any) -> Any:
        """Record step ``epoch``'s monitored loss (a number, or one per member); return whether it
        improved (per member: a boolean mask), i.e. whose weights to keep."""
        if not self.per_member:
            value = float(monitored)
            self.history.append(value)
            if value < self.best_loss - self.tolerance:
                self.best_loss, self.best_epoch = value, epoch
                return True
            self.stopped = epoch - self.best_epoch >= self.patience
            return False
        self.history.append(float(monitored.mean()))
        improved = (monitored < self.best_loss - self.tolerance) & ~self.stopped
        self.best_loss = np.where(improved, monitored, self.best_loss)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        self.stopped |= (epoch - self.best_epoch) >= self.patience
        return improved

    @property
    def done(self) -> bool:
        return bool(np.all(self.stopped))

    def report(self, epoch: int, use_val: bool, validation_pairs: int) -> TrainingReport:
        """The run's :class:`TrainingReport` (per member: the last member's best step, the members' mean best loss)."""
        best_epoch = int(np.max(self.best_epoch))
        best_loss = float(np.mean(self.best_loss))
        return TrainingReport(int(epoch), best_epoch, best_loss, "validation" if use_val else "training", int(validation_pairs), tuple(self.history))


class _NumpyTraining:
    """:meth:`RankNetTrainer.train` with the gradient of :class:`PreferenceLoss` through
    :class:`RankNetModule` written out (``engine="numpy"``): the same steps as autograd and
    ``torch.optim.Adam`` (L2 added to the gradient, bias-corrected moments), without their
    per-operation cost. The module's parameters are read at the start and written back at the end."""

    BETAS, EPS = (0.9, 0.999), 1e-8

    def __init__(self, trainer: RankNetTrainer, module: RankNetModule, inputs: np.ndarray, offset: Any, weights: np.ndarray) -> None:
        self.trainer, self.module = trainer, module
        self.x = np.asarray(inputs, dtype=np.float64)
        self.shift = 0.0 if offset is None else np.asarray(offset, dtype=np.float64)
        self.weights = np.ascontiguousarray(weights, dtype=np.float64)
        self.params = {name: p.detach().numpy().copy() for name, p in module.named_parameters()}
        self.decay = {name: trainer.weight_decay if name == "skip" else trainer.hidden_weight_decay for name in self.params}

    def _eff(self, p: np.ndarray) -> np.ndarray:
        return np.abs(p) if self.module.monotone else p

    def scores(self, params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, Any]:
        """Member scores ``(members, rows)`` (with the offset) and what the gradient needs."""
        x, own = self.x, self.x.ndim == 3
        skip = self._eff(params["skip"])
        s = np.einsum("mnd,md->mn", x, skip) if own else skip @ x.T
        hidden = None
        if self.module.hidden:
            w_in, w_out = self._eff(params["w_in"]), self._eff(params["w_out"])
            h = np.tanh(np.matmul(x if own else x[None], w_in) + params["b_in"])
            s = s + np.einsum("mnh,mh->mn", h, w_out)
            hidden = (w_out, h)
        return s + self.shift, hidden

    @staticmethod
    def losses(s: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Each member's mean (weighted) cross-entropy, and ``d loss / d (s_a - s_b)`` per pair
        (before the mean), as torch's ``binary_cross_entropy`` of the sigmoid computes them (log
        clamped at -100; its gradient's denominator at 1e-12)."""
        p = preference_probability(s[:, a], s[:, b])
        with np.errstate(divide="ignore"):
            loss = -(y * np.maximum(np.log(p), -100.0) + (1.0 - y) * np.maximum(np.log1p(-p), -100.0))
        q = p * (1.0 - p)
        grad = (p - y) * (q / np.maximum(q, 1e-12))
        if w is not None:
            loss, grad = loss * w, grad * w
        return loss.mean(axis=1), grad

    def gradient(self, params: Mapping[str, np.ndarray], hidden: Any, d_pair: np.ndarray, incidence: np.ndarray) -> dict[str, np.ndarray]:
        """The gradient of the members' summed loss with respect to the raw parameters
        (``incidence``: ``(pairs, rows)``, +1 at each pair's first row and -1 at its second)."""
        x, own = self.x, self.x.ndim == 3
        ds = (d_pair / d_pair.shape[1]) @ incidence  # d loss / d score, (members, rows)
        grads = {"skip": np.einsum("mn,mnd->md", ds, x) if own else ds @ x}
        if hidden is not None:
            w_out, h = hidden
            grads["w_out"] = np.einsum("mn,mnh->mh", ds, h)
            dz = ds[:, :, None] * w_out[:, None, :] * (1.0 - h * h)
            grads["b_in"] = dz.sum(axis=1, keepdims=True)
            grads["w_in"] = np.matmul(np.swapaxes(x, -1, -2) if own else x.T[None], dz)
        if self.module.monotone:
            for name, g in grads.items():
                if name != "b_in":
                    g *= np.sign(params[name])
        return grads

    def run(self, a: np.ndarray, b: np.ndarray, targets: np.ndarray, train: np.ndarray, val: np.ndarray, per_member: bool) -> TrainingReport:
        tr, params = self.trainer, self.params
        members = self.module.members
        ta, tb, ty = a[train], b[train], np.broadcast_to(targets[train], (members, train.size))
        va, vb, vy = a[val], b[val], np.broadcast_to(targets[val], (members, val.size))
        use_val = val.size > 0
        incidence = np.zeros((train.size, self.x.shape[-2]))
        np.add.at(incidence, (np.arange(train.size), ta), 1.0)
        np.add.at(incidence, (np.arange(train.size), tb), -1.0)
        (b1, b2), lr = self.BETAS, tr.learning_rate
        m1 = {k: np.zeros_like(v) for k, v in params.items()}
        m2 = {k: np.zeros_like(v) for k, v in params.items()}
        best = {k: v.copy() for k, v in params.items()}
        stop = _EarlyStopping(tr.tolerance, tr.patience, members if per_member else None)
        epoch = 0
        for epoch in range(1, tr.max_epochs + 1):
            s, hidden = self.scores(params)
            losses, d_pair = self.losses(s, ta, tb, ty, self.weights)
            grads = self.gradient(params, hidden, d_pair, incidence)
            c1, c2 = 1.0 - b1**epoch, math.sqrt(1.0 - b2**epoch)
            for k, g in grads.items():
                if self.decay[k]:
                    g = g + self.decay[k] * params[k]
                m1[k] += (1.0 - b1) * (g - m1[k])
                m2[k] = b2 * m2[k] + (1.0 - b2) * g * g
                params[k] = params[k] - (lr / c1) * m1[k] / (np.sqrt(m2[k]) / c2 + self.EPS)
            monitored = self.losses(self.scores(params)[0], va, vb, vy, None)[0] if use_val else losses
            improved = stop.step(epoch, monitored if per_member else float(monitored.sum()) / members)
            if per_member:
                for k in params:
                    best[k][improved] = params[k][improved]
            elif improved:
                best = {k: v.copy() for k, v in params.items()}
            if stop.done:
                break
        with torch.no_grad():
            for name, p in self.module.named_parameters():
                p.copy_(torch.from_numpy(best[name]))
        self.module.eval()
        return stop.report(epoch, use_val, val.size)


def _member_slices(state: Mapping[str, torch.Tensor], into: dict[str, torch.Tensor], members: torch.Tensor) -> None:
    for name, value in state.items():
        into[name][members] = value[members].detach()


def _bradley_terry_scale(difference: np.ndarray, targets: np.ndarray, l2: float = 1e-3) -> float:
    """The ``c >= 0`` that best explains ``targets`` as ``sigmoid(c * difference)`` (1-D logistic
    regression through the origin by Newton's method, a small L2 penalty keeping it finite when the
    differences separate the judgments)."""
    c = 1.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-c * difference))
        grad = np.sum((p - targets) * difference) + l2 * c
        hess = np.sum(p * (1.0 - p) * difference**2) + l2
        step = grad / hess
        c = max(c - step, 0.0)
        if abs(step) < 1e-8:
            break
    return float(c)


@contextmanager
def _one_thread():
    """Run torch on one thread: RankNet's tensors are tiny (tens to hundreds of pairs), and on a busy
    machine torch's intra-op threads cost far more than they give (a 20-fold slower fit measured on
    the 2-core machine under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_training_settings(settings: Any) -> None:
    """Validate the training fields ``settings`` (a :class:`RankNetConfig` or :class:`RankNetTrainer`) has."""
    for name, low in (("max_epochs", 1), ("patience", 1), ("min_validation_pairs", 1)):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    for name in ("weight_decay", "hidden_weight_decay", "tolerance"):
        if not (math.isfinite(getattr(settings, name)) and getattr(settings, name) >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {getattr(settings, name)!r}")
    if not (math.isfinite(settings.learning_rate) and settings.learning_rate > 0):
        raise ValueError(f"learning_rate must be > 0, got {settings.learning_rate!r}")
    if not 0 < settings.validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {settings.validation_fraction!r}")
    if settings.engine not in TRAINING_ENGINES:
        raise UnknownNameError("RankNet training engine", settings.engine, TRAINING_ENGINES)


# --- the judgments as features, and the prior ------------------------------------------------------
@dataclass(frozen=True)
class JudgedPairs:
    """Judgments in feature space: what the prior and the trainer fit.

    Attributes:
        archs: the distinct judged architectures (official indices, sorted).
        values: their raw metric values ``{Metric: array}`` (the features' metrics).
        normaliser: turns metric values into the model's features.
        features: ``normaliser``'s features of ``archs``, ``(len(archs), num_inputs)``.
        a, b: positions in ``archs`` of each pair's first and second architecture.
        targets: ``P(a preferred)`` of each pair (1, 0, 0.5 for a tie, or any in [0, 1]).
    """

    archs: np.ndarray
    values: Mapping[Metric, np.ndarray]
    normaliser: FeatureNormaliser
    features: np.ndarray
    a: np.ndarray
    b: np.ndarray
    targets: np.ndarray

    @classmethod
    def build(
        cls, a: np.ndarray, b: np.ndarray, targets: np.ndarray, context: ScoringContext, config: RankNetConfig
    ) -> JudgedPairs:
        """Check index arrays and targets and compute the features ``config`` asks for from ``context``.

        Raises:
            PreferenceDataError: arrays of different lengths, empty, or targets outside [0, 1].
            MissingMetricError: a feature is missing (from the context, or for a judged architecture).
        """
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        y = np.asarray(targets, dtype=np.float64)
        if not (a.shape == b.shape == y.shape and a.ndim == 1 and a.size):
            raise PreferenceDataError(f"expected equal-length 1-D index and target arrays, got shapes {a.shape}, {b.shape}, {y.shape}")
        if np.any((y < 0) | (y > 1)) or np.any(np.isnan(y)):
            raise PreferenceDataError("targets must be probabilities in [0, 1] (1: a preferred, 0: b, 0.5: tie)")
        metrics = resolve_features(config.features, context)
        normaliser = FeatureNormaliser.from_context(metrics, context, config.representation, config.rank_grid)
        archs, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        values = context.query(archs, list(metrics))
        x = normaliser.transform(values)
        if np.isnan(x).any():
            bad = int(archs[np.isnan(x).any(axis=1)][0])
            raise MissingMetricError(f"architecture {bad} lacks a value of one of the RankNet features {[m.value for m in metrics]}")
        return cls(archs, values, normaliser, x, inverse[: a.size], inverse[a.size :], y)

    def __len__(self) -> int:
        return int(self.a.size)


#: ``monotone="auto"``: judged pairs preferring a dominated architecture needed to drop monotonicity ...
MIN_VIOLATIONS = 2
#: ... and their least share of the judged pairs with a dominated side (a careless judge's flips
#: land on dominated pairs at the judge's error rate, ~10 %; a non-monotone wish, far more often).
MIN_VIOLATION_SHARE = 0.2


def dominance_violations(pairs: JudgedPairs) -> tuple[int, int]:
    """``(violations, dominated)``: of the decided judgments whose one side is at least as good on
    every feature (utility columns) and better on one, how many preferred the dominated side."""
    f = len(pairs.normaliser.metrics)
    u = pairs.features[:, :f] if pairs.normaliser.representation != "rank" else pairs.features
    ua, ub = u[pairs.a], u[pairs.b]
    a_dom = np.all(ua >= ub, axis=1) & np.any(ua > ub, axis=1)
    b_dom = np.all(ub >= ua, axis=1) & np.any(ub > ua, axis=1)
    t = pairs.targets
    violations = int(np.sum(a_dom & (t < 0.5)) + np.sum(b_dom & (t > 0.5)))
    dominated = int(np.sum((a_dom | b_dom) & (t != 0.5)))
    return violations, dominated


@dataclass(frozen=True)
class PriorFit:
    """The metric-family posterior fitted to judgments, and how well it explains them.

    Attributes:
        posterior: the fitted :class:`~reward_models.posterior.MetricFamilyPosterior`.
        utility: its credible-set mean utility of each judged architecture (``JudgedPairs.archs``).
        agreement: share of the decided (non-tie) judgments that ``utility`` orders as judged (1.0
            when every judgment is a tie).
    """

    posterior: MetricFamilyPosterior
    utility: np.ndarray
    agreement: float

    def explains(self, tolerance: float) -> bool:
        """The acceptance rule: the prior *is* the model when it orders at least ``1 - tolerance`` of
        the decided judgments as judged."""
        return self.agreement >= 1.0 - tolerance - 1e-12


def fit_prior(
    pairs: JudgedPairs, context: ScoringContext, rank_grid: int, seed: int, population: Any = None, target_prior: float = 0.0
) -> PriorFit:
    """Fit the metric-family posterior (RankNet's prior) to ``pairs`` and measure its agreement.

    The posterior reads both normalisations of the features (min-max utility and rank); when the
    model's own features are in another representation, they are computed again in that one.
    ``population`` (a :class:`~reward_models.library.PopulationPrior`) mixes earlier users'
    preferences into the family's prior (warm start); ``target_prior`` is the prior mass of the
    family's target structures (0: none).
    """
    both, xb = _both_features(pairs, context, rank_grid)
    ia, ib, y = pairs.a, pairs.b, pairs.targets
    posterior = MetricFamilyPosterior(seed=seed, population=population, family_prior=(1.0, 1.0, 1.0, float(target_prior)))
    posterior = posterior.fit_features(xb[ia], xb[ib], y, both)
    utility = posterior.mean_utility(xb)
    decided = y != 0.5
    agree = float(np.mean(np.sign(utility[ia] - utility[ib])[decided] == np.sign(y[decided] - 0.5))) if decided.any() else 1.0
    return PriorFit(posterior, utility, agree)


def _both_features(pairs: JudgedPairs, context: ScoringContext, rank_grid: int) -> tuple[FeatureNormaliser, np.ndarray]:
    """The judged architectures' features in the posterior's representation (``"both"``)."""
    if pairs.normaliser.representation == "both":
        return pairs.normaliser, pairs.features
    both = FeatureNormaliser.from_context(pairs.normaliser.metrics, context, "both", rank_grid)
    return both, both.transform(pairs.values)


@dataclass(frozen=True)
class CrossValidation:
    """Held-out log-likelihood of the judgments under the prior alone and under prior + network.

    Attributes:
        prior: mean log-likelihood per held-out judgment of the metric-family posterior (its
            posterior predictive, lapse included) fitted on the other folds.
        network: the same for the network (with that fold's prior as its input, or residual base),
            trained on the other folds; its probabilities get the posterior's lapse too, so both
            models pay the same for a careless answer.
        folds: how many folds.
        standard_error: the standard error of the mean per-judgment difference (network - prior).
        module: the network fitted on all the judgments, trained in the same batch as the folds'
            (when :func:`cross_validate` was given ``final_inputs``), else ``None``.
        training: the batch's :class:`TrainingReport`.
        prior_probability, network_probability: each judgment's held-out ``P(a preferred)`` under
            the two models (from the models fitted without its fold).
    """

    prior: float
    network: float
    folds: int
    standard_error: float = 0.0
    prior_probability: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    network_probability: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    module: RankNetModule | None = field(default=None, repr=False, compare=False)
    training: TrainingReport | None = field(default=None, repr=False, compare=False)

    @property
    def prefers_prior(self) -> bool:
        """The likelihood rule, with the one-standard-error rule of cross-validation: the prior (the
        simpler model) is kept unless the network predicts held-out judgments better by more than
        one standard error of the difference."""
        return self.network - self.prior <= self.standard_error


def cross_validate(
    pairs: JudgedPairs, context: ScoringContext, config: RankNetConfig, population: Any = None, trainer: Any = None,
    monotone: bool = True, final_inputs: np.ndarray | None = None, final_offset: np.ndarray | None = None,
) -> CrossValidation:
    """Cross-validate the prior against prior + network on the judgments (``acceptance="likelihood"``).

    The pairs are split into ``min(config.cv_folds, len(pairs))`` folds drawn from ``config.seed``.
    For each fold the metric-family posterior is fitted on the other folds and predicts the fold's
    judgments; the networks of all folds are trained at once, as the members of one batch (member
    ``j`` sees the other folds' pairs and, as its prior input, the posterior fitted without fold
    ``j``), by ``trainer`` when it is a :class:`RankNetTrainer` (else the config's). With
    ``final_inputs`` (the full model's inputs, ``(archs, inputs)``; ``final_offset`` its residual
    base), the ``config.ensemble`` members of the model on all judgments (Poisson bootstrap weights
    when ``config.bootstrap``) train in the same batch, so that deciding costs about one training.
    """
    cfg = config
    n = len(pairs)
    if n < 2:
        raise PreferenceDataError(f"cross-validation needs at least 2 judgments, got {n}")
    both, xb = _both_features(pairs, context, cfg.rank_grid)
    ia, ib, y = pairs.a, pairs.b, pairs.targets
    k = min(cfg.cv_folds, n)
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x4356])).permutation(n)] = np.arange(n) % k
    p_prior = np.empty(n)
    util = np.empty((k, len(pairs.archs)))
    scales = np.ones(k)
    lapse = 0.0
    for j in range(k):
        tr, te = fold != j, fold == j
        post = MetricFamilyPosterior(seed=cfg.seed, population=population, family_prior=(1.0, 1.0, 1.0, float(cfg.target_prior)))
        post = post.fit_features(xb[ia[tr]], xb[ib[tr]], y[tr], both)
        p_prior[te] = post.predictive_probability(xb[ia[te]], xb[ib[te]])
        util[j] = post.mean_utility(xb)
        lapse = post.config.lapse
        if cfg.prior_use == "residual":
            scales[j] = _bradley_terry_scale(util[j][ia[tr]] - util[j][ib[tr]], y[tr])
    x = pairs.features
    if cfg.prior_use == "input":
        x = np.concatenate([np.broadcast_to(x, (k, *x.shape)), util[:, :, None]], axis=2)
        offset = None
    else:
        x = np.broadcast_to(x, (k, *x.shape))
        offset = scales[:, None] * util
    mask = (fold[None, :] != np.arange(k)[:, None]).astype(np.float64)
    weights = mask * n / mask.sum(axis=1, keepdims=True)
    members = k
    if final_inputs is not None:
        e = cfg.ensemble
        x = np.concatenate([x, np.broadcast_to(final_inputs, (e, *final_inputs.shape))], axis=0)
        if offset is not None:
            offset = np.concatenate([offset, np.broadcast_to(final_offset, (e, offset.shape[1]))], axis=0)
        boot = np.ones((e, n))
        if cfg.bootstrap and e > 1:
            boot = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xB007])).poisson(1.0, size=(e, n)).astype(np.float64)
        weights = np.concatenate([weights, boot], axis=0)
        members = k + e
    x = np.ascontiguousarray(x)
    module = RankNetModule(x.shape[-1], cfg.hidden, members, monotone, torch.Generator().manual_seed(cfg.seed))
    trainer = trainer if isinstance(trainer, RankNetTrainer) else RankNetTrainer.from_config(cfg)
    report = trainer.train(module, x, ia, ib, y, cfg.seed, **({} if offset is None else {"offset": offset}), weights=weights, per_member=True)
    with torch.no_grad():
        scores = module(torch.from_numpy(x)).numpy()[:k]
    if offset is not None:
        scores = scores + offset[:k]
    p_net = preference_probability(scores[fold, ia], scores[fold, ib])
    p_net = lapse / 2 + (1.0 - lapse) * p_net

    def loglik(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-12, 1.0 - 1e-12)
        return y * np.log(p) + (1.0 - y) * np.log1p(-p)

    ll_prior, ll_net = loglik(p_prior), loglik(p_net)
    se = float(np.std(ll_net - ll_prior, ddof=1) / np.sqrt(n))

    final = None
    if final_inputs is not None:
        final = RankNetModule(final_inputs.shape[1], cfg.hidden, cfg.ensemble, monotone)
        final.load_state_dict({name: value[k:].clone() for name, value in module.state_dict().items()})
        final.eval()
    return CrossValidation(float(ll_prior.mean()), float(ll_net.mean()), int(k), se, p_prior, p_net, final, report)


# --- the reward model -----------------------------------------------------------------------------
class RankNetRewardModel:
    """A reward model learned from pairwise judgments (the paper's Preference Executor).

    Fitting runs four parts, each usable alone: the judgments become features
    (:meth:`JudgedPairs.build`); the metric-family prior is fitted and accepted or not
    (:func:`fit_prior`, :meth:`PriorFit.explains`); otherwise the network (:class:`RankNetModule`) is
    trained on them by the trainer (:class:`RankNetTrainer`, minimising :class:`PreferenceLoss`).

    Args:
        config: hyperparameters; keyword arguments override its fields
            (``RankNetRewardModel(ensemble=5, seed=3)``).
        trainer: trains the network (default: :meth:`RankNetTrainer.from_config` of the config; a
            trainer given here makes the config's training fields moot). It is not saved with the
            model: a loaded model is fitted already.
        population: a :class:`~reward_models.library.PopulationPrior` (warm start: earlier users'
            preferences mixed into the metric-family prior; ``self.posterior.population_share`` is
            the share the new user's judgments leave it). Not saved with the model either.

    Attributes:
        name: ``"ranknet"`` (shown by environments).
        is_fitted: whether :meth:`fit` or :meth:`load` has run.
        metadata: what the model was fitted on and how (comparisons, judges, context, epochs...).
        training: the trainer's :class:`TrainingReport` of the last fit (``None`` in mode ``"prior"``
            and after :meth:`load`).
    """

    name = "ranknet"
    #: Reward-model protocol: a refit changes the scores, so consumers ask afresh, never precompute.
    precomputable = False

    def __init__(self, config: RankNetConfig | None = None, *, trainer: Any | None = None, population: Any = None, **overrides: Any) -> None:
        config = config or RankNetConfig()
        if overrides:
            config = RankNetConfig(**{**asdict(config), **overrides})
        self.config = config
        self.population = population
        self.trainer = trainer if trainer is not None else RankNetTrainer.from_config(config)
        self.module: RankNetModule | None = None
        self.normaliser: FeatureNormaliser | None = None
        self.posterior: MetricFamilyPosterior | None = None
        self.metadata: dict[str, Any] = {}
        self.training: TrainingReport | None = None
        self.prior_scale: float | None = None
        #: Whether the fitted network is monotone (``config.monotone``, or what ``"auto"`` chose).
        self.monotone: bool = self.config.monotone is not False
        #: Judged pairs that prefer an architecture dominated on every feature (``"auto"`` only).
        self.violations: int | None = None
        #: The held-out comparison of the last fit (``acceptance="likelihood"``, when it was needed).
        self.cross_validation: CrossValidation | None = None

    @property
    def is_fitted(self) -> bool:
        return self.normaliser is not None and (self.module is not None or self.posterior is not None)

    @property
    def mode(self) -> str | None:
        """How the fitted model scores: ``"prior"`` (the metric-family posterior alone: it explains
        the judgments), ``"prior+network"`` (the network, with the posterior's mean utility as an
        input) or ``"network"`` (no prior); ``None`` before fitting."""
        if not self.is_fitted:
            return None
        if self.module is None:
            return "prior"
        return "prior+network" if self.posterior is not None else "network"

    # --- fitting ---------------------------------------------------------------------------------
    def fit(self, comparisons: PreferenceDataset | Iterable[Comparison], context: ScoringContext) -> RankNetRewardModel:
        """Fit to judgments; the metrics of the judged architectures come from ``context``.

        Raises:
            PreferenceDataError: no comparisons, or comparisons of another search space.
            MissingMetricError: a feature is missing for a judged architecture.
        """
        cs = comparisons.comparisons if isinstance(comparisons, PreferenceDataset) else tuple(comparisons)
        if not cs:
            raise PreferenceDataError("RankNet needs at least one comparison to fit")
        kind = context.benchmark.space.kind
        wrong = [c for c in cs if c.space is not kind]
        if wrong:
            raise PreferenceDataError(
                f"{len(wrong)} comparisons are of the {wrong[0].space.value} space; the context's benchmark is {kind.value}"
            )
        a = np.array([c.arch_a.index for c in cs], dtype=np.int64)
        b = np.array([c.arch_b.index for c in cs], dtype=np.int64)
        y = np.array([c.outcome.target for c in cs], dtype=np.float64)
        judges = sorted({c.judge for c in cs})
        return self.fit_arrays(a, b, y, context, judges=judges)

    def fit_arrays(self, a: np.ndarray, b: np.ndarray, targets: np.ndarray, context: ScoringContext, judges: Sequence[str] = ()) -> RankNetRewardModel:
        """:meth:`fit` from index arrays and targets ``P(a preferred)`` in {0, 0.5, 1} (or any in [0, 1])."""
        start = time.perf_counter()
        cfg = self.config
        pairs = JudgedPairs.build(a, b, targets, context, cfg)
        inputs, prior, offset = pairs.features, None, None
        self.prior_scale = None
        self.monotone, self.violations = cfg.monotone is not False, None
        self.cross_validation = None
        if cfg.monotone == "auto":
            self.violations, dominated = dominance_violations(pairs)
            self.monotone = not (self.violations >= MIN_VIOLATIONS and self.violations >= MIN_VIOLATION_SHARE * dominated)
        if cfg.prior is not None:
            prior = fit_prior(pairs, context, cfg.rank_grid, cfg.seed, self.population, cfg.target_prior)
            if cfg.prior_use == "residual":
                self.prior_scale = _bradley_terry_scale(prior.utility[pairs.a] - prior.utility[pairs.b], pairs.targets)
                offset = self.prior_scale * prior.utility
            else:
                inputs = np.concatenate([inputs, prior.utility[:, None]], axis=1)
            if self.monotone and self._accepts(prior, pairs, context, inputs, offset):
                self.module, self.normaliser, self.posterior, self.training = None, pairs.normaliser, prior.posterior, None
                self.prior_scale = None
                self.metadata = self._metadata(context, judges, n=len(pairs), start=start, prior_agreement=prior.agreement, **self._cv_metadata())
                logger.debug("RankNet: the metric-family prior explains %d comparisons (%.0f%% ordered); network not trained", len(pairs), 100 * prior.agreement)
                return self

        cv = self.cross_validation
        if cv is not None and cv.module is not None:  # the likelihood rule trained it with the folds' networks
            module, report = cv.module, cv.training
        else:
            module = RankNetModule(inputs.shape[1], cfg.hidden, cfg.ensemble, self.monotone, torch.Generator().manual_seed(cfg.seed))
            report = self.trainer.train(module, inputs, pairs.a, pairs.b, pairs.targets, cfg.seed, **({} if offset is None else {"offset": offset}))
        self.module, self.normaliser, self.training = module, pairs.normaliser, report
        self.posterior = None if prior is None else prior.posterior
        self.metadata = self._metadata(
            context, judges, n=len(pairs), start=start, validation_pairs=report.validation_pairs, epochs=report.epochs,
            best_epoch=report.best_epoch, monitored_loss=report.monitored, best_loss=report.best_loss,
            prior_agreement=None if prior is None else prior.agreement, **self._cv_metadata(),
        )
        logger.debug("RankNet fitted on %d comparisons in %d epochs (best %d, %s loss %.4f)", len(pairs), report.epochs, report.best_epoch, report.monitored, report.best_loss)
        return self

    def _accepts(self, prior: PriorFit, pairs: JudgedPairs, context: ScoringContext, net_inputs: np.ndarray, net_offset: np.ndarray | None) -> bool:
        """Whether the prior alone is the model (``config.acceptance``); sets :attr:`cross_validation`
        (whose network on all judgments, trained in the same batch, is the model when the prior is not)."""
        cfg = self.config
        self.cross_validation = None
        if cfg.acceptance == "agreement":
            return prior.explains(cfg.prior_tolerance)
        if prior.agreement >= 1.0 - 1e-12:
            return True  # every decided judgment ordered as judged: no network can order them better
        if len(pairs) < 2:
            return prior.explains(cfg.prior_tolerance)  # nothing to hold out
        self.cross_validation = cross_validate(
            pairs, context, cfg, self.population, self.trainer, self.monotone, final_inputs=net_inputs, final_offset=net_offset
        )
        return self.cross_validation.prefers_prior

    def _cv_metadata(self) -> dict[str, Any]:
        cv = self.cross_validation
        return {} if cv is None else {"cv_loglik_prior": cv.prior, "cv_loglik_network": cv.network, "cv_standard_error": cv.standard_error, "cv_folds": cv.folds}

    def _metadata(self, context: ScoringContext, judges: Sequence[str], n: int, start: float, **extra: Any) -> dict[str, Any]:
        meta = {
            "comparisons": int(n),
            "validation_pairs": 0,
            "judges": list(judges),
            "space": context.benchmark.space.kind.value,
            "dataset": context.dataset.value,
            "budget": int(context.budget),
            "device": context.device,
            "accuracy_metric": context.accuracy_metric.value,
            "benchmark": context.benchmark.name,
            "epochs": 0,
            "best_epoch": 0,
            "monitored_loss": None,
            "best_loss": None,
            "prior_agreement": None,
            "torch": str(torch.__version__),
        }
        meta.update(extra)
        meta["mode"] = self.mode
        if self.posterior is not None:
            meta["prior_families"] = self.posterior.family_posterior()
        meta["fit_seconds"] = time.perf_counter() - start
        meta["created"] = time.time()
        return meta

    # --- scoring (the no-grad numpy boundary) -------------------------------------------------
    def _check_fitted(self) -> FeatureNormaliser:
        if not self.is_fitted:
            raise NotFittedError("this RankNet is not fitted: call fit(comparisons, context) or RankNetRewardModel.load(path)")
        return self.normaliser

    def required_metrics(self, context: ScoringContext) -> tuple[Metric, ...]:
        """The metrics :meth:`score_many` reads: the model's features."""
        return self._check_fitted().metrics

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the network's inputs (the features, then ``"prior"`` when the prior is an input)."""
        names = self._check_fitted().input_names
        return (*names, "prior") if self.mode == "prior+network" and self.prior_scale is None else names

    def inputs(self, metrics: Mapping[Metric, np.ndarray]) -> np.ndarray:
        """The network's inputs ``(n, len(input_names))`` for ``{Metric: values}``."""
        normaliser = self._check_fitted()
        x = normaliser.transform(metrics)
        if self.mode == "prior+network" and self.prior_scale is None:
            prior = self.posterior.mean_utility(self.posterior.normaliser.transform(metrics))
            x = np.concatenate([x, prior[:, None]], axis=1)
        return x

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Member scores ``(members, n)`` of network inputs ``(n, len(input_names))`` (see :meth:`inputs`); no gradients.

        Raises:
            NotFittedError: not fitted, or fitted in mode ``"prior"`` (no network to evaluate).
        """
        self._check_fitted()
        if self.module is None:
            raise NotFittedError("this RankNet scores with its metric-family prior (mode 'prior'); there is no network to evaluate: use score_many")
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.module.inputs:
            raise ValueError(f"expected inputs of shape (n, {self.module.inputs}) ({', '.join(self.input_names)}), got {x.shape}")
        with torch.no_grad():
            return self.module(torch.from_numpy(x)).numpy().astype(np.float64, copy=False)

    def member_scores(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        """Member scores ``(members, n)`` for disagreement-based active pair selection: the ensemble's
        members, or (mode ``"prior"``) hypotheses drawn from the metric-family posterior."""
        self._check_fitted()
        if self.module is None:
            return self.posterior.member_scores(metrics)
        return self.predict(self.inputs(metrics)) + self._offset(metrics)

    def score_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        """Rewards (higher is better) of ``n`` architectures: the members' mean score (mode
        ``"prior"``: the posterior's credible-set mean utility).

        The features are normalised with the statistics saved at fit time, so a model scores the
        same architectures the same way after :meth:`save` / :meth:`load`.
        """
        self._check_fitted()
        if self.module is None:
            return self.posterior.score_many(metrics)
        return self.predict(self.inputs(metrics)).mean(axis=0) + self._offset(metrics)

    def _offset(self, metrics: Mapping[Metric, np.ndarray]) -> np.ndarray | float:
        """The prior's part of the score in ``prior_use="residual"`` (0 otherwise)."""
        if self.prior_scale is None or self.posterior is None:
            return 0.0
        return self.prior_scale * self.posterior.mean_utility(self.posterior.normaliser.transform(metrics))

    def loss_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        """The learned metric as a loss (lower is better): the negated score."""
        return -self.score_many(metrics, context)

    def score(self, metrics: Mapping[Metric, float], context: ScoringContext | None = None) -> float:
        """Score of one architecture."""
        return float(self.score_many({m: np.atleast_1d(v) for m, v in metrics.items()}, context)[0])

    def preference_probability(self, metrics_a: Mapping[Metric, np.ndarray], metrics_b: Mapping[Metric, np.ndarray]) -> np.ndarray:
        """Predicted probability that each ``a`` is preferred to the matching ``b``."""
        return preference_probability(self.score_many(metrics_a), self.score_many(metrics_b))

    # --- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write weights, feature normalisation, config and metadata to one file (``torch.save``)."""
        normaliser = self._check_fitted()
        prior = None
        if self.posterior is not None:
            prior = {
                "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.posterior.config).items()},
                "normaliser": self.posterior.normaliser.to_dict(),
                "log_posterior": torch.from_numpy(self.posterior.log_posterior.copy()),
            }
        payload = {
            "format": _FILE_FORMAT,
            "version": _FILE_VERSION,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.config).items()},
            "normaliser": normaliser.to_dict(),
            "state_dict": None if self.module is None else {k: v.detach().clone() for k, v in self.module.state_dict().items()},
            "inputs": None if self.module is None else self.module.inputs,
            "prior": prior,
            "prior_scale": self.prior_scale,
            "monotone": bool(self.monotone),
            "metadata": _plain(self.metadata),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RankNetRewardModel:
        """Read a file written by :meth:`save` (``weights_only`` loading: no code is executed).

        Raises:
            ModelFileError: the file is not a RankNet model of a version this code reads.
        """
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:  # torch raises several types for foreign files
            raise ModelFileError(f"{os.fspath(path)!r} is not a readable RankNet model file ({exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != _FILE_FORMAT:
            raise ModelFileError(f"{os.fspath(path)!r} is not a RankNet model file (no {_FILE_FORMAT!r} marker)")
        if int(payload.get("version", 0)) > _FILE_VERSION:
            raise ModelFileError(f"{os.fspath(path)!r} has format version {payload['version']}; this code reads up to {_FILE_VERSION}")
        cfg = dict(payload["config"])
        if cfg.get("features") is not None:
            cfg["features"] = tuple(cfg["features"])
        cfg.setdefault("prior", None)  # version 1 files: a plain RankNet
        model = cls(RankNetConfig(**cfg))
        model.normaliser = FeatureNormaliser.from_dict(payload["normaliser"])
        if payload.get("prior") is not None:
            p = payload["prior"]
            model.posterior = MetricFamilyPosterior.from_state(
                MetricFamilyConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in p["config"].items()}),
                FeatureNormaliser.from_dict(p["normaliser"]),
                p["log_posterior"].numpy().astype(np.float64),
            )
        if payload.get("state_dict") is not None:
            inputs = int(payload.get("inputs") or model.normaliser.num_inputs)
            model.monotone = bool(payload.get("monotone", model.config.monotone is not False))
            module = RankNetModule(inputs, model.config.hidden, model.config.ensemble, model.monotone)
            module.load_state_dict(payload["state_dict"])
            module.eval()
            model.module = module
        model.prior_scale = payload.get("prior_scale")
        model.metadata = dict(payload.get("metadata", {}))
        return model

    def __repr__(self) -> str:
        state = f"fitted on {self.metadata.get('comparisons')} comparisons, mode {self.mode!r}" if self.is_fitted else "not fitted"
        return f"RankNetRewardModel({state}, ensemble={self.config.ensemble}, hidden={self.config.hidden}, prior={self.config.prior!r})"


def _plain(value: Any) -> Any:
    """Metadata as plain Python values (``torch.load(weights_only=True)`` reads nothing else)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

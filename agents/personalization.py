"""Personalization for any search agent: learn the search metric from judged pairs, in rounds.

:class:`Personalization` says who judges and how much: ``num_comparisons`` judgments in all, asked
by a :class:`RoundSchedule`, judged by a ``judge`` (a synthetic user, or a person through
``preference_ui.SearchJudge``), with a ranking model (RankNet with its metric-family prior by
default) refitted after every round. The fitted model becomes the env's reward model
(``env.unwrapped.set_reward_model``), so every later evaluation is rewarded by the learned metric
*through the env*.

Two schedules:

* ``"interactive"`` (the default; the paper's outlook, "multiple rounds of collecting user
  preferences and learning the ranking function"): a first round on the first architectures the
  search evaluates (evolution's initial population), rounds *during* the search on its current best
  candidates under the model, and a final round after the budget among the best few of the whole
  history. Pairs are chosen by :class:`~reward_models.selection.EUBOPairSelector` (expected utility of
  the better option under the model's posterior draws; the first round uses the family's prior
  draws), so the judge is asked about the architectures that decide the recommendation. After each
  round the model is refitted and the history re-scored; the search goes on under the new model.
* ``"one-shot"``: the paper's protocol (Alg. 1): one round of ``num_comparisons`` random pairs
  (Alg. 2) among the first ``num_architectures`` architectures, then the search under that model.

:class:`PersonalizedSearch` is the mixin that gives an agent this ability. Evolution's first round
judges its initial population (Alg. 1); the other agents first evaluate ``num_architectures`` random
architectures (:meth:`PersonalizedSearch._warm_start`). The later rounds run from
:meth:`~agents.base.SearchAgent.record` when the search's budget progress passes their point, and the
final round from :meth:`~agents.base.SearchAgent._finish`, so every agent that evaluates through the
shared interface (RE, random search, MONAS, the SB3 agents) runs the same loop. Nothing is evaluated
twice: re-scoring uses the metrics already in the history. The result's ``scores`` and ``best`` are
under the final model (the recommendation); its ``info`` holds the ``learned_metric``, the
``comparisons``, the ``rounds`` and the model's ``confidence`` in its recommendation.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.base import BudgetExhausted, Evaluation, SearchBudget, SearchCallback, SearchResult
from agents.errors import AgentConfigError
from agents.proposals import sample_architecture
from natsbench_gym.errors import InvalidConfigError, UnknownNameError
from natsbench_gym.types import DeviceLatency, Metric, parse_devices, parse_metric_key
from reward_models.human_preference import Judge
from reward_models.preferences import pair_key

__all__ = [
    "RoundSchedule",
    "SCHEDULES",
    "Personalization",
    "PersonalizedSearch",
    "metrics_of",
    "choose_pairs",
    "fit_model",
    "INTERACTIVE_TARGET_PRIOR",
    "RECOMMEND_RULES",
]

logger = logging.getLogger(__name__)

#: Prior mass of the metric family's *target* structures (one metric less the distance of another
#: from a level: a sweet spot) in the interactive loop's default model, against 1 for each of the
#: selective, weighted and constraint families (docs/personalization.md, "A sweet spot in the
#: family"). The one-shot protocol keeps the paper's family (0).
INTERACTIVE_TARGET_PRIOR = 0.25

#: ``Personalization(recommend=...)``: the best candidate under the final model, or the best one
#: the judge has seen in a pair.
RECOMMEND_RULES = ("model", "judged")


@dataclass(frozen=True)
class RoundSchedule:
    """When a personalized search asks its judge, and how many of its judgments each time.

    Args:
        at: the budget progress of each round, non-decreasing in [0, 1]: ``0`` is the first round,
            on the first architectures the search evaluates; ``0 < at < 1`` a round during the
            search, once that share of the budget (evaluations or simulated time) is spent; ``1`` a
            final round after the budget, among the best of the whole history.
        shares: the share of ``num_comparisons`` each round asks (normalised to sum 1).
        name: shown in results and logs.

    Example:
        >>> RoundSchedule.interactive().allocate(10)
        [3, 2, 2, 3]
        >>> RoundSchedule.one_shot().allocate(10)
        [10]
    """

    at: tuple[float, ...]
    shares: tuple[float, ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        at, shares = tuple(float(a) for a in self.at), tuple(float(s) for s in self.shares)
        if not at or len(at) != len(shares):
            raise AgentConfigError(f"a RoundSchedule needs one share per round, got at={self.at!r} and shares={self.shares!r}")
        if at[0] != 0.0 or any(not 0.0 <= a <= 1.0 for a in at) or any(b < a for a, b in zip(at, at[1:], strict=False)):
            raise AgentConfigError(
                f"round points at={self.at!r} must start at 0 (the first round, on the first architectures) and be "
                "non-decreasing in [0, 1] (1: a final round after the budget)"
            )
        if any(not s > 0 for s in shares):
            raise AgentConfigError(f"every round's share must be > 0, got shares={self.shares!r}")
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "shares", shares)

    @classmethod
    def interactive(cls) -> RoundSchedule:
        """The default: 30 % of the judgments on the first architectures, 20 % at 40 % and at 70 % of
        the budget on the current best candidates, 30 % in a final round among the best of all."""
        return cls(at=(0.0, 0.4, 0.7, 1.0), shares=(0.3, 0.2, 0.2, 0.3), name="interactive")

    @classmethod
    def one_shot(cls) -> RoundSchedule:
        """The paper's protocol: every judgment in one round on the first architectures."""
        return cls(at=(0.0,), shares=(1.0,), name="one-shot")

    @classmethod
    def parse(cls, schedule: str | RoundSchedule) -> RoundSchedule:
        """A schedule, or its name in :data:`SCHEDULES`."""
        if isinstance(schedule, RoundSchedule):
            return schedule
        try:
            return SCHEDULES[str(schedule)]()
        except KeyError:
            raise UnknownNameError("personalization schedule", schedule, tuple(SCHEDULES)) from None

    def allocate(self, n: int) -> list[int]:
        """Judgments per round, summing to ``n`` (largest remainders; the first round gets at least one)."""
        shares = np.asarray(self.shares) / sum(self.shares)
        exact = shares * n
        counts = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
            counts[i] += 1
        if n > 0 and counts[0] == 0:
            counts[int(np.argmax(counts))] -= 1
            counts[0] = 1
        return counts.tolist()


#: The named schedules: ``"interactive"`` (default) and ``"one-shot"`` (the paper's).
SCHEDULES: dict[str, Callable[[], RoundSchedule]] = {
    "interactive": RoundSchedule.interactive,
    "one-shot": RoundSchedule.one_shot,
}


@dataclass
class Personalization:
    """How a search learns its metric from preferences.

    Args:
        judge: states a preference for each pair (a :class:`reward_models.human_preference.Judge`:
            ``reward_models.SyntheticUser``, or a person through ``preference_ui.SearchJudge``).
        num_comparisons: judgments in all, over every round (the paper: 10).
        schedule: ``"interactive"`` (default: rounds during the search, see the module docs),
            ``"one-shot"`` (the paper's single round) or a :class:`RoundSchedule`.
        num_architectures: the first round's pool: the first this many of evolution's initial
            population, or the number of random architectures the other agents evaluate first
            (the paper: 5). ``None``: the whole initial population (evolution) or 5.
        pair_selector: chooses the pairs (``None``: :class:`~reward_models.selection.EUBOPairSelector`
            for the interactive schedule, random pairs -- Alg. 2 -- for one-shot).
        make_reward_model: builds an unfitted ranking model from a seed drawn from the agent's
            generator (default: ``RankNetRewardModel(seed=seed, ensemble=5, bootstrap=True,
            target_prior=INTERACTIVE_TARGET_PRIOR)`` for the interactive schedule, whose members'
            disagreement guides the next pairs when the network is needed and whose metric family
            includes the target structures (a sweet spot), ``RankNetRewardModel(seed=seed)`` for
            one-shot, the paper's family); it needs ``fit(comparisons, context)`` and
            ``score_many(metrics, context)``.
        candidates: a round during or after the search pairs the best this many distinct
            architectures under the current model (more when their pairs are all judged).
        contenders: add to them every evaluated architecture that is the best under one of the
            model's posterior draws (members): those that could be the best, as far as the model knows.
        batch_size: pairs asked between two refits within a round (``1``: every next pair is chosen
            by the model refitted on every answer so far; ``None``: the whole round at once). The
            one-shot schedule asks its round at once, as the paper.
        stop_when_sure: skip a later round when the model's probability that its best candidate
            beats the runner-up is at least this (``None``: always ask every judgment).
        warm_start: start from earlier users (the paper's outlook; :mod:`reward_models.library`): a
            :class:`~reward_models.library.PopulationPrior`, or a
            :class:`~reward_models.library.PreferenceLibrary` (its sessions in the env's space). Their
            preferences are mixed into the metric family's prior (the first pairs and the model;
            the new user's judgments decide how much of it stays), and a share of the first
            architectures are earlier users' recommendations. ``None``: a cold start.
        remember: a :class:`~reward_models.library.PreferenceLibrary` (or its path) that the finished
            session is added to, for later users' warm start. ``None`` (default): nothing is stored.
        remember_label: the name the session is remembered under (optional).
        devices: the latency devices the judge may care about besides the env's own (``"all"``: every
            device of the benchmark, 27 on the NATS-Bench table; a list of names as in
            :data:`natsbench_gym.types.LATENCY_DEVICES`). The model then reads each device's latency
            and follows the one the judgments fit best
            (:class:`~reward_models.devices.DeviceChoiceModel`: the env's device unless another
            explains the judgments at least 3 times better). ``None`` (default): the env's device only.
        recommend: how the interactive loop picks its recommendation after the final round:
            ``"model"`` (default): the best candidate under the final model; ``"judged"``: the best
            candidate under the final model among those the judge has seen in a pair, when the
            final refit put an architecture never judged first (the final round asks about the
            best few under the model before it; a refit that moves the top to an unseen one is the
            model changing its mind without evidence about that architecture).
        model_options: settings of the default model, as :class:`reward_models.RankNetConfig` fields
            over the schedule's defaults (e.g. ``{"acceptance": "likelihood"}``: the prior is accepted
            by its cross-validated likelihood rather than the 90 %-agreement rule). Not with
            ``make_reward_model``.

    Example:
        >>> from agents.personalization import Personalization  # doctest: +SKIP
        >>> from reward_models import SyntheticUser
        >>> user = SyntheticUser("weighted", env.unwrapped.context)  # doctest: +SKIP
        >>> RegularizedEvolution(10, 5, seed=0, personalization=Personalization(user, 20)).search(env, 100)  # doctest: +SKIP
    """

    judge: Judge
    num_comparisons: int = 10
    schedule: str | RoundSchedule = "interactive"
    num_architectures: int | None = None
    pair_selector: Any | None = None
    make_reward_model: Callable[[int], Any] | None = None
    candidates: int = 8
    contenders: bool = True
    batch_size: int | None = 1
    stop_when_sure: float | None = None
    warm_start: Any | None = None
    remember: Any | None = None
    remember_label: str | None = None
    devices: Sequence[str] | str | None = None
    model_options: Mapping[str, Any] | None = None
    recommend: str = "model"
    rounds: RoundSchedule = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.num_comparisons, bool) or not isinstance(self.num_comparisons, int):
            raise AgentConfigError(f"num_comparisons must be an int, got {self.num_comparisons!r}; the paper judges 10 pairs")
        if self.num_comparisons < 1:
            raise AgentConfigError(f"num_comparisons must be >= 1, got {self.num_comparisons}; the paper judges 10 pairs")
        if self.num_architectures is not None and self.num_architectures < 2:
            raise AgentConfigError(
                f"num_architectures must be >= 2 to form a pair, got {self.num_architectures}; "
                "the paper draws its pairs among 5 (None: the default)"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise AgentConfigError(f"batch_size must be >= 1 or None (the whole round at once), got {self.batch_size!r}")
        if self.candidates < 2:
            raise AgentConfigError(f"candidates must be >= 2 to form a pair, got {self.candidates}")
        if self.stop_when_sure is not None and not 0.5 <= self.stop_when_sure <= 1.0:
            raise AgentConfigError(f"stop_when_sure must be a probability in [0.5, 1] or None, got {self.stop_when_sure!r}")
        self.rounds = RoundSchedule.parse(self.schedule)
        if self.recommend not in RECOMMEND_RULES:
            raise AgentConfigError(f"recommend must be one of {', '.join(map(repr, RECOMMEND_RULES))}, got {self.recommend!r}")
        if self.model_options is not None:
            if not isinstance(self.model_options, Mapping) or not all(isinstance(k, str) for k in self.model_options):
                raise AgentConfigError(f"model_options must be a mapping of RankNetConfig field names to values, got {self.model_options!r}")
            if self.make_reward_model is not None:
                raise AgentConfigError("model_options configure the default model; with make_reward_model, configure your model there")
            self.model_options = dict(self.model_options)
        if self.devices is not None:
            try:
                devices = parse_devices(self.devices)
            except InvalidConfigError as exc:
                raise AgentConfigError(str(exc)) from None
            if not devices:
                raise AgentConfigError(f"devices must name at least one latency device, or 'all'; got {self.devices!r}")
            self.devices = devices  # the names are checked against the env's benchmark when the search starts
        from reward_models.library import PopulationPrior, PreferenceLibrary

        if self.warm_start is not None and not isinstance(self.warm_start, (PopulationPrior, PreferenceLibrary)):
            raise AgentConfigError(
                f"warm_start must be a PopulationPrior or a PreferenceLibrary, got {self.warm_start!r}; "
                "e.g. warm_start=PreferenceLibrary(path)"
            )
        if self.remember is not None and not isinstance(self.remember, PreferenceLibrary):
            if isinstance(self.remember, (str, bytes)) or hasattr(self.remember, "__fspath__"):
                self.remember = PreferenceLibrary(self.remember)
            else:
                raise AgentConfigError(f"remember must be a PreferenceLibrary or a path, got {self.remember!r}")

    def population(self, space: str) -> Any | None:
        """The population prior of ``warm_start`` for a search in ``space`` (``None``: a cold start,
        or a library without a session in that space)."""
        from reward_models.library import PreferenceLibrary

        prior = self.warm_start
        if isinstance(prior, PreferenceLibrary):
            prior = prior.population_prior(space=space)
        if prior is None or prior.users == 0:
            return None
        return prior

    @property
    def interactive(self) -> bool:
        """Whether the judge is asked more than once (more than one round)."""
        return len(self.rounds.at) > 1

    def selector(self):
        """The pair selector of this personalization (see ``pair_selector``)."""
        from reward_models.selection import EUBOPairSelector, RandomPairSelector, make_selector

        if self.pair_selector is not None:
            return make_selector(self.pair_selector)
        return EUBOPairSelector() if self.interactive else RandomPairSelector()

    def new_model(self, seed: int, population: Any = None) -> Any:
        """An unfitted ranking model seeded with ``seed`` (with the warm start's ``population``
        prior when the default model is used)."""
        if self.devices is not None:
            from reward_models.devices import DeviceChoiceModel

            return DeviceChoiceModel(lambda: self._new_model(seed, population), self.devices)
        return self._new_model(seed, population)

    def _new_model(self, seed: int, population: Any = None) -> Any:
        if self.make_reward_model is not None:
            return self.make_reward_model(seed)
        from reward_models import RankNetRewardModel

        options: dict[str, Any] = {}
        if self.interactive:
            # an ensemble on bootstrap resamples: when the network is needed its members disagree
            # where the judgments leave room, which is what the pairs of the next round are chosen by
            options = {"ensemble": 5, "bootstrap": True, "target_prior": self.target_prior}
        options.update(self.model_options or {})
        try:
            return RankNetRewardModel(seed=seed, population=population, **options)
        except (TypeError, ValueError) as exc:
            raise AgentConfigError(f"model_options {self.model_options!r} do not make a RankNetConfig: {exc}") from None

    @property
    def target_prior(self) -> float:
        """Prior mass of the metric family's target structures in the default model
        (:data:`INTERACTIVE_TARGET_PRIOR` for the interactive schedule, 0 for one-shot and for a
        ``make_reward_model`` of the caller's)."""
        if self.model_options and "target_prior" in self.model_options:
            return float(self.model_options["target_prior"])
        return INTERACTIVE_TARGET_PRIOR if self.interactive and self.make_reward_model is None else 0.0

    def prior_model(self, context: Any, population: Any = None) -> Any:
        """The model before any judgment: the metric family's prior (with the target structures
        when the default interactive model has them), whose draws choose the first pairs."""
        from reward_models.posterior import MetricFamilyPosterior

        return MetricFamilyPosterior.prior(context, population=population, family_prior=(1.0, 1.0, 1.0, self.target_prior))


def metrics_of(evaluations: Sequence[Evaluation], model: Any = None, context: Any = None) -> dict[Metric, np.ndarray]:
    """``{Metric: array}`` of the evaluations' metrics, the form ``score_many`` takes (``"latency@pixel3"``
    under :class:`~natsbench_gym.types.DeviceLatency`). With ``model`` and ``context``, a device's
    latency that ``model`` reads and an evaluation lacks (it was evaluated before the model chose
    that device) is looked up in ``context`` by the architecture's index."""
    names = {name for ev in evaluations for name in ev.metrics}
    out = {
        parse_metric_key(name): np.array([ev.metrics.get(name, np.nan) for ev in evaluations], dtype=np.float64)
        for name in sorted(names)
    }
    if model is not None and context is not None and evaluations:
        for key in model.required_metrics(context):
            if isinstance(key, DeviceLatency) and (key not in out or np.isnan(out[key]).any()):
                values = context.query([ev.index for ev in evaluations], [key])[key]
                out[key] = np.where(np.isnan(out[key]), values, out[key]) if key in out else np.asarray(values, dtype=np.float64)
    return out


class PersonalizedSearch:
    """Mixin for :class:`~agents.base.SearchAgent` subclasses that accept ``personalization=``.

    The subclass sets ``self.personalization`` and calls :meth:`_learn_metric` (on evaluations it
    has: the first round) or :meth:`_warm_start` (evaluate random architectures, then the first
    round) in its ``_search``, and compares evaluations with :meth:`search_score`. The later rounds
    run by themselves (from :meth:`record` and :meth:`_finish`).

    Attributes:
        learned_metric: the current model (``None`` before the first round).
        comparisons: every judgment so far, in order.
        rounds_log: one dict per round: its number, the evaluations spent when it ran, the pairs
            asked, the strategy, the model's mode and its confidence after the refit, and the
            longest time a judge waited for the next pairs in it (choosing them, refitting, re-scoring).
    """

    personalization: Personalization | None = None
    learned_metric: Any | None = None
    comparisons: list[Any] | None = None
    rounds_log: list[dict[str, Any]] | None = None
    _rescored: list[float] | None = None
    _plan: list[int] | None = None
    _next_round: int = 0
    _population: Any | None = None
    _seeded: list[tuple[int, ...]] | None = None

    def search(
        self,
        env,
        budget: SearchBudget | int | None = 100,
        callback: SearchCallback | Sequence[SearchCallback] | None = None,
    ) -> SearchResult:
        self.learned_metric = None
        self.comparisons = None
        self.rounds_log = None
        self._rescored = None
        self._plan, self._next_round = None, 0
        self._seeded = None
        p = self.personalization
        self._population = None if p is None else p.population(env.unwrapped.space.kind.value)
        if p is not None and p.devices is not None:
            from reward_models.devices import resolve_devices

            resolve_devices(p.devices, env.unwrapped.context)  # an unknown device fails now, not after the first round
        result = super().search(env, budget, callback)
        if self._population is not None and self.learned_metric is not None:
            result.info["warm_start"] = self._warm_start_info()
        if p is not None and p.remember is not None and self.comparisons:
            result.info["remembered"] = self._remember(result, env.unwrapped.context)
        return result

    def _remember(self, result: SearchResult, context) -> dict[str, Any]:
        """Add the finished session to ``remember``'s library; a library that cannot take it (it was
        corrupted or made unwritable during the search) costs the search nothing: the result is
        returned with the error in ``info["remembered"]``, and the file is left as it is."""
        from reward_models.library import PreferenceLibraryError

        library = self.personalization.remember
        try:
            session = library.add_result(result, context, label=self.personalization.remember_label)
        except PreferenceLibraryError as exc:
            logger.error("the session was not remembered: %s", exc)
            return {"library": str(library.path), "session": None, "error": str(exc)}
        logger.info("session remembered as #%d in %s", session, library.path)
        return {"library": str(library.path), "session": session}

    def _warm_start_info(self) -> dict[str, Any]:
        """How the warm start went: earlier users, the population's share of the prior before and
        after the judgments, and whether the judgments disagree with the population."""
        from reward_models.library import DISAGREE_BELOW

        post = self.learned_metric
        post = getattr(post, "posterior", None) if not hasattr(post, "population_share") else post
        share = getattr(post, "population_share", None)
        evidence = getattr(post, "population_evidence", None)
        return {
            "users": self._population.users,
            "weight": self._population.weight,
            "share": share,
            "evidence": evidence,
            "disagrees": bool(evidence is not None and evidence < DISAGREE_BELOW),
            "seeded": len(self._seeded or ()),
        }

    def _initial_architecture(self, i: int, n: int) -> tuple[int, ...]:
        """The ``i``-th of a search's ``n`` first architectures: with a warm start, the first ones are
        earlier users' recommendations (:meth:`PopulationPrior.initial_architectures
        <reward_models.library.PopulationPrior.initial_architectures>`), the rest uniformly random."""
        if i == 0 or self._seeded is None:
            self._seeded = []
            if self._population is not None:
                base = self.env.unwrapped
                for arch in self._population.initial_architectures(n, self.rng):
                    try:
                        enc = base.space.to_encoding(arch)
                    except (ValueError, KeyError):
                        continue
                    if not base.constrained or base.is_feasible(enc):
                        self._seeded.append(tuple(enc))
        if i < len(self._seeded):
            return self._seeded[i]
        return sample_architecture(self.env, self.rng)

    def search_score(self, evaluation: Evaluation) -> float:
        """The evaluation's score under the current search metric (the learned one once there is one)."""
        rescored = self._rescored
        if rescored is not None and evaluation.step <= len(rescored):
            return rescored[evaluation.step - 1]
        return evaluation.reward

    def _warm_start(self) -> list[Evaluation]:
        """Evaluate distinct random architectures, run the first round on them, return them."""
        n = self.personalization.num_architectures or 5
        seen: set[tuple[int, ...]] = set()
        pool = []
        while len(pool) < n:
            enc = self._initial_architecture(len(seen), n)
            if enc in seen and len(seen) < self.space.size:
                continue
            seen.add(enc)
            pool.append(self.evaluate(enc))
        self._learn_metric(pool)
        return pool

    def _learn_metric(self, evaluations: Sequence[Evaluation]) -> Any:
        """The first round: judge pairs among ``evaluations``, fit the model, make it the env's reward model.

        Raises:
            BudgetExhausted: a search callback stopped the search (nothing is learned).
        """
        if self._stopped:
            raise BudgetExhausted
        p = self.personalization
        self._plan = p.rounds.allocate(p.num_comparisons)
        self._next_round = 0
        self.comparisons, self.rounds_log = [], []
        pool = list(evaluations[: p.num_architectures] if p.num_architectures else evaluations)
        self._run_round(pool)
        return self.learned_metric

    # --- the rounds -------------------------------------------------------------------------------
    def record(self, reward: float, info: dict[str, Any], encoding: Sequence[int] = ()) -> Evaluation:
        ev = super().record(reward, info, encoding)
        if self._plan is not None and not self._stopped:
            at = self.personalization.rounds.at
            while self._next_round < len(at) and at[self._next_round] < 1.0 and self._progress() >= at[self._next_round]:
                self._run_round(self._round_pool())
        return ev

    def _finish(self) -> None:
        """After the budget: the rounds still due (the final one among the best of the history)."""
        super()._finish()
        if self._plan is None or self._stopped:
            return
        while self._next_round < len(self._plan):
            self._run_round(self._round_pool())
        if self.personalization.interactive:
            self._respect_direct_judgments()

    def _respect_direct_judgments(self) -> None:
        """Order the best candidates so that no one is ranked above an architecture the judge
        preferred to it in a direct comparison (the model, a smooth function of four metrics, may
        not fit every close call among them).

        The candidates' scores are permuted, never changed: repeatedly the highest-scoring candidate
        that no remaining candidate beat takes the highest remaining score (with a cycle of wins --
        an inconsistent judge -- the highest-scoring one is taken). With ``recommend="judged"``, the
        best-scoring architecture the judge has seen in a pair then moves to the first place (those
        above it move down one place each).
        """
        top = self._top_candidates()
        beaten: dict[int, set[int]] = {ev.index: set() for ev in top}
        seen: set[int] = set()
        for c in self.comparisons:
            a, b, target = c.arch_a.index, c.arch_b.index, c.outcome.target
            seen.update((a, b))
            if a in beaten and b in beaten and target != 0.5:
                winner, loser = (a, b) if target > 0.5 else (b, a)
                beaten[loser].add(winner)
        score = {ev.index: self.search_score(ev) for ev in top}
        remaining = sorted(beaten, key=lambda i: -score[i])  # the model's order (stable: history order on ties)
        values = sorted(score.values(), reverse=True)
        new: dict[int, float] = {}
        while remaining:
            free = [i for i in remaining if not beaten[i] & set(remaining)]
            pick = free[0] if free else remaining[0]
            new[pick] = values[len(new)]
            remaining.remove(pick)
        if any(new[i] != score[i] for i in new):
            logger.debug("the final order of the candidates follows the direct judgments: %s", new)
            self._rescored = [new.get(ev.index, s) for ev, s in zip(self.history, self._rescored, strict=True)]
        if self.personalization.recommend == "judged" and seen:
            self._recommend_judged(seen)

    def _recommend_judged(self, seen: set[int]) -> None:
        """Move the best-scoring architecture the judge has seen to the first place (``recommend="judged"``)."""
        score: dict[int, float] = {}
        for ev, s in zip(self.history, self._rescored, strict=True):
            score.setdefault(ev.index, s)
        order = sorted(score, key=lambda i: -score[i])  # stable: history order on ties
        k = next((n for n, i in enumerate(order) if i in seen), 0)
        if k == 0:
            return
        values = [score[i] for i in order[: k + 1]]
        new = dict(zip([order[k], *order[:k]], values, strict=True))
        logger.debug("the recommendation is the best architecture the judge has seen (%d), not %d", order[k], order[0])
        self._rescored = [new.get(ev.index, s) for ev, s in zip(self.history, self._rescored, strict=True)]

    def _progress(self) -> float:
        """The share of the budget spent (the larger of evaluations and simulated time)."""
        budget, shares = self._budget, []
        if budget.evaluations:
            shares.append(self.evaluations_spent / budget.evaluations)
        if budget.train_time:
            shares.append(self._spent_time() / budget.train_time)
        return max(shares, default=0.0)

    def _top_candidates(self) -> list[Evaluation]:
        """The best ``candidates`` distinct architectures of the history under the current model,
        more when every pair among them is judged already."""
        k = self.personalization.candidates
        order = sorted(range(len(self.history)), key=lambda i: (-self.search_score(self.history[i]), i))
        distinct: list[Evaluation] = []
        seen: set[int] = set()
        for i in order:
            ev = self.history[i]
            if ev.index not in seen:
                seen.add(ev.index)
                distinct.append(ev)
        judged = {pair_key(*c.indices) for c in self.comparisons or ()}
        while k < len(distinct):
            top = [ev.index for ev in distinct[:k]]
            if any(pair_key(a, b) not in judged for j, a in enumerate(top) for b in top[j + 1 :]):
                break
            k *= 2
        return distinct[:k]

    def _round_pool(self) -> list[Evaluation]:
        """A later round's architectures: the best candidates, and (``contenders``) every evaluated
        architecture that is the best under one of the model's posterior draws."""
        top = self._top_candidates()
        if not self.personalization.contenders or not hasattr(self.learned_metric, "member_scores"):
            return top
        first: dict[int, Evaluation] = {}
        for ev in self.history:
            first.setdefault(ev.index, ev)
        distinct = list(first.values())
        context = self.env.unwrapped.context
        draws = np.asarray(self.learned_metric.member_scores(metrics_of(distinct, self.learned_metric, context), context))
        chosen = {ev.index for ev in top}
        extra = []
        for i in dict.fromkeys(np.argmax(draws, axis=1).tolist()):
            if distinct[i].index not in chosen:
                chosen.add(distinct[i].index)
                extra.append(distinct[i])
        return top + extra[: self.personalization.candidates]

    def _run_round(self, pool: Sequence[Evaluation]) -> None:
        """Ask the next round's pairs among ``pool``, refit the model, re-score the history."""
        p, k = self.personalization, self._next_round
        self._next_round += 1
        wanted = self._plan[k]
        context = self.env.unwrapped.context
        if k > 0 and p.stop_when_sure is not None:
            from reward_models.selection import recommendation_confidence

            sure = recommendation_confidence(self.learned_metric, pool, context)
            if sure.probability >= p.stop_when_sure:
                logger.debug("round %d skipped: %s", k + 1, sure)
                self._log_round(k, (), "skipped (sure)", sure)
                return
        if wanted == 0:
            return
        model = self.learned_metric
        if model is None and p.interactive:
            model = p.prior_model(context, self._population)
        asked: list[Any] = []
        strategy, seconds = "", 0.0
        while len(asked) < wanted:
            start = time.perf_counter()
            left = wanted - len(asked)
            batch = left if p.batch_size is None or not p.interactive else min(p.batch_size, left)
            pairs = choose_pairs(p, pool, context, self.rng, n=batch, exclude=self.comparisons, selection_model=model)
            pairs = dataclasses.replace(pairs, round=k + 1, rounds=len(self._plan))  # which round, for the judge's interface
            strategy, chosen = pairs.strategy, time.perf_counter()
            new = list(p.judge(pairs, rng=self.rng)) if len(pairs) else []
            judged = time.perf_counter()
            if not new:
                seconds = max(seconds, chosen - start)
                break
            self.comparisons.extend(new)
            asked.extend(new)
            model = fit_model(p, self.comparisons, context, self.rng, population=self._population)
            self._adopt(model)
            seconds = max(seconds, chosen - start + time.perf_counter() - judged)
        if not asked:
            self._log_round(k, asked, strategy, None, seconds)
            return
        confidence = None
        if p.interactive:
            from reward_models.selection import recommendation_confidence

            confidence = recommendation_confidence(self.learned_metric, self._top_candidates(), context)
        self._log_round(k, asked, strategy, confidence, seconds)

    def _adopt(self, model: Any) -> None:
        self.env.unwrapped.set_reward_model(model)
        self.learned_metric = model
        context = self.env.unwrapped.context
        scores = np.asarray(model.score_many(metrics_of(self.history, model, context), context), dtype=np.float64)
        self._rescored = scores.reshape(-1).tolist()

    def _log_round(self, k: int, comparisons: Sequence[Any], strategy: str, confidence: Any, seconds: float = 0.0) -> None:
        self.rounds_log.append({
            "round": k + 1,
            "at": self.personalization.rounds.at[k],
            "evaluations": self.evaluations_spent,
            "pairs": [(c.arch_a.index, c.arch_b.index) for c in comparisons],
            "strategy": strategy,
            "mode": getattr(self.learned_metric, "mode", None),
            "confidence": None if confidence is None else confidence.probability,
            "seconds": seconds,
        })
        logger.debug("round %d: %d judgments (%s), %s", k + 1, len(comparisons), strategy, confidence)

    def _result_scores(self) -> list[float] | None:
        if self._rescored is None:
            return None
        return [self.search_score(ev) for ev in self.history]

    def _result_info(self) -> dict[str, Any]:
        info = super()._result_info()
        if self.learned_metric is not None:
            info = {**info, "learned_metric": self.learned_metric, "comparisons": self.comparisons, "rounds": self.rounds_log}
            if self.personalization.interactive and self.history:
                from reward_models.selection import recommendation_confidence

                # the final order (which follows the direct judgments), the model's probabilities
                info["confidence"] = recommendation_confidence(
                    self.learned_metric, self._top_candidates(), self.env.unwrapped.context, ranked=True
                )
        return info


def choose_pairs(
    personalization: Personalization,
    pool: Sequence[Evaluation],
    context,
    rng: np.random.Generator,
    *,
    n: int | None = None,
    exclude: Sequence[Any] = (),
    selection_model: Any = None,
):
    """The pairs of one round: at most ``n`` (default ``num_comparisons``) new pairs among ``pool``.

    Args:
        personalization: how the pairs are chosen.
        pool: the architectures (evaluations) to pair.
        rng: the agent's generator.
        n: pairs to ask; at most as many as ``pool``'s distinct architectures make that are not judged.
        exclude: the judgments made before (their pairs are not asked again).
        selection_model: the model the selector reads (``None``: none, as the paper's random pairs).
    """
    selector = personalization.selector()
    n = personalization.num_comparisons if n is None else n
    members = {ev.index for ev in pool}
    judged_here = sorted({pair_key(*c.indices) for c in exclude if set(c.indices) <= members and len(set(c.indices)) == 2})
    available = len(members) * (len(members) - 1) // 2 - len(judged_here)
    asked = min(n, available)
    if asked < n:
        logger.info("%d distinct architectures leave only %d new pairs; judging those", len(members), asked)
    return selector.select(pool, asked, rng, exclude=judged_here, model=selection_model, context=context)


def fit_model(personalization: Personalization, comparisons: Sequence[Any], context, rng: np.random.Generator, population: Any = None) -> Any:
    """A new model (seeded from ``rng``) fitted on ``comparisons`` (with a warm start's ``population`` prior)."""
    model = personalization.new_model(int(rng.integers(2**31)), population=population)
    model.fit(list(comparisons), context)
    return model

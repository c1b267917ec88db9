"""One interface for every search algorithm: ``agent.search(env, budget) -> SearchResult``.

Agents never reach around the environment into the benchmark: to evaluate an architecture they
``reset`` the env and ``step`` through its decisions, and read the reward and metrics from the final
``info``. So every agent works on every backend (table, official files, live training) and with
every reward model (fixed metric or learned RankNet) the env is given. The one other thing an agent
may ask the env is ``training_free_metrics`` (params, FLOPs, latency: no training, no evaluation, no
accuracy), which LEMONADE uses to pre-screen its children.

The budget (:class:`SearchBudget`) is counted in evaluations and/or simulated training seconds; by
default a repeated architecture counts again, with ``count_repeats=False`` only new ones do.

The public :meth:`SearchAgent.search` does the bookkeeping (seeding, budget, history, callbacks) and
calls the protected hook :meth:`SearchAgent._search`, which proposes architectures through
:meth:`SearchAgent.evaluate` until the budget runs out (SB3's template-method pattern).
"""

from __future__ import annotations

import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.errors import AgentConfigError, EmptyResultError, EpisodeError, SettingTypeError
from agents.search_logger import SearchLogger

__all__ = [
    "Evaluation",
    "evaluation_from_info",
    "SearchBudget",
    "SearchResult",
    "SearchCallback",
    "CallbackList",
    "TensorBoardCallback",
    "SearchAgent",
    "BudgetExhausted",
    "evaluate_encoding",
]

logger = logging.getLogger(__name__)


class BudgetExhausted(Exception):
    """Raised inside :meth:`SearchAgent.evaluate` when the budget is spent (caught by ``search``)."""


@dataclass(frozen=True)
class Evaluation:
    """One evaluated architecture, as the environment reported it."""

    step: int
    arch: str
    index: int
    encoding: tuple[int, ...]
    metrics: dict[str, float]
    reward: float
    train_time: float
    total_train_time: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluation_from_info(
    info: Mapping[str, Any], step: int, reward: float | None = None, encoding: Sequence[int] = ()
) -> Evaluation:
    """The :class:`Evaluation` of a finished episode's ``info``: the one conversion every agent uses
    (:meth:`SearchAgent.record`, so the SB3 agents' env wrapper too, and ``agents.sb3.NASCallback``).

    Args:
        info: the last step's ``info`` (``arch``, ``index``, ``encoding``, ``metrics``, ``reward``,
            ``train_time``, ``total_train_time``, as the NATS-Bench envs give it).
        step: the evaluation's number in its search, from 1.
        reward: the episode's reward; ``None``: ``info["reward"]``.
        encoding: the decisions taken, used when ``info`` has no ``encoding``.

    Raises:
        EpisodeError: ``info`` lacks ``arch`` or ``index`` (not the end of a NATS-Bench episode), or
            the reward (neither given nor in ``info``).
    """
    missing = [key for key in ("arch", "index") if key not in info]
    if reward is None and "reward" not in info:
        missing.append("reward")
    if missing:
        raise EpisodeError(
            f"the info of a finished episode lacks {', '.join(missing)} (it has {', '.join(map(str, info)) or 'nothing'}); "
            "pass the info of the step that terminated a NATS-Bench env's episode"
        )
    return Evaluation(
        step=int(step),
        arch=str(info["arch"]),
        index=int(info["index"]),
        encoding=tuple(int(x) for x in info.get("encoding", encoding)),
        metrics={str(k): float(v) for k, v in info.get("metrics", {}).items()},
        reward=float(info["reward"] if reward is None else reward),
        train_time=float(info.get("train_time", 0.0)),
        total_train_time=float(info.get("total_train_time", 0.0)),
    )


@dataclass(frozen=True)
class SearchBudget:
    """How much a search may spend: evaluated architectures and/or simulated training seconds.

    Args:
        evaluations: evaluated architectures (``None``: no limit on their number).
        train_time: simulated training seconds (``None``: no limit on time); at least one of the two.
        count_repeats: whether evaluating an architecture the search has already evaluated spends
            budget. ``True`` (the default, Real et al.'s protocol and this library's so far): every
            evaluation counts, in both ``evaluations`` and ``train_time``. ``False``: only the first
            evaluation of each architecture counts; a repeat is free, as it is in practice (the
            benchmark is a lookup and the live backend caches every training), so an agent that
            resamples an architecture (MONAS, PPO) spends its budget on new ones only. Repeats still
            appear in the history and still reach the agent as rewards. Not allowed on a noisy env,
            where a repeat is a new training with a new result.
        max_repeats: with ``count_repeats=False``, free repeats allowed before the search stops anyway
            (a converged controller may propose nothing new); default ``10 * evaluations``, or 1,000
            with a time budget only.

    Example:
        >>> SearchBudget(evaluations=100, count_repeats=False).max_free_repeats
        1000
    """

    evaluations: int | None = 100
    train_time: float | None = None
    count_repeats: bool = True
    max_repeats: int | None = None

    def __post_init__(self) -> None:
        if self.evaluations is None and self.train_time is None:
            raise AgentConfigError("a SearchBudget needs evaluations=..., train_time=... or both; got neither")
        if self.evaluations is not None and self.evaluations < 1:
            raise AgentConfigError(
                f"evaluations must be >= 1, got {self.evaluations}; use None for a time budget only"
            )
        if self.train_time is not None and not self.train_time > 0:
            raise AgentConfigError(
                f"train_time must be > 0 seconds, got {self.train_time}; use None for no time limit"
            )
        if self.max_repeats is not None and self.max_repeats < 0:
            raise AgentConfigError(
                f"max_repeats must be >= 0, got {self.max_repeats}; use None for the default (10 x evaluations)"
            )

    @classmethod
    def parse(cls, budget: SearchBudget | int | None) -> SearchBudget:
        if isinstance(budget, SearchBudget):
            return budget
        if budget is None:
            return cls()
        if isinstance(budget, (int, np.integer)):
            return cls(evaluations=int(budget))
        raise SettingTypeError(
            f"budget must be a SearchBudget or a number of evaluations, got {budget!r}; "
            "e.g. SearchBudget(evaluations=100) or 100"
        )

    @property
    def max_free_repeats(self) -> int:
        """Free repeats allowed when ``count_repeats`` is False (see ``max_repeats``)."""
        if self.max_repeats is not None:
            return self.max_repeats
        return 10 * self.evaluations if self.evaluations is not None else 1_000

    def spent(self, evaluations: int, train_time: float, repeats: int = 0) -> bool:
        """Whether ``evaluations`` (counted as this budget counts them), ``train_time`` and the free
        ``repeats`` so far exhaust the budget."""
        return (
            (self.evaluations is not None and evaluations >= self.evaluations)
            or (self.train_time is not None and train_time >= self.train_time)
            or (not self.count_repeats and repeats >= self.max_free_repeats)
        )


@dataclass
class SearchResult:
    """Everything a search produced.

    Attributes:
        history: every evaluation in order.
        best: the best evaluation under the search reward (first one on ties).
        algorithm: the agent's name.
        info: free-form extras (e.g. the learned reward model of a personalized search).
    """

    history: list[Evaluation]
    algorithm: str
    info: dict[str, Any] = field(default_factory=dict)
    scores: list[float] | None = None

    def __post_init__(self) -> None:
        if self.scores is not None and len(self.scores) != len(self.history):
            raise EmptyResultError(
                f"scores has {len(self.scores)} entries for {len(self.history)} evaluations; "
                "give one score per evaluation, or None for the env's rewards"
            )

    @property
    def best(self) -> Evaluation:
        if not self.history:
            raise EmptyResultError("the search evaluated no architecture, so it has no best; give it a budget of >= 1")
        scores = self.search_scores()
        return self.history[int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))]  # first on ties

    def rewards(self) -> np.ndarray:
        """The rewards the env reported, one per evaluation."""
        return np.array([e.reward for e in self.history])

    def search_scores(self) -> np.ndarray:
        """Each evaluation's score under the search's final reward: :attr:`scores` when the search set
        them (a personalized search re-scores the evaluations made before its metric was learned),
        else the env's rewards."""
        return self.rewards() if self.scores is None else np.asarray(self.scores, dtype=np.float64)

    def best_so_far(self, key: str | None = None) -> np.ndarray:
        """Running maximum of the search score (or ``metrics[key]`` of the best-so-far architecture)."""
        scores = self.search_scores()
        if key is None:
            return np.fmax.accumulate(scores) if scores.size else scores  # fmax: a nan score never leads
        out = np.empty(len(scores))
        best = -math.inf
        value = math.nan
        for i, (e, score) in enumerate(zip(self.history, scores, strict=True)):
            if score > best:
                best, value = score, e.metrics.get(key, math.nan)
            out[i] = value
        return out

    def pareto_front(self, objectives: Sequence[str] = ("test_accuracy", "params")) -> list[Evaluation]:
        """Non-dominated evaluations over ``objectives`` (metric names; accuracies maximised, costs minimised).

        Uses pymoo's non-dominated sorting. Evaluations lacking an objective are left out.
        """
        from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

        from natsbench_gym.types import Metric

        metrics = [Metric.parse(o) for o in objectives]
        rows, evals = [], []
        for e in self.history:
            vals = [e.metrics.get(m.value, math.nan) for m in metrics]
            if not any(math.isnan(v) for v in vals):
                rows.append([-v if m.higher_is_better else v for m, v in zip(metrics, vals, strict=True)])
                evals.append(e)
        if not rows:
            return []
        front = NonDominatedSorting().do(np.array(rows), only_non_dominated_front=True)
        seen, out = set(), []
        for i in sorted(int(j) for j in front):
            if evals[i].index not in seen:
                seen.add(evals[i].index)
                out.append(evals[i])
        return out

    def save_jsonl(self, path: str | Path) -> None:
        """Write the history, one evaluation per line."""
        with open(path, "w") as fh:
            for e in self.history:
                fh.write(json.dumps(e.to_dict()) + "\n")


class SearchCallback:
    """Hooks called during a search; :meth:`on_evaluation` returning False stops it early."""

    def on_search_start(self, agent: SearchAgent, env: gym.Env) -> None:
        """Called once before the first evaluation."""

    def on_evaluation(self, evaluation: Evaluation) -> bool:
        return self._on_evaluation(evaluation) is not False

    def _on_evaluation(self, evaluation: Evaluation) -> bool | None:
        return True

    def on_search_end(self, result: SearchResult) -> None:
        """Called once with the final result."""


class CallbackList(SearchCallback):
    def __init__(self, callbacks: Sequence[SearchCallback]) -> None:
        self.callbacks = list(callbacks)

    def on_search_start(self, agent, env):
        for c in self.callbacks:
            c.on_search_start(agent, env)

    def on_evaluation(self, evaluation):
        return all([c.on_evaluation(evaluation) for c in self.callbacks])

    def on_search_end(self, result):
        for c in self.callbacks:
            c.on_search_end(result)


class TensorBoardCallback(SearchCallback):
    """Logs the search of any agent through its :class:`~agents.search_logger.SearchLogger`, under the
    keys of :data:`~agents.search_logger.SEARCH_KEYS` (``search/reward``, ``search/best_reward``,
    ``search/best_<metric>``, ``search/best_arch`` ...), one point per evaluation (TensorBoard step =
    the evaluation's number).

    Args:
        log_dir: the run goes to ``log_dir / run_name``.
        run_name: default: the agent's name.
        formats: stable-baselines3 logger formats (``"tensorboard"``, ``"csv"``, ``"stdout"``,
            ``"json"``, ``"log"``); the SB3 agents' ``NASCallback`` writes the same keys.

    Attributes:
        search_logger: the logger of the current (or last) search.
    """

    def __init__(self, log_dir: str | Path, run_name: str | None = None, formats: Sequence[str] = ("tensorboard",)) -> None:
        self.log_dir = Path(log_dir)
        self.run_name = run_name
        self.formats = tuple(formats)
        self.search_logger: SearchLogger | None = None

    def on_search_start(self, agent, env):
        self.search_logger = SearchLogger.configure(self.log_dir / (self.run_name or agent.name), self.formats)

    def _on_evaluation(self, evaluation):
        self.search_logger.record(evaluation)
        self.search_logger.dump(evaluation.step)
        return True

    def on_search_end(self, result):
        if self.search_logger is not None:
            self.search_logger.close()


def evaluate_encoding(env: gym.Env, encoding: Sequence[int], seed: int | None = None) -> tuple[float, dict]:
    """Build ``encoding`` in ``env`` one decision per step; return the final reward and ``info``."""
    env.reset(seed=seed)
    reward, info, terminated = 0.0, {}, False
    for action in encoding:
        _, reward, terminated, truncated, info = env.step(int(action))
        if terminated or truncated:
            break
    if not terminated:
        raise EpisodeError(
            f"the env did not terminate after the {len(encoding)} decisions of {tuple(encoding)}; "
            f"an encoding needs one decision per step ({getattr(env.unwrapped, 'num_decisions', '?')} here)"
        )
    return float(reward), info


class SearchAgent(ABC):
    """Base class of every search algorithm.

    Args:
        seed: seeds the agent's own ``np.random.Generator`` and the env's first ``reset``; the same
            seed gives the same history.
    """

    name: str = "agent"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.env: gym.Env | None = None
        self.history: list[Evaluation] = []
        self._budget = SearchBudget()
        self._callback: SearchCallback = SearchCallback()
        self._reset_seed: int | None = None
        self._stopped = False
        self._evaluated: set[int] = set()
        self._unique_time = 0.0
        self._repeats = 0

    @property
    def space(self):
        """The env's search space (``env.unwrapped.space``)."""
        return self.env.unwrapped.space

    def search(
        self,
        env: gym.Env,
        budget: SearchBudget | int | None = 100,
        callback: SearchCallback | Sequence[SearchCallback] | None = None,
    ) -> SearchResult:
        """Search ``env`` until ``budget`` is spent; return the history, best and Pareto front.

        Args:
            env: the environment; every architecture is evaluated through its ``reset``/``step``.
            budget: a :class:`SearchBudget`, or a number of evaluations. By default every evaluation
                counts, repeats of an architecture included (Real et al.'s protocol);
                ``SearchBudget(..., count_repeats=False)`` charges only the first evaluation of each
                architecture (a repeat costs no training in practice), so the history may be longer
                than ``budget.evaluations`` while holding exactly that many distinct architectures.
            callback: one or more :class:`SearchCallback`; one returning False stops the search.
        """
        self.env = env
        self.history = []
        self.rng = np.random.default_rng(self.seed)
        self._budget = SearchBudget.parse(budget)
        if not self._budget.count_repeats and getattr(env.unwrapped, "noise", False):
            raise AgentConfigError(
                "SearchBudget(count_repeats=False) makes repeats free, but on a noisy env (noise=True) a repeat "
                "is a new training with a new result; count them (count_repeats=True) or use noise=False"
            )
        self._evaluated, self._unique_time, self._repeats = set(), 0.0, 0
        if callback is None:
            callback = SearchCallback()
        elif isinstance(callback, Sequence):
            callback = CallbackList(callback)
        self._callback = callback
        self._stopped = False
        self._reset_seed = None if self.seed is None else int(np.random.default_rng(self.seed).integers(2**31))
        self._start_time = float(getattr(env.unwrapped, "total_train_time", 0.0))
        callback.on_search_start(self, env)
        try:
            self._search()
        except BudgetExhausted:
            pass
        self._finish()
        result = SearchResult(self.history, self.name, self._result_info(), self._result_scores())
        callback.on_search_end(result)
        return result

    @abstractmethod
    def _search(self) -> None:
        """Propose architectures through :meth:`evaluate` until it raises :class:`BudgetExhausted`."""

    def _finish(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Called once after :meth:`_search` has stopped (budget spent or stopped), before the result is
        built: nothing can be evaluated any more (a personalized search asks its final round here)."""

    def _result_info(self) -> dict[str, Any]:
        return {}

    def _result_scores(self) -> list[float] | None:
        """Scores of the history under the final search reward, when they differ from the env's rewards."""
        return None

    @property
    def exhausted(self) -> bool:
        """Whether the budget is spent or a callback stopped the search."""
        return self._stopped or self._budget.spent(self.evaluations_spent, self._spent_time(), self._repeats)

    @property
    def evaluations_spent(self) -> int:
        """Evaluations charged to the budget: all of them, or only the first of each architecture
        when the budget has ``count_repeats=False``."""
        return len(self.history) if self._budget.count_repeats else len(self._evaluated)

    def evaluate(self, encoding: Sequence[int]) -> Evaluation:
        """Evaluate one architecture through the env; raise :class:`BudgetExhausted` when spent."""
        if self.exhausted:
            raise BudgetExhausted
        seed, self._reset_seed = self._reset_seed, None  # seed the first reset only, like Gymnasium
        reward, info = evaluate_encoding(self.env, encoding, seed)
        return self.record(reward, info, encoding)

    @property
    def parallelism(self) -> int:
        """Evaluations the env's benchmark runs at once (1 for a table or in-process live training)."""
        return int(getattr(self.env.unwrapped, "parallelism", 1))

    @property
    def remaining_evaluations(self) -> int | None:
        """Evaluations the budget still allows (``None``: no limit on their number, e.g. a time budget)."""
        if self._budget.evaluations is None:
            return None
        return max(self._budget.evaluations - self.evaluations_spent, 0)

    def prefetch(self, encodings: Sequence[Sequence[int]]) -> None:
        """Have the env evaluate ``encodings`` at once, ahead of their episodes (:meth:`NATSBenchEnv.prefetch
        <natsbench_gym.envs.base.NATSBenchEnv.prefetch>`): the live backend trains them concurrently on
        its executor. Only as many as the budget still allows are sent, so no training is wasted on
        architectures the search will not reach; the history does not change (they are evaluated, in
        order, when the agent calls :meth:`evaluate`)."""
        prefetch = getattr(self.env.unwrapped, "prefetch", None)
        if prefetch is None or self.exhausted or not encodings:
            return
        encodings = list(encodings)
        remaining = self.remaining_evaluations
        if remaining is not None and self._budget.count_repeats:
            encodings = encodings[:remaining]
        elif remaining is not None:
            done = {ev.encoding for ev in self.history}
            fresh = [e for e in dict.fromkeys(tuple(int(x) for x in e) for e in encodings) if e not in done]
            encodings = fresh[:remaining]
        prefetch(encodings)

    def evaluate_many(self, encodings: Sequence[Sequence[int]]) -> list[Evaluation]:
        """Evaluate a batch: :meth:`prefetch` it (concurrently where the benchmark can), then
        :meth:`evaluate` each in order. The history is the one :meth:`evaluate` in a loop gives, on
        every executor; raises :class:`BudgetExhausted` when the budget runs out within the batch."""
        self.prefetch(encodings)
        return [self.evaluate(e) for e in encodings]

    def record(self, reward: float, info: dict[str, Any], encoding: Sequence[int] = ()) -> Evaluation:
        """Add the evaluation the env reported at the end of an episode to the history.

        :meth:`evaluate` calls it; an agent whose episodes are driven by someone else (SB3's
        ``learn``) calls it from a wrapper around the env, and checks :attr:`exhausted` to stop.
        """
        ev = evaluation_from_info(info, len(self.history) + 1, reward, encoding)
        self.history.append(ev)
        if ev.index in self._evaluated:
            self._repeats += 1
        else:
            self._evaluated.add(ev.index)
            if not math.isnan(ev.train_time):
                self._unique_time += ev.train_time
        if not self._callback.on_evaluation(ev):
            self._stopped = True
        return ev

    def _spent_time(self) -> float:
        if not self._budget.count_repeats:
            return self._unique_time
        if not self.history:
            return 0.0
        return self.history[-1].total_train_time - self._start_time

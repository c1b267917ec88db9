"""What both NATS-Bench environments share: one architecture per episode, one decision per step.

:class:`NATSBenchEnv` holds the whole mechanism (observation, reward, constraints, timing, ``info``)
and takes the shared arguments as one :class:`~natsbench_gym.envs.config.EnvConfig`;
:class:`~natsbench_gym.envs.topology.NATSBenchTopologyEnv` and
:class:`~natsbench_gym.envs.size.NATSBenchSizeEnv` only name their search space, turn their own
constraint arguments (forbidden ops, allowed widths) into a per-choice mask and draw the cell.

Speed matters (RL agents take millions of steps), so the work is front-loaded:

* for backends that declare ``capabilities.whole_space`` (tables) every metric -- and, for
  precomputable reward models (the built-in metrics), every reward -- of the whole space is computed
  once per env, in code order, so the final step is an array lookup;
* other backends (official ``nats_bench`` files, live training) are queried lazily, one architecture
  at a time, and the answers are kept for the env's lifetime;
* constraints become one boolean array over the space, reduced once per decision to "which choices
  still have a feasible completion", so :meth:`NATSBenchEnv.action_masks` is a row lookup;
* a non-final step updates a few entries of the observation in place and returns a copy.
"""

from __future__ import annotations

import logging
import math
import operator
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from natsbench_gym.benchmarks import Benchmark, load_benchmark
from natsbench_gym.envs.config import RENDER_MODES, EnvConfig, RewardModelLike, UnsupportedRenderModeError
from natsbench_gym.errors import (
    InvalidActionError,
    MissingMetricError,
    NATSBenchGymError,
    ResetNeededError,
)
from natsbench_gym.rewards import ScoringContext, as_reward_model
from natsbench_gym.spaces import Encoding, SearchSpace
from natsbench_gym.types import DeviceLatency, Metric, SpaceKind, parse_devices

__all__ = [
    "NATSBenchEnv",
    "InfeasibleConstraintsError",
    "UnsupportedRenderModeError",
    "RewardModelLike",
    "TRAINING_FREE_METRICS",
]

logger = logging.getLogger(__name__)

#: Metrics an architecture has without being trained: its size, its compute and its latency (a timed
#: forward pass). :meth:`NATSBenchEnv.training_free_metrics` returns them without an evaluation.
TRAINING_FREE_METRICS: tuple[Metric, ...] = (Metric.PARAMS, Metric.FLOPS, Metric.LATENCY)


class InfeasibleConstraintsError(NATSBenchGymError, ValueError):
    """The constraints given to an environment leave no architecture of the space to build."""


class NATSBenchEnv(gym.Env[np.ndarray, np.int64]):
    """Build one NATS-Bench architecture per episode, one decision per step (see the subclasses).

    This base class is not registered; make ``NATSBench-Topology-v0`` or ``NATSBench-Size-v0``. The
    arguments common to both are the fields of :class:`~natsbench_gym.envs.config.EnvConfig`, given
    as keywords or as ``config=``; a subclass adds its own keywords and passes its constraint on the
    choices as ``allowed_choices``.

    Attributes:
        config: the shared arguments the env was made with (an :class:`EnvConfig`).
        space: the search space (``env.unwrapped.space``).
        benchmark: the benchmark the metrics come from.
        dataset, budget, device: what the metrics are for (``device`` is the latency device).
        context: the :class:`~natsbench_gym.rewards.ScoringContext` the reward model scores in.
        reward_model: the reward model (see :meth:`set_reward_model`).
        total_train_time: simulated seconds of every architecture evaluated by this env since it was
            made or since :meth:`reset_time` (``reset`` keeps it), counted as NATS-Bench's
            ``simulate_train_eval`` counts them: training time plus one validation pass
            (:meth:`~natsbench_gym.benchmarks.Benchmark.validation_times`, where the backend has it).
        trained_on: what the accuracies were actually trained on, when that is not NATS-Bench's
            training on ``dataset`` (the live backend's digits); ``None`` otherwise.
        num_evaluations: architectures evaluated in the same period.
        num_decisions, num_choices: steps per episode and actions per step.
        constraints: the active constraints by name (``max_params``, ``allowed_choices`` ...).
        constrained: whether the constraints exclude any architecture (then :meth:`action_masks`
            masks some choices and a masked action is an error).
        feasible: read-only boolean array over the space, in code order: which architectures satisfy
            the constraints.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    space_kind: ClassVar[SpaceKind]
    #: The subclass's own keyword arguments (named in the error for an unknown keyword).
    own_arguments: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, config: EnvConfig | None = None, *, allowed_choices: np.ndarray | None = None, **options: Any
    ) -> None:
        self.config = config = EnvConfig.from_options(config, owner=type(self).__name__, own=self.own_arguments, **options)
        self.render_mode = config.render_mode
        self.benchmark: Benchmark = load_benchmark(self.space_kind, config.benchmark)
        self.space: SearchSpace = self.benchmark.space
        self.context = ScoringContext.create(self.benchmark, config.dataset, config.budget, config.device, config.accuracy_metric)
        self.dataset, self.budget, self.device = self.context.dataset, self.context.budget, self.context.device
        self.noise = config.noise

        d, c = self.space.num_decisions, self.space.num_choices
        self.num_decisions, self.num_choices = d, c
        self.action_space = spaces.Discrete(c)
        # [one-hot choice or "undecided" per decision] + [one-hot position of the next decision]
        self._pos_offset = d * (c + 1)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self._pos_offset + d,), dtype=np.float32)
        self._initial_obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        self._initial_obs[c : self._pos_offset : c + 1] = 1.0
        self._initial_obs[self._pos_offset] = 1.0
        self._obs = self._initial_obs.copy()

        #: Every metric the benchmark has here: what a lazy evaluation asks for.
        self._query_spec = self.benchmark.resolve(self.dataset, self.budget, None, self.device)
        self._metrics = self._query_spec.metrics
        self._has_train_time = Metric.TRAIN_TIME in self._metrics
        if not self._has_train_time:
            logger.info(
                "the %s benchmark has no training time for %s after %d epochs; total_train_time stays 0",
                self.benchmark.name, self.dataset.value, self.budget,
            )
        #: What the accuracies were trained on when that is not NATS-Bench's training on ``dataset``.
        self.trained_on: str | None = self.benchmark.trained_on(self.dataset)
        if self.noise and not self.benchmark.has_seed_values(self.context.accuracy_metric, self.dataset, self.budget):
            raise MissingMetricError(self._no_seed_values_message())

        codes_enc = self.space.all_encodings()
        #: Official index of every code (code order is the order of every per-space array here).
        self._index_of_code = self.benchmark.indices_of_encodings(codes_enc)
        self._index_list: list[int] = self._index_of_code.tolist()

        precompute = config.precompute
        precompute_metrics = self.benchmark.capabilities.whole_space if precompute is None else precompute
        self._metric_table: np.ndarray | None = None  # (num_metrics, size) in code order
        if precompute_metrics:
            columns = self.benchmark.query_many(self._index_of_code, self.dataset, self.budget, self._metrics, self.device)
            self._metric_table = np.stack([np.asarray(columns[m], dtype=np.float64) for m in self._metrics])
            self._metric_table.flags.writeable = False
        # Validation time of one pass, added to the training time as NATS-Bench's simulate_train_eval does.
        self._valid_time_table: np.ndarray | None = None  # in code order
        self._valid_time_cache: dict[int, float] = {}
        if self._has_train_time and self._metric_table is not None:
            self._valid_time_table = self.benchmark.validation_times(self._index_of_code, self.dataset, self.budget)
            self._valid_time_table.flags.writeable = False
        self._query_cache: dict[int, dict[Metric, float]] = {}
        self._seed_cache: dict[int, np.ndarray] = {}
        self._reward_table: np.ndarray | None = None
        self._reward_cache: dict[int, float] = {}
        #: Latency on more devices, reported as ``latency@<device>`` (the config's, then those the
        #: reward model reads: :class:`~natsbench_gym.types.DeviceLatency` in its ``required_metrics``).
        self._asked_devices: tuple[str, ...] = self._check_devices(config.latency_devices, "latency_devices")
        self.latency_devices: tuple[str, ...] = self._asked_devices
        self._model_devices: tuple[str, ...] = ()
        self._device_tables: dict[str, np.ndarray] = {}
        self._device_cache: dict[tuple[int, str], float] = {}
        self.set_reward_model(config.reward_model, precompute=precompute)

        self._setup_constraints(codes_enc, allowed_choices, config.max_params, config.max_flops, config.max_latency)

        self.total_train_time = 0.0
        self.num_evaluations = 0
        self._enc = [0] * d
        self._t = d  # "episode over" until the first reset
        self._prefix = 0
        self._last_info: dict[str, Any] = {}

    # --- Gymnasium API -----------------------------------------------------------------------------
    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Fix the current decision to ``action``; the last decision ends the episode and scores it."""
        try:
            a = operator.index(action)
        except TypeError:
            a = self._coerce_action(action)
        t = self._t
        c = self.num_choices
        if t >= self.num_decisions:
            raise ResetNeededError(
                "step() was called on a finished episode (or before the first reset); call reset() first"
            )
        if not 0 <= a < c:
            raise InvalidActionError(
                f"action {a} is outside the action space Discrete({c}); choices are 0..{c - 1} "
                f"({', '.join(self.space.choice_names)})"
            )
        prefix = self._prefix * c + a
        if self._constrained and not self._masks[t][self._prefix, a]:
            raise InvalidActionError(
                f"action {a} ({self.space.choice_names[a]}) at {self.space.decision_name(t)} is masked: no "
                f"architecture with it satisfies the constraints {self._describe_constraints()}; pick an action "
                "allowed by env.action_masks() (sb3-contrib's MaskablePPO does)"
            )
        obs = self._obs
        base = t * (c + 1)
        obs[base + c] = 0.0
        obs[base + a] = 1.0
        obs[self._pos_offset + t] = 0.0
        self._enc[t] = a
        self._prefix = prefix
        t += 1
        self._t = t
        if t < self.num_decisions:
            obs[self._pos_offset + t] = 1.0
            if self.render_mode == "human":
                self.render()
            return obs.copy(), 0.0, False, False, {"total_train_time": self.total_train_time}
        reward, info = self._evaluate(prefix)
        if self.render_mode == "human":
            self.render()
        return obs.copy(), reward, True, False, info

    def _coerce_action(self, action: Any) -> int:
        if isinstance(action, np.ndarray) and action.size == 1 and action.dtype.kind in "iu":
            return int(action.reshape(()))
        raise InvalidActionError(
            f"action {action!r} is not an integer; expected one of 0..{self.num_choices - 1} "
            f"({', '.join(self.space.choice_names)})"
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new, empty architecture. ``total_train_time`` is kept (see :meth:`reset_time`)."""
        super().reset(seed=seed)
        self._t = 0
        self._prefix = 0
        self._obs[:] = self._initial_obs
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), {"total_train_time": self.total_train_time}

    def render(self) -> str | None:
        """Draw the (partial) architecture as text: returned for ``"ansi"``, printed for ``"human"``."""
        if self.render_mode is None:
            gym.logger.warn(
                "You are calling render method without specifying any render mode. You can specify the render_mode "
                f'at initialization, e.g. gym.make("{self.spec.id if self.spec else type(self).__name__}", render_mode="ansi")'
            )
            return None
        text = self._draw(tuple(self._enc[: self._t]))
        if self._t == self.num_decisions and self._last_info:
            info = self._last_info
            text += f"\nreward {info['reward']:.4f}   index {info['index']}"
        if self.render_mode == "human":
            sys.stdout.write(text + "\n")
            return None
        return text

    def _draw(self, partial: Encoding) -> str:
        """Text drawing of a partial encoding (the subclasses draw their cell)."""
        names = self.space.choice_names
        return "\n".join(
            f"{self.space.decision_name(pos)}: {names[partial[pos]] if pos < len(partial) else '?'}"
            for pos in range(self.num_decisions)
        )

    # --- extras for agents ---------------------------------------------------------------------------
    def action_masks(self) -> np.ndarray:
        """Which choices of the current decision keep at least one architecture that meets the constraints.

        sb3-contrib's ``MaskablePPO`` calls this before each step. Without constraints every choice is
        allowed; once the episode is over (no decision pending) every entry is True.
        """
        t = self._t
        if not self._constrained or t >= self.num_decisions:
            return self._all_allowed.copy()
        return self._masks[t][self._prefix].copy()

    def training_free_metrics(self, archs: Sequence[str | Sequence[int]]) -> dict[Metric, np.ndarray]:
        """Params, FLOPs and latency of ``archs``, which need no training, without evaluating them.

        A search may use them to pre-screen candidates before it spends evaluations on them
        (LEMONADE's second stage). Nothing is evaluated: :attr:`num_evaluations` and
        :attr:`total_train_time` do not change, the episode in progress is left alone, and no accuracy
        or reward is returned. The live backend computes params and FLOPs in closed form and times a
        forward pass for the latency (cached); tables look them up.

        Args:
            archs: official strings or encodings.

        Returns:
            ``{Metric: array}`` for those of :data:`TRAINING_FREE_METRICS` the benchmark has (``nan``
            where it has no value for an architecture), in the order of ``archs``.
        """
        metrics = tuple(m for m in TRAINING_FREE_METRICS if m in self._metrics)
        codes = np.array([self.space.code(self.space.to_encoding(a)) for a in archs], dtype=np.int64)
        if self._metric_table is not None:
            rows = {m: i for i, m in enumerate(self._metrics)}
            return {m: self._metric_table[rows[m], codes].copy() for m in metrics}
        if not metrics or codes.size == 0:
            return {m: np.empty(0) for m in metrics}
        return self.benchmark.query_many(self._index_of_code[codes], self.dataset, self.budget, metrics, self.device)

    @property
    def parallelism(self) -> int:
        """Evaluations the benchmark runs at once (the live backend's executor workers; a table: 1)."""
        return self.benchmark.parallelism

    def prefetch(self, archs: Sequence[str | Sequence[int]]) -> None:
        """Evaluate ``archs`` on the benchmark now, all at once, ahead of their episodes.

        The live backend on a parallel executor trains them concurrently; the episodes that build
        them later take their metrics from the benchmark's cache. Nothing is counted here:
        :attr:`num_evaluations`, :attr:`total_train_time` and rewards change only when an episode
        builds the architecture, so a search that prefetches has the same history as one that
        does not. A table backend (or a precomputed env) has nothing to do.

        Args:
            archs: official strings or encodings.
        """
        if self._metric_table is not None or not archs:
            return
        codes = [self.space.code(self.space.to_encoding(a)) for a in archs]
        indices = [i for i in dict.fromkeys(self._index_list[c] for c in codes) if i not in self._query_cache]
        if not indices:
            return
        columns = self.benchmark.query_many(np.array(indices, dtype=np.int64), self.dataset, self.budget, self._metrics, self.device)
        for j, index in enumerate(indices):
            self._query_cache[index] = {m: float(columns[m][j]) for m in self._metrics}

    def submit(self, arch: str | Sequence[int]) -> Future:
        """Start evaluating ``arch`` on the benchmark; a future that is done when its metrics are in.

        The asynchronous form of :meth:`prefetch`: on a parallel live backend it returns at once
        (the architecture trains on a free worker) and an asynchronous search takes whichever
        future finishes first, then builds that architecture in an episode (a cache hit). Nothing is
        counted until then. Elsewhere the future is already done.
        """
        code = self.space.code(self.space.to_encoding(arch))
        index = self._index_list[code]
        if self._metric_table is not None or index in self._query_cache:
            done: Future = Future()
            done.set_result(None)
            return done
        return self.benchmark.submit(index, self.dataset, self.budget, self._metrics, self.device)

    def reset_time(self) -> None:
        """Set :attr:`total_train_time` and :attr:`num_evaluations` back to 0 (NATS-Bench's ``reset_time``)."""
        self.total_train_time = 0.0
        self.num_evaluations = 0

    def clear_cache(self) -> None:
        """Forget the metrics and rewards of the architectures queried so far (lazy backends only;
        the tables of a precomputed env are kept). The next evaluation of each asks the benchmark again."""
        self._query_cache.clear()
        self._device_cache.clear()
        self._seed_cache.clear()
        self._reward_cache.clear()

    def is_feasible(self, arch: str | Sequence[int]) -> bool:
        """Whether ``arch`` (string or encoding) satisfies the constraints."""
        return bool(self.feasible[self.space.code(self.space.to_encoding(arch))])

    @property
    def encoding(self) -> Encoding:
        """Decisions taken so far in this episode."""
        return tuple(self._enc[: self._t])

    @property
    def constrained(self) -> bool:
        """Whether the constraints exclude any architecture (``forbidden_ops``, ``max_params`` ...)."""
        return self._constrained

    def set_reward_model(self, reward_model: RewardModelLike, precompute: bool | None = None) -> None:
        """Replace the reward model (e.g. a RankNet retrained between phases of a personalized search).

        Args:
            reward_model: anything :func:`~natsbench_gym.rewards.as_reward_model` takes: a fixed-metric
                name, a reward model, an object with ``score_many(metrics, context)``, or a function of
                one architecture's ``{Metric: value}``.
            precompute: score the whole space now (when the env holds the whole space's metrics).
                Default: when the model is ``precomputable`` (the built-in metrics, pure functions of
                the metrics); any other model is scored at each evaluation, so a model that keeps
                learning is always asked afresh.

        Raises:
            MissingMetricError: the model reads a metric the benchmark does not have here.
        """
        model = as_reward_model(reward_model)
        required = tuple(model.required_metrics(self.context))
        self.benchmark.check_metrics([m for m in required if not isinstance(m, DeviceLatency)], self.dataset, self.budget)
        self._model_devices = self._check_devices([m.device for m in required if isinstance(m, DeviceLatency)], "the reward model's latency")
        self.latency_devices = tuple(dict.fromkeys(self._asked_devices + self._model_devices))
        self.reward_model = model
        self._reward_table = None
        self._reward_cache = {}
        self._cache_rewards = bool(model.precomputable)
        if precompute is None:
            precompute = self._cache_rewards
        if precompute and self._metric_table is not None:
            metrics: dict[Any, np.ndarray] = {m: self._metric_table[i] for i, m in enumerate(self._metrics)}
            metrics.update({DeviceLatency(d): self._device_table(d) for d in self.latency_devices})
            rewards = np.asarray(model.score_many(metrics, self.context), dtype=np.float64)
            if rewards.shape != (self.space.size,):
                raise ValueError(
                    f"reward model {model!r} returned shape {rewards.shape} for {self.space.size} architectures; "
                    "score_many must return one score per architecture"
                )
            missing = int(np.isnan(rewards).sum())
            if missing:
                logger.warning("%d of %d architectures have no reward (nan) under %r", missing, rewards.size, model)
            rewards.flags.writeable = False
            self._reward_table = rewards

    # --- set-up ------------------------------------------------------------------------------------
    def _setup_constraints(
        self,
        codes_enc: np.ndarray,
        allowed_choices: np.ndarray | None,
        max_params: float | None,
        max_flops: float | None,
        max_latency: float | None,
    ) -> None:
        d, c = self.num_decisions, self.num_choices
        feasible = np.ones(self.space.size, dtype=bool)
        self.constraints: dict[str, Any] = {}
        if allowed_choices is not None:
            allowed = np.broadcast_to(np.asarray(allowed_choices, dtype=bool), (d, c))
            if not allowed.all():
                for pos in range(d):
                    feasible &= allowed[pos][codes_enc[:, pos]]
                self.constraints["allowed_choices"] = allowed.copy()
        for metric, cap in ((Metric.PARAMS, max_params), (Metric.FLOPS, max_flops), (Metric.LATENCY, max_latency)):
            if cap is None:
                continue
            cap = float(cap)
            self.benchmark.check_metrics([metric], self.dataset, self.budget)
            values = self.benchmark.query_many(self._index_of_code, self.dataset, self.budget, [metric], self.device)[metric]
            unknown = int(np.isnan(values).sum())
            if unknown:
                logger.warning("%d architectures have no %s value and count as violating max_%s", unknown, metric.value, metric.value)
            with np.errstate(invalid="ignore"):
                feasible &= values <= cap
            self.constraints[f"max_{metric.value}"] = cap
        if not feasible.any():
            raise InfeasibleConstraintsError(
                f"no {self.space.kind.value} architecture satisfies the constraints {self._describe_constraints()} "
                f"on {self.dataset.value}; relax them"
            )
        feasible.flags.writeable = False
        self.feasible = feasible
        self._constrained = not feasible.all()
        # _masks[t][prefix_code] = which choices at decision t have at least one feasible completion.
        self._masks: list[np.ndarray] = []
        for t in range(d):
            m = feasible.reshape(c**t, c, c ** (d - t - 1)).any(axis=2)
            m.flags.writeable = False
            self._masks.append(m)
        self._all_allowed = np.ones(c, dtype=bool)
        if self._constrained:
            logger.info("%d of %d architectures satisfy %s", int(feasible.sum()), feasible.size, self._describe_constraints())

    def _describe_constraints(self) -> str:
        parts = []
        for key, value in self.constraints.items():
            if key == "allowed_choices":
                names = self.space.choice_names
                parts.append("choices in {" + ", ".join(n for n, ok in zip(names, value.all(axis=0), strict=True) if ok) + "}")
            else:
                parts.append(f"{key} {value:g}")
        return "(" + ", ".join(parts) + ")" if parts else "(none)"

    def _no_seed_values_message(self) -> str:
        m = self.context.accuracy_metric
        have = [
            f"{ds.value} after {b} epochs"
            for ds in self.benchmark.datasets
            for b in self.benchmark.budgets
            if self.benchmark.has_seed_values(m, ds, b)
        ]
        hint = f" (it has them for: {'; '.join(have)})" if have else ""
        return (
            f"noise=True samples one seed's {m.value}, but the {self.benchmark.name} benchmark has no per-seed "
            f"{m.value} on {self.dataset.value} after {self.budget} epochs{hint}; use noise=False or another "
            "dataset/budget"
        )

    # --- evaluation ------------------------------------------------------------------------------
    def _evaluate(self, code: int) -> tuple[float, dict[str, Any]]:
        """Metrics and reward of the finished architecture ``code``; account its training time."""
        index = self._index_list[code]
        if self._metric_table is not None:
            values = self._metric_table[:, code].tolist()
            metrics = dict(zip(self._metrics, values, strict=True))
        else:
            metrics = self._query_cache.get(index)
            if metrics is None:
                metrics = self.benchmark.query_resolved(index, self._query_spec)
                self._query_cache[index] = metrics
        if self.latency_devices:
            metrics = dict(metrics)
            for d in self.latency_devices:
                metrics[DeviceLatency(d)] = self._device_latency(d, code, index)
        if self.noise:
            metrics = dict(metrics)
            metrics[self.context.accuracy_metric] = self._sample_seed_value(index, metrics)
            reward = self._score(metrics)
        elif self._reward_table is not None:
            reward = float(self._reward_table[code])
        elif self._cache_rewards:
            reward = self._reward_cache.get(index)
            if reward is None:
                reward = self._reward_cache[index] = self._score(metrics)
        else:
            reward = self._score(metrics)
        train_time, valid_time = math.nan, math.nan
        if self._has_train_time:
            if self._valid_time_table is not None:
                valid_time = float(self._valid_time_table[code])
            else:
                valid_time = self._valid_time_cache.get(index)
                if valid_time is None:
                    valid_time = float(self.benchmark.validation_times([index], self.dataset, self.budget)[0])
                    self._valid_time_cache[index] = valid_time
            # NATS-Bench's simulate_train_eval: train-all-time + valid-per-time (when the data has it)
            train_time = metrics.get(Metric.TRAIN_TIME, math.nan) + (valid_time if valid_time == valid_time else 0.0)
        if train_time == train_time:  # not nan
            self.total_train_time += train_time
        self.num_evaluations += 1
        info = {
            "arch": self.space.format(self._enc),
            "index": index,
            "encoding": tuple(self._enc),
            "metrics": {m.value: v for m, v in metrics.items()},
            "reward": reward,
            "train_time": train_time,
            "valid_time": valid_time,
            "total_train_time": self.total_train_time,
            "dataset": self.dataset.value,
            "trained_on": self.trained_on,
            "budget": self.budget,
            "benchmark": self.benchmark.describe(),
        }
        self._last_info = info
        return reward, info

    def set_latency_devices(self, devices: Sequence[str] | str) -> None:
        """Report the latency on ``devices`` too (``"all"``: every device the benchmark has), as
        ``info["metrics"]["latency@<device>"]``, besides those the reward model reads.

        Raises:
            UnknownNameError: a device the benchmark has no latency for (with the devices it has).
        """
        self._asked_devices = self._check_devices(devices, "latency_devices")
        self.latency_devices = tuple(dict.fromkeys(self._asked_devices + self._model_devices))

    def _check_devices(self, devices: Sequence[str] | str, what: str) -> tuple[str, ...]:
        devices = parse_devices(devices, what)
        if devices == "all":
            if not self.benchmark.latency_devices:
                raise MissingMetricError(f"{what}='all': the {self.benchmark.name} benchmark has no latency on any device")
            return tuple(self.benchmark.latency_devices)
        return tuple(self.benchmark.check_device(d) for d in devices)

    def _device_table(self, device: str) -> np.ndarray:
        """The latency on ``device`` of every code (whole-space backends), looked up once."""
        table = self._device_tables.get(device)
        if table is None:
            column = self.benchmark.query_many(self._index_of_code, self.dataset, self.budget, [Metric.LATENCY], device)[Metric.LATENCY]
            table = self._device_tables[device] = np.asarray(column, dtype=np.float64)
            table.flags.writeable = False
        return table

    def _device_latency(self, device: str, code: int, index: int) -> float:
        if self._metric_table is not None:
            return float(self._device_table(device)[code])
        value = self._device_cache.get((index, device))
        if value is None:
            column = self.benchmark.query_many([index], self.dataset, self.budget, [Metric.LATENCY], device)[Metric.LATENCY]
            value = self._device_cache[(index, device)] = float(column[0])
        return value

    def _score(self, metrics: Mapping[Metric, float]) -> float:
        arrays = {m: np.array([v], dtype=np.float64) for m, v in metrics.items()}
        return float(np.asarray(self.reward_model.score_many(arrays, self.context), dtype=np.float64).reshape(-1)[0])

    def _sample_seed_value(self, index: int, metrics: Mapping[Metric, float]) -> float:
        """One seed's value of the search accuracy, drawn with ``self.np_random`` (NATS-Bench's ``is_random``)."""
        values = self._seed_cache.get(index)
        if values is None:
            values = self.benchmark.seed_values(index, self.context.accuracy_metric, self.dataset, self.budget)
            self._seed_cache[index] = values
        if values.size == 0:  # this architecture has no per-seed record: its mean is all there is
            return metrics[self.context.accuracy_metric]
        return float(values[self.np_random.integers(values.size)])

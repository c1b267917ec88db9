"""Gymnasium vector envs whose architectures are evaluated together (no torch).

Every episode of a NATS-Bench env has the same length (one decision per step), so the sub-envs of a
synchronous vector env finish their architectures on the same step. :class:`PrefetchingVectorEnv`
hands those architectures to the benchmark at once (:meth:`NATSBenchEnv.prefetch
<natsbench_gym.envs.base.NATSBenchEnv.prefetch>`) before the step that builds them, so the live
backend on a parallel executor trains them concurrently; then the sub-envs step as usual, one after
another, and read their metrics from the benchmark's cache. Observations, rewards and ``info`` are
those of the plain :class:`gymnasium.vector.SyncVectorEnv`, on every executor.

Example:
    >>> from natsbench_gym.envs.vector import make_vector_env
    >>> from natsbench_gym.live import LiveBenchmark
    >>> bench = LiveBenchmark("topology", executor="process")  # doctest: +SKIP
    >>> envs = make_vector_env("NATSBench-Topology-v0", 4, benchmark=bench, dataset="cifar10")  # doctest: +SKIP
    >>> obs, info = envs.reset(seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from natsbench_gym.errors import InvalidConfigError

__all__ = ["PrefetchingVectorEnv", "finishing_architectures", "make_vector_env"]


def finishing_architectures(envs: list[gym.Env], actions) -> list[tuple[int, ...]]:
    """The architectures that ``actions`` complete, one per sub-env whose episode they finish."""
    out = []
    for env, action in zip(envs, np.asarray(actions).reshape(len(envs), -1)[:, 0].tolist(), strict=True):
        base = env.unwrapped
        taken = getattr(base, "encoding", None)
        if taken is not None and len(taken) == base.num_decisions - 1:
            out.append((*taken, int(action)))
    return out


class PrefetchingVectorEnv(gym.vector.VectorWrapper):
    """A :class:`gymnasium.vector.SyncVectorEnv` of NATS-Bench envs that evaluates the architectures
    its sub-envs finish on one step together (see the module docstring).

    Args:
        env: a ``SyncVectorEnv`` whose sub-envs are NATS-Bench envs sharing one benchmark (as
            :func:`make_vector_env` builds them).
        prefetch: what the finished architectures are handed to; default: the first sub-env's
            :meth:`~natsbench_gym.envs.base.NATSBenchEnv.prefetch`. A search agent passes its own
            :meth:`~agents.base.SearchAgent.prefetch`, which sends only what its budget still allows.
    """

    def __init__(
        self, env: gym.vector.SyncVectorEnv, prefetch: Callable[[list[tuple[int, ...]]], None] | None = None
    ) -> None:
        if not isinstance(env, gym.vector.SyncVectorEnv):
            raise InvalidConfigError(
                f"PrefetchingVectorEnv wraps a gymnasium.vector.SyncVectorEnv, got {type(env).__name__}; "
                "use make_vector_env(env_id, num_envs, ...) (an AsyncVectorEnv's workers hold their own benchmarks)"
            )
        super().__init__(env)
        self._prefetch = prefetch

    def step(self, actions):
        finals = finishing_architectures(self.env.envs, actions)
        if finals:
            (self._prefetch or self.env.envs[0].unwrapped.prefetch)(finals)
        return self.env.step(actions)


def make_vector_env(env_id: str, num_envs: int, **kwargs: Any) -> PrefetchingVectorEnv:
    """``num_envs`` copies of ``gym.make(env_id, **kwargs)`` in a :class:`PrefetchingVectorEnv`.

    Pass ``benchmark=`` a benchmark object (e.g. a :class:`~natsbench_gym.live.benchmark.LiveBenchmark`
    with an executor) so that the sub-envs share it, its cache and its workers.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise InvalidConfigError(f"num_envs={num_envs!r}; expected a positive integer, e.g. the executor's workers")
    return PrefetchingVectorEnv(gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **kwargs) for _ in range(num_envs)]))

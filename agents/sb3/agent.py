"""The stable-baselines3 models of :mod:`agents.sb3.factory` behind the :class:`~agents.base.SearchAgent` interface.

SB3 drives the env itself (``model.learn``), so the agent puts a thin wrapper between them: every
finished episode is one evaluation, recorded in the agent's history through
:meth:`~agents.base.SearchAgent.record` (the same ``info`` -> ``Evaluation`` conversion, callbacks,
budget and all; so ``agents.base.TensorBoardCallback`` logs it like any agent), and an SB3 callback
stops ``learn`` as soon as the budget is spent or a search callback asks to stop. The policy learns
online from exactly the evaluations the budget allows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

from agents.base import SearchAgent
from agents.errors import AgentConfigError, UnknownSettingError
from agents.personalization import Personalization, PersonalizedSearch
from agents.sb3.factory import ALGORITHMS, _check_algo, make_sb3_agent
from agents.shaping import RankShaping, check_reward_shaping

__all__ = ["SB3Agent", "RecordEvaluations", "PrefetchingVecEnv"]


class RecordEvaluations(gym.Wrapper):
    """Hands every finished episode's reward and ``info`` to ``agent.record``.

    With ``shaping`` (e.g. :class:`~agents.shaping.RankShaping`) the learner gets
    ``shaping(index, reward)`` instead of the env's reward; the agent records the env's.

    Around a copy of the search's env (``n_envs > 1``) it also gives the copy the search env's reward
    model at each reset, so an episode is rewarded as the search env's would be when it starts (a
    personalization round may have learned a new model since the copy was made).
    """

    def __init__(self, env: gym.Env, agent: SearchAgent, shaping: Callable[[int, float], float] | None = None) -> None:
        super().__init__(env)
        self.agent = agent
        self.shaping = shaping

    def reset(self, **kwargs):
        search_env = getattr(self.agent, "env", None)
        if search_env is not None and search_env.unwrapped is not self.env.unwrapped:
            model = search_env.unwrapped.reward_model
            if self.env.unwrapped.reward_model is not model:
                self.env.unwrapped.set_reward_model(model)
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        # exhausted: a side-by-side episode (n_envs > 1) finished on the step that spent the budget
        if terminated and "arch" in info and not self.agent.exhausted:
            self.agent.record(float(reward), info)
            if self.shaping is not None:
                reward = self.shaping(self.agent.history[-1].index, float(reward))
        return obs, reward, terminated, truncated, info


class PrefetchingVecEnv(VecEnvWrapper):
    """An SB3 ``DummyVecEnv`` of NATS-Bench envs whose sub-envs' finished architectures are evaluated
    together: before the step that completes them they go to ``prefetch`` (the agent's
    :meth:`~agents.base.SearchAgent.prefetch`, which the live backend trains concurrently on its
    executor); the sub-envs then step one after another as usual, reading the cache. The SB3
    counterpart of :class:`natsbench_gym.envs.vector.PrefetchingVectorEnv`."""

    def __init__(self, venv: DummyVecEnv, prefetch: Callable[[list[tuple[int, ...]]], None]) -> None:
        super().__init__(venv)
        self._prefetch = prefetch

    def step_async(self, actions) -> None:
        from natsbench_gym.envs.vector import finishing_architectures

        finals = finishing_architectures(self.venv.envs, actions)
        if finals:
            self._prefetch(finals)
        self.venv.step_async(actions)

    def step_wait(self):
        return self.venv.step_wait()

    def reset(self):
        return self.venv.reset()


#: SB3 constructor arguments the agent sets itself.
_SET_BY_THE_AGENT = ("policy", "env", "seed", "_init_setup_model")


class _StopWhenExhausted(BaseCallback):
    def __init__(self, agent: SearchAgent) -> None:
        super().__init__()
        self.agent = agent

    def _on_step(self) -> bool:
        return not self.agent.exhausted


class SB3Agent(PersonalizedSearch, SearchAgent):
    """Train PPO / A2C / MaskablePPO online; each episode is one evaluation, charged to the budget as
    it counts them (with ``SearchBudget(count_repeats=False)`` an episode that rebuilds an architecture
    already evaluated is free, and the policy still learns from its reward).

    Args:
        algo: ``"ppo"``, ``"a2c"`` or ``"maskable_ppo"`` (needed when the env has constraints).
        seed: seeds the SB3 model (weights, action sampling, the env's first reset).
        episodes_per_update: episodes per rollout (PPO / MaskablePPO; A2C keeps its 4). SB3's factory
            default is 64, which a 100-evaluation budget would spend on one update; 10 gives 10.
        personalization: learn the reward from preferences first (random architectures, then RankNet).
        reward_shaping: ``"none"`` (the learner gets the env's reward) or ``"rank"`` (its quantile among
            the distinct architectures evaluated so far, :class:`~agents.shaping.RankShaping`; the
            history keeps the env's reward).
        n_envs: episodes run side by side (an SB3 ``DummyVecEnv`` of copies of the env, made from its
            spec and sharing its benchmark): their architectures are evaluated together
            (:class:`PrefetchingVecEnv`), so the live backend on a parallel executor trains them
            concurrently. ``episodes_per_update`` is split over them. Needs an env made with
            ``gym.make`` and a budget in evaluations.
        **hyperparameters: any SB3 constructor argument of ``algo`` (overrides the factory's defaults),
            but ``policy``, ``env`` and ``seed``, which the agent sets.

    After a search :attr:`model` is the trained SB3 model.

    Raises:
        UnknownNameError: ``algo`` is not one of ``agents.sb3.ALGORITHMS``.
        UnknownSettingError: a hyperparameter ``algo``'s constructor does not take.
        AgentConfigError: ``episodes_per_update < 1``.
    """

    def __init__(
        self,
        algo: str = "ppo",
        seed: int | None = None,
        episodes_per_update: int = 10,
        personalization: Personalization | None = None,
        reward_shaping: str = "none",
        n_envs: int = 1,
        **hyperparameters: Any,
    ) -> None:
        check_reward_shaping(reward_shaping)
        if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
            raise AgentConfigError(f"n_envs must be a positive integer, got {n_envs!r}; e.g. the executor's workers")
        key = _check_algo(algo)
        own = [name for name in inspect.signature(type(self)).parameters if name != "hyperparameters"]
        sb3 = [name for name in inspect.signature(ALGORITHMS[key]).parameters if name not in _SET_BY_THE_AGENT]
        for name in hyperparameters:
            if name not in sb3:
                raise UnknownSettingError(algo, name, own + sb3)
        if episodes_per_update < 1:
            raise AgentConfigError(
                f"episodes_per_update must be >= 1, got {episodes_per_update}; it is the number of episodes per rollout"
            )
        super().__init__(seed=seed)
        self.reward_shaping = reward_shaping
        self.algo = algo
        self.name = algo
        self.episodes_per_update = int(episodes_per_update)
        self.personalization = personalization
        self.hyperparameters = hyperparameters
        self.n_envs = n_envs
        self.model = None

    def _search(self) -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._learn()
        finally:
            torch.set_num_threads(threads)

    def _learn(self) -> None:
        if self.personalization is not None:
            self._warm_start()
        if self.exhausted:
            return
        d = self.env.unwrapped.num_decisions
        kwargs: dict[str, Any] = {}
        if self.algo.lower().replace("-", "_") != "a2c":
            n_steps = max(1, self.episodes_per_update // self.n_envs) * d
            kwargs = {"n_steps": n_steps, "batch_size": max(d, n_steps * self.n_envs // 2)}
        kwargs.update(self.hyperparameters)
        sb3_seed = int(self.rng.integers(2**31))
        shaping = RankShaping() if self.reward_shaping == "rank" else None
        env = RecordEvaluations(self.env, self, shaping)
        if self.n_envs > 1:
            env = self._vector_env(env, shaping)
        self.model = make_sb3_agent(self.algo, env, seed=sb3_seed, **kwargs)
        if self._budget.evaluations is not None and self._budget.count_repeats:
            steps = (self._budget.evaluations - len(self.history)) * d
        else:
            steps = 10**12  # a time budget, or free repeats: the callback stops learning
        self.model.learn(total_timesteps=steps, callback=_StopWhenExhausted(self))

    def _vector_env(self, first: gym.Env, shaping) -> PrefetchingVecEnv:
        """``n_envs`` episodes side by side: the search's env first, then copies made from its spec."""
        base = self.env.unwrapped
        spec = base.spec  # not self.env.spec: a wrapper's spec is a deep copy, its benchmark with it
        if spec is None:
            raise AgentConfigError(
                f"n_envs={self.n_envs} copies the env from its spec, and this env has none; make it with gym.make(...)"
            )
        if self._budget.train_time is not None:
            raise AgentConfigError(
                f"n_envs={self.n_envs} with a train_time budget: each copy counts its own simulated time; "
                "give the budget in evaluations (SearchBudget(evaluations=...)) or use n_envs=1"
            )

        def copy() -> gym.Env:
            env = gym.make(spec.id, **{**spec.kwargs, "benchmark": base.benchmark})  # shared: its cache and workers
            env.unwrapped.set_reward_model(base.reward_model)  # a learned reward included
            return RecordEvaluations(env, self, shaping)

        return PrefetchingVecEnv(DummyVecEnv([lambda: first] + [copy] * (self.n_envs - 1)), self.prefetch)

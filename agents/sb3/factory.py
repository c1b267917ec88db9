"""stable-baselines3 agents on the NATS-Bench environments: a factory, a logging callback, a sampler.

An episode of ``NATSBench-Topology-v0`` / ``NATSBench-Size-v0`` is 6 / 5 steps with a single reward at
the end, so SB3's defaults (2048-step rollouts, discounting) suit it poorly. :func:`make_sb3_agent`
builds PPO, A2C or MaskablePPO with rollouts of whole episodes, ``gamma=1`` and a small MLP;
:class:`NASCallback` logs what a NAS user wants to see in TensorBoard (``nas/episode_reward``,
``nas/best_reward``, ``nas/best_test_accuracy``, the best architecture as text) and keeps every
evaluated architecture; :func:`sample_architectures` draws architectures from a trained policy.

Example:
    >>> import gymnasium as gym, natsbench_gym
    >>> from agents.sb3 import NASCallback, make_sb3_agent
    >>> env = gym.make("NATSBench-Topology-v0", dataset="cifar10")  # doctest: +SKIP
    >>> model = make_sb3_agent("ppo", env, seed=0)  # doctest: +SKIP
    >>> callback = NASCallback()  # doctest: +SKIP
    >>> model.learn(20_000, callback=callback)  # doctest: +SKIP
    >>> callback.best.arch  # doctest: +SKIP
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'

This module imports torch (through SB3); nothing in ``natsbench_gym`` imports it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from agents.base import Evaluation
from natsbench_gym.errors import UnknownNameError

__all__ = [
    "ALGORITHMS",
    "NASCallback",
    "default_hyperparameters",
    "make_sb3_agent",
    "sample_architectures",
    "evaluation_from_info",
]

logger = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "maskable_ppo": MaskablePPO}

#: Episodes per rollout (per update) for PPO / MaskablePPO, over all parallel envs.
_EPISODES_PER_ROLLOUT = 64


def default_hyperparameters(algo: str, episode_length: int, n_envs: int = 1) -> dict[str, Any]:
    """Constructor arguments that suit ``episode_length``-step episodes rewarded at the end.

    * ``gamma=1``: the only reward comes at the last step and nothing is gained by delaying it.
    * Rollouts hold whole episodes: PPO collects 64 episodes per update (split over ``n_envs``),
      A2C 4 per environment.
    * A 64x64 MLP on CPU: the observation is a short one-hot vector.
    * A little entropy bonus (0.01) keeps the policy exploring a space whose rewards are close.
    """
    algo = _check_algo(algo)
    common: dict[str, Any] = {
        "gamma": 1.0,
        "ent_coef": 0.01,
        "policy_kwargs": {"net_arch": [64, 64]},
        "device": "cpu",
    }
    if algo == "a2c":
        return {**common, "n_steps": 4 * episode_length, "gae_lambda": 1.0, "learning_rate": 7e-4}
    per_env = max(episode_length, (_EPISODES_PER_ROLLOUT * episode_length // n_envs) // episode_length * episode_length)
    return {
        **common,
        "n_steps": per_env,
        "batch_size": 64,
        "n_epochs": 10,
        "gae_lambda": 0.95,
        "learning_rate": 3e-4,
    }


def make_sb3_agent(
    algo: str,
    env: gym.Env | VecEnv | str,
    *,
    seed: int | None = None,
    tensorboard_log: str | None = None,
    verbose: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> BaseAlgorithm:
    """Build a PPO, A2C or MaskablePPO agent for a NATS-Bench environment.

    Args:
        algo: ``"ppo"``, ``"a2c"`` or ``"maskable_ppo"`` (respects ``env.action_masks()``).
        env: an environment, a VecEnv, or an env id (made with ``env_kwargs``).
        seed: seeds the agent (and, through SB3, the environment's first reset).
        tensorboard_log: TensorBoard directory; ``None`` logs nowhere.
        verbose: SB3's verbosity.
        env_kwargs: arguments of ``gym.make`` when ``env`` is an id.
        **overrides: any SB3 constructor argument; replaces :func:`default_hyperparameters`.

    Returns:
        The SB3 model; train it with ``model.learn(n, callback=NASCallback())``.

    Raises:
        UnknownNameError: ``algo`` is not one of :data:`ALGORITHMS`.
    """
    algo = _check_algo(algo)
    if isinstance(env, str):
        env = gym.make(env, **dict(env_kwargs or {}))
    elif env_kwargs:
        raise ValueError("env_kwargs is only used when env is an id; configure the environment you pass instead")
    episode_length, n_envs = _episode_length(env)
    kwargs = default_hyperparameters(algo, episode_length, n_envs)
    kwargs.update(overrides)
    model = ALGORITHMS[algo]("MlpPolicy", env, seed=seed, tensorboard_log=tensorboard_log, verbose=verbose, **kwargs)
    logger.info("built %s on %s (%s)", algo, getattr(env, "spec", None) and env.spec.id, kwargs)
    return model


def _check_algo(algo: str) -> str:
    key = algo.lower().replace("-", "_") if isinstance(algo, str) else algo
    if key == "maskableppo":
        key = "maskable_ppo"
    if key not in ALGORITHMS:
        raise UnknownNameError("algorithm", algo, ALGORITHMS)
    return key


def _episode_length(env: gym.Env | VecEnv) -> tuple[int, int]:
    if isinstance(env, VecEnv):
        return int(env.get_attr("num_decisions")[0]), env.num_envs
    return int(env.unwrapped.num_decisions), 1


def evaluation_from_info(info: Mapping[str, Any], step: int) -> Evaluation:
    """The :class:`~agents.base.Evaluation` of a finished episode's ``info``."""
    return Evaluation(
        step=step,
        arch=str(info["arch"]),
        index=int(info["index"]),
        encoding=tuple(int(x) for x in info["encoding"]),
        metrics={str(k): float(v) for k, v in info["metrics"].items()},
        reward=float(info["reward"]),
        train_time=float(info["train_time"]),
        total_train_time=float(info["total_train_time"]),
    )


class NASCallback(BaseCallback):
    """Record every architecture the agent builds during training and log the search to TensorBoard.

    Logged (SB3 logger, so TensorBoard, CSV ... as configured): ``nas/episode_reward`` (mean since the
    last dump), ``nas/best_reward``, ``nas/best_test_accuracy`` and ``nas/best_<metric>`` for every
    metric of the best architecture so far (at the environment's budget), ``nas/evaluations``,
    ``nas/total_train_time`` (simulated seconds) and ``nas/best_arch`` (text, TensorBoard only).

    Attributes:
        history: every evaluated architecture, in order.
        best: the best one under the reward (the first on ties), or ``None``.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.history: list[Evaluation] = []
        self.best: Evaluation | None = None

    def _on_step(self) -> bool:
        improved = False
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if not done or "arch" not in info:
                continue
            ev = evaluation_from_info(info, len(self.history) + 1)
            self.history.append(ev)
            self.logger.record_mean("nas/episode_reward", ev.reward)
            if self.best is None or ev.reward > self.best.reward:
                self.best = ev
                improved = True
        if self.best is not None:
            best = self.best
            self.logger.record("nas/best_reward", best.reward)
            for name, value in best.metrics.items():
                if not math.isnan(value):
                    self.logger.record(f"nas/best_{name}", value)
            self.logger.record("nas/evaluations", len(self.history))
            self.logger.record("nas/total_train_time", self.history[-1].total_train_time)
            if improved:
                self.logger.record("nas/best_arch", best.arch, exclude=("stdout", "log", "csv", "json"))
                if self.verbose:
                    logger.info("new best %s reward %.4f after %d evaluations", best.arch, best.reward, len(self.history))
        return True

    def top(self, k: int = 5) -> list[Evaluation]:
        """The ``k`` best distinct architectures seen, best first."""
        seen: dict[int, Evaluation] = {}
        for ev in self.history:
            if ev.index not in seen or ev.reward > seen[ev.index].reward:
                seen[ev.index] = ev
        return sorted(seen.values(), key=lambda e: -e.reward)[:k]


def sample_architectures(
    model: BaseAlgorithm,
    env: gym.Env,
    n: int,
    rng: np.random.Generator | None = None,
    deterministic: bool = False,
) -> list[dict[str, Any]]:
    """Build ``n`` architectures with ``model``'s policy in ``env``; return each final ``info``.

    Actions are drawn from the policy's probabilities with ``rng`` (not torch's global generator),
    so the same generator gives the same architectures. Masks are respected when ``env`` has
    constraints. Use an env of its own: its ``total_train_time`` grows with every architecture.

    Args:
        model: a trained PPO, A2C or MaskablePPO.
        env: a NATS-Bench environment (wrapped or not) with the same observation space.
        n: number of architectures.
        rng: generator for the sampled actions (default: a fresh unseeded one).
        deterministic: take the most probable action instead of sampling.
    """
    rng = np.random.default_rng() if rng is None else rng
    policy = model.policy
    base = env.unwrapped
    masked = base.constrained
    infos = []
    for _ in range(n):
        obs, _ = env.reset()
        terminated = truncated = False
        info: dict[str, Any] = {}
        while not (terminated or truncated):
            obs_t, _ = policy.obs_to_tensor(obs)
            with torch.no_grad():
                if isinstance(model, MaskablePPO):
                    dist = policy.get_distribution(obs_t, action_masks=base.action_masks() if masked else None)
                else:
                    dist = policy.get_distribution(obs_t)
                probs = dist.distribution.probs.cpu().numpy().reshape(-1).astype(np.float64)
            if masked:
                probs = np.where(base.action_masks(), probs, 0.0)
            if deterministic:
                action = int(np.argmax(probs))
            else:
                action = int(rng.choice(probs.size, p=probs / probs.sum()))
            obs, _, terminated, truncated, info = env.step(action)
        infos.append(info)
    return infos

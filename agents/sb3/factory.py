"""Build stable-baselines3 models for the NATS-Bench environments, and sample from a trained policy.

An episode of ``NATSBench-Topology-v0`` / ``NATSBench-Size-v0`` is 6 / 5 steps with a single reward at
the end, so SB3's defaults (2048-step rollouts, discounting) suit it poorly. :func:`make_sb3_agent`
builds PPO, A2C or MaskablePPO with rollouts of whole episodes, ``gamma=1`` and a small MLP;
:func:`sample_architectures` draws architectures from a trained policy. Train with
``model.learn(n, callback=agents.sb3.NASCallback())`` (:mod:`agents.sb3.callback`), or search behind
the common interface with :class:`agents.sb3.SB3Agent` (:mod:`agents.sb3.agent`).

This module imports torch (through SB3); nothing in ``natsbench_gym`` imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from agents.errors import AgentConfigError
from natsbench_gym.errors import UnknownNameError

__all__ = [
    "ALGORITHMS",
    "default_hyperparameters",
    "make_sb3_agent",
    "sample_architectures",
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
        AgentConfigError: ``env_kwargs`` with an env that is not an id.
    """
    algo = _check_algo(algo)
    if isinstance(env, str):
        env = gym.make(env, **dict(env_kwargs or {}))
    elif env_kwargs:
        raise AgentConfigError(
            f"env_kwargs is only used when env is an id, got env={env!r} with env_kwargs={dict(env_kwargs)!r}; "
            "configure the environment you pass instead (gym.make(id, **env_kwargs))"
        )
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

"""Architecture proposals shared by the agents: uniform samples and one-decision mutations.

Both draw only from the agent's ``np.random.Generator`` and respect the env's constraints
(``env.unwrapped.is_feasible``): an infeasible proposal is drawn again, so an agent never spends an
evaluation on an architecture the env would refuse. Neither reads the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from agents.errors import InfeasibleSearchError
from natsbench_gym.spaces import Encoding

__all__ = ["sample_architecture", "mutate_architecture", "constrained"]

#: Draws before giving up on finding a feasible proposal (a constraint that strict is a user error).
_MAX_TRIES = 10_000


def constrained(env: gym.Env) -> bool:
    """Whether the env forbids some architectures (``forbidden_ops``, ``max_params`` ...)."""
    return env.unwrapped.constrained


def sample_architecture(env: gym.Env, rng: np.random.Generator) -> Encoding:
    """A uniformly random feasible architecture of the env's space."""
    base = env.unwrapped
    for _ in range(_MAX_TRIES):
        enc = base.space.sample(rng)
        if not constrained(env) or base.is_feasible(enc):
            return enc
    raise InfeasibleSearchError(
        f"no feasible architecture in {_MAX_TRIES} uniform draws under {base.constraints}; loosen the constraints"
    )


def mutate_architecture(env: gym.Env, encoding: Sequence[int], rng: np.random.Generator) -> Encoding:
    """``encoding`` with one uniformly chosen decision changed to another choice (Real et al.'s mutation),
    drawn again until the result is feasible; the parent itself if no feasible neighbour exists."""
    base = env.unwrapped
    if not constrained(env):
        return base.space.mutate(encoding, rng)
    neighbours = [n for n in base.space.neighbours(encoding) if base.is_feasible(n)]
    if not neighbours:
        return tuple(int(x) for x in encoding)
    return neighbours[int(rng.integers(len(neighbours)))]

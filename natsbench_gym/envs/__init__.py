"""Gymnasium environments over the NATS-Bench search spaces (no torch, no data at import).

``gym.make("NATSBench-Topology-v0", ...)`` and ``gym.make("NATSBench-Size-v0", ...)`` build
:class:`NATSBenchTopologyEnv` and :class:`NATSBenchSizeEnv`; their class docstrings document
actions, observations, rewards, ``info`` and their own arguments; :class:`EnvConfig` documents the
arguments both share.
"""

from __future__ import annotations

from natsbench_gym.envs.base import InfeasibleConstraintsError, NATSBenchEnv
from natsbench_gym.envs.config import EnvConfig, UnsupportedRenderModeError
from natsbench_gym.envs.size import NATSBenchSizeEnv
from natsbench_gym.envs.topology import NATSBenchTopologyEnv

__all__ = [
    "EnvConfig",
    "NATSBenchEnv",
    "NATSBenchTopologyEnv",
    "NATSBenchSizeEnv",
    "InfeasibleConstraintsError",
    "UnsupportedRenderModeError",
]

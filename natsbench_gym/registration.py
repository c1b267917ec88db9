"""Registration of the Gymnasium ids (a flat list with string entry points, as Gymnasium does)."""

from __future__ import annotations

import gymnasium as gym

__all__ = ["register_envs", "ENV_IDS"]

ENV_IDS = ("NATSBench-Topology-v0", "NATSBench-Size-v0")


def register_envs() -> None:
    """Register both ids (idempotent: importing the package twice is harmless)."""
    if "NATSBench-Topology-v0" not in gym.registry:
        gym.register(id="NATSBench-Topology-v0", entry_point="natsbench_gym.envs.topology:NATSBenchTopologyEnv")
    if "NATSBench-Size-v0" not in gym.registry:
        gym.register(id="NATSBench-Size-v0", entry_point="natsbench_gym.envs.size:NATSBenchSizeEnv")

"""Registration of the Gymnasium ids: a flat list with string entry points, as Gymnasium does.

:data:`ENV_IDS` is the one definition of the ids; import it wherever an id is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import gymnasium as gym

__all__ = ["register_envs", "ENV_IDS"]

#: The Gymnasium id of each search space's environment, keyed by the space's name (``SpaceKind.value``).
ENV_IDS: Mapping[str, str] = MappingProxyType({"topology": "NATSBench-Topology-v0", "size": "NATSBench-Size-v0"})


def register_envs() -> None:
    """Register every id (idempotent: importing the package twice is harmless)."""
    if all(env_id in gym.registry for env_id in ENV_IDS.values()):
        return
    gym.register(id=ENV_IDS["topology"], entry_point="natsbench_gym.envs.topology:NATSBenchTopologyEnv")
    gym.register(id=ENV_IDS["size"], entry_point="natsbench_gym.envs.size:NATSBenchSizeEnv")

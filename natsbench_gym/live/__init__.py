"""Live evaluation: the real NATS-Bench networks in torch, trained and measured on this machine.

This subpackage is the only part of natsbench-gym that imports torch, and only when one of its
torch modules is used: ``import natsbench_gym.live`` itself loads just the torch-free config and
cost modules; :class:`LiveBenchmark`, :class:`LiveData` and the network classes load on first
access.

* :mod:`~natsbench_gym.live.models`: the networks (after the official xautodl definitions).
* :mod:`~natsbench_gym.live.cost`: exact params and FLOPs in closed form (no torch).
* :mod:`~natsbench_gym.live.config`: :class:`LiveConfig`, the training budget.
* :mod:`~natsbench_gym.live.data`: :class:`LiveData`, the training data (default: digits).
* :mod:`~natsbench_gym.live.train`: training, evaluation and latency measurement.
* :mod:`~natsbench_gym.live.cache`: the SQLite result store.
* :mod:`~natsbench_gym.live.weights`: the kept networks (:class:`WeightStore`, :class:`TrainedNetwork`).
* :mod:`~natsbench_gym.live.benchmark`: :class:`LiveBenchmark`, the backend.

Example:
    >>> import natsbench_gym.live as live
    >>> live.LiveConfig().epochs
    3
"""

from __future__ import annotations

import importlib

from natsbench_gym.live.config import LiveConfig, LiveConfigError
from natsbench_gym.live.cost import NetworkCost, nats_cost, network_cost, space_costs

__all__ = [
    "LiveBenchmark",
    "LiveConfig",
    "LiveConfigError",
    "LiveData",
    "NetworkCost",
    "TrainingResult",
    "TrainedNetwork",
    "WeightStore",
    "nats_cost",
    "network_cost",
    "space_costs",
    "register_live_fallback",
]

_LAZY = {
    "LiveBenchmark": "natsbench_gym.live.benchmark",
    "LiveData": "natsbench_gym.live.data",
    "TrainingResult": "natsbench_gym.live.train",
    "TrainedNetwork": "natsbench_gym.live.weights",
    "WeightStore": "natsbench_gym.live.weights",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_live_fallback() -> None:
    """Make :func:`natsbench_gym.load_benchmark` fall back to live training when no data is found.

    The fallback is the string entry point of :class:`LiveBenchmark`, imported (with torch) only
    when it actually fires.
    """
    from natsbench_gym.benchmarks import LIVE_FALLBACK, register_fallback

    register_fallback("live", LIVE_FALLBACK)

"""The live-training fallback factory, importable without torch.

``register_fallback("live", live_factory)`` costs nothing: torch and the live backend are imported
only when the factory is called, i.e. when no NATS-Bench data was found.
"""

from __future__ import annotations

from natsbench_gym.benchmarks.base import Benchmark
from natsbench_gym.types import SpaceKind

__all__ = ["live_factory"]


def live_factory(kind: SpaceKind | str) -> Benchmark:
    """A :class:`~natsbench_gym.live.LiveBenchmark` for ``kind`` with the default config, data and cache."""
    from natsbench_gym.live.benchmark import LiveBenchmark  # deferred: imports torch

    return LiveBenchmark(kind)

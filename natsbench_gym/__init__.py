"""natsbench-gym: personalized neural architecture search on the NATS-Bench spaces.

Importing the package registers the Gymnasium environments ``NATSBench-Topology-v0`` and
``NATSBench-Size-v0`` (:data:`ENV_IDS`; string entry points, so nothing heavy loads until an env is
made). It imports neither torch nor any data.

Example:
    >>> import natsbench_gym
    >>> natsbench_gym.TopologySpace().size
    15625
"""

from __future__ import annotations

from natsbench_gym.benchmarks import (
    Benchmark,
    BenchmarkCapabilities,
    NATSBenchAPIBenchmark,
    TableBenchmark,
    load_benchmark,
    register_fallback,
)
from natsbench_gym.errors import (
    DataFileError,
    DataNotFoundError,
    InvalidActionError,
    InvalidArchitectureError,
    InvalidConfigError,
    MissingMetricError,
    NATSBenchGymError,
    ResetNeededError,
    UnknownNameError,
)
from natsbench_gym.registration import ENV_IDS, register_envs
from natsbench_gym.spaces import SearchSpace, SizeSpace, TopologySpace, make_space
from natsbench_gym.types import DEFAULT_LATENCY_DEVICE, Dataset, Metric, MetricStats, SpaceKind

__version__ = "0.1.0"

__all__ = [
    "ENV_IDS",
    "Benchmark",
    "BenchmarkCapabilities",
    "TableBenchmark",
    "NATSBenchAPIBenchmark",
    "load_benchmark",
    "register_fallback",
    "SearchSpace",
    "TopologySpace",
    "SizeSpace",
    "make_space",
    "Dataset",
    "Metric",
    "MetricStats",
    "SpaceKind",
    "DEFAULT_LATENCY_DEVICE",
    "NATSBenchGymError",
    "InvalidArchitectureError",
    "UnknownNameError",
    "MissingMetricError",
    "DataNotFoundError",
    "DataFileError",
    "InvalidActionError",
    "InvalidConfigError",
    "ResetNeededError",
    "__version__",
]

register_envs()

"""Backend over the official ``nats_bench`` package and its files.

For users who have the official NATS-Bench files (``NATS-tss-v1_0-3ffb9-simple`` / ``-full`` and
``NATS-sss-v1_0-50262-simple`` / ``-full``, 1-2 GB). Queries follow NATS-Bench's rules: accuracies
are the mean over the seeds NATS-Bench trained (``is_random=False``), CIFAR-10's validation accuracy
and training time come from the ``cifar10-valid`` run and its test and train accuracy from the
``cifar10`` run, and for CIFAR-100 / ImageNet16-120 validation and test are the ``x-valid`` and
``x-test`` halves of the test set.

Each single query costs what ``nats_bench`` costs (milliseconds); convert the files once with
``natsbench-gym-convert`` to get the fast :class:`~natsbench_gym.benchmarks.table.TableBenchmark`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from natsbench_gym.benchmarks.base import Benchmark, BenchmarkCapabilities
from natsbench_gym.benchmarks.table import default_cache_dir
from natsbench_gym.errors import DataNotFoundError, InvalidArchitectureError
from natsbench_gym.spaces import make_space
from natsbench_gym.types import Dataset, Metric, MetricStats, SpaceKind

__all__ = ["NATSBenchAPIBenchmark", "find_official_dir", "OFFICIAL_DIR_PREFIX", "NATSBENCH_LATENCY_DEVICE"]

logger = logging.getLogger(__name__)

OFFICIAL_DIR_PREFIX = {SpaceKind.TOPOLOGY: "NATS-tss-v1_0-3ffb9", SpaceKind.SIZE: "NATS-sss-v1_0-50262"}

#: Name under which NATS-Bench's own latency measurement is exposed (seconds -> milliseconds).
NATSBENCH_LATENCY_DEVICE = "natsbench"


def find_official_dir(root: str | os.PathLike, space: SpaceKind | str) -> Path | None:
    """Return the official NATS-Bench directory for ``space`` at or directly under ``root``."""
    kind = SpaceKind.parse(space)
    root = Path(root)
    prefix = OFFICIAL_DIR_PREFIX[kind]
    if root.name.startswith(prefix) and (root / "meta.pickle.pbz2").is_file():
        return root
    for suffix in ("-simple", "-full"):
        for base in (root, root / "official"):
            cand = base / f"{prefix}{suffix}"
            if (cand / "meta.pickle.pbz2").is_file():
                return cand
    return None


def _hp(budget: int) -> str:
    return f"{budget:02d}" if budget < 10 else str(budget)


class NATSBenchAPIBenchmark(Benchmark):
    """The official ``nats_bench`` API behind the :class:`Benchmark` interface.

    Args:
        path: an official directory (``NATS-tss-v1_0-3ffb9-simple``) or a directory holding one;
            default: ``$TORCH_HOME`` (``~/.torch``), where ``nats_bench`` itself looks.
        space: ``"topology"`` or ``"size"``.
        cache_dir: where space-wide statistics are cached (computing them queries every record).
    """

    name = "nats_bench"

    def __init__(self, path: str | os.PathLike | None = None, space: SpaceKind | str = "topology", cache_dir=None) -> None:
        kind = SpaceKind.parse(space)
        root = Path(path) if path is not None else Path(os.environ.get("TORCH_HOME", Path.home() / ".torch"))
        found = find_official_dir(root, kind)
        if found is None:
            raise DataNotFoundError(
                f"no official NATS-Bench {kind.short} files ({OFFICIAL_DIR_PREFIX[kind]}-simple) in {str(root)!r}; "
                "download them as the nats_bench README explains, or use a table (NATSBENCH_DATA)"
            )
        try:
            import nats_bench
        except ImportError as exc:  # pragma: no cover - nats_bench is a dependency
            raise DataNotFoundError("the nats_bench package is needed for official files: pip install nats_bench") from exc
        self.path = found
        self._cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.api = nats_bench.create(str(found), kind.short, fast_mode=True, verbose=False)
        space_obj = make_space(kind)
        codes = np.fromiter((space_obj.code(space_obj.parse(s)) for s in self.api.meta_archs), dtype=np.int64)
        super().__init__(space_obj, codes)
        pat = re.compile(r"^(\d{6})\.pickle\.pbz2$")
        on_disk = sorted(int(m.group(1)) for f in os.listdir(found) if (m := pat.match(f)))
        if not on_disk and (found / "meta.pickle.pbz2").is_file() and str(found).endswith("-full"):
            on_disk = list(range(space_obj.size))
        #: Official indices whose records are present (fast mode loads them lazily).
        self.evaluated_indices = np.array(on_disk, dtype=np.int64)
        self._has = set(on_disk)
        # One nats_bench call per record (milliseconds): too slow to precompute a space; statistics
        # are over the records present, which is the whole space only with every record.
        self.capabilities = BenchmarkCapabilities(exact_statistics=len(self._has) == space_obj.size)

    @property
    def latency_devices(self) -> tuple[str, ...]:
        return (NATSBENCH_LATENCY_DEVICE,)

    def available_metrics(self, dataset, budget=None) -> frozenset[Metric]:
        self.check_dataset(dataset)
        self.check_budget(budget)
        return frozenset(Metric)

    def _record(self, index: int, dataset: Dataset, budget: int, metric: Metric) -> float:
        if index not in self._has:
            return float("nan")
        hp = _hp(budget)
        run = "cifar10-valid" if dataset is Dataset.CIFAR10 and metric in (Metric.VALID_ACCURACY, Metric.TRAIN_TIME) else dataset.value
        if metric in (Metric.FLOPS, Metric.PARAMS, Metric.LATENCY):
            cost = self.api.get_cost_info(index, dataset.value, hp=hp)
            key = {Metric.FLOPS: "flops", Metric.PARAMS: "params", Metric.LATENCY: "latency"}[metric]
            value = float(cost[key])
            return value * 1000.0 if metric is Metric.LATENCY else value
        info = self.api.get_more_info(index, run, hp=hp, is_random=False)
        key = {
            Metric.TEST_ACCURACY: "test-accuracy",
            Metric.VALID_ACCURACY: "valid-accuracy",
            Metric.TRAIN_ACCURACY: "train-accuracy",
            Metric.TRAIN_TIME: "train-all-time",
        }[metric]
        return float(info[key]) if key in info else float("nan")

    def _query_indices(self, indices, dataset, budget, metrics, device):
        out = {m: np.full(len(indices), np.nan) for m in metrics}
        for j, index in enumerate(np.asarray(indices).tolist()):
            for m in metrics:
                out[m][j] = self._record(index, dataset, budget, m)
        return out

    def _seed_values(self, index, metric, dataset, budget):
        if index not in self._has or metric not in (Metric.VALID_ACCURACY, Metric.TEST_ACCURACY, Metric.TRAIN_ACCURACY):
            return None
        run = "cifar10-valid" if dataset is Dataset.CIFAR10 and metric is Metric.VALID_ACCURACY else dataset.value
        self.api._prepare_info(index)
        results = self.api.query_meta_info_by_index(index, hp=_hp(budget))
        key = {Metric.TEST_ACCURACY: "test-accuracy", Metric.VALID_ACCURACY: "valid-accuracy", Metric.TRAIN_ACCURACY: "train-accuracy"}[metric]
        values = []
        for seed in results.get_dataset_seeds(run):
            info = self.api.get_more_info(index, run, hp=_hp(budget), is_random=seed)
            if key in info:
                values.append(float(info[key]))
        return np.array(values) if values else None

    def _space_values(self, metric, dataset, budget, device):
        return self._query_indices(self.evaluated_indices, dataset, budget, (metric,), device)[metric]

    def _stats(self, metric, dataset, budget, device):
        """Statistics over the records present, cached on disk (a full pass queries every record)."""
        tag = f"{self.space.kind.short}-{self.path.name}-{len(self._has)}"
        cache = self._cache_dir / f"stats-{tag}.json"
        key = f"{dataset.value}|{budget}|{metric.value}"
        stored: dict = {}
        if cache.is_file():
            try:
                stored = json.loads(cache.read_text())
            except (OSError, ValueError):
                stored = {}
        if key in stored:
            return MetricStats(**stored[key])
        if len(self._has) > 100:
            logger.info("computing %s statistics over %d official records (once; cached in %s)", key, len(self._has), cache)
        values = self._query_indices(self.evaluated_indices, dataset, budget, (metric,), device)[metric]
        values = values[~np.isnan(values)]
        if values.size == 0:
            raise InvalidArchitectureError(f"no official records hold {metric.value} on {dataset.value}")
        stats = MetricStats(float(values.min()), float(values.max()), float(np.median(values)))
        stored[key] = {"min": stats.min, "max": stats.max, "median": stats.median}
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(stored))
        except OSError:
            pass
        return stats

    def describe(self) -> str:
        return f"nats_bench {self.space.kind.value} from {self.path}"

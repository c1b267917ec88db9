"""Backend over the official ``nats_bench`` package and its files.

For users who have the official NATS-Bench files (``NATS-tss-v1_0-3ffb9-simple`` / ``-full`` and
``NATS-sss-v1_0-50262-simple`` / ``-full``, 1-2 GB). Queries follow NATS-Bench's rules: accuracies
are the mean over the seeds NATS-Bench trained (``is_random=False``), CIFAR-10's validation accuracy
and training time come from the ``cifar10-valid`` run and its test and train accuracy from the
``cifar10`` run, and for CIFAR-100 / ImageNet16-120 validation and test are the ``x-valid`` and
``x-test`` halves of the test set.

A query makes one ``nats_bench`` call per record it needs, not one per metric: ``get_more_info`` once
per training run (two for CIFAR-10, whose validation accuracy and training time come from
``cifar10-valid``), ``get_cost_info`` once if FLOPs, params or latency are asked for; the answers are
kept (they never change), so a repeated query costs nothing. Each first query still costs what
``nats_bench`` costs (milliseconds); convert the files once with ``natsbench-gym-convert`` to get the
fast :class:`~natsbench_gym.benchmarks.table.TableBenchmark`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from natsbench_gym.benchmarks.base import Benchmark, BenchmarkCapabilities
from natsbench_gym.benchmarks.table import default_cache_dir
from natsbench_gym.errors import DataNotFoundError, InvalidArchitectureError
from natsbench_gym.fileio import atomic_write
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


#: ``get_more_info`` key of each metric it holds.
_INFO_KEYS = {
    Metric.TEST_ACCURACY: "test-accuracy",
    Metric.VALID_ACCURACY: "valid-accuracy",
    Metric.TRAIN_ACCURACY: "train-accuracy",
    Metric.TRAIN_TIME: "train-all-time",
}
#: ``get_cost_info`` key of each metric it holds.
_COST_KEYS = {Metric.FLOPS: "flops", Metric.PARAMS: "params", Metric.LATENCY: "latency"}
#: What is kept of a ``get_more_info`` record: the metrics and the validation time.
_KEPT_INFO = (*_INFO_KEYS.values(), "valid-per-time")

#: Format version of the on-disk statistics cache.
STATS_CACHE_VERSION = 2

#: ``nats_bench`` keeps every record it loads in memory (about 4 MB each in fast mode: 66 GB for the
#: whole topology space); at most this many are kept, the least recently loaded dropped first. What
#: the queries need of them is kept separately, in a few hundred bytes per record.
MAX_LOADED_RECORDS = 64


def _run(dataset: Dataset, metric: Metric | None) -> str:
    """The NATS-Bench training run a metric comes from (``metric=None``: validation time)."""
    valid_side = metric is None or metric in (Metric.VALID_ACCURACY, Metric.TRAIN_TIME)
    return "cifar10-valid" if dataset is Dataset.CIFAR10 and valid_side else dataset.value


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
        self._infos: dict[tuple[int, str, str], dict] = {}
        self._costs: dict[tuple[int, str, str], dict] = {}

    @property
    def latency_devices(self) -> tuple[str, ...]:
        return (NATSBENCH_LATENCY_DEVICE,)

    def available_metrics(self, dataset, budget=None) -> frozenset[Metric]:
        self.check_dataset(dataset)
        self.check_budget(budget)
        return frozenset(Metric)

    def _load(self, index: int) -> None:
        """Have ``nats_bench`` load record ``index``, dropping the oldest beyond :data:`MAX_LOADED_RECORDS`."""
        records = self.api.arch2infos_dict
        if index in records:
            return
        self.api._prepare_info(index)
        while len(records) > MAX_LOADED_RECORDS:
            oldest = next(iter(records))
            del records[oldest]
            self.api.evaluated_indexes.discard(oldest)  # nats_bench reloads it from disk when asked again

    def _info(self, index: int, run: str, hp: str) -> dict:
        """``get_more_info`` of one record (mean over seeds), called once per record and kept."""
        key = (index, run, hp)
        info = self._infos.get(key)
        if info is None:
            self._load(index)
            full = self.api.get_more_info(index, run, hp=hp, is_random=False)
            info = self._infos[key] = {k: full[k] for k in _KEPT_INFO if full.get(k) is not None}
        return info

    def _cost(self, index: int, dataset: Dataset, hp: str) -> dict:
        key = (index, dataset.value, hp)
        cost = self._costs.get(key)
        if cost is None:
            self._load(index)
            full = self.api.get_cost_info(index, dataset.value, hp=hp)
            cost = self._costs[key] = {k: full[k] for k in _COST_KEYS.values()}
        return cost

    def _record(self, index: int, dataset: Dataset, budget: int, metrics: tuple[Metric, ...]) -> list[float]:
        """The values of ``metrics`` for one architecture: one call per record they need."""
        if index not in self._has:
            return [float("nan")] * len(metrics)
        hp = _hp(budget)
        out = []
        for m in metrics:
            if m in _COST_KEYS:
                value = float(self._cost(index, dataset, hp)[_COST_KEYS[m]])
                out.append(value * 1000.0 if m is Metric.LATENCY else value)
            else:
                info = self._info(index, _run(dataset, m), hp)
                out.append(float(info[_INFO_KEYS[m]]) if _INFO_KEYS[m] in info else float("nan"))
        return out

    def _query_indices(self, indices, dataset, budget, metrics, device):
        rows = [self._record(index, dataset, budget, metrics) for index in np.asarray(indices).tolist()]
        values = np.array(rows, dtype=np.float64).reshape(len(rows), len(metrics))
        return {m: values[:, j] for j, m in enumerate(metrics)}

    def _validation_times(self, indices, dataset, budget):
        hp, run = _hp(budget), _run(dataset, None)
        return np.array(
            [self._info(i, run, hp).get("valid-per-time", np.nan) if i in self._has else np.nan
             for i in np.asarray(indices).tolist()],
            dtype=np.float64,
        )

    def seed_runs(self, index: int, run: str, budget: int) -> list[int]:
        """The seeds NATS-Bench trained architecture ``index`` with in ``run`` after ``budget`` epochs."""
        if index not in self._has:
            return []
        self._load(index)
        results = self.api.arch2infos_dict[index].get(_hp(budget))
        if results is None:
            return []
        try:
            return list(results.get_dataset_seeds(run))
        except (KeyError, ValueError, AssertionError):
            return []

    def _seed_values(self, index, metric, dataset, budget):
        if index not in self._has or metric not in (Metric.VALID_ACCURACY, Metric.TEST_ACCURACY, Metric.TRAIN_ACCURACY):
            return None
        run = "cifar10-valid" if dataset is Dataset.CIFAR10 and metric is Metric.VALID_ACCURACY else dataset.value
        key = _INFO_KEYS[metric]
        values = []
        for seed in self.seed_runs(index, run, budget):
            info = self.api.get_more_info(index, run, hp=_hp(budget), is_random=seed)
            if key in info:
                values.append(float(info[key]))
        return np.array(values) if values else None

    def _space_values(self, metric, dataset, budget, device):
        return self._query_indices(self.evaluated_indices, dataset, budget, (metric,), device)[metric]

    def _stats_cache(self) -> Path:
        """The statistics file of these records: keyed by the cache format and the meta file's identity."""
        meta = self.path / "meta.pickle.pbz2"
        st = meta.stat()
        ident = f"v{STATS_CACHE_VERSION}|{meta.resolve()}|{st.st_size}|{st.st_mtime_ns}|{len(self._has)}"
        return self._cache_dir / f"stats-{self.space.kind.short}-{hashlib.sha1(ident.encode()).hexdigest()[:16]}.json"

    def _stats(self, metric, dataset, budget, device):
        """Statistics over the records present, cached on disk (a full pass queries every record)."""
        cache = self._stats_cache()
        key = f"{dataset.value}|{budget}|{metric.value}"
        stored: dict = {}
        if cache.is_file():
            try:
                stored = json.loads(cache.read_text())
                if not isinstance(stored, dict):
                    raise ValueError("not a JSON object")
                if key in stored:
                    return MetricStats(**{k: float(stored[key][k]) for k in ("min", "max", "median")})
            except (OSError, ValueError, TypeError, KeyError) as exc:  # corrupt: ignored and rewritten
                logger.warning("ignoring unreadable statistics cache %s (%s)", cache, exc)
                stored = {}
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
            atomic_write(cache, json.dumps(stored))
        except OSError as exc:
            logger.debug("cannot write statistics cache %s: %s", cache, exc)
        return stats

    def describe(self) -> str:
        return f"nats_bench {self.space.kind.value} from {self.path}"

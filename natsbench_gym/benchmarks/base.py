"""The :class:`Benchmark` interface every backend implements.

A benchmark answers one question: *what are the metrics of this architecture on this dataset after
this training budget?* -- for one architecture (:meth:`Benchmark.query`) or many at once
(:meth:`Benchmark.query_many`). It also knows which metrics it has, their space-wide statistics
(for the normalised metrics of the paper's Eqs. 3-8) and the official index of each architecture.

Values the data lacks for a particular architecture (train accuracy exists only for topology
architectures 0-999, for instance) are ``nan``: reported as missing, never invented. Asking for a
metric the backend does not have at all raises :class:`~natsbench_gym.errors.MissingMetricError`.

Each backend declares what it can do in :attr:`Benchmark.capabilities` (a
:class:`BenchmarkCapabilities`): callers choose their behaviour by capability (precompute the whole
space, say "actual" rather than "simulated" training time ...), never by the backend's name.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from natsbench_gym.errors import InvalidArchitectureError, MissingMetricError, UnknownNameError
from natsbench_gym.spaces import Encoding, SearchSpace
from natsbench_gym.types import DEFAULT_LATENCY_DEVICE, Dataset, Metric, MetricStats

__all__ = ["Benchmark", "BenchmarkCapabilities", "QuerySpec", "ArchLike"]

logger = logging.getLogger(__name__)

#: An architecture: official index (int), official string, or encoding (sequence of choice ids).
ArchLike = int | str | Sequence[int]


@dataclass(frozen=True)
class BenchmarkCapabilities:
    """What a backend can do; each backend declares its own (:attr:`Benchmark.capabilities`).

    The defaults are those of a backend that looks its numbers up one architecture at a time, over
    the whole space (the base class's statistics query every architecture).

    Attributes:
        whole_space: every architecture's metrics can be had at once, cheaply (a table: an array
            lookup), so a consumer may precompute the whole space or rank an architecture in it.
        trains: a query trains the architecture here (seconds to minutes each), so training times are
            actual seconds, not NATS-Bench's simulated ones.
        keeps_weights: the trained weights of the evaluated networks are kept and can be had.
        exact_statistics: :meth:`Benchmark.stats` and :meth:`Benchmark.space_values` are over every
            architecture of the space; ``False``: (some of them) over the architectures evaluated
            so far, or a subset, so normalised values can move as more are evaluated.
    """

    whole_space: bool = False
    trains: bool = False
    keeps_weights: bool = False
    exact_statistics: bool = True


class QuerySpec(NamedTuple):
    """Checked query arguments (:meth:`Benchmark.resolve`), for repeated queries in hot loops."""

    dataset: Dataset
    budget: int
    metrics: tuple[Metric, ...]
    device: str | None


class Benchmark(ABC):
    """Metrics of the architectures of one search space.

    Subclasses provide :attr:`space`, :attr:`name`, the index order (default: NATS-Bench's official
    one, :meth:`~natsbench_gym.spaces.SearchSpace.official_index_order`) and :meth:`_query_indices`,
    and declare their :attr:`capabilities` (default: a lookup one architecture at a time, exact
    statistics); everything else (argument checking, single and vectorised queries, statistics) is
    done here once.

    Attributes:
        space: the search space this benchmark covers.
        name: short backend name shown in env ``info`` (``"table"``, ``"nats_bench"``, ``"live"``).
        capabilities: what this backend can do (see :class:`BenchmarkCapabilities`).
    """

    name: str = "benchmark"
    capabilities: BenchmarkCapabilities = BenchmarkCapabilities()

    def __init__(self, space: SearchSpace, index_to_code: np.ndarray | None = None) -> None:
        self.space = space
        if index_to_code is None:  # NATS-Bench's own order, so every backend reports official indices
            index_to_code = space.official_index_order()
        index_to_code = np.asarray(index_to_code, dtype=np.int64)
        if index_to_code.shape != (space.size,) or len(np.unique(index_to_code)) != space.size:
            raise InvalidArchitectureError(
                f"the {space.kind.value} index order must list each of the {space.size} architectures once"
            )
        self._index_to_code = index_to_code
        self._code_to_index = np.empty_like(index_to_code)
        self._code_to_index[index_to_code] = np.arange(space.size, dtype=np.int64)

    # --- what this backend has -------------------------------------------------------------
    @property
    def datasets(self) -> tuple[Dataset, ...]:
        """Datasets this backend has results for."""
        return tuple(Dataset)

    @property
    def budgets(self) -> tuple[int, ...]:
        """Training budgets (epochs) this backend has; the first is the default."""
        return self.space.kind.budgets

    @property
    def default_budget(self) -> int:
        return self.budgets[0]

    @abstractmethod
    def available_metrics(self, dataset: Dataset | str, budget: int | None = None) -> frozenset[Metric]:
        """Metrics this backend has for ``dataset`` after ``budget`` epochs."""

    @property
    def latency_devices(self) -> tuple[str, ...]:
        """Devices with latency measurements (empty if the backend has no latency)."""
        return ()

    @property
    def default_latency_device(self) -> str | None:
        devices = self.latency_devices
        if not devices:
            return None
        return DEFAULT_LATENCY_DEVICE if DEFAULT_LATENCY_DEVICE in devices else devices[0]

    # --- argument checking ------------------------------------------------------------------
    def check_dataset(self, dataset: Dataset | str) -> Dataset:
        ds = Dataset.parse(dataset)
        if ds not in self.datasets:
            raise UnknownNameError("dataset for this benchmark", ds.value, [d.value for d in self.datasets])
        return ds

    def check_budget(self, budget: int | None) -> int:
        if budget is None:
            return self.default_budget
        if isinstance(budget, str) and budget.isdigit():
            budget = int(budget)
        if budget not in self.budgets:
            raise UnknownNameError(f"{self.space.kind.value} training budget (epochs)", budget, self.budgets)
        return int(budget)

    def check_device(self, device: str | None) -> str | None:
        if device is None:
            return self.default_latency_device
        if device not in self.latency_devices:
            raise UnknownNameError("latency device", device, self.latency_devices or ["(none)"])
        return device

    def check_metrics(
        self, metrics: Iterable[Metric | str] | None, dataset: Dataset, budget: int
    ) -> tuple[Metric, ...]:
        available = self.available_metrics(dataset, budget)
        if metrics is None:
            return tuple(m for m in Metric if m in available)
        out = []
        for m in metrics:
            metric = Metric.parse(m)
            if metric not in available:
                raise MissingMetricError(
                    f"the {self.name} benchmark has no {metric.value} for {self.space.kind.value} "
                    f"architectures on {dataset.value} after {budget} epochs; it has: "
                    f"{', '.join(sorted(x.value for x in available)) or 'nothing'}"
                )
            out.append(metric)
        return tuple(out)

    # --- indices ------------------------------------------------------------------------------
    def index(self, arch: ArchLike) -> int:
        """Official NATS-Bench index of ``arch`` (an index, string or encoding)."""
        if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
            idx = int(arch)
            if not 0 <= idx < self.space.size:
                raise InvalidArchitectureError(
                    f"{self.space.kind.value} index {idx} is outside 0..{self.space.size - 1}"
                )
            return idx
        return int(self._code_to_index[self.space.code(self.space.to_encoding(arch))])

    def indices(self, archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
        """Vectorised :meth:`index`. An int array is taken as indices, a 2-D array as encodings."""
        if isinstance(archs, np.ndarray) and archs.dtype.kind in "iu":
            if archs.ndim == 2:
                return self.indices_of_encodings(archs)
            if archs.size and (archs.min() < 0 or archs.max() >= self.space.size):
                bad = archs[(archs < 0) | (archs >= self.space.size)][0]
                raise InvalidArchitectureError(
                    f"{self.space.kind.value} index {int(bad)} is outside 0..{self.space.size - 1}"
                )
            return archs.astype(np.int64, copy=False)
        return np.fromiter((self.index(a) for a in archs), dtype=np.int64)

    def indices_of_encodings(self, encodings: np.ndarray) -> np.ndarray:
        """Official indices of an ``(n, num_decisions)`` array of encodings."""
        enc = np.asarray(encodings)
        if enc.ndim != 2 or enc.shape[1] != self.space.num_decisions:
            raise InvalidArchitectureError(
                f"expected an (n, {self.space.num_decisions}) array of encodings, got shape {enc.shape}"
            )
        if enc.size and (enc.min() < 0 or enc.max() >= self.space.num_choices):
            raise InvalidArchitectureError(f"encodings hold choices outside 0..{self.space.num_choices - 1}")
        return self._code_to_index[self.space.codes(enc)]

    def encoding(self, index: int) -> Encoding:
        """Encoding of the architecture with official index ``index``."""
        return self.space.decode(int(self._index_to_code[self.index(index)]))

    def encodings(self, indices: np.ndarray | None = None) -> np.ndarray:
        """Encodings (``(n, num_decisions)``) of ``indices`` (default: the whole space, index order)."""
        codes = self._index_to_code if indices is None else self._index_to_code[np.asarray(indices)]
        weights = self.space._weights
        return ((codes[:, None] // weights[None, :]) % self.space.num_choices).astype(np.int64)

    def arch_str(self, arch: ArchLike) -> str:
        """Official string of ``arch``."""
        return self.space.format(self.encoding(self.index(arch)))

    # --- queries ------------------------------------------------------------------------------
    @abstractmethod
    def _query_indices(
        self, indices: np.ndarray, dataset: Dataset, budget: int, metrics: tuple[Metric, ...], device: str | None
    ) -> dict[Metric, np.ndarray]:
        """Return float arrays (``nan`` where missing) for already-checked arguments."""

    def query(
        self,
        arch: ArchLike,
        dataset: Dataset | str,
        budget: int | None = None,
        metrics: Iterable[Metric | str] | None = None,
        device: str | None = None,
    ) -> dict[Metric, float]:
        """Metrics of one architecture.

        Args:
            arch: official index, official string or encoding.
            dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"``.
            budget: training epochs (topology: 12 or 200; size: 90); default: the first of :attr:`budgets`.
            metrics: metrics to return; default: every metric the backend has.
            device: latency device; default: :attr:`default_latency_device`.

        Returns:
            ``{Metric: value}``; ``nan`` where the data has no value for this architecture.
        """
        spec = self.resolve(dataset, budget, metrics, device)
        return self._query_one(self.index(arch), *spec)

    def query_resolved(self, index: int, spec: QuerySpec) -> dict[Metric, float]:
        """Metrics of the architecture with official index ``index``, for arguments already resolved.

        The hot-path form of :meth:`query` for a caller that asks the same question about many
        architectures (an env): resolve the arguments once with :meth:`resolve`, then query by index.

        Args:
            index: official index.
            spec: from :meth:`resolve` on this benchmark.

        Returns:
            ``{Metric: value}`` for ``spec.metrics``; ``nan`` where the data has no value.
        """
        return self._query_one(self.index(index), *spec)

    def _query_one(
        self, index: int, dataset: Dataset, budget: int, metrics: tuple[Metric, ...], device: str | None
    ) -> dict[Metric, float]:
        idx = np.array([index], dtype=np.int64)
        return {m: float(v[0]) for m, v in self._query_indices(idx, dataset, budget, metrics, device).items()}

    def resolve(
        self,
        dataset: Dataset | str,
        budget: int | None = None,
        metrics: Iterable[Metric | str] | None = None,
        device: str | None = None,
    ) -> QuerySpec:
        """Check query arguments against this backend and fill in the defaults.

        Checked once per distinct combination (queries in hot loops repeat them).

        Args:
            dataset, budget, metrics, device: as for :meth:`query` (``metrics=None``: every metric
                the backend has for this dataset and budget).

        Raises:
            UnknownNameError: an unknown dataset, budget or latency device.
            MissingMetricError: a metric this backend does not have.
        """
        if metrics is not None and not isinstance(metrics, tuple):
            metrics = tuple(metrics)
        key = (dataset, budget, metrics, device)
        cache = self.__dict__.setdefault("_resolve_cache", {})
        try:
            return cache[key]
        except (KeyError, TypeError):
            pass
        ds = self.check_dataset(dataset)
        b = self.check_budget(budget)
        ms = self.check_metrics(metrics, ds, b)
        dev = self.check_device(device)
        resolved = QuerySpec(ds, b, ms, dev)
        try:
            cache[key] = resolved
        except TypeError:
            pass
        return resolved

    def query_many(
        self,
        archs: Iterable[ArchLike] | np.ndarray | None,
        dataset: Dataset | str,
        budget: int | None = None,
        metrics: Iterable[Metric | str] | None = None,
        device: str | None = None,
    ) -> dict[Metric, np.ndarray]:
        """Vectorised :meth:`query`: ``{Metric: array}`` over ``archs`` (``None``: the whole space)."""
        spec = self.resolve(dataset, budget, metrics, device)
        idx = np.arange(self.space.size, dtype=np.int64) if archs is None else self.indices(archs)
        return self._query_indices(idx, *spec)

    @property
    def parallelism(self) -> int:
        """Evaluations this backend runs at once (a lookup: 1; the live backend: its executor's workers)."""
        return 1

    def submit(
        self,
        arch: ArchLike,
        dataset: Dataset | str,
        budget: int | None = None,
        metrics: Iterable[Metric | str] | None = None,
        device: str | None = None,
    ) -> Future:
        """Start evaluating one architecture; a :class:`concurrent.futures.Future` of :meth:`query`'s answer.

        A lookup answers before this returns (the default); a backend that trains (the live one on a
        parallel executor) returns at once and trains on a worker, so a caller can keep several
        evaluations in flight and take whichever finishes first.
        """
        future: Future = Future()
        try:
            future.set_result(self.query(arch, dataset, budget, metrics, device))
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future

    def stats(
        self, metric: Metric | str, dataset: Dataset | str, budget: int | None = None, device: str | None = None
    ) -> MetricStats:
        """Min, max and median of ``metric`` over every architecture of the space that has a value."""
        ds = self.check_dataset(dataset)
        b = self.check_budget(budget)
        (m,) = self.check_metrics([metric], ds, b)
        dev = self.check_device(device) if m is Metric.LATENCY else None
        return self._stats(m, ds, b, dev)

    def space_values(
        self, metric: Metric | str, dataset: Dataset | str, budget: int | None = None, device: str | None = None
    ) -> np.ndarray:
        """The values of ``metric`` that describe its distribution over the space (``nan`` dropped).

        Every architecture's value for a table; a backend that cannot afford the whole space (live
        training) returns what it knows -- the same values :meth:`stats` is computed from. Use this,
        not ``query_many(None, ...)``, for space-wide normalisation.
        """
        ds = self.check_dataset(dataset)
        b = self.check_budget(budget)
        (m,) = self.check_metrics([metric], ds, b)
        dev = self.check_device(device) if m is Metric.LATENCY else None
        values = self._space_values(m, ds, b, dev)
        return values[~np.isnan(values)]

    def _space_values(self, metric: Metric, dataset: Dataset, budget: int, device: str | None) -> np.ndarray:
        return self.query_many(None, dataset, budget, [metric], device)[metric]

    @cache  # noqa: B019 - benchmarks live as long as the process
    def _stats(self, metric: Metric, dataset: Dataset, budget: int, device: str | None) -> MetricStats:
        values = self._space_values(metric, dataset, budget, device)
        values = values[~np.isnan(values)]
        if values.size == 0:
            raise MissingMetricError(f"no {metric.value} values on {dataset.value} to compute statistics from")
        return MetricStats(float(values.min()), float(values.max()), float(np.median(values)))

    def validation_times(
        self, archs: Iterable[ArchLike] | np.ndarray | None, dataset: Dataset | str, budget: int | None = None
    ) -> np.ndarray:
        """Simulated seconds of one pass over the validation split, per architecture (``None``: the space).

        NATS-Bench's ``valid-per-time``, which its ``simulate_train_eval`` adds to the training time
        (``train-all-time``) when it accounts the cost of evaluating an architecture; the environments
        count both the same way. ``nan`` where the backend does not know it (the live backend, which
        counts the training it actually ran).
        """
        ds = self.check_dataset(dataset)
        b = self.check_budget(budget)
        idx = np.arange(self.space.size, dtype=np.int64) if archs is None else self.indices(archs)
        return np.asarray(self._validation_times(idx, ds, b), dtype=np.float64)

    def _validation_times(self, indices: np.ndarray, dataset: Dataset, budget: int) -> np.ndarray:
        return np.full(len(indices), np.nan)

    def seed_values(
        self, arch: ArchLike, metric: Metric | str, dataset: Dataset | str, budget: int | None = None
    ) -> np.ndarray:
        """Per-seed values of an accuracy (for noisy evaluation, like NATS-Bench's ``is_random``).

        Raises:
            MissingMetricError: the backend has no per-seed results for this metric.
        """
        ds = self.check_dataset(dataset)
        b = self.check_budget(budget)
        m = Metric.parse(metric)
        values = self._seed_values(self.index(arch), m, ds, b)
        if values is None:
            raise MissingMetricError(
                f"the {self.name} benchmark has no per-seed {m.value} on {ds.value} after {b} epochs; "
                "use noise=False, or a backend that has per-seed results"
            )
        return values

    def has_seed_values(self, metric: Metric | str, dataset: Dataset | str, budget: int | None = None) -> bool:
        """Whether :meth:`seed_values` works for this metric, dataset and budget."""
        try:
            self.seed_values(0, metric, dataset, budget)
        except MissingMetricError:
            return False
        return True

    def _seed_values(self, index: int, metric: Metric, dataset: Dataset, budget: int) -> np.ndarray | None:
        return None

    def trained_on(self, dataset: Dataset | str) -> str | None:
        """What this backend's accuracies for ``dataset`` were actually trained on, when that is not
        NATS-Bench's own training on ``dataset`` (``None``: it is, as for the table and official files).

        The live backend trains on other data (by default scikit-learn's digits) and says so, e.g.
        ``"sklearn digits (10 classes, 16x16), 3 epochs, C=8, N=1"``; envs put it in ``info`` and
        scripts print it beside the dataset asked for.
        """
        self.check_dataset(dataset)
        return None

    def describe(self) -> str:
        """One line for logs and env ``info``."""
        return f"{self.name} ({self.space.kind.value})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

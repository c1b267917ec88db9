"""The live backend: train each queried architecture on this machine, instead of looking it up.

What each metric means here (and how it compares with the NATS-Bench tables):

==================  ===========================================================================
metric              live value
==================  ===========================================================================
``params``          exact parameter count (millions) of the network NATS-Bench trains for the
                    queried dataset (``C=16, N=5`` or the size architecture; that dataset's classes
                    and image size), in closed form -- identical to the table's numbers.
``flops``           exact MFLOPs of that same network, NATS-Bench's convention -- identical too.
``latency``         milliseconds of one forward pass of that same full-size network at batch size 1
                    on this machine's CPU (device ``"local_cpu"``), median of
                    ``LiveConfig.latency_runs`` runs.
``valid_accuracy``  accuracy (%) on the validation split after training the *small* network of
``test_accuracy``   :class:`~natsbench_gym.live.config.LiveConfig` (default ``C=8, N=1``, 16x16, 3
``train_accuracy``  epochs) on the training data; train accuracy is measured after training.
``train_time``      seconds actually spent in the training loop here (not simulated GPU time).
==================  ===========================================================================

**Training data.** Unless ``data=`` says otherwise, every dataset name trains on scikit-learn's
handwritten digits (10 classes, offline): the dataset chosen (``cifar10``, ``cifar100``,
``ImageNet16-120``) then sets only the classes and image size of the full-size network behind
``params``, ``flops`` and ``latency``, and the accuracies of the three are the same numbers. They
are a cheap, honest proxy -- a ranking signal from a real training run -- not CIFAR accuracies.
Pass ``data={"cifar10": ..., ...}`` to train each dataset name on data of your own.

**Budget.** The only budget is ``LiveConfig.epochs`` (:attr:`LiveBenchmark.budgets`).

**Indices.** Official NATS-Bench indices, as every backend reports them: the size space's index is
its code, the topology space's follows NATS-Bench's own numbering
(:func:`~natsbench_gym.spaces.official_topology_order`, no data needed), so live ``#758`` is the
table's ``#758``. ``index_to_code=`` overrides the order. The cache is keyed by code.

**Statistics.** :meth:`Benchmark.stats` normalises metrics over the whole space, and they must not
depend on what the cache happens to hold: the same seed gives the same search whether the cache is
empty or full of other runs. ``params`` and ``flops`` statistics are exact over the whole space
(closed form, vectorised). Training the whole space is out of the question, so the others come from
a fixed **reference sample**: ``reference_size`` (8) architectures drawn with
``np.random.default_rng(config.seed)`` (:meth:`LiveBenchmark.reference_sample`), trained and measured
once, cached like every other result, and nothing else:

* accuracies: fixed bounds, from chance level (``100 / classes`` of the training data) to 100 %, so
  that no architecture better than the sample is clipped; the median (the constraint threshold of
  Eqs. 7-8) is the sample's;
* latency: min, max and median over the sample plus the space's lowest- and highest-FLOPs networks
  (measured, not trained), which bracket the latency range;
* training time: over the sample.

Training is deterministic under the seed, so accuracies (and with them every statistic above but
latency and training time, which are measured) are the same on every machine; with a warm cache
everything is.

**Cache.** Results persist in an SQLite file (default ``<default_cache_dir()>/live-v1.sqlite``, see
:mod:`natsbench_gym.live.cache`), one committed row per result, so a repeated query costs
microseconds and an interrupted sweep resumes where it stopped.

**Executors.** ``executor=`` says where trainings run (:mod:`natsbench_gym.live.executor`): in
this process (the default), in local worker processes (``"process"``) or on Ray (``"ray"``, locally or
on a cluster). Whatever runs them, this object is the only writer of the cache: it launches one trial
per architecture at a time (a second request for an architecture in flight waits for the same trial),
writes each result as it arrives, retries a trial whose worker died, and a driver started again
finds every result that was written. Drivers sharing a cache file claim each architecture in it
before training (:meth:`ResultStore.claim <natsbench_gym.live.cache.ResultStore.claim>`, renewed
while the trial runs), so a second driver waits for the first one's result instead of training the
same architecture at the same time; a dead driver's claims expire after ``claim_ttl`` seconds. Trainings are deterministic per architecture, so every
executor gives the same numbers (:meth:`query_many` and :meth:`submit` train concurrently).

**Weights.** Every network trained is also kept: its weights go to a bounded store beside the cache
(:mod:`natsbench_gym.live.weights`; ``weights_dir=``, ``max_weights_bytes=``, least recently used
deleted first), and :meth:`LiveBenchmark.trained_network` gives it back with the data split it was
evaluated on (the preference page shows its predictions and Grad-CAM from it). A network whose
weights are gone (evicted, or trained before weights were kept) is trained again on request:
training is deterministic under the seed, so it is the same network.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from natsbench_gym.benchmarks.base import ArchLike, Benchmark, BenchmarkCapabilities
from natsbench_gym.benchmarks.table import default_cache_dir
from natsbench_gym.errors import InvalidArchitectureError, MissingMetricError, UnknownNameError
from natsbench_gym.live.cache import SCHEMA_VERSION, ResultStore
from natsbench_gym.live.config import LiveConfig, LiveConfigError
from natsbench_gym.live.cost import space_costs
from natsbench_gym.live.data import LiveData, as_live_data
from natsbench_gym.live.executor import Executor, TrialError, make_executor
from natsbench_gym.live.train import TrainingResult, nats_latency_ms, prepare_split, run_trial, train_and_evaluate
from natsbench_gym.live.weights import DEFAULT_MAX_WEIGHTS_BYTES, TrainedNetwork, WeightStore
from natsbench_gym.spaces import SearchSpace, make_space
from natsbench_gym.types import Dataset, Metric, MetricStats, SpaceKind

__all__ = ["LiveBenchmark", "LOCAL_DEVICE", "default_live_cache_path"]

logger = logging.getLogger(__name__)

#: The one latency device of the live backend: this machine's CPU.
LOCAL_DEVICE = "local_cpu"

_TRAINING_FIELDS = {
    Metric.TRAIN_ACCURACY: "train_accuracy",
    Metric.VALID_ACCURACY: "valid_accuracy",
    Metric.TEST_ACCURACY: "test_accuracy",
    Metric.TRAIN_TIME: "train_time",
}

#: The smallest reference sample (a min and a max need two values).
MIN_REFERENCE = 2
#: Held while :meth:`LiveBenchmark.trained_network` looks a network up and trains it if needed
#: (one per process, so that a benchmark stays picklable for vector-env workers).
_NETWORK_LOCK = threading.Lock()


def default_live_cache_path() -> Path:
    """``default_cache_dir() / "live-v<schema>.sqlite"``."""
    return default_cache_dir() / f"live-v{SCHEMA_VERSION}.sqlite"


def default_weights_dir(cache_path: str | Path) -> Path:
    """Where a result cache's networks are kept: ``<cache stem>-weights/`` beside it."""
    cache_path = Path(cache_path)
    return cache_path.with_name(cache_path.stem + "-weights")


class LiveBenchmark(Benchmark):
    """Metrics from training the architectures here, on CPU, with a small configurable budget.

    Args:
        space: ``"topology"`` or ``"size"`` (or a :class:`~natsbench_gym.spaces.SearchSpace`).
        config: the training budget; default :class:`LiveConfig() <natsbench_gym.live.config.LiveConfig>`.
        data: training data for every dataset name, or a mapping from dataset names to data (then
            only those names are available). Data is anything :func:`~natsbench_gym.live.data.as_live_data`
            takes: ``None`` (handwritten digits), a :class:`~natsbench_gym.live.data.LiveData`,
            ``(images, labels)`` numpy arrays, three ``(images, labels)`` splits, or a map-style
            torch dataset.
        cache_path: SQLite file for results; ``None``: :func:`default_live_cache_path`; ``False``:
            memory only.
        index_to_code: official index order, as an array or a :class:`Benchmark` to copy it from.
        progress: show a progress bar when several architectures are trained in one call; default:
            when stderr is a terminal.
        reference_size: architectures in the seeded reference sample the statistics of accuracy,
            latency and training time come from (trained on first need; see the module docstring);
            ``0``: no sample, and those statistics raise :class:`MissingMetricError`.
        weights_dir: folder the trained networks' weights are kept in; ``None``: beside the result
            cache (:func:`default_weights_dir`), or in memory when the cache is; ``False``: keep none
            (then ``capabilities.keeps_weights`` is ``False``).
        max_weights_bytes: bound on the kept weights (default 256 MiB); the least recently used
            networks are deleted first.
        executor: where trainings run: ``None``/``"inprocess"`` (here, one at a time), ``"process"``,
            ``"ray"`` or an :class:`~natsbench_gym.live.executor.Executor` (e.g.
            ``RayExecutor(workers=4, address="auto", gpus_per_trial=1)``).
        max_retries: retries of a trial whose worker died, for executors that do not retry
            themselves (Ray does: ``RayExecutor(max_retries=...)``).
        claim_ttl: seconds a claim on an architecture in the cache file lasts without renewal (it is
            renewed every ``claim_ttl / 3`` seconds while trials run); after a driver dies, others
            wait that long before training what it had claimed.

    Example:
        >>> from natsbench_gym.live import LiveBenchmark, LiveConfig
        >>> bench = LiveBenchmark("topology", LiveConfig(epochs=1), cache_path=False)  # doctest: +SKIP
        >>> bench.query("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
        ...             "cifar10")  # doctest: +SKIP
        {<Metric.TEST_ACCURACY: 'test_accuracy'>: 93.0, ...}
    """

    name = "live"
    # Accuracies, latency and training time are measured here and normalised over what has been
    # evaluated so far; results are cached and the trained networks kept (trained_network).
    capabilities = BenchmarkCapabilities(trains=True, keeps_weights=True, exact_statistics=False)

    def __init__(
        self,
        space: SpaceKind | str | SearchSpace = "topology",
        config: LiveConfig | None = None,
        data=None,
        *,
        cache_path: str | Path | None | bool = None,
        index_to_code: np.ndarray | Benchmark | None = None,
        progress: bool | None = None,
        reference_size: int = 8,
        weights_dir: str | Path | None | bool = None,
        max_weights_bytes: int = DEFAULT_MAX_WEIGHTS_BYTES,
        executor: Executor | str | None = None,
        max_retries: int = 2,
        claim_ttl: float = 60.0,
    ) -> None:
        space_obj = space if isinstance(space, SearchSpace) else make_space(space)
        if isinstance(index_to_code, Benchmark):
            if index_to_code.space.kind is not space_obj.kind:
                raise InvalidArchitectureError(
                    f"index_to_code comes from a {index_to_code.space.kind.value} benchmark; "
                    f"expected one of the {space_obj.kind.value} space"
                )
            index_to_code = index_to_code._index_to_code
        super().__init__(space_obj, index_to_code)
        if config is None:
            config = LiveConfig()
        if not isinstance(config, LiveConfig):
            raise LiveConfigError(f"config must be a LiveConfig, got {type(config).__name__}")
        self.config = config
        self._config_hash = config.config_hash()
        self.progress = progress
        if isinstance(reference_size, bool) or not isinstance(reference_size, (int, np.integer)) or (
            reference_size != 0 and not MIN_REFERENCE <= reference_size <= space_obj.size
        ):
            raise LiveConfigError(
                f"reference_size={reference_size!r}; expected 0 or an integer in {MIN_REFERENCE}..{space_obj.size}"
            )
        self.reference_size = int(reference_size)
        self._stats_memo: dict[tuple[Metric, Dataset], MetricStats] = {}

        if isinstance(data, Mapping):
            if not data:
                raise LiveConfigError("data is an empty mapping; map at least one dataset name to data")
            specs = {Dataset.parse(k): v for k, v in data.items()}
        else:
            specs = {ds: data for ds in Dataset}
        self._datasets = tuple(ds for ds in Dataset if ds in specs)
        # One LiveData per distinct spec; user data is checked now (errors at construction), the
        # default digits are loaded on first use.
        self._spec_of: dict[Dataset, int] = {}
        self._specs: dict[int, object] = {}
        self._data: dict[int, LiveData] = {}
        for ds, spec in specs.items():
            self._spec_of[ds] = id(spec)
            self._specs[id(spec)] = spec
            if spec is not None and id(spec) not in self._data:
                self._data[id(spec)] = as_live_data(spec, config)

        if cache_path is False:
            path = None
        elif cache_path is None or cache_path is True:
            path = default_live_cache_path()
        else:
            path = Path(cache_path)
        self._store = ResultStore(path)
        if weights_dir is False:
            self._weights: WeightStore | None = None
            self.capabilities = BenchmarkCapabilities(trains=True, keeps_weights=False, exact_statistics=False)
        else:
            folder = weights_dir if weights_dir not in (None, True) else (
                default_weights_dir(self._store.path) if self._store.persistent else None)
            self._weights = WeightStore(folder, max_weights_bytes)
        self._results: dict[tuple, TrainingResult] = {}
        self._costs: dict[Dataset, tuple[np.ndarray, np.ndarray]] = {}
        #: Networks trained / latencies measured by this object (cache hits do not count).
        self.trainings_run = 0
        self.latencies_measured = 0
        self._executor = make_executor(executor)
        if isinstance(max_retries, bool) or not isinstance(max_retries, (int, np.integer)) or max_retries < 0:
            raise LiveConfigError(f"max_retries={max_retries!r}; expected a non-negative integer, e.g. 2")
        self.max_retries = int(max_retries)
        self._inflight: dict[tuple, cf.Future] = {}
        self._inflight_lock = threading.Lock()
        #: Trials retried because their worker died.
        self.trials_retried = 0
        if isinstance(claim_ttl, bool) or not isinstance(claim_ttl, (int, float)) or not claim_ttl > 0:
            raise LiveConfigError(f"claim_ttl={claim_ttl!r}; expected a positive number of seconds, e.g. 60")
        self.claim_ttl = float(claim_ttl)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claim_poll_s = 0.5
        self._heartbeat: threading.Thread | None = None
        self._closed = threading.Event()
        #: Architectures this driver waited for because another driver had claimed them.
        self.waited_for_other_drivers = 0

    # --- what this backend has -------------------------------------------------------------------
    @property
    def datasets(self) -> tuple[Dataset, ...]:
        return self._datasets

    @property
    def budgets(self) -> tuple[int, ...]:
        """The one budget: ``config.epochs``."""
        return (self.config.epochs,)

    @property
    def latency_devices(self) -> tuple[str, ...]:
        return (LOCAL_DEVICE,)

    def available_metrics(self, dataset, budget=None) -> frozenset[Metric]:
        self.check_dataset(dataset)
        self.check_budget(budget)
        return frozenset(Metric)

    @property
    def cache_path(self) -> Path | None:
        """The SQLite file results persist in (``None`` when memory only)."""
        return self._store.path if self._store.persistent else None

    def data(self, dataset: Dataset | str) -> LiveData:
        """The training data behind ``dataset``'s accuracies (loads the digits on first use)."""
        ds = self.check_dataset(dataset)
        spec_id = self._spec_of[ds]
        if spec_id not in self._data:
            self._data[spec_id] = as_live_data(self._specs[spec_id], self.config)
        return self._data[spec_id]

    def costs(self, dataset: Dataset | str) -> tuple[np.ndarray, np.ndarray]:
        """Exact params and MFLOPs of every architecture's full-size network for ``dataset``, in code order."""
        ds = self.check_dataset(dataset)
        if ds not in self._costs:
            self._costs[ds] = space_costs(self.space, ds.num_classes, ds.image_size)
        return self._costs[ds]

    # --- evaluation -------------------------------------------------------------------------------
    def _training_key(self, code: int, data: LiveData) -> tuple[str, int, str, str, int]:
        return (self.space.kind.value, int(code), data.data_id, self._config_hash, self.config.seed)

    def _threads(self) -> int:
        return self.config.num_threads or torch.get_num_threads()

    def _progress(self, items: list, description: str) -> Iterator:
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show or len(items) < 2:
            yield from items
            return
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        except ImportError:  # rich is a dependency, but the bar is a nicety
            yield from items
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=len(items))
            for item in items:
                yield item
                bar.advance(task)

    def _trainings(
        self, codes: Iterable[int], dataset: Dataset, latency_dataset: Dataset | None = None
    ) -> dict[int, TrainingResult]:
        """Training results of ``codes`` (cache first; the missing ones trained, concurrently on a
        parallel executor, whose trials also measure ``latency_dataset``'s latency when given)."""
        data = self.data(dataset)
        out: dict[int, TrainingResult] = {}
        missing = []
        for code in dict.fromkeys(int(c) for c in codes):
            key = self._training_key(code, data)
            result = self._results.get(key)
            if result is None:
                record = self._store.get_training(key)
                if record is not None:
                    result = self._results[key] = TrainingResult.from_dict(record)
            if result is None:
                missing.append(code)
            else:
                out[code] = result
        if missing:
            logger.info(
                "live: training %d %s architecture(s) on %s (%d epochs)%s",
                len(missing), self.space.kind.value, data.name, self.config.epochs,
                "" if self._executor.synchronous else f" on {self._executor.describe()}",
            )
        if missing and not self._executor.synchronous:
            futures = {self._submit_training(code, data, latency_dataset): code for code in missing}
            for future in self._progress(list(cf.as_completed(futures)), f"training {self.space.kind.value} networks on {data.name}"):
                out[futures[future]] = future.result()
            return out
        for code in self._progress(missing, f"training {self.space.kind.value} networks on {data.name}"):
            encoding = self.space.decode(code)
            start = time.perf_counter()
            key = self._training_key(code, data)
            result = train_and_evaluate(self.space.kind, encoding, data, self.config, keep=self._weight_keeper(key, data))
            self.trainings_run += 1
            self._results[key] = result
            record = result.to_dict() | {
                "data_name": data.name,
                "config": self.config.training_fields(),
                "torch": torch.__version__,
            }
            self._store.put_training(key, self.space.format(encoding), record)
            logger.info(
                "live: %s -> valid %.2f%% test %.2f%% (%.1f s)",
                self.space.format(encoding), result.valid_accuracy, result.test_accuracy, time.perf_counter() - start,
            )
            out[code] = result
        return out

    def _latencies(self, codes: Iterable[int], dataset: Dataset) -> dict[int, float]:
        threads, runs = self._threads(), self.config.latency_runs
        out: dict[int, float] = {}
        missing = []
        for code in dict.fromkeys(int(c) for c in codes):
            value = self._store.get_latency((self.space.kind.value, code, dataset.value, threads, runs))
            if value is None:
                missing.append(code)
            else:
                out[code] = value
        for code in self._progress(missing, f"measuring latency on {LOCAL_DEVICE}"):
            value = nats_latency_ms(self.space.kind, self.space.decode(code), dataset, runs, self.config.num_threads)
            self.latencies_measured += 1
            self._store.put_latency((self.space.kind.value, code, dataset.value, threads, runs), value)
            out[code] = value
        return out

    def _query_indices(self, indices, dataset, budget, metrics, device):
        codes = self._index_to_code[np.asarray(indices, dtype=np.int64)]
        out: dict[Metric, np.ndarray] = {}
        if any(m in _TRAINING_FIELDS for m in metrics):
            results = self._trainings(codes.tolist(), dataset, dataset if Metric.LATENCY in metrics else None)
            for m in metrics:
                if m in _TRAINING_FIELDS:
                    out[m] = np.array([getattr(results[c], _TRAINING_FIELDS[m]) for c in codes.tolist()], dtype=np.float64)
        if Metric.LATENCY in metrics:
            latencies = self._latencies(codes.tolist(), dataset)
            out[Metric.LATENCY] = np.array([latencies[c] for c in codes.tolist()], dtype=np.float64)
        if Metric.PARAMS in metrics or Metric.FLOPS in metrics:
            params, flops = self.costs(dataset)
            out[Metric.PARAMS], out[Metric.FLOPS] = params[codes], flops[codes]
        return {m: out[m] for m in metrics}

    def training_result(self, arch: ArchLike, dataset: Dataset | str | None = None) -> TrainingResult:
        """The full training record of ``arch`` (trains it if needed); ``dataset`` picks the data."""
        ds = self.check_dataset(dataset if dataset is not None else self.datasets[0])
        code = int(self._index_to_code[self.index(arch)])
        return self._trainings([code], ds)[code]

    # --- concurrent trials ---------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        """Where this benchmark's trainings run (:mod:`natsbench_gym.live.executor`)."""
        return self._executor

    @property
    def parallelism(self) -> int:
        """Trainings that run at once: the executor's workers."""
        return self._executor.workers

    def submit(
        self, arch: ArchLike, dataset: Dataset | str, budget: int | None = None,
        metrics: Iterable[Metric | str] | None = None, device: str | None = None,
    ) -> cf.Future:
        """Start evaluating ``arch``; a future of its metrics (``query``'s answer).

        On a parallel executor this returns at once and the architecture trains on a worker (with
        its latency); an architecture already in flight is not launched again. The in-process
        executor evaluates it before returning.
        """
        spec = self.resolve(dataset, budget, metrics, device)
        index = self.index(arch)
        if self._executor.synchronous:
            return super().submit(index, spec.dataset, spec.budget, spec.metrics, spec.device)
        code = int(self._index_to_code[index])
        data = self.data(spec.dataset)
        trial = self._submit_training(code, data, spec.dataset if Metric.LATENCY in spec.metrics else None)
        answer: cf.Future = cf.Future()

        def relay(f: cf.Future) -> None:
            try:
                f.result()
                answer.set_result(self._query_one(index, *spec))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                answer.set_exception(exc)

        trial.add_done_callback(relay)
        return answer

    def _submit_training(self, code: int, data: LiveData, latency_dataset: Dataset | None) -> cf.Future:
        """The future of ``code``'s training result: the one in flight, a cached one, or a new trial."""
        key = self._training_key(code, data)
        with self._inflight_lock:
            future = self._inflight.get(key)
            if future is not None:
                return future
            result = self._results.get(key)
            if result is None:
                record = self._store.get_training(key)
                if record is not None:
                    result = self._results[key] = TrainingResult.from_dict(record)
            future = cf.Future()
            if result is not None:
                future.set_result(result)
                return future
            self._inflight[key] = future
        if latency_dataset is not None and self._store.get_latency(self._latency_key(code, latency_dataset)) is not None:
            latency_dataset = None
        self._start_heartbeat()
        if self._store.claim(key, self._owner, self.claim_ttl):
            self._launch_claimed(key, code, data, latency_dataset, future)
        else:
            self.waited_for_other_drivers += 1
            logger.info("live: %s is being trained by another driver of %s; waiting for its result",
                        self.space.format(self.space.decode(code)), self._store.path)
            threading.Thread(
                target=self._await_other_driver, args=(key, code, data, latency_dataset, future), daemon=True,
                name="natsbench-gym-await-claim",
            ).start()
        return future

    def _await_other_driver(self, key, code: int, data: LiveData, latency_dataset, future: cf.Future) -> None:
        """Wait until the driver holding ``key``'s claim writes its result, or its claim expires."""
        while not self._closed.is_set():
            record = self._store.get_training(key)
            if record is not None:
                result = self._results[key] = TrainingResult.from_dict(record)
                self._settle(key, future, result=result, release=False)
                return
            if self._store.claim(key, self._owner, self.claim_ttl):
                self._launch_claimed(key, code, data, latency_dataset, future)
                return
            time.sleep(self._claim_poll_s)
        self._settle(key, future, exc=TrialError("the LiveBenchmark was closed while waiting for another driver's result"))

    def _launch_claimed(self, key, code: int, data: LiveData, latency_dataset, future: cf.Future) -> None:
        """Launch a trial for a claimed ``key``, unless the driver that held the claim before wrote its
        result in the meantime (it writes the result, then releases the claim)."""
        record = self._store.get_training(key)
        if record is not None:
            result = self._results[key] = TrainingResult.from_dict(record)
            self._settle(key, future, result=result)
            return
        self._launch(key, code, data, latency_dataset, future, attempt=0)

    def _start_heartbeat(self) -> None:
        """Renew this driver's claims every ``claim_ttl / 3`` seconds while trials are in flight."""
        if self._heartbeat is not None or not self._store.persistent:
            return

        def beat() -> None:
            while not self._closed.wait(self.claim_ttl / 3):
                if self.in_flight():
                    self._store.renew_claims(self._owner, self.claim_ttl)

        self._heartbeat = threading.Thread(target=beat, daemon=True, name="natsbench-gym-claims")
        self._heartbeat.start()

    def _latency_key(self, code: int, dataset: Dataset) -> tuple[str, int, str, int, int]:
        return (self.space.kind.value, int(code), dataset.value, self._threads(), self.config.latency_runs)

    def _launch(self, key: tuple, code: int, data: LiveData, latency_dataset: Dataset | None, future: cf.Future, attempt: int) -> None:
        try:
            trial = self._executor.submit(
                run_trial, self.space.kind.value, self.space.decode(code), self._executor.share(data), self.config,
                self._weights is not None, None if latency_dataset is None else latency_dataset.value,
            )
        except BaseException as exc:  # noqa: BLE001 - e.g. Ray cannot start: the caller sees it
            self._settle(key, future, exc=exc)
            return
        trial.add_done_callback(lambda t: self._landed(key, code, data, latency_dataset, future, attempt, t))

    def _landed(self, key, code, data, latency_dataset, future: cf.Future, attempt: int, trial: cf.Future) -> None:
        if trial.cancelled():
            self._settle(key, future, exc=TrialError(
                f"training {self.space.format(self.space.decode(code))} was cancelled: the executor was shut down"))
            return
        exc = trial.exception()
        if exc is not None:
            if self._executor.is_worker_death(exc) and not self._executor.retries_itself and attempt < self.max_retries:
                self.trials_retried += 1
                logger.warning(
                    "live: the worker training %s died (%s); retrying (%d of %d)",
                    self.space.format(self.space.decode(code)), exc, attempt + 1, self.max_retries,
                )
                self._launch(key, code, data, latency_dataset, future, attempt + 1)
                return
            if self._executor.is_worker_death(exc):
                exc = TrialError(
                    f"training {self.space.format(self.space.decode(code))} failed: its worker died on every try ({exc}); "
                    "check the workers' memory and logs, or raise max_retries"
                )
            self._settle(key, future, exc=exc)
            return
        try:
            answer = trial.result()
            result = TrainingResult.from_dict(answer["result"])
            self._store_trial(key, code, data, result, answer)
            if answer.get("latency_ms") is not None and latency_dataset is not None:
                self._store.put_latency(self._latency_key(code, latency_dataset), float(answer["latency_ms"]))
                self.latencies_measured += 1
        except BaseException as exc:  # noqa: BLE001 - a result that cannot be stored fails its future
            self._settle(key, future, exc=exc)
            return
        self._settle(key, future, result=result)

    def _settle(
        self, key: tuple, future: cf.Future, result: TrainingResult | None = None, exc: BaseException | None = None,
        release: bool = True,
    ) -> None:
        if release:
            self._store.release(key, self._owner)
        with self._inflight_lock:
            self._inflight.pop(key, None)
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _store_trial(self, key: tuple, code: int, data: LiveData, result: TrainingResult, answer: dict) -> None:
        """Write a worker's result (and its network) the moment it arrives: one committed row."""
        self.trainings_run += 1
        self._results[key] = result
        weights = answer.get("weights")
        if weights is not None and self._weights is not None:
            self._weights.put_state(
                key, weights["state_dict"], (weights["mean"], weights["std"]), valid_logits=weights["valid_logits"],
                torch=torch.__version__,
            )
        record = result.to_dict() | {
            "data_name": data.name, "config": self.config.training_fields(), "torch": torch.__version__,
            "worker": f"{answer.get('host', '?')}:{answer.get('pid', '?')}",
        }
        self._store.put_training(key, self.space.format(self.space.decode(code)), record)
        logger.info(
            "live: %s -> valid %.2f%% test %.2f%% (%.1f s on %s)", self.space.format(self.space.decode(code)),
            result.valid_accuracy, result.test_accuracy, result.train_time, record["worker"],
        )

    def in_flight(self) -> int:
        """Trials launched and not answered yet."""
        with self._inflight_lock:
            return len(self._inflight)

    # --- kept networks -----------------------------------------------------------------------------
    @property
    def weights(self) -> WeightStore | None:
        """Where the trained networks are kept (``None``: ``weights_dir=False``)."""
        return self._weights

    def _weight_keeper(self, key: tuple, data: LiveData, kept: list | None = None):
        """What keeps a freshly trained network: its weights, normalisation and validation logits
        (so that showing its predictions needs no forward pass); ``kept`` also gets the network."""
        if self._weights is None:
            return None

        def keep(model, normalisation) -> None:
            if kept is not None:
                kept.append((model, normalisation))
            x = prepare_split(data.valid_x, self.config.input_size, *normalisation)
            with torch.inference_mode():
                logits = model.eval()(x).numpy()
            self._weights.put(key, model, normalisation, valid_logits=logits, torch=torch.__version__)

        return keep

    def trained_network(self, arch: ArchLike, dataset: Dataset | str | None = None) -> TrainedNetwork:
        """The trained network behind ``arch``'s accuracies, with the data split it was evaluated on.

        The network comes from the weight store; one not kept (evicted, or trained before weights
        were kept) is trained again first, deterministically under the seed. Safe to call from a
        thread other than the one querying (trainings in one process run one at a time).

        Raises:
            LiveConfigError: this benchmark keeps no weights (``weights_dir=False``).
        """
        if self._weights is None:
            raise LiveConfigError("this LiveBenchmark keeps no weights (weights_dir=False); pass weights_dir=None or a folder")
        from natsbench_gym.live.models import build_network

        ds = self.check_dataset(dataset if dataset is not None else self.datasets[0])
        index = self.index(arch)
        code = int(self._index_to_code[index])
        data = self.data(ds)
        key = self._training_key(code, data)
        encoding = self.space.decode(code)
        with _NETWORK_LOCK:  # a network asked for by two threads is trained once
            payload = self._weights.get(key)
            kept: list[tuple] = []
            if payload is None:
                logger.info("live: training %s again to get its network back (its weights were not kept)", self.space.format(encoding))
                result = train_and_evaluate(self.space.kind, encoding, data, self.config, keep=self._weight_keeper(key, data, kept))
                self.trainings_run += 1
                if self._store.get_training(key) is None:
                    self._results[key] = result
                    self._store.put_training(key, self.space.format(encoding), result.to_dict() | {
                        "data_name": data.name, "config": self.config.training_fields(), "torch": torch.__version__})
        if kept:
            module, (mean, std) = kept[0]
            payload = self._weights.get(key) or {}
        else:
            module = build_network(self.space.kind, encoding, data.num_classes, self.config.channels, self.config.cells_per_stage)
            module.load_state_dict(payload["state_dict"])
            mean, std = payload["mean"].numpy(), payload["std"].numpy()
        module.eval()
        logits = payload.get("valid_logits")
        record = self._results.get(key) or self._store.get_training(key)
        return TrainedNetwork(
            module=module, arch_str=self.space.format(encoding), index=int(index), data=data,
            mean=np.asarray(mean, dtype=np.float32), std=np.asarray(std, dtype=np.float32), config=self.config,
            result=record if isinstance(record, TrainingResult) else (None if record is None else TrainingResult.from_dict(record)),
            trained_on=self.trained_on(ds),
            valid_logits=None if logits is None else logits.numpy(),
        )

    def per_class_accuracy(
        self, arch: ArchLike, dataset: Dataset | str | None = None, split: str = "test"
    ) -> np.ndarray:
        """Accuracy (%) per class on ``"valid"`` or ``"test"`` (``nan`` for a class absent from the split)."""
        if split not in ("valid", "test"):
            raise UnknownNameError("split", split, ["valid", "test"])
        result = self.training_result(arch, dataset)
        return np.array(result.per_class_valid if split == "valid" else result.per_class_test, dtype=np.float64)

    def extra_info(self, arch: ArchLike, dataset: Dataset | str | None = None) -> dict[str, object]:
        """What a training run knows beyond the metrics (per-class accuracy, loss, provenance)."""
        ds = self.check_dataset(dataset if dataset is not None else self.datasets[0])
        result = self.training_result(arch, ds)
        data = self.data(ds)
        return {
            "per_class_valid_accuracy": np.array(result.per_class_valid),
            "per_class_test_accuracy": np.array(result.per_class_test),
            "final_train_loss": result.final_train_loss,
            "train_data": data.name,
            "data_id": data.data_id,
            "config_hash": self._config_hash,
            "seed": self.config.seed,
            "epochs": result.epochs,
        }

    def warm_up(self, dataset: Dataset | str, n: int = 8, seed: int = 0) -> np.ndarray:
        """Evaluate ``n`` seeded random architectures (every metric); return their indices.

        A way to fill the cache ahead of a search. Statistics never depend on it: they come from
        :meth:`reference_sample`, whatever else has been evaluated.
        """
        ds = self.check_dataset(dataset)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise LiveConfigError(f"warm_up(n={n!r}); expected a positive integer")
        indices = self._code_to_index[self._seeded_codes(int(n), seed)]
        self.query_many(indices, ds)
        return indices

    def _seeded_codes(self, n: int, seed: int) -> np.ndarray:
        return self.space.codes(self.space.sample_many(np.random.default_rng(seed), n, unique=True))

    def reference_sample(self) -> np.ndarray:
        """Official indices of the seeded reference sample the live statistics come from.

        ``reference_size`` architectures drawn with ``np.random.default_rng(config.seed)``: the same
        for every run with this config, whatever the cache holds.
        """
        if not self.reference_size:
            return np.empty(0, dtype=np.int64)
        return self._code_to_index[self._seeded_codes(self.reference_size, self.config.seed)]

    # --- statistics --------------------------------------------------------------------------------
    def _space_values(self, metric: Metric, dataset: Dataset, budget: int, device: str | None) -> np.ndarray:
        """Exact whole-space params/FLOPs; for measured metrics, the values of the reference sample
        (trained or measured on first need; the latency sample adds the extreme-FLOPs networks)."""
        if metric in (Metric.PARAMS, Metric.FLOPS):
            params, flops = self.costs(dataset)
            return params if metric is Metric.PARAMS else flops
        indices = self.reference_sample()
        if indices.size == 0:
            raise MissingMetricError(
                f"the live benchmark computes {metric.value} statistics over its seeded reference sample, "
                "and reference_size=0 turns it off; pass reference_size >= 2, or use a table backend for "
                "whole-space statistics"
            )
        if metric is Metric.LATENCY:
            _, flops = self.costs(dataset)
            extremes = self._code_to_index[np.array([int(np.argmin(flops)), int(np.argmax(flops))])]
            indices = np.unique(np.concatenate([indices, extremes]))
        if metric in _TRAINING_FIELDS and any(
            self._store.get_training(self._training_key(int(c), self.data(dataset))) is None
            for c in self._index_to_code[indices]
        ):
            logger.info(
                "live: training the seeded reference sample (%d %s architectures) the %s statistics come from "
                "(once; cached)", indices.size, self.space.kind.value, metric.value,
            )
        return self._query_indices(indices, dataset, budget, (metric,), device)[metric]

    def _stats(self, metric: Metric, dataset: Dataset, budget: int, device: str | None) -> MetricStats:
        """Exact whole-space statistics of params/FLOPs; reference-sample statistics otherwise, with
        fixed bounds (chance level to 100 %) for accuracies. The same whatever the cache holds."""
        key = (metric, dataset)
        stats = self._stats_memo.get(key)
        if stats is None:
            values = self._space_values(metric, dataset, budget, device)
            values = values[~np.isnan(values)]
            if values.size == 0:
                raise MissingMetricError(f"no {metric.value} values on {dataset.value} to compute statistics from")
            median = float(np.median(values))
            if metric in (Metric.TRAIN_ACCURACY, Metric.VALID_ACCURACY, Metric.TEST_ACCURACY):
                stats = MetricStats(100.0 / self.data(dataset).num_classes, 100.0, median)
            else:
                stats = MetricStats(float(values.min()), float(values.max()), median)
            self._stats_memo[key] = stats
        return stats

    # --- what the accuracies mean -----------------------------------------------------------------
    def trained_on(self, dataset: Dataset | str) -> str:
        """The data and budget the accuracies of ``dataset`` come from, e.g.
        ``"sklearn digits (10 classes, 16x16), 3 epochs, C=8, N=1"``."""
        ds = self.check_dataset(dataset)
        data = self.data(ds)
        c = self.config
        name = "sklearn digits" if self._specs[self._spec_of[ds]] is None else data.name
        net = f", C={c.channels}, N={c.cells_per_stage}" if self.space.kind is SpaceKind.TOPOLOGY else ""
        return f"{name} ({data.num_classes} classes, {c.input_size}x{c.input_size}), {c.epochs} epochs{net}"

    # --- housekeeping ------------------------------------------------------------------------------
    def describe(self) -> str:
        c = self.config
        names = {"sklearn digits" if self._specs[i] is None else self._data[i].name for i in self._spec_of.values()}
        net = f"C={c.channels}, N={c.cells_per_stage}, " if self.space.kind is SpaceKind.TOPOLOGY else ""
        where = self.cache_path or "memory"
        asked = "/".join(ds.value for ds in self._datasets)
        return (
            f"live {self.space.kind.value}: {asked} trained here on {'/'.join(sorted(names))} "
            f"({net}{c.input_size}px, {c.epochs} epochs, seed {c.seed}); cache {where}"
        )

    def close(self) -> None:
        """Close the cache file (results stay available in memory) and stop the executor's workers."""
        self._closed.set()
        self._executor.shutdown()
        self._store.close()

    def __getstate__(self) -> dict:
        # a copy (a vector-env worker) has nothing in flight; its executor starts its own workers
        state = self.__dict__.copy()
        state["_inflight"] = {}
        for name in ("_inflight_lock", "_heartbeat", "_closed"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._inflight_lock = threading.Lock()
        self._heartbeat = None
        self._closed = threading.Event()
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # a copy is another driver

    def __enter__(self) -> LiveBenchmark:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Where live trainings run: in this process, in local worker processes, or on a Ray cluster.

An executor runs one call per *trial* (one architecture trained and measured) and hands back a
:class:`concurrent.futures.Future`; :class:`~natsbench_gym.live.benchmark.LiveBenchmark` keeps the
bookkeeping (the result cache, one trial per architecture at a time, retries) on the driver, so the
three executors differ only in where the call runs:

=====================  ===================================================================
``InProcessExecutor``  the default: the call runs in the caller's process before ``submit``
                       returns (exactly the serial behaviour of a benchmark without executor).
``ProcessExecutor``    ``workers`` local processes (:class:`concurrent.futures.ProcessPoolExecutor`,
                       ``spawn``); a worker that dies fails its trial, which is retried.
``RayExecutor``        Ray core tasks: ``ray.init()`` on this machine (``workers`` CPUs) or a
                       running cluster (``address="auto"`` or ``"ray://head:10001"``); one CPU, or
                       ``gpus_per_trial`` GPUs, per trial; Ray retries a trial whose worker died.
=====================  ===================================================================

This module imports neither torch nor ray; ray is imported when a :class:`RayExecutor` first runs
something (``pip install "natsbench-gym[distributed]"``).

Example:
    >>> from natsbench_gym.live.executor import make_executor
    >>> make_executor(None).workers
    1
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from natsbench_gym.errors import NATSBenchGymError, UnknownNameError
from natsbench_gym.live.config import LiveConfigError

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorConfigError",
    "InProcessExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "TrialError",
    "WorkerDiedError",
    "make_executor",
]

logger = logging.getLogger(__name__)

#: Executor names :func:`make_executor` takes.
EXECUTORS = ("inprocess", "process", "ray")


class ExecutorConfigError(LiveConfigError):
    """An executor setting (workers, address, GPUs per trial ...) cannot work."""


class TrialError(NATSBenchGymError, RuntimeError):
    """A trial (one architecture's training) failed for good: its retries are spent."""


class WorkerDiedError(TrialError):
    """The process running a trial died (killed, out of memory, a lost node) before it answered."""


def _positive(name: str, value: object, allow_none: bool = False, allow_zero: bool = False) -> int | float | None:
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ExecutorConfigError(
            f"{name}={value!r}; expected a {'non-negative' if allow_zero else 'positive'} number"
            + (" or None" if allow_none else "")
        )
    return value


def _call_with_init(initializer: Callable | None, initargs: tuple, fn: Callable, item: Any) -> Any:
    """Run ``initializer(*initargs)`` once per worker process, then ``fn(item)`` (Ray has no pool initializer)."""
    if initializer is not None:
        key = (getattr(initializer, "__module__", ""), getattr(initializer, "__qualname__", repr(initializer)), repr(initargs))
        if key not in _INITIALISED:
            initializer(*initargs)
            _INITIALISED.add(key)
    return fn(item)


_INITIALISED: set[tuple] = set()


def _warm() -> int:
    """Run in each worker by :meth:`Executor.start`: import torch (seconds) before the first trial."""
    import torch  # noqa: F401 - the import is the point

    return os.getpid()


class Executor(ABC):
    """Runs trials somewhere and hands back futures.

    Subclasses implement :meth:`submit` and say how many trials run at once (:attr:`workers`).
    An executor is a context manager; :meth:`shutdown` stops what it started.
    """

    #: The name :func:`make_executor` knows it by.
    name: str = "executor"
    #: ``True``: :meth:`submit` runs the call before it returns (no concurrency).
    synchronous: bool = False
    #: ``True``: the executor retries a trial whose worker died (Ray); ``False``: the caller does.
    retries_itself: bool = False

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many trials run at once."""

    @abstractmethod
    def submit(self, fn: Callable, *args: Any) -> cf.Future:
        """Run ``fn(*args)`` (a module-level function) on a worker; a future of its return value."""

    def share(self, obj: Any) -> Any:
        """A handle of ``obj`` to pass to :meth:`submit` many times (Ray: put in the object store once)."""
        return obj

    def is_worker_death(self, exc: BaseException) -> bool:
        """Whether ``exc`` (from a future of this executor) means the worker died, not the trial."""
        return isinstance(exc, WorkerDiedError)

    def start(self) -> None:
        """Start the workers now (and import torch in each), so the first trials do not pay for it."""
        return None  # nothing to start for an executor without workers

    def map_unordered(
        self, fn: Callable, items: Iterable, initializer: Callable | None = None, initargs: tuple = ()
    ) -> Iterator:
        """``fn(item)`` for every item, yielded as they finish (at most :attr:`workers` at once in
        flight); ``initializer(*initargs)`` runs once in each worker first. For the reproduction
        sweeps, whose repetitions are independent."""
        pending: deque = deque(items)
        running: set[cf.Future] = set()
        while pending or running:
            while pending and len(running) < max(self.workers, 1):
                running.add(self.submit(_call_with_init, initializer, initargs, fn, pending.popleft()))
            done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def shutdown(self) -> None:
        """Stop the workers this executor started."""
        return None  # nothing started

    def describe(self) -> str:
        return f"{self.name} ({self.workers} worker{'s' if self.workers != 1 else ''})"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class InProcessExecutor(Executor):
    """Runs every trial in the calling process, one after another (the default)."""

    name = "inprocess"
    synchronous = True

    @property
    def workers(self) -> int:
        return 1

    def submit(self, fn: Callable, *args: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the future's owner, as other executors do
            future.set_exception(exc)
        return future

    def map_unordered(self, fn, items, initializer=None, initargs=()):
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield fn(item)


class ProcessExecutor(Executor):
    """``workers`` local worker processes (started with ``spawn``: no torch state is forked).

    A worker that dies (SIGKILL, out of memory) breaks the pool: its trials fail with
    :class:`WorkerDiedError` and the next :meth:`submit` starts a new pool.

    Args:
        workers: processes; default: ``os.cpu_count()``.
        mp_context: ``"spawn"`` (default), ``"forkserver"`` or ``"fork"``.
    """

    name = "process"

    def __init__(self, workers: int | None = None, mp_context: str = "spawn") -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ExecutorConfigError(f"workers={workers!r}; expected a positive integer, e.g. 2, or None for every core")
        if mp_context not in ("spawn", "forkserver", "fork"):
            raise UnknownNameError("multiprocessing start method", mp_context, ["spawn", "forkserver", "fork"])
        self._workers = workers or os.cpu_count() or 1
        self.mp_context = mp_context
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        return self._workers

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None or getattr(self._pool, "_broken", False):
                if self._pool is not None:
                    logger.warning("a local worker process died; starting a new pool of %d", self._workers)
                    self._pool.shutdown(wait=False, cancel_futures=True)
                import multiprocessing as mp

                self._pool = cf.ProcessPoolExecutor(self._workers, mp_context=mp.get_context(self.mp_context))
            return self._pool

    def submit(self, fn, *args):
        try:
            inner = self._get_pool().submit(fn, *args)
        except cf.process.BrokenProcessPool:
            inner = self._get_pool().submit(fn, *args)
        outer: cf.Future = cf.Future()

        def relay(f: cf.Future) -> None:
            if f.cancelled():  # the pool was shut down before the trial started
                outer.cancel()
                return
            exc = f.exception()
            if isinstance(exc, cf.process.BrokenProcessPool):
                outer.set_exception(WorkerDiedError(f"a local worker process died while running a trial ({exc})"))
            elif exc is not None:
                outer.set_exception(exc)
            else:
                outer.set_result(f.result())

        inner.add_done_callback(relay)
        return outer

    def start(self) -> None:
        pool = self._get_pool()
        cf.wait([pool.submit(_warm) for _ in range(self._workers)])

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __getstate__(self) -> dict:
        # a copy (in a vector-env worker) starts its own pool when it needs one
        return {"_workers": self._workers, "mp_context": self.mp_context, "_pool": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _ray_call(fn: Callable, *args: Any) -> Any:
    return fn(*args)


class RayExecutor(Executor):
    """Trials as Ray core tasks, on this machine or on a Ray cluster.

    If Ray is not initialised yet, the first use calls ``ray.init(address=address, ...)``: without
    ``address`` a local Ray instance with ``workers`` CPUs (and this machine's GPUs) starts, and
    :meth:`shutdown` stops it; with ``address`` (``"auto"``, ``"ray://head:10001"``) the driver
    joins that cluster and leaves it running. If Ray is already initialised, it is used as it is.

    Each trial asks Ray for ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs (Ray sets
    ``CUDA_VISIBLE_DEVICES``, so ``LiveConfig(device="cuda")`` trains on the trial's own GPU). A
    trial whose worker process or node died is retried by Ray up to ``max_retries`` times.

    Args:
        workers: trials in flight at once; default: what the cluster's CPUs (or GPUs, with
            ``gpus_per_trial``) hold. Locally it is also the CPUs the local instance gets.
        address: a running cluster to join; ``None``: start Ray here (or use the initialised one).
        cpus_per_trial, gpus_per_trial: Ray resources of one trial.
        max_retries: retries of a trial whose worker died.
        init_kwargs: more ``ray.init`` arguments (e.g. ``runtime_env``).
    """

    name = "ray"
    retries_itself = True

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        *,
        cpus_per_trial: float = 1,
        gpus_per_trial: float = 0,
        max_retries: int = 3,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ExecutorConfigError(f"workers={workers!r}; expected a positive integer, e.g. 2, or None for the whole cluster")
        if address is not None and not (isinstance(address, str) and address):
            raise ExecutorConfigError(f"address={address!r}; expected 'auto', 'ray://HOST:10001' or 'HOST:6379', or None to start Ray here")
        self._workers = workers
        self.address = address
        self.cpus_per_trial = _positive("cpus_per_trial", cpus_per_trial, allow_zero=True)
        self.gpus_per_trial = _positive("gpus_per_trial", gpus_per_trial, allow_zero=True)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ExecutorConfigError(f"max_retries={max_retries!r}; expected a non-negative integer, e.g. 3")
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})
        self._started_ray = False
        self._remote = None
        self._shared: dict[int, tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        # Trials wait here when `workers` are already in flight (Ray would queue them too; the cap
        # keeps the driver's notion of "free worker" exact for asynchronous searches).
        self._queue: deque = deque()
        self._running = 0

    def _ray(self):
        try:
            import ray
        except ImportError as exc:
            raise ExecutorConfigError(
                "the ray executor needs Ray; install it with: pip install \"natsbench-gym[distributed]\" (or pip install ray)"
            ) from exc
        with self._lock:
            if not ray.is_initialized():
                kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, **self.init_kwargs}
                if self.address is not None:
                    kwargs["address"] = self.address
                elif self._workers is not None:
                    kwargs.setdefault("num_cpus", max(1, int(round(self._workers * max(self.cpus_per_trial, 1)))))
                logger.info("starting Ray (%s)", self.address or "local instance")
                ray.init(**kwargs)
                self._started_ray = self.address is None
            if self._remote is None:
                self._remote = ray.remote(_ray_call).options(
                    num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_retries=self.max_retries,
                    retry_exceptions=False,
                )
        return ray

    @property
    def workers(self) -> int:
        if self._workers is not None:
            return self._workers
        ray = self._ray()
        resources = ray.cluster_resources()
        if self.gpus_per_trial:
            return max(1, int(resources.get("GPU", 0) // self.gpus_per_trial))
        return max(1, int(resources.get("CPU", 1) // max(self.cpus_per_trial, 1)))

    def share(self, obj):
        ray = self._ray()
        with self._lock:
            held = self._shared.get(id(obj))
            if held is None or held[0] is not obj:
                held = self._shared[id(obj)] = (obj, ray.put(obj))
            return held[1]

    def submit(self, fn, *args):
        self._ray()
        outer: cf.Future = cf.Future()
        with self._lock:
            self._queue.append((outer, fn, args))
        self._pump()
        return outer

    def _pump(self) -> None:
        limit = self.workers
        while True:
            with self._lock:
                if not self._queue or self._running >= limit:
                    return
                outer, fn, args = self._queue.popleft()
                self._running += 1
            try:
                inner = self._remote.remote(fn, *args).future()
            except Exception as exc:  # noqa: BLE001 - handed to the future's owner
                with self._lock:
                    self._running -= 1
                outer.set_exception(exc)
                continue
            inner.add_done_callback(lambda f, outer=outer: self._landed(f, outer))

    def _landed(self, inner: cf.Future, outer: cf.Future) -> None:
        with self._lock:
            self._running -= 1
        try:
            exc = inner.exception()
        except cf.CancelledError as cancelled:
            exc = cancelled
        if exc is None:
            outer.set_result(inner.result())
        elif self._is_ray_death(exc):
            outer.set_exception(WorkerDiedError(f"the Ray worker running a trial died and its {self.max_retries} retries failed too ({exc})"))
        else:
            cause = getattr(exc, "cause", None)  # RayTaskError wraps the trial's own exception
            outer.set_exception(cause if isinstance(cause, BaseException) else exc)
        self._pump()

    @staticmethod
    def _is_ray_death(exc: BaseException) -> bool:
        try:
            from ray import exceptions as rex
        except ImportError:
            return False
        kinds = tuple(getattr(rex, n) for n in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "LocalRayletDiedError") if hasattr(rex, n))
        return isinstance(exc, kinds)

    def is_worker_death(self, exc):
        return isinstance(exc, WorkerDiedError) or self._is_ray_death(exc)

    def start(self) -> None:
        self._ray()
        cf.wait([self.submit(_warm) for _ in range(self.workers)])

    def shutdown(self) -> None:
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
        self._remote = None
        self._shared.clear()

    def describe(self) -> str:
        where = self.address or "local Ray"
        n = self._workers if self._workers is not None else "all"
        gpus = f", {self.gpus_per_trial:g} GPU/trial" if self.gpus_per_trial else ""
        return f"ray on {where} ({n} workers{gpus})"

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_remote", "_shared", "_queue")}
        state["_started_ray"] = False
        state["_running"] = 0
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._remote = None
        self._shared = {}
        self._queue = deque()


def make_executor(
    executor: Executor | str | None = None,
    workers: int | None = None,
    *,
    address: str | None = None,
    gpus_per_trial: float = 0,
) -> Executor:
    """An executor by name: ``None``/``"inprocess"``, ``"process"`` or ``"ray"`` (or one given).

    Args:
        executor: a name of :data:`EXECUTORS`, or an :class:`Executor` (returned as it is).
        workers: trials at once (``"process"``, ``"ray"``).
        address: Ray cluster address (``"ray"`` only).
        gpus_per_trial: GPUs per trial (``"ray"`` only).

    Raises:
        UnknownNameError: an unknown name.
        ExecutorConfigError: a setting the executor does not take.
    """
    if isinstance(executor, Executor):
        return executor
    name = "inprocess" if executor is None else executor
    if not isinstance(name, str) or name not in EXECUTORS:
        raise UnknownNameError("executor", name, EXECUTORS)
    if name != "ray" and (address is not None or gpus_per_trial):
        raise ExecutorConfigError(
            f"address={address!r} and gpus_per_trial={gpus_per_trial!r} need the ray executor; got executor={name!r}"
        )
    if name == "inprocess":
        if workers not in (None, 1):
            raise ExecutorConfigError(f"workers={workers!r} with the in-process executor; use executor='process' or 'ray' for more")
        return InProcessExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    return RayExecutor(workers, address, gpus_per_trial=gpus_per_trial)

"""Live trainings on executors: in-process, local processes and Ray (a local instance), the cache as
the single source of truth (one trial per architecture, results written as they arrive, retries, a
killed driver resumes), determinism of batched searches on every executor, and a Ray worker killed
while it trains. The Ray tests skip when ray is not installed (``pip install -e ".[distributed]"``)."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import gymnasium as gym  # noqa: E402

from agents.parallel import AsyncRegularizedEvolution, ParallelRandomSearch  # noqa: E402
from natsbench_gym.errors import UnknownNameError  # noqa: E402
from natsbench_gym.live import LiveConfig, LiveConfigError  # noqa: E402
from natsbench_gym.live.benchmark import LiveBenchmark  # noqa: E402
from natsbench_gym.live.executor import (  # noqa: E402
    ExecutorConfigError,
    InProcessExecutor,
    ProcessExecutor,
    RayExecutor,
    TrialError,
    WorkerDiedError,
    make_executor,
)
from natsbench_gym.types import Metric  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = LiveConfig(
    epochs=1, channels=4, cells_per_stage=1, batch_size=32, input_size=8, max_train_samples=120, latency_runs=1
)
ARCHS = [1, 50, 700, 3000]
ACCURACIES = (Metric.VALID_ACCURACY, Metric.TEST_ACCURACY, Metric.TRAIN_ACCURACY)


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "default-cache"))


def accuracies(bench: LiveBenchmark, archs=ARCHS) -> list[tuple[float, ...]]:
    out = bench.query_many(archs, "cifar10", metrics=ACCURACIES)
    return [tuple(float(out[m][i]) for m in ACCURACIES) for i in range(len(archs))]


def cache_rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT arch_code FROM trainings ORDER BY arch_code")]


class ManualExecutor(InProcessExecutor):
    """Runs nothing until told: futures stay pending (trials 'in flight'); ``fail`` makes the next
    ``n`` trials die as a killed worker would."""

    synchronous = False

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.fail = 0

    @property
    def workers(self) -> int:
        return 2

    def submit(self, fn, *args):
        future: cf.Future = cf.Future()
        self.calls.append((future, fn, args))
        return future

    def run_all(self) -> None:
        while self.calls:
            future, fn, args = self.calls.pop(0)
            if self.fail:
                self.fail -= 1
                future.set_exception(WorkerDiedError("killed for the test"))
            else:
                future.set_result(fn(*args))


# --- settings -----------------------------------------------------------------------------------
def test_executors_by_name_and_typed_errors():
    assert isinstance(make_executor(None), InProcessExecutor)
    assert make_executor("process", 2).workers == 2
    assert make_executor("ray", 2, address="auto").address == "auto"  # ray is not imported yet
    with pytest.raises(UnknownNameError, match=r"unknown executor 'rey'; did you mean 'ray'\?"):
        make_executor("rey")
    with pytest.raises(ExecutorConfigError, match=r"workers=0; expected a positive integer"):
        ProcessExecutor(0)
    with pytest.raises(ExecutorConfigError, match=r"address='auto' .* need the ray executor; got executor='process'"):
        make_executor("process", address="auto")
    with pytest.raises(ExecutorConfigError, match=r"workers=4 with the in-process executor; use executor='process' or 'ray'"):
        make_executor("inprocess", 4)
    with pytest.raises(ExecutorConfigError, match=r"gpus_per_trial=-1; expected a non-negative number"):
        RayExecutor(gpus_per_trial=-1)
    with pytest.raises(LiveConfigError, match=r"LiveConfig.device='gpu'; expected 'cpu', 'cuda' or 'cuda:N'"):
        LiveConfig(device="gpu")
    with pytest.raises(LiveConfigError, match=r"max_retries=-1; expected a non-negative integer"):
        LiveBenchmark("topology", TINY, cache_path=False, max_retries=-1)


def test_the_cpu_device_keeps_the_cache_keys_and_a_gpu_gets_its_own():
    assert "device" not in LiveConfig().training_fields()
    assert LiveConfig(device="cuda").config_hash() != LiveConfig().config_hash()


def test_importing_the_package_imports_neither_torch_nor_ray():
    code = "import sys, natsbench_gym, natsbench_gym.live.executor; print('torch' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


# --- the cache as the single source of truth ------------------------------------------------------
def test_an_architecture_in_flight_is_not_trained_twice_and_lands_in_the_cache_at_once(tmp_path):
    executor = ManualExecutor()
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "c.sqlite", executor=executor, reference_size=0)
    first = bench.submit(ARCHS[0], "cifar10")
    again = bench.submit(ARCHS[0], "cifar10")
    other = bench.submit(ARCHS[1], "cifar10")
    assert len(executor.calls) == 2 and bench.in_flight() == 2  # one trial per architecture
    executor.run_all()
    assert first.result()[Metric.VALID_ACCURACY] == again.result()[Metric.VALID_ACCURACY]
    assert other.done() and bench.in_flight() == 0 and bench.trainings_run == 2
    # written as they arrived: another driver reads them without training
    reader = LiveBenchmark("topology", TINY, cache_path=tmp_path / "c.sqlite", reference_size=0)
    assert accuracies(reader, ARCHS[:2]) == accuracies(bench, ARCHS[:2])
    assert reader.trainings_run == 0
    assert reader.trained_network(ARCHS[0]).valid_logits is not None  # the worker's network was kept
    assert reader.trainings_run == 0
    bench.submit(ARCHS[0], "cifar10").result()  # cached: no new trial
    assert executor.calls == []


def test_a_trial_whose_worker_died_is_retried_then_fails_with_a_typed_error(tmp_path):
    executor = ManualExecutor()
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "c.sqlite", executor=executor, reference_size=0, max_retries=2)
    executor.fail = 2
    future = bench.submit(ARCHS[0], "cifar10")
    for _ in range(3):
        executor.run_all()
    assert future.result()[Metric.VALID_ACCURACY] > 0 and bench.trials_retried == 2
    executor.fail = 3
    doomed = bench.submit(ARCHS[1], "cifar10")
    for _ in range(3):
        executor.run_all()
    with pytest.raises(TrialError, match=r"failed: its worker died on every try.*raise max_retries"):
        doomed.result()
    assert cache_rows(tmp_path / "c.sqlite") == [bench._index_to_code[ARCHS[0]]]


def test_two_drivers_on_one_cache_do_not_train_an_architecture_twice_at_once(tmp_path):
    cache = tmp_path / "shared.sqlite"
    first, second = ManualExecutor(), ManualExecutor()
    a = LiveBenchmark("topology", TINY, cache_path=cache, executor=first, reference_size=0)
    b = LiveBenchmark("topology", TINY, cache_path=cache, executor=second, reference_size=0)
    b._claim_poll_s = 0.02
    mine = a.submit(ARCHS[0], "cifar10")
    theirs = b.submit(ARCHS[0], "cifar10")  # claimed by a: b waits instead of training it
    assert len(first.calls) == 1 and second.calls == [] and b.waited_for_other_drivers == 1
    first.run_all()
    assert theirs.result(timeout=30)[Metric.VALID_ACCURACY] == mine.result()[Metric.VALID_ACCURACY]
    assert b.trainings_run == 0 and cache_rows(cache) == [a._index_to_code[ARCHS[0]]]
    # a driver that died leaves a claim behind: it expires, and the architecture is trained after all
    key = b._training_key(int(b._index_to_code[ARCHS[1]]), b.data("cifar10"))
    assert b._store.claim(key, "dead-driver", ttl=0.1)
    late = b.submit(ARCHS[1], "cifar10")
    deadline = time.monotonic() + 30
    while not second.calls and time.monotonic() < deadline:
        time.sleep(0.02)
    second.run_all()
    assert late.result(timeout=30)[Metric.VALID_ACCURACY] > 0 and b.trainings_run == 1
    # the other driver wrote its result (then released its claim) between our look and our claim
    a.submit(ARCHS[2], "cifar10")
    first.run_all()
    looked = b._store.get_training
    misses = iter([True])
    b._store.get_training = lambda key: None if next(misses, False) else looked(key)
    raced = b.submit(ARCHS[2], "cifar10")
    assert second.calls == [] and raced.result(timeout=30)[Metric.VALID_ACCURACY] > 0 and b.trainings_run == 1
    with pytest.raises(LiveConfigError, match=r"claim_ttl=0; expected a positive number of seconds"):
        LiveBenchmark("topology", TINY, cache_path=False, claim_ttl=0)


def test_results_do_not_depend_on_the_executor_in_a_worker_process(tmp_path):
    serial = LiveBenchmark("topology", TINY, cache_path=False, reference_size=0)
    with ProcessExecutor(2) as executor:
        parallel = LiveBenchmark("topology", TINY, cache_path=tmp_path / "p.sqlite", executor=executor, reference_size=0)
        every_metric = parallel.query_many(ARCHS, "cifar10")  # trainings and latencies, on the workers
        assert (every_metric[Metric.LATENCY] > 0).all()
        assert parallel.trainings_run == len(ARCHS) and parallel.latencies_measured == len(ARCHS)
        assert accuracies(parallel) == accuracies(serial)


class CountingProcessExecutor(ProcessExecutor):
    """Local processes that count the trials in flight at once (``peak``)."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.in_flight = self.peak = self.trials = 0
        self._count_lock = threading.Lock()

    def submit(self, fn, *args):
        with self._count_lock:
            self.in_flight += 1
            self.trials += 1
            self.peak = max(self.peak, self.in_flight)
        future = super().submit(fn, *args)
        future.add_done_callback(lambda _: self._landed())
        return future

    def _landed(self) -> None:
        with self._count_lock:
            self.in_flight -= 1


def test_monas_side_by_side_trains_each_rounds_architectures_together_on_local_processes(tmp_path):
    from agents.monas import MONAS

    def valid_accuracy(metrics):  # needs no reference sample: every trial is one of the search's
        return metrics[Metric.VALID_ACCURACY] / 100

    def run(executor, n_envs):
        bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / f"{n_envs}-{executor is None}.sqlite",
                              executor=executor, reference_size=0)
        env = gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar10", reward_model=valid_accuracy)
        result = MONAS(seed=0, episodes_per_update=4, n_envs=n_envs).search(env, budget=7)
        return [(e.index, e.reward, e.metrics["valid_accuracy"]) for e in result.history], bench

    serial, _ = run(None, 1)
    with CountingProcessExecutor(2) as executor:
        side_by_side, bench = run(executor, 2)
    assert side_by_side == serial  # the same architectures, accuracies and rewards as one at a time
    distinct = len({index for index, _, _ in serial})
    assert bench.trainings_run == executor.trials == distinct  # each trained once, the 7th and last alone
    # rounds of n_envs=2: two trials at once, never the update's 4 (n_envs=1 hands all 4 over up front)
    assert executor.peak == 2


@pytest.mark.slow
def test_a_killed_driver_resumes_from_the_cache_without_retraining(tmp_path):
    cache = tmp_path / "resume.sqlite"
    driver = textwrap.dedent(f"""
        from natsbench_gym.live import LiveConfig
        from natsbench_gym.live.benchmark import LiveBenchmark
        config = LiveConfig(epochs=2, channels=4, input_size=8, latency_runs=1)
        bench = LiveBenchmark("topology", config, cache_path={str(cache)!r}, reference_size=0)
        bench.query_many(list(range(0, 4000, 250)), "cifar10", metrics=["valid_accuracy"])
    """)
    proc = subprocess.Popen([sys.executable, "-c", driver], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if cache.exists() and len(cache_rows(cache)) >= 2:
                break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = cache_rows(cache)
    assert 2 <= len(done) < 16
    config = LiveConfig(epochs=2, channels=4, input_size=8, latency_runs=1)
    with ProcessExecutor(2) as executor:
        bench = LiveBenchmark("topology", config, cache_path=cache, reference_size=0, executor=executor)
        bench.query_many(list(range(0, 4000, 250)), "cifar10", metrics=["valid_accuracy"])
    assert bench.trainings_run == 16 - len(done)
    assert len(cache_rows(cache)) == 16


# --- Ray ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_executor():
    pytest.importorskip("ray")
    executor = RayExecutor(2, init_kwargs={"object_store_memory": 100 * 2**20, "log_to_driver": False})
    executor.start()
    yield executor
    executor.shutdown()


def live_env(executor, cache: Path | bool):
    bench = LiveBenchmark("topology", TINY, cache_path=cache, executor=executor, reference_size=2)
    return gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar10", reward_model="accuracy"), bench


def search_history(agent, executor, cache) -> list[tuple]:
    env, bench = live_env(executor, cache)
    result = agent.search(env, budget=10)
    return [(e.index, e.arch, e.reward, e.metrics["valid_accuracy"], e.metrics["test_accuracy"]) for e in result.history]


@pytest.mark.slow
def test_synchronous_batched_searches_give_the_same_history_on_every_executor(ray_executor, tmp_path):
    from agents.monas import MONAS
    from agents.sb3 import SB3Agent

    agents = {
        "random": lambda: ParallelRandomSearch(seed=0, batch_size=2),
        "re": lambda: AsyncRegularizedEvolution(4, 2, seed=0, workers=2, asynchronous=False),
        "monas": lambda: MONAS(seed=0, episodes_per_update=2),
        "monas_vector": lambda: MONAS(seed=0, episodes_per_update=2, n_envs=2),
        "ppo": lambda: SB3Agent("ppo", seed=0, episodes_per_update=2, n_envs=2),
    }
    with ProcessExecutor(2) as local:
        for name, agent in agents.items():
            serial = search_history(agent(), None, tmp_path / f"{name}-serial.sqlite")
            assert search_history(agent(), local, tmp_path / f"{name}-process.sqlite") == serial
            assert search_history(agent(), ray_executor, tmp_path / f"{name}-ray.sqlite") == serial


@pytest.mark.slow
def test_the_sweeps_spread_repetitions_over_ray(ray_executor, tiny_tables, tmp_path):
    import importlib

    assert sorted(ray_executor.map_unordered(abs, [-1, -2, 3, -4])) == [1, 2, 3, 4]
    script = importlib.import_module("natsbench_gym_cli.reproduce_figs45")
    argv = ["--algos", "re,random", "--variants", "predefined", "--datasets", "cifar10", "--seeds", "2",
            "--evaluations", "10", "--data", str(tiny_tables)]
    assert script.main([*argv, "--workers", "1", "--out", str(tmp_path / "serial")]) == 0
    assert script.main([*argv, "--executor", "ray", "--workers", "2", "--out", str(tmp_path / "ray")]) == 0
    assert (tmp_path / "ray" / "runs.csv").read_text() == (tmp_path / "serial" / "runs.csv").read_text()


def _descendants(root: int) -> set[int]:
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - out
        out |= frontier
    return out


def _training_ray_workers() -> list[int]:
    """Ray workers of *this* test's Ray instance that are running a trial now (process title
    ``ray::_ray_call``)."""
    pids = []
    for pid in _descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::_ray_call"):
            pids.append(pid)
    return pids


@pytest.mark.slow
def test_a_ray_worker_killed_while_it_trains_is_retried_and_every_result_is_cached_once(ray_executor, tmp_path):
    killed: list[int] = []
    stop = threading.Event()

    def kill_one_training_worker() -> None:
        while not stop.is_set() and not killed:
            for pid in _training_ray_workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.05)

    cache = tmp_path / "fault.sqlite"
    config = TINY.replace(epochs=4, max_train_samples=None)  # about a second per trial: time to kill one
    bench = LiveBenchmark("topology", config, cache_path=cache, executor=ray_executor, reference_size=2)
    env = gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar10", reward_model="accuracy")
    killer = threading.Thread(target=kill_one_training_worker, daemon=True)
    killer.start()
    try:
        result = AsyncRegularizedEvolution(4, 2, seed=0, asynchronous=True).search(env, budget=10)
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen training"
    assert len(result.history) == 10
    evaluated = {int(bench._index_to_code[e.index]) for e in result.history} | {
        int(bench._index_to_code[i]) for i in bench.reference_sample()}
    rows = cache_rows(cache)
    assert sorted(rows) == sorted(evaluated)  # every result, each exactly once
    assert bench.trainings_run == len(evaluated)  # and written once by the driver


@pytest.mark.slow
def test_a_local_worker_killed_while_it_trains_is_retried(tmp_path):
    config = TINY.replace(epochs=4, max_train_samples=None)
    with ProcessExecutor(2) as executor:
        executor.start()
        workers = sorted(executor._pool._processes)  # the pool's worker processes
        bench = LiveBenchmark("topology", config, cache_path=tmp_path / "local.sqlite", executor=executor, reference_size=0)
        futures = [bench.submit(i, "cifar10") for i in ARCHS]
        time.sleep(0.5)
        os.kill(workers[0], signal.SIGKILL)
        answers = [f.result(timeout=300) for f in futures]
    assert all(a[Metric.VALID_ACCURACY] > 0 for a in answers)
    assert bench.trials_retried >= 1
    assert sorted(cache_rows(tmp_path / "local.sqlite")) == sorted(int(bench._index_to_code[i]) for i in ARCHS)
    assert bench.trainings_run == len(ARCHS)

"""The live backend: metrics, determinism, the SQLite cache, user data and typed errors (tiny budgets)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import REAL_DATA_SKIP_REASON  # noqa: E402

import natsbench_gym  # noqa: E402
from natsbench_gym import benchmarks as benchmarks_module  # noqa: E402
from natsbench_gym.errors import (  # noqa: E402
    InvalidArchitectureError,
    MissingMetricError,
    NATSBenchGymError,
    UnknownNameError,
)
from natsbench_gym.live import LiveConfig, LiveConfigError, register_live_fallback  # noqa: E402
from natsbench_gym.live.benchmark import LOCAL_DEVICE, LiveBenchmark  # noqa: E402
from natsbench_gym.live.cost import nats_cost, space_costs  # noqa: E402
from natsbench_gym.live.data import LiveData  # noqa: E402
from natsbench_gym.types import Dataset, Metric  # noqa: E402

TINY = LiveConfig(
    epochs=1, channels=4, cells_per_stage=1, batch_size=32, input_size=8, max_train_samples=120, latency_runs=1
)
ARCH = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "default-cache"))


def _toy_images(n: int = 90, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 8, 8)).astype(np.float32) + y[:, None, None]  # separable by brightness
    return x, y


def test_query_returns_every_metric(tmp_path):
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")
    assert bench.budgets == (1,) and bench.latency_devices == (LOCAL_DEVICE,)
    assert bench.datasets == tuple(Dataset)
    result = bench.query(ARCH, "cifar100")
    assert set(result) == set(Metric)
    for m in (Metric.TRAIN_ACCURACY, Metric.VALID_ACCURACY, Metric.TEST_ACCURACY):
        assert 0.0 <= result[m] <= 100.0
    assert result[Metric.TRAIN_TIME] > 0 and result[Metric.LATENCY] > 0
    cost = nats_cost("topology", bench.space.parse(ARCH), "cifar100")  # the full-size NATS network
    assert result[Metric.PARAMS] == cost.params_m and result[Metric.FLOPS] == cost.flops_m
    per_class = bench.per_class_accuracy(ARCH, "cifar100")
    assert per_class.shape == (10,)  # digits
    info = bench.extra_info(ARCH, "cifar100")
    assert info["train_data"] == "digits" and info["epochs"] == 1
    assert "digits" in bench.describe()


def test_deterministic_under_seed_and_leaves_torch_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    threads = torch.get_num_threads()
    metrics = ["valid_accuracy", "test_accuracy", "train_accuracy"]
    a = LiveBenchmark("size", TINY, cache_path=False).query_many([5, 300], "cifar10", metrics=metrics)
    b = LiveBenchmark("size", TINY, cache_path=False).query_many([5, 300], "cifar10", metrics=metrics)
    for m in a:
        np.testing.assert_array_equal(a[m], b[m])
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.get_num_threads() == threads


def test_sqlite_cache_hits_and_survives_reopen(tmp_path):
    path = tmp_path / "live.sqlite"
    bench = LiveBenchmark("topology", TINY, cache_path=path)
    first = bench.query(ARCH, "cifar10")
    assert (bench.trainings_run, bench.latencies_measured) == (1, 1)
    assert bench.query(ARCH, "cifar10") == first
    assert (bench.trainings_run, bench.latencies_measured) == (1, 1)
    # another dataset name trains on the same digits: the training is shared, latency is not
    other = bench.query(ARCH, "ImageNet16-120")
    assert bench.trainings_run == 1 and bench.latencies_measured == 2
    assert other[Metric.VALID_ACCURACY] == first[Metric.VALID_ACCURACY]
    assert other[Metric.FLOPS] < first[Metric.FLOPS]  # 16x16 ImageNet16 images
    bench.close()

    reopened = LiveBenchmark("topology", TINY, cache_path=path)
    assert reopened.query(ARCH, "cifar10") == first
    assert (reopened.trainings_run, reopened.latencies_measured) == (0, 0)
    # a new seed is a new key
    reseeded = LiveBenchmark("topology", TINY.replace(seed=1), cache_path=path)
    reseeded.query(ARCH, "cifar10", metrics=["valid_accuracy"])
    assert reseeded.trainings_run == 1


def test_interrupted_sweep_resumes(tmp_path, monkeypatch):
    from natsbench_gym.live import benchmark as live_benchmark

    real = live_benchmark.train_and_evaluate
    calls = []

    def interrupted_on_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    path = tmp_path / "live.sqlite"
    monkeypatch.setattr(live_benchmark, "train_and_evaluate", interrupted_on_second)
    with pytest.raises(KeyboardInterrupt):
        LiveBenchmark("size", TINY, cache_path=path).query_many([1, 2, 3], "cifar10", metrics=["valid_accuracy"])
    monkeypatch.setattr(live_benchmark, "train_and_evaluate", real)
    resumed = LiveBenchmark("size", TINY, cache_path=path)
    resumed.query_many([1, 2, 3], "cifar10", metrics=["valid_accuracy"])
    assert resumed.trainings_run == 2  # architecture 1 was committed before the interruption


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-header"])
def test_a_corrupt_result_cache_is_moved_aside_and_rebuilt(tmp_path, caplog, damage):
    path = tmp_path / "live.sqlite"
    bench = LiveBenchmark("size", TINY, cache_path=path)
    first = bench.query(9, "cifar10", metrics=["valid_accuracy"])
    bench.close()
    data = path.read_bytes()
    path.write_bytes({"garbage": b"not a database " * 500, "truncated": data[: len(data) // 2],
                      "empty-header": b"SQLite format 3\x00"}[damage])
    again = LiveBenchmark("size", TINY, cache_path=path)  # no exception: the bad file is set aside
    assert again.cache_path == path  # a fresh file, not memory only
    assert again.query(9, "cifar10", metrics=["valid_accuracy"]) == first and again.trainings_run == 1
    assert (tmp_path / "live.sqlite.corrupt").is_file()
    assert "not a readable SQLite database" in caplog.text
    again.close()
    assert LiveBenchmark("size", TINY, cache_path=path).query(9, "cifar10", metrics=["valid_accuracy"]) == first


def test_pickled_copy_reopens_the_cache(tmp_path):
    import pickle

    bench = LiveBenchmark("size", TINY, cache_path=tmp_path / "live.sqlite")
    first = bench.query(9, "cifar10", metrics=["valid_accuracy"])
    copy = pickle.loads(pickle.dumps(bench))
    assert copy.cache_path == bench.cache_path
    assert copy.query(9, "cifar10", metrics=["valid_accuracy"]) == first
    assert copy.cache_path is not None  # the file was reopened, not just the memory copied
    copy.query(10, "cifar10", metrics=["valid_accuracy"])
    fresh = LiveBenchmark("size", TINY, cache_path=tmp_path / "live.sqlite")
    fresh.query(10, "cifar10", metrics=["valid_accuracy"])
    assert fresh.trainings_run == 0  # the copy committed its result to the shared file


def test_cheap_metrics_do_not_train():
    bench = LiveBenchmark("size", TINY, cache_path=False)
    out = bench.query_many(np.arange(bench.space.size), "cifar10", metrics=["params", "flops"])
    assert out[Metric.PARAMS].shape == (bench.space.size,)
    assert bench.trainings_run == 0 and bench.latencies_measured == 0


def test_statistics(tmp_path):
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite", progress=True, reference_size=0)
    params, _ = space_costs(bench.space, 10, 32)
    stats = bench.stats("params", "cifar10")
    assert (stats.min, stats.max) == (params.min(), params.max())
    with pytest.raises(MissingMetricError, match="reference sample.*reference_size=0"):
        bench.stats("valid_accuracy", "cifar10")
    bench.query_many([0, 1], "cifar10", metrics=["valid_accuracy", "latency"])  # two at once: progress bar
    with pytest.raises(MissingMetricError, match="reference_size=0"):
        bench.stats("latency", "cifar10")  # what has been evaluated is never a statistic
    with pytest.raises(LiveConfigError, match="reference_size"):
        LiveBenchmark("size", TINY, cache_path=False, reference_size=1)
    warmed = LiveBenchmark("size", TINY, cache_path=False, reference_size=2)
    indices = warmed.warm_up("cifar10", n=2)
    assert len(set(indices.tolist())) == 2 and warmed.trainings_run == 2
    assert warmed.stats("train_time", "cifar10").min > 0
    assert warmed.stats("latency", "cifar10").min > 0
    with pytest.raises(LiveConfigError, match="warm_up"):
        warmed.warm_up("cifar10", n=0)


def test_statistics_come_from_the_seeded_reference_sample():
    bench = LiveBenchmark("size", TINY, cache_path=False, reference_size=3)
    stats = bench.stats("valid_accuracy", "cifar10")  # no evaluation yet: trains the 3 reference archs first
    assert bench.trainings_run == 3
    # accuracies: fixed bounds from chance level (digits: 10 classes) to 100 %, the sample's median
    assert (stats.min, stats.max) == (10.0, 100.0)
    reference = bench.reference_sample()
    assert reference.size == 3
    values = bench.query_many(reference, "cifar10", metrics=["valid_accuracy"])[Metric.VALID_ACCURACY]
    assert stats.median == pytest.approx(float(np.median(values)))
    again = LiveBenchmark("size", TINY, cache_path=False, reference_size=3)
    assert again.stats("valid_accuracy", "cifar10") == stats  # the sample is seeded
    np.testing.assert_array_equal(again.reference_sample(), reference)
    # the distribution a reward model normalises with is the sample's, never the whole space trained
    assert again.space_values("valid_accuracy", "cifar10").size == 3 and again.trainings_run == 3
    assert again.space_values("params", "cifar10").size == again.space.size
    # latency: the sample and the space's cheapest and dearest networks (by FLOPs), measured, not trained
    latency = again.space_values("latency", "cifar10")
    assert latency.size == 5 and again.trainings_run == 3
    _, flops = again.costs("cifar10")
    cheapest, dearest = again.index(again.space.decode(int(np.argmin(flops)))), again.index(again.space.decode(int(np.argmax(flops))))
    lat = again.query_many([cheapest, dearest], "cifar10", metrics=["latency"])[Metric.LATENCY]
    assert again.stats("latency", "cifar10").min <= lat[0] and again.stats("latency", "cifar10").max >= lat[1]


def test_statistics_do_not_depend_on_what_the_cache_holds(tmp_path):
    """The cause of two `make run`s of one seed differing: statistics over whatever the cache held."""
    empty = LiveBenchmark("topology", TINY, cache_path=tmp_path / "empty.sqlite", reference_size=3)
    busy_path = tmp_path / "busy.sqlite"
    filler = LiveBenchmark("topology", TINY, cache_path=busy_path, reference_size=3)
    filler.warm_up("cifar10", n=6, seed=99)  # other runs' results, better and worse than the sample
    filler.close()
    busy = LiveBenchmark("topology", TINY, cache_path=busy_path, reference_size=3)
    for metric in ("valid_accuracy", "test_accuracy", "train_accuracy", "params", "flops"):
        assert busy.stats(metric, "cifar10") == empty.stats(metric, "cifar10"), metric
        np.testing.assert_array_equal(busy.space_values(metric, "cifar10"), empty.space_values(metric, "cifar10"))


def test_same_seed_same_search_whatever_the_cache_holds(tmp_path):
    """A live search twice: on an empty cache and on one full of other results; then again, warm."""
    import gymnasium as gym

    from agents import RegularizedEvolution

    def search(cache: Path, reward: str) -> list[tuple]:
        bench = LiveBenchmark("topology", TINY, cache_path=cache, reference_size=3)
        env = gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar10", reward_model=reward)
        result = RegularizedEvolution(population_size=4, sample_size=2, seed=0).search(env, budget=10)
        bench.close()
        return [(e.index, e.arch, e.reward, e.metrics["valid_accuracy"], e.metrics["latency"]) for e in result.history]

    busy = tmp_path / "busy.sqlite"
    filler = LiveBenchmark("topology", TINY, cache_path=busy, reference_size=3)
    filler.warm_up("cifar10", n=8, seed=7)
    filler.close()
    cold = search(tmp_path / "cold.sqlite", "accuracy")
    prefilled = search(busy, "accuracy")
    # latency is measured, so only a cache that already holds it repeats it to the last digit
    assert [h[:4] for h in prefilled] == [h[:4] for h in cold]
    # the README's default preference mixes in latency: with a warm cache, the same search to the last digit
    first = search(tmp_path / "warm.sqlite", "weighted")
    assert search(tmp_path / "warm.sqlite", "weighted") == first


def test_live_indices_are_official(tmp_path):
    bench = LiveBenchmark("topology", TINY, cache_path=False)
    code_631 = bench.space.format(bench.space.decode(631))
    assert bench.index(code_631) == 758  # issue 20: "live #631 is official 758"
    assert bench.arch_str(0) == "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def test_what_is_trained_on_is_named_beside_the_dataset(tmp_path):
    import gymnasium as gym

    bench = LiveBenchmark("topology", TINY, cache_path=False, reference_size=2)
    assert bench.trained_on("cifar100") == "sklearn digits (10 classes, 8x8), 1 epochs, C=4, N=1"
    assert "cifar10/cifar100/ImageNet16-120 trained here on sklearn digits" in bench.describe()
    env = gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar100", reward_model="params")
    assert env.unwrapped.trained_on == bench.trained_on("cifar100")
    env.reset(seed=0)
    for action in (3, 0, 3, 1, 0, 1):
        *_, info = env.step(action)
    assert info["dataset"] == "cifar100" and info["trained_on"].startswith("sklearn digits")
    x, y = _toy_images()
    own = LiveBenchmark("size", TINY, data=(x, y), cache_path=False)
    assert own.trained_on("cifar10").startswith("custom (3 classes")


def test_user_supplied_arrays_and_datasets():
    x, y = _toy_images()
    bench = LiveBenchmark("topology", TINY, data=(x, y), cache_path=False)
    assert bench.data("cifar10").num_classes == 3
    res = bench.query(0, "cifar10", metrics=["valid_accuracy", "test_accuracy"])
    assert all(0 <= v <= 100 for v in res.values())
    assert bench.per_class_accuracy(0, "cifar10", "valid").shape == (3,)

    # explicit splits, channels-last RGB, per-dataset data
    rgb = np.repeat(x[..., None], 3, axis=3)
    splits = ((rgb[:60], y[:60]), (rgb[60:75], y[60:75]), (rgb[75:], y[75:]))
    per_ds = LiveBenchmark("size", TINY, data={"cifar100": splits}, cache_path=False)
    assert per_ds.datasets == (Dataset.CIFAR100,)
    per_ds.query(7, "cifar100", metrics=["test_accuracy"])
    with pytest.raises(UnknownNameError, match="cifar100"):
        per_ds.query(7, "cifar10")

    # a map-style torch dataset
    tds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    from_torch = LiveBenchmark("size", TINY, data=tds, cache_path=False)
    assert from_torch.data("cifar10").train_y.size + from_torch.data("cifar10").valid_y.size + \
        from_torch.data("cifar10").test_y.size == 90


def test_index_order_from_array():
    order = np.arange(8**5)[::-1].copy()
    bench = LiveBenchmark("size", TINY, cache_path=False, index_to_code=order)
    assert bench.arch_str(0) == "64:64:64:64:64"


@pytest.mark.realdata
@pytest.mark.skipif(not os.environ.get("NATSBENCH_DATA"), reason=REAL_DATA_SKIP_REASON)
def test_official_topology_index_order_from_a_table():
    table = natsbench_gym.load_benchmark("topology")
    bench = LiveBenchmark("topology", TINY, cache_path=False, index_to_code=table)
    for index in (0, 11, 6111, 15624):
        assert bench.arch_str(index) == table.arch_str(index)
    with pytest.raises(InvalidArchitectureError, match="size"):
        LiveBenchmark("size", TINY, cache_path=False, index_to_code=table)


def test_bad_inputs_raise_typed_errors():
    with pytest.raises(LiveConfigError, match="epochs"):
        LiveConfig(epochs=0)
    with pytest.raises(LiveConfigError, match="multiple of 4"):
        LiveConfig(input_size=10)
    with pytest.raises(LiveConfigError, match="below 1"):
        LiveConfig(valid_fraction=0.5, test_fraction=0.5)
    assert issubclass(LiveConfigError, NATSBenchGymError) and issubclass(LiveConfigError, ValueError)
    with pytest.raises(LiveConfigError, match="LiveConfig"):
        LiveBenchmark("size", config={"epochs": 1}, cache_path=False)

    x, y = _toy_images()
    with pytest.raises(LiveConfigError, match="shape"):
        LiveBenchmark("size", TINY, data=(x[:, :, :, None, None], y), cache_path=False)
    with pytest.raises(LiveConfigError, match="one label per image"):
        LiveBenchmark("size", TINY, data=(x, y[:-1]), cache_path=False)
    with pytest.raises(LiveConfigError, match="class ids"):
        LiveBenchmark("size", TINY, data=(x, y - 1), cache_path=False)
    with pytest.raises(LiveConfigError, match="cannot use"):
        LiveBenchmark("size", TINY, data=42, cache_path=False)

    bench = LiveBenchmark("size", TINY, cache_path=False)
    with pytest.raises(UnknownNameError, match="did you mean 'cifar10'"):
        bench.query(0, "cifar-10")
    with pytest.raises(UnknownNameError, match="training budget"):
        bench.query(0, "cifar10", budget=90)
    with pytest.raises(UnknownNameError, match="latency device"):
        bench.query(0, "cifar10", metrics=["latency"], device="1080ti_1")
    with pytest.raises(InvalidArchitectureError, match="outside"):
        bench.query(8**5, "cifar10", metrics=["params"])
    with pytest.raises(InvalidArchitectureError, match="width 12"):
        bench.query("8:12:16:16:16", "cifar10", metrics=["params"])
    with pytest.raises(UnknownNameError, match="split"):
        bench.per_class_accuracy(0, "cifar10", split="train")
    assert bench.trainings_run == 0


def test_live_fallback_is_lazy_and_fires_without_data(tmp_path, monkeypatch):
    monkeypatch.delenv("NATSBENCH_DATA", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setattr(benchmarks_module, "_FALLBACKS", [])
    monkeypatch.setattr(benchmarks_module, "_LOADED", {})
    register_live_fallback()
    bench = natsbench_gym.load_benchmark("size")
    assert isinstance(bench, LiveBenchmark)
    assert bench.cache_path is not None and str(tmp_path) in str(bench.cache_path)
    assert natsbench_gym.load_benchmark("size") is bench


def test_live_data_subsample_is_stratified():
    data = LiveData.digits()
    small = data.subsample_train(50, seed=0)
    assert small.train_y.size == 50
    assert np.bincount(small.train_y, minlength=10).min() >= 4
    assert small.data_id != data.data_id

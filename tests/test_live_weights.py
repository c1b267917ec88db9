"""The live backend keeps its trained networks: the weight store, its bound, and trained_network()."""

from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from natsbench_gym.live import LiveConfig, LiveConfigError  # noqa: E402
from natsbench_gym.live.benchmark import LiveBenchmark, default_weights_dir  # noqa: E402
from natsbench_gym.live.weights import STALE_AFTER_S, WeightStore  # noqa: E402

TINY = LiveConfig(
    epochs=1, channels=4, cells_per_stage=1, batch_size=32, input_size=8, max_train_samples=120, latency_runs=1
)
ARCHS = (
    "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|",
)


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "default-cache"))


def test_a_query_keeps_the_network_and_trained_network_gives_it_back(tmp_path):
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")
    assert bench.capabilities.keeps_weights
    assert bench.weights.directory == default_weights_dir(tmp_path / "live.sqlite") == tmp_path / "live-weights"
    result = bench.training_result(ARCHS[0], "cifar10")
    assert len(list((tmp_path / "live-weights").glob("*.pt"))) == 1
    fresh = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")  # another process, say
    network = fresh.trained_network(ARCHS[0], "cifar10")
    assert fresh.trainings_run == 0, "the kept weights are loaded, not trained again"
    assert network.arch_str == ARCHS[0] and network.index == fresh.index(ARCHS[0]) and network.split == "valid"
    assert not network.module.training
    # the same network: its predictions reproduce the accuracies the cache holds, to the image
    pred = network.predict_proba().argmax(axis=1)
    assert 100 * np.mean(pred == network.labels) == pytest.approx(result.valid_accuracy)
    per_class = [100 * np.mean(pred[network.labels == c] == c) for c in range(network.num_classes)]
    assert per_class == pytest.approx(list(result.per_class_valid))
    assert network.inputs().shape == (network.labels.size, 3, TINY.input_size, TINY.input_size)
    assert "digits" in network.trained_on and "1 epochs" in network.trained_on


def test_a_network_without_kept_weights_is_trained_again_deterministically(tmp_path, caplog):
    path = tmp_path / "live.sqlite"
    LiveBenchmark("topology", TINY, cache_path=path, weights_dir=False).training_result(ARCHS[1], "cifar10")
    bench = LiveBenchmark("topology", TINY, cache_path=path)
    with caplog.at_level(logging.INFO, logger="natsbench_gym.live.benchmark"):
        network = bench.trained_network(ARCHS[1], "cifar10")
    assert bench.trainings_run == 1 and "training" in caplog.text and "again" in caplog.text
    accuracy = 100 * np.mean(network.predict_proba().argmax(axis=1) == network.labels)
    assert accuracy == pytest.approx(network.result.valid_accuracy), "trained again, it is the cached network"
    assert bench.trained_network(ARCHS[1], "cifar10") is not None and bench.trainings_run == 1


def test_the_store_is_bounded_and_evicts_the_least_recently_used(tmp_path):
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")
    bench.training_result(ARCHS[0], "cifar10")
    one = bench.weights.total_bytes()
    sizes = [p.stat().st_size for p in (tmp_path / "live-weights").glob("*.pt")]
    bound = int(2.5 * max(sizes))
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite", max_weights_bytes=bound)
    bench.training_result(ARCHS[1], "cifar10")
    first = bench.weights.path_of(bench._training_key(int(bench._index_to_code[bench.index(ARCHS[0])]), bench.data("cifar10")))
    os.utime(first, (time.time() - 100, time.time() - 100))
    bench.trained_network(ARCHS[0], "cifar10")  # a read counts as a use: now the second is the oldest
    bench.training_result(ARCHS[2], "cifar10")
    assert bench.weights.total_bytes() <= bound
    kept = {p.name for p in (tmp_path / "live-weights").glob("*.pt")}
    assert first.name in kept and len(kept) == 2 and one > 0
    assert bench.trainings_run == 2  # ARCHS[1] and ARCHS[2]; ARCHS[0] was loaded


def test_a_lower_bound_evicts_at_open_and_a_network_above_it_is_not_kept(tmp_path, caplog):
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")
    bench.training_result(ARCHS[0], "cifar10")
    with caplog.at_level(logging.WARNING):
        small = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite", max_weights_bytes=1000)
        assert small.weights.total_bytes() == 0, "over the new bound: evicted when the store opens"
        network = small.trained_network(ARCHS[0], "cifar10")
    assert network is not None and "exceed max_weights_bytes=1000" in caplog.text
    assert small.weights.total_bytes() == 0


def test_an_unreadable_weights_file_is_dropped_and_the_network_trained_again(tmp_path, caplog):
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")
    bench.training_result(ARCHS[0], "cifar10")
    (path,) = (tmp_path / "live-weights").glob("*.pt")
    path.write_bytes(b"not a weights file")
    fresh = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")
    with caplog.at_level(logging.WARNING):
        fresh.trained_network(ARCHS[0], "cifar10")
    assert "unreadable" in caplog.text and fresh.trainings_run == 1
    assert path.is_file() and path.stat().st_size > 100, "written anew"


def test_interrupted_writes_are_cleaned_up_when_old(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    old = folder / ".topology-1-s0-abc.pt.1234abcd.tmp"
    young = folder / ".topology-2-s0-abd.pt.5678abcd.tmp"
    for tmp in (old, young):
        tmp.write_bytes(b"partial")
    os.utime(old, (time.time() - 2 * STALE_AFTER_S, time.time() - 2 * STALE_AFTER_S))
    WeightStore(folder)
    assert not old.exists() and young.exists(), "a young one may be another process's write in progress"


def test_weights_can_be_kept_in_memory_or_not_at_all(tmp_path):
    memory = LiveBenchmark("topology", TINY, cache_path=False)
    assert memory.weights is not None and not memory.weights.persistent
    memory.training_result(ARCHS[0], "cifar10")
    memory.trained_network(ARCHS[0], "cifar10")
    assert memory.trainings_run == 1 and memory.weights.total_bytes() > 0
    off = LiveBenchmark("topology", TINY, cache_path=False, weights_dir=False)
    assert not off.capabilities.keeps_weights and off.weights is None
    with pytest.raises(LiveConfigError, match="keeps no weights"):
        off.trained_network(ARCHS[0], "cifar10")
    with pytest.raises(LiveConfigError, match="max_weights_bytes=-1"):
        LiveBenchmark("topology", TINY, cache_path=False, max_weights_bytes=-1)
    custom = LiveBenchmark("topology", TINY, cache_path=tmp_path / "c.sqlite", weights_dir=tmp_path / "mine")
    custom.training_result(ARCHS[0], "cifar10")
    assert len(list((tmp_path / "mine").glob("*.pt"))) == 1


def test_trained_network_works_from_another_thread(tmp_path):
    """The preference page asks for networks from its own threads; the SQLite cache is shared."""
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")
    out, errors = [], []

    def ask():
        try:
            out.append(bench.trained_network(ARCHS[2], "cifar10").result.valid_accuracy)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join(120)
    assert not errors, errors
    assert out and out[0] == bench.training_result(ARCHS[2], "cifar10").valid_accuracy
    assert bench.trainings_run == 1

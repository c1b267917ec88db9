"""Benchmark backends: the table reader (synthetic and real tables), its cache, the official
``nats_bench`` files and their conversion, and the resolution chain of ``load_benchmark``.

Tests that need real data request ``real_data`` / ``topology_bench`` / ``size_bench`` /
``official_dir`` and are skipped when ``NATSBENCH_DATA`` is unset (see conftest.py); the synthetic
tables cover the reader without it.
"""

from __future__ import annotations

import csv
import gzip
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import natsbench_gym
from natsbench_gym import benchmarks
from natsbench_gym.benchmarks import table as table_module
from natsbench_gym.benchmarks.convert import convert_official
from natsbench_gym.benchmarks.convert import main as convert_main
from natsbench_gym.benchmarks.official import NATSBENCH_LATENCY_DEVICE
from natsbench_gym.errors import DataNotFoundError, InvalidArchitectureError, MissingMetricError, UnknownNameError
from natsbench_gym.types import Dataset, Metric, SpaceKind

ARCH_11472 = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
ACCURACIES = (Metric.TEST_ACCURACY, Metric.VALID_ACCURACY, Metric.TRAIN_ACCURACY)

#: For each dataset and metric, the NATS-Bench run (CSV ``dataset`` value) the value comes from:
#: CIFAR-10 validation and training time from ``cifar10-valid``, everything else from ``cifar10``.
RUN = {
    (Dataset.CIFAR10, m): "cifar10-valid" if m in (Metric.VALID_ACCURACY, Metric.TRAIN_TIME) else "cifar10" for m in Metric
} | {(ds, m): ds.value for ds in (Dataset.CIFAR100, Dataset.IMAGENET16_120) for m in Metric}
COLUMN = {
    Metric.TEST_ACCURACY: "test_acc_{b}",
    Metric.VALID_ACCURACY: "valid_acc_{b}",
    Metric.TRAIN_ACCURACY: "train_acc_{b}",
    Metric.TRAIN_TIME: "train_time_200_s",
    Metric.FLOPS: "flops_M",
    Metric.PARAMS: "params_MB",
}


def assert_same(a: dict[Metric, np.ndarray], b: dict[Metric, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for m in a:
        np.testing.assert_array_equal(np.asarray(a[m]), np.asarray(b[m]), err_msg=m.value)


@pytest.fixture
def isolated_loader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No data anywhere: NATSBENCH_DATA unset, TORCH_HOME empty, no shared benchmarks, no fallbacks.

    A later issue registers a live-training fallback; clearing ``_FALLBACKS`` keeps these tests about
    the data sources. Returns the (empty) TORCH_HOME.
    """
    torch_home = tmp_path / "torch_home"
    torch_home.mkdir()
    monkeypatch.delenv("NATSBENCH_DATA", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setattr(benchmarks, "_FALLBACKS", [])
    monkeypatch.setattr(benchmarks, "_LOADED", {})
    return torch_home


# ================================================================================================
# Synthetic tables (no real data needed)
# ================================================================================================
# Loaded with the cache on, so that later loads of the same tables (through load_benchmark) are quick.
@pytest.fixture(scope="module")
def tiny_topology(tiny_tables: Path) -> natsbench_gym.TableBenchmark:
    return natsbench_gym.TableBenchmark(tiny_tables, "topology", cache_dir=tiny_tables / "cache")


@pytest.fixture(scope="module")
def tiny_size(tiny_tables: Path) -> natsbench_gym.TableBenchmark:
    return natsbench_gym.TableBenchmark(tiny_tables, "size", cache_dir=tiny_tables / "cache")


def test_tiny_table_index_order_comes_from_the_strings(tiny_topology, tiny_size):
    for bench, reversed_order in ((tiny_topology, True), (tiny_size, False)):
        space = bench.space
        codes = np.arange(space.size)
        expected = space.size - 1 - codes if reversed_order else codes
        np.testing.assert_array_equal(bench.indices_of_encodings(space.all_encodings()), expected)
        for code in (0, 1, 777, space.size - 1):
            arch_str = space.format(space.decode(code))
            assert bench.index(arch_str) == expected[code]
            assert bench.arch_str(int(expected[code])) == arch_str
            assert bench.encoding(int(expected[code])) == space.decode(code)


def test_tiny_table_has_what_the_schema_says(tiny_topology, tiny_size):
    assert tiny_topology.budgets == (12, 200) and tiny_topology.default_budget == 12
    assert tiny_topology.datasets == tuple(Dataset)
    assert tiny_topology.latency_devices == () and tiny_topology.default_latency_device is None
    everything_but_latency = frozenset(Metric) - {Metric.LATENCY}
    for ds in Dataset:
        for b in (12, 200):
            assert tiny_topology.available_metrics(ds, b) == everything_but_latency
        assert tiny_size.available_metrics(ds) == {Metric.VALID_ACCURACY, Metric.FLOPS, Metric.PARAMS}
    assert tiny_size.budgets == (90,)


@pytest.mark.parametrize("dataset", list(Dataset))
@pytest.mark.parametrize("budget", [12, 200])
def test_tiny_topology_values(tiny_topology, tiny_value, dataset, budget):
    space = tiny_topology.space
    indices = np.array([0, 1, 999, 1000, 5000, 15624])
    codes = space.size - 1 - indices
    got = tiny_topology.query_many(indices, dataset, budget)
    for metric, values in got.items():
        column = COLUMN[metric].format(b=budget)
        scale = budget / 200 if metric is Metric.TRAIN_TIME else 1.0  # 12-epoch time: scaled 200-epoch time
        expected = [tiny_value("topology", int(c), RUN[(dataset, metric)], column) * scale for c in codes]
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9, err_msg=metric.value)


def test_tiny_train_accuracy_only_below_index_1000(tiny_topology):
    train = tiny_topology.query_many(None, "cifar100", 200, [Metric.TRAIN_ACCURACY])[Metric.TRAIN_ACCURACY]
    assert not np.isnan(train[:1000]).any()
    assert np.isnan(train[1000:]).all()
    assert math.isnan(tiny_topology.query(1000, "cifar100", 200)[Metric.TRAIN_ACCURACY])


def test_tiny_size_values(tiny_size, tiny_value):
    for ds in Dataset:
        q = tiny_size.query("8:16:32:64:64", ds)
        assert q[Metric.VALID_ACCURACY] == tiny_value("size", 767, RUN[(ds, Metric.VALID_ACCURACY)], "valid_acc_90")
        assert q[Metric.FLOPS] == tiny_value("size", 767, RUN[(ds, Metric.FLOPS)], "flops_M")


def test_query_accepts_index_string_and_encoding(tiny_topology):
    index = tiny_topology.index(ARCH_11472)
    by_index = tiny_topology.query(index, "cifar10", 200)
    assert math.isnan(by_index[Metric.TRAIN_ACCURACY]) and by_index[Metric.TEST_ACCURACY] > 0
    # assert_equal: nan equals nan
    np.testing.assert_equal(tiny_topology.query(ARCH_11472, "cifar10", 200), by_index)
    np.testing.assert_equal(tiny_topology.query((3, 0, 3, 1, 0, 1), "cifar10", 200), by_index)
    np.testing.assert_equal(tiny_topology.query(np.int64(index), Dataset.CIFAR10, "200"), by_index)


def test_query_many_equals_query(tiny_topology):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, tiny_topology.space.size, size=50)
    many = tiny_topology.query_many(indices, "ImageNet16-120", 200)
    for j, index in enumerate(indices.tolist()):
        one = tiny_topology.query(index, "ImageNet16-120", 200)
        for m, v in one.items():
            assert v == many[m][j] or (math.isnan(v) and math.isnan(many[m][j]))
    # other ways of naming the same architectures give the same arrays
    encodings = tiny_topology.encodings(indices)
    strings = [tiny_topology.arch_str(i) for i in indices.tolist()]
    assert_same(tiny_topology.query_many(encodings, "ImageNet16-120", 200), many)
    assert_same(tiny_topology.query_many(strings, "ImageNet16-120", 200), many)
    everything = tiny_topology.query_many(None, "ImageNet16-120", 200, ["valid_accuracy"])
    assert everything[Metric.VALID_ACCURACY].shape == (15625,)


def test_stats_match_the_values(tiny_topology):
    values = tiny_topology.query_many(None, "cifar10", 200, [Metric.TEST_ACCURACY])[Metric.TEST_ACCURACY]
    stats = tiny_topology.stats("test_accuracy", "cifar10", 200)
    assert (stats.min, stats.max, stats.median) == (values.min(), values.max(), np.median(values))
    assert stats.normalize(values).min() == 0.0 and stats.normalize(values).max() == 1.0


def test_bad_queries_raise_typed_errors(tiny_topology, tiny_size):
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'cifar-10'; did you mean 'cifar10'\?"):
        tiny_topology.query(0, "cifar-10")
    with pytest.raises(UnknownNameError, match=r"training budget \(epochs\) 100.*expected one of: 12, 200"):
        tiny_topology.query(0, "cifar10", 100)
    with pytest.raises(UnknownNameError, match=r"unknown metric 'valid-acc'"):
        tiny_topology.query(0, "cifar10", metrics=["valid-acc"])
    with pytest.raises(MissingMetricError, match="no latency for topology"):
        tiny_topology.query(0, "cifar10", metrics=[Metric.LATENCY])
    with pytest.raises(MissingMetricError, match="no test_accuracy for size architectures on cifar10 after 90 epochs"):
        tiny_size.query(0, "cifar10", metrics=["test_accuracy"])
    with pytest.raises(InvalidArchitectureError, match="index 15625 is outside 0..15624"):
        tiny_topology.query(15625, "cifar10")
    with pytest.raises(InvalidArchitectureError, match="index -1 is outside"):
        tiny_topology.query_many(np.array([0, -1]), "cifar10")
    with pytest.raises(InvalidArchitectureError, match="choices outside 0..4"):
        tiny_topology.query_many(np.full((2, 6), 5), "cifar10")
    with pytest.raises(MissingMetricError, match="per-seed"):
        tiny_topology.seed_values(0, "valid_accuracy", "cifar10", 200)
    assert not tiny_topology.has_seed_values("valid_accuracy", "cifar10", 200)


def test_incomplete_table_is_rejected(tmp_path):
    with gzip.open(tmp_path / "sss.csv.gz", "wt", newline="") as fh:
        fh.write("arch_index,arch_str,dataset,valid_acc_90,flops_M,params_MB\n0,8:8:8:8:8,cifar100,50.0,1.0,0.1\n")
    with pytest.raises(natsbench_gym.DataFileError, match="sss.csv.gz: lists no architecture for index 1"):
        natsbench_gym.TableBenchmark(tmp_path, "size", cache_dir=False)
    with pytest.raises(DataNotFoundError, match="no tss.csv.gz in"):
        natsbench_gym.TableBenchmark(tmp_path, "topology", cache_dir=False)


# --- the .npz cache -----------------------------------------------------------------------------
@pytest.fixture
def table_copy(tiny_tables: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic topology table (cache tests write beside it)."""
    directory = tmp_path / "table"
    directory.mkdir()
    shutil.copy(tiny_tables / "tss.csv.gz", directory)
    return directory


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every CSV parse of the table reader (a load from the cache parses nothing)."""
    calls: list[str] = []
    real_parse = table_module._parse_tables

    def spy(files, space):
        calls.append(space.kind.value)
        return real_parse(files, space)

    monkeypatch.setattr(table_module, "_parse_tables", spy)
    return calls


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` (hidden ones included) with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_cache_goes_to_the_cache_folder_never_beside_the_data(table_copy, tmp_path, parse_calls):
    before = _snapshot(table_copy)
    first = natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    written = list((tmp_path / "cache").glob("tss-*.npz"))
    assert len(written) == 1
    assert _snapshot(table_copy) == before  # nothing written into the data folder
    second = natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    assert parse_calls == ["topology"]
    assert_same(second.query_many(None, "cifar10", 200), first.query_many(None, "cifar10", 200))
    np.testing.assert_array_equal(second.encodings(), first.encodings())
    # cache_dir=False neither reads nor writes a cache
    natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=False)
    assert parse_calls == ["topology", "topology"]
    assert list((tmp_path / "cache").iterdir()) == written


def test_default_cache_folder_is_natsbench_gym_cache_else_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "mine"))
    assert table_module.default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("NATSBENCH_GYM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert table_module.default_cache_dir() == tmp_path / "xdg" / "natsbench-gym"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert table_module.default_cache_dir() == tmp_path / "home" / ".cache" / "natsbench-gym"


def test_a_read_only_data_folder_works_and_is_never_written(tiny_tables, tmp_path, monkeypatch, parse_calls):
    """A shared, read-only data folder: loads (cold and cached) and queries write nothing into it.

    The folder is chmod'ed read-only, but the check does not rely on that (root may write anyway):
    it compares every entry of the folder, hidden ones included, before and after.
    """
    data = tmp_path / "shared-data"
    data.mkdir()
    shutil.copy(tiny_tables / "tss.csv.gz", data)
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NATSBENCH_DATA", str(data))
    monkeypatch.setattr(benchmarks, "_LOADED", {})
    (data / "tss.csv.gz").chmod(0o444)
    data.chmod(0o555)
    try:
        before = _snapshot(data)
        cold = natsbench_gym.load_benchmark("topology")
        env_bench = natsbench_gym.TableBenchmark(data, "topology")  # a second load: from the cache
        cold.query(0, "cifar10", 200)
        env_bench.query_many(None, "cifar100", 12)
        assert parse_calls == ["topology"]
        assert _snapshot(data) == before
        assert len(list((tmp_path / "cache").glob("tss-*.npz"))) == 1
    finally:
        data.chmod(0o755)


def test_cache_key_follows_the_source_files(table_copy, tmp_path, parse_calls):
    natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    source = table_copy / "tss.csv.gz"
    stat = source.stat()
    os_times = (stat.st_atime_ns, stat.st_mtime_ns + 10**9)
    import os

    os.utime(source, ns=os_times)  # the same bytes, a newer file: parsed again
    natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    assert parse_calls == ["topology", "topology"]
    assert len(list((tmp_path / "cache").glob("tss-*.npz"))) == 2


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"not an npz"), id="garbage"),
        pytest.param(_truncate, id="truncated"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
        pytest.param(lambda p: np.savez(p.open("wb"), index_to_code=np.arange(3)), id="another-key"),
    ],
)
def test_an_unreadable_cache_is_ignored_and_rebuilt(table_copy, tmp_path, parse_calls, caplog, damage):
    natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("tss-*.npz")
    damage(cache_file)
    bench = natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    assert parse_calls == ["topology", "topology"]
    assert "ignoring unreadable cache" in caplog.text
    assert bench.query(0, "cifar10", 200)[Metric.TEST_ACCURACY] == pytest.approx(90.0)
    # ... and rebuilt: the next load reads it
    natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    assert parse_calls == ["topology", "topology"]


def test_a_cache_write_cut_short_is_never_read(table_copy, tmp_path, parse_calls, monkeypatch):
    real = table_module.atomic_write

    def killed_mid_write(path, data, **kwargs):
        def half(target, payload, **kw):  # the temporary file gets half the bytes, then the process "dies"
            from natsbench_gym.fileio import atomic_path

            with atomic_path(target, **kw) as tmp:
                tmp.write_bytes(payload[: len(payload) // 2])
                raise KeyboardInterrupt

        half(path, data, **kwargs)

    monkeypatch.setattr(table_module, "atomic_write", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # neither a cache nor a temporary file is left
    monkeypatch.setattr(table_module, "atomic_write", real)
    bench = natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=tmp_path / "cache")
    assert parse_calls == ["topology", "topology"]
    assert bench.query(0, "cifar10", 200)[Metric.TEST_ACCURACY] == pytest.approx(90.0)


# --- bad table files ------------------------------------------------------------------------------
def _write_gz(path: Path, header: list[str], rows: list[list]) -> None:
    with gzip.open(path, "wt", newline="", compresslevel=1) as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def full_tiny_source(tiny_tables: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic table with every file of the schema: both spaces, latency and per-seed values."""
    directory = tmp_path_factory.mktemp("full")
    for name in ("tss.csv.gz", "sss.csv.gz"):
        shutil.copy(tiny_tables / name, directory)
    space = natsbench_gym.TopologySpace()
    _write_gz(directory / "tss_latency_ms.csv.gz", ["arch_index", "arch_str", "dev_a", "dev_b"],
              [[i, "", 1.0 + i / 1e4, 2.0] for i in range(space.size)])
    _write_gz(directory / "tss_seeds_200.csv.gz", ["arch_index", "dataset", "seed", "split", "acc_200"],
              [[i, "cifar10-valid", seed, "x-valid", 50.0 + seed] for i in range(5) for seed in (777, 888)])
    return directory


@pytest.fixture
def full_tiny_table(full_tiny_source: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`full_tiny_source` (tests damage its files)."""
    return Path(shutil.copytree(full_tiny_source, tmp_path / "full"))


#: Each file of the schema, with the space that reads it.
TABLE_FILES = {
    "tss.csv.gz": "topology",
    "sss.csv.gz": "size",
    "tss_latency_ms.csv.gz": "topology",
    "tss_seeds_200.csv.gz": "topology",
}


def _rewrite(path: Path, change) -> None:
    with gzip.open(path, "rt", newline="") as fh:
        rows = list(csv.reader(fh))
    _write_gz(path, rows[0], [])
    header, body = change(rows[0], rows[1:])
    _write_gz(path, header, body)


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
    path.write_bytes(bytes(data))


BAD_FILES = {
    "not-gzip": (lambda p: p.write_text("arch_index,arch_str\n0,x\n"), "not a gzip file"),
    "truncated": (_truncate, "truncated"),
    "corrupt": (_flip_middle, "corrupt gzip data|not a CSV|fields|not a number|not an integer|arch"),
    "empty": (lambda p: p.write_bytes(gzip.compress(b"")), "empty"),
    "binary-inside": (lambda p: p.write_bytes(gzip.compress(bytes(range(256)) * 4)), "not a CSV text file"),
    "missing-column": (lambda p: _rewrite(p, lambda h, b: (h[1:], [r[1:] for r in b])), "no 'arch_index' column"),
    "ragged-row": (lambda p: _rewrite(p, lambda h, b: (h, b[:3] + [b[3][:-1]] + b[4:])), "line 5 has"),
    "not-a-number": (lambda p: _rewrite(p, lambda h, b: (h, [[*r[:-1], "n/a"] for r in b])), "'n/a', not a number"),
}


@pytest.mark.parametrize("bad", list(BAD_FILES))
@pytest.mark.parametrize("name", list(TABLE_FILES))
def test_a_bad_table_file_raises_a_typed_error_naming_the_file_and_the_fix(full_tiny_table, name, bad):
    damage, problem = BAD_FILES[bad]
    path = full_tiny_table / name
    damage(path)
    with pytest.raises(natsbench_gym.DataFileError, match=problem) as caught:
        natsbench_gym.TableBenchmark(full_tiny_table, TABLE_FILES[name], cache_dir=False)
    message = str(caught.value)
    assert str(path) in message and "natsbench-gym-convert" in message and "docs/data.md" in message
    assert caught.value.path == path
    assert isinstance(caught.value, natsbench_gym.NATSBenchGymError)


@pytest.mark.parametrize(
    "change,problem",
    [
        (lambda h, b: (h, [r for r in b if r[0] != "7"]), "lists no architecture for index 7"),
        (lambda h, b: (h, [[r[0], "|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", *r[2:]] if r[0] == "3" else r
                           for r in b]), "an arch_str is not a topology architecture"),
        (lambda h, b: (h, [["99999", *r[1:]] if r[0] == "3" else r for r in b]), "arch_index 99999 is outside"),
        (lambda h, b: (h, [["x", *r[1:]] if r[0] == "3" else r for r in b]), "arch_index holds 'x'"),
        (lambda h, b: (h, []), "no rows"),
    ],
    ids=["missing-index", "bad-arch-string", "index-out-of-range", "index-not-an-integer", "no-rows"],
)
def test_a_wrongly_shaped_main_table_names_the_problem(table_copy, change, problem):
    _rewrite(table_copy / "tss.csv.gz", change)
    with pytest.raises(natsbench_gym.DataFileError, match=problem):
        natsbench_gym.TableBenchmark(table_copy, "topology", cache_dir=False)


def test_tables_without_a_validation_time_column_approximate_it(tiny_topology, tiny_value):
    """From the training time, by NATS-Bench's image counts, a validation image costing 0.35 training images."""
    assert tiny_topology.validation_time_source == {ds: "approximated" for ds in Dataset}
    code = 4321
    index = tiny_topology.index(tiny_topology.space.decode(code))
    for ds, run, (n_train, n_valid) in ((Dataset.CIFAR10, "cifar10-valid", (25_000, 25_000)),
                                        (Dataset.CIFAR100, "cifar100", (50_000, 5_000)),
                                        (Dataset.IMAGENET16_120, "ImageNet16-120", (151_700, 3_000))):
        per_image = tiny_value("topology", code, run, "train_time_200_s") / 200 / n_train
        for budget in (12, 200):  # one validation pass, whatever the schedule
            assert tiny_topology.validation_times([index], ds, budget)[0] == pytest.approx(0.35 * per_image * n_valid)


def test_the_full_tiny_table_is_good(full_tiny_table):
    """The files the bad-file tests damage are valid to begin with."""
    bench = natsbench_gym.TableBenchmark(full_tiny_table, "topology", cache_dir=False)
    assert bench.latency_devices == ("dev_a", "dev_b")
    np.testing.assert_array_equal(bench.seed_values(3, "valid_accuracy", "cifar10", 200), [827.0, 938.0])
    assert natsbench_gym.TableBenchmark(full_tiny_table, "size", cache_dir=False).space.size == 32768


# --- resolution chain ---------------------------------------------------------------------------
def test_explicit_path_wins_over_natsbench_data(isolated_loader, monkeypatch, tiny_tables, tmp_path):
    monkeypatch.setenv("NATSBENCH_DATA", str(tmp_path / "not-there"))  # would raise if it were used
    bench = natsbench_gym.load_benchmark("topology", path=tiny_tables)
    assert isinstance(bench, natsbench_gym.TableBenchmark) and bench.path == tiny_tables


def test_natsbench_data_is_used_when_no_path_is_given(isolated_loader, monkeypatch, tiny_tables):
    monkeypatch.setenv("NATSBENCH_DATA", str(tiny_tables))
    bench = natsbench_gym.load_benchmark("sss")
    assert isinstance(bench, natsbench_gym.TableBenchmark)
    assert bench.path == tiny_tables and bench.space.kind is SpaceKind.SIZE
    assert natsbench_gym.load_benchmark("size") is bench  # shared, not reloaded


def test_nothing_found_raises_data_not_found(isolated_loader):
    with pytest.raises(DataNotFoundError, match="set NATSBENCH_DATA to a table directory.*NATS-tss-v1_0-3ffb9-simple"):
        natsbench_gym.load_benchmark("topology")
    with pytest.raises(DataNotFoundError, match="NATS-sss-v1_0-50262-simple"):
        natsbench_gym.load_benchmark("size")


def test_fallback_is_used_only_when_no_data_is_found(isolated_loader, tiny_topology):
    calls = []

    def factory(kind):
        calls.append(kind)
        return tiny_topology

    natsbench_gym.register_fallback("test", factory)
    assert natsbench_gym.load_benchmark("topology") is tiny_topology
    assert natsbench_gym.load_benchmark("topology") is tiny_topology
    assert calls == [SpaceKind.TOPOLOGY]


def test_benchmark_instances_pass_through(isolated_loader, tiny_topology):
    assert natsbench_gym.load_benchmark("topology", path=tiny_topology) is tiny_topology
    with pytest.raises(ValueError, match="covers the topology space, not size"):
        natsbench_gym.load_benchmark("size", path=tiny_topology)


def test_bad_explicit_path(isolated_loader, tmp_path):
    with pytest.raises(DataNotFoundError, match=r"neither a tss.csv.gz table nor official.*\(the path does not exist\)"):
        natsbench_gym.load_benchmark("topology", path=tmp_path / "missing")
    with pytest.raises(DataNotFoundError, match="neither a sss.csv.gz table"):
        natsbench_gym.load_benchmark("size", path=tmp_path)


# ================================================================================================
# Real data (NATSBENCH_DATA)
# ================================================================================================
def _rows_of(path: Path) -> dict[int, str]:
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        i, s = header.index("arch_index"), header.index("arch_str")
        return {int(row[i]): row[s] for row in reader}


@pytest.mark.parametrize("kind", ["topology", "size"])
def test_every_architecture_is_there_once(request, real_data, kind):
    bench = request.getfixturevalue(f"{kind}_bench")
    size = {"topology": 15625, "size": 32768}[kind]
    assert bench.space.size == size
    assert len(np.unique(bench.encodings(), axis=0)) == size
    strings = [bench.arch_str(i) for i in range(size)]
    assert len(set(strings)) == size
    # every string of the data file round-trips through index / arch_str
    rows = _rows_of(real_data / f"{SpaceKind.parse(kind).short}.csv.gz")
    assert sorted(rows) == list(range(size))
    for index, arch_str in rows.items():
        assert strings[index] == arch_str
        assert bench.index(arch_str) == index


def test_known_topology_architectures(topology_bench):
    assert topology_bench.index(ARCH_11472) == 11472
    assert topology_bench.arch_str(11472) == ARCH_11472
    assert topology_bench.index((3, 0, 3, 1, 0, 1)) == 11472


def test_size_index_is_the_base8_code(size_bench):
    space = size_bench.space
    np.testing.assert_array_equal(size_bench.indices_of_encodings(space.all_encodings()), np.arange(space.size))
    assert size_bench.index("8:16:32:64:64") == 767
    assert size_bench.arch_str(0) == "8:8:8:8:8" and size_bench.arch_str(32767) == "64:64:64:64:64"


def test_best_cifar10_architecture(topology_bench):
    test = topology_bench.query_many(None, "cifar10", 200, [Metric.TEST_ACCURACY])[Metric.TEST_ACCURACY]
    assert int(np.nanargmax(test)) == 6111
    assert topology_bench.query(6111, "cifar10", 200)[Metric.TEST_ACCURACY] == pytest.approx(94.3733, abs=1e-4)


@pytest.mark.parametrize(
    "dataset,metric,best,best_index,median",
    [
        ("cifar10", Metric.TEST_ACCURACY, 94.3733, 6111, 90.745),
        ("cifar100", Metric.TEST_ACCURACY, 73.5133, 9930, 65.2867),
        ("ImageNet16-120", Metric.TEST_ACCURACY, 47.3111, 857, 36.3889),
        ("cifar10", Metric.VALID_ACCURACY, 91.6067, 6111, None),
        ("cifar100", Metric.VALID_ACCURACY, 73.4933, 9930, None),
        ("ImageNet16-120", Metric.VALID_ACCURACY, 46.7333, 10676, None),
    ],
)
def test_reference_values_of_the_data_readme(topology_bench, dataset, metric, best, best_index, median):
    values = topology_bench.query_many(None, dataset, 200, [metric])[metric]
    assert int(np.nanargmax(values)) == best_index
    stats = topology_bench.stats(metric, dataset, 200)
    assert stats.max == pytest.approx(best, abs=1e-4)
    if median is not None:
        assert stats.median == pytest.approx(median, abs=1e-4)


@pytest.mark.parametrize("dataset", list(Dataset))
@pytest.mark.parametrize("budget", [12, 200])
def test_train_accuracy_only_for_the_first_1000(topology_bench, dataset, budget):
    train = topology_bench.query_many(None, dataset, budget, [Metric.TRAIN_ACCURACY])[Metric.TRAIN_ACCURACY]
    assert not np.isnan(train[:1000]).any()
    assert np.isnan(train[1000:]).all()
    for metric in (Metric.TEST_ACCURACY, Metric.VALID_ACCURACY, Metric.FLOPS, Metric.PARAMS, Metric.TRAIN_TIME):
        assert not np.isnan(topology_bench.query_many(None, dataset, budget, [metric])[metric]).any(), metric


def test_topology_metrics_and_latency(topology_bench):
    assert topology_bench.budgets == (12, 200)
    assert topology_bench.available_metrics("cifar10", 200) == frozenset(Metric)
    assert topology_bench.default_latency_device == natsbench_gym.DEFAULT_LATENCY_DEVICE
    assert {"1080ti_1", "pixel3", "fpga", "raspi4"} <= set(topology_bench.latency_devices)
    latency = topology_bench.query_many(None, "cifar10", metrics=[Metric.LATENCY], device="pixel3")[Metric.LATENCY]
    assert latency.shape == (15625,) and np.nanmin(latency) > 0
    with pytest.raises(UnknownNameError, match="unknown latency device 'pixel4'; did you mean 'pixel3'"):
        topology_bench.query(0, "cifar10", metrics=[Metric.LATENCY], device="pixel4")


def test_per_seed_values_average_to_the_table(topology_bench):
    valid = topology_bench.query_many(None, "cifar10", 200, [Metric.VALID_ACCURACY])[Metric.VALID_ACCURACY]
    np.testing.assert_allclose(topology_bench.seed_values(0, "valid_accuracy", "cifar10", 200), [82.092, 81.616, 82.24])
    for index in (0, 11, 284, 6111, 15624):
        seeds = topology_bench.seed_values(index, "valid_accuracy", "cifar10", 200)
        assert 2 <= len(seeds) <= 3
        assert seeds.mean() == pytest.approx(valid[index], abs=1e-4)
    assert topology_bench.has_seed_values("valid_accuracy", "cifar10", 200)
    assert not topology_bench.has_seed_values("test_accuracy", "cifar10", 200)


def test_size_space_has_validation_flops_and_params_only(size_bench):
    assert size_bench.budgets == (90,)
    for ds in Dataset:
        assert size_bench.available_metrics(ds) == {Metric.VALID_ACCURACY, Metric.FLOPS, Metric.PARAMS}
        values = size_bench.query_many(None, ds)
        assert set(values) == {Metric.VALID_ACCURACY, Metric.FLOPS, Metric.PARAMS}
        assert not any(np.isnan(v).any() for v in values.values())
    for metric in ("test_accuracy", "train_accuracy", "latency", "train_time"):
        with pytest.raises(MissingMetricError, match=f"no {metric} for size architectures on cifar10 after 90 epochs"):
            size_bench.query(0, "cifar10", metrics=[metric])
    with pytest.raises(MissingMetricError, match="test_accuracy"):
        size_bench.stats("test_accuracy", "cifar100")


def test_unknown_dataset_names_the_close_match(topology_bench, size_bench):
    for bench in (topology_bench, size_bench):
        with pytest.raises(UnknownNameError, match=r"unknown dataset 'cifar-10'; did you mean 'cifar10'\?"):
            bench.query(0, "cifar-10")
    with pytest.raises(UnknownNameError, match=r"did you mean 'ImageNet16-120'\?"):
        topology_bench.query(0, "imagenet16-120")


@pytest.mark.realdata
@pytest.mark.parametrize("kind", ["topology", "size"])
def test_real_query_many_equals_query(request, kind):
    bench = request.getfixturevalue(f"{kind}_bench")
    indices = np.random.default_rng(1).integers(0, bench.space.size, size=40)
    indices[:2] = (0, 999)
    for ds in Dataset:
        for budget in bench.budgets:
            many = bench.query_many(indices, ds, budget)
            whole = bench.query_many(None, ds, budget)
            for j, index in enumerate(indices.tolist()):
                one = bench.query(index, ds, budget)
                assert one.keys() == many.keys()
                for m, v in one.items():
                    np.testing.assert_array_equal([v, v], [many[m][j], whole[m][index]], err_msg=f"{m} {ds} {budget}")


# --- load_benchmark with real data ------------------------------------------------------------
def test_load_benchmark_uses_official_files_under_torch_home(isolated_loader, monkeypatch, official_dir):
    monkeypatch.setenv("TORCH_HOME", str(official_dir))
    bench = natsbench_gym.load_benchmark("topology")
    assert isinstance(bench, natsbench_gym.NATSBenchAPIBenchmark)
    assert bench.path.name == "NATS-tss-v1_0-3ffb9-simple"
    size = natsbench_gym.load_benchmark("size")
    assert isinstance(size, natsbench_gym.NATSBenchAPIBenchmark)
    assert size.path.name == "NATS-sss-v1_0-50262-simple"


def test_natsbench_data_wins_over_torch_home(isolated_loader, monkeypatch, official_dir, real_data):
    monkeypatch.setenv("TORCH_HOME", str(official_dir))
    monkeypatch.setenv("NATSBENCH_DATA", str(real_data))
    bench = natsbench_gym.load_benchmark("topology")
    assert isinstance(bench, natsbench_gym.TableBenchmark) and bench.path == real_data


def test_explicit_official_path(isolated_loader, monkeypatch, official_dir, real_data):
    monkeypatch.setenv("NATSBENCH_DATA", str(real_data))
    bench = natsbench_gym.load_benchmark("size", path=official_dir / "NATS-sss-v1_0-50262-simple")
    assert isinstance(bench, natsbench_gym.NATSBenchAPIBenchmark)


# --- official files -------------------------------------------------------------------------------
OFFICIAL_INDICES = (0, 11, 284)


@pytest.fixture(scope="module")
def raw_api(official_dir):
    """The ``nats_bench`` package itself on the official files, to compare against."""
    import nats_bench

    return {
        kind: nats_bench.create(
            str(official_dir / f"NATS-{kind.short}-v1_0-{'3ffb9' if kind is SpaceKind.TOPOLOGY else '50262'}-simple"),
            kind.short,
            fast_mode=True,
            verbose=False,
        )
        for kind in SpaceKind
    }


@pytest.fixture(scope="module")
def official(official_dir):
    return {kind: natsbench_gym.NATSBenchAPIBenchmark(official_dir, kind) for kind in SpaceKind}


def expected_from_nats_bench(api, index: int, dataset: Dataset, budget: int) -> dict[Metric, float]:
    """What NATS-Bench's authors prescribe for each metric, read straight from ``nats_bench``."""
    hp = str(budget)
    valid_run = "cifar10-valid" if dataset is Dataset.CIFAR10 else dataset.value
    valid_info = api.get_more_info(index, valid_run, hp=hp, is_random=False)
    test_info = api.get_more_info(index, dataset.value, hp=hp, is_random=False)
    cost = api.get_cost_info(index, dataset.value, hp=hp)
    return {
        Metric.VALID_ACCURACY: valid_info["valid-accuracy"],
        Metric.TEST_ACCURACY: test_info["test-accuracy"],
        Metric.TRAIN_ACCURACY: test_info["train-accuracy"],
        Metric.TRAIN_TIME: valid_info["train-all-time"],
        Metric.FLOPS: cost["flops"],
        Metric.PARAMS: cost["params"],
    }


def test_official_backend_reads_the_records(official, raw_api, topology_bench, size_bench):
    for kind, table in ((SpaceKind.TOPOLOGY, topology_bench), (SpaceKind.SIZE, size_bench)):
        bench = official[kind]
        np.testing.assert_array_equal(bench.evaluated_indices, OFFICIAL_INDICES)
        # meta_archs gives the same index order as the table
        np.testing.assert_array_equal(bench.encodings(), table.encodings())
        assert bench.latency_devices == (NATSBENCH_LATENCY_DEVICE,)
        for index in OFFICIAL_INDICES:
            for ds in Dataset:
                for budget in kind.budgets:
                    got = bench.query(index, ds, budget)
                    expected = expected_from_nats_bench(raw_api[kind], index, ds, budget)
                    for m, v in expected.items():
                        assert got[m] == v, (kind, index, ds, budget, m)
                    # the table agrees with the official records (it rounds to about 6 digits)
                    for m in table.available_metrics(ds, budget) & {Metric.TEST_ACCURACY, Metric.VALID_ACCURACY, Metric.PARAMS, Metric.FLOPS}:
                        assert got[m] == pytest.approx(table.query(index, ds, budget)[m], rel=1e-5, abs=1e-4), (kind, index, ds, m)
        latency = bench.query(11, "cifar10", metrics=[Metric.LATENCY])[Metric.LATENCY]
        assert latency == raw_api[kind].get_cost_info(11, "cifar10", hp=str(kind.budgets[0]))["latency"] * 1000
        # architectures without a record are missing, never invented
        assert all(math.isnan(v) for v in bench.query(12, "cifar100", kind.budgets[0]).values())


def test_official_query_makes_one_nats_bench_call_per_record(official_dir, monkeypatch):
    """One ``get_more_info`` per training run and one ``get_cost_info`` per query, never one per metric."""
    bench = natsbench_gym.NATSBenchAPIBenchmark(official_dir, "topology")
    calls: list[tuple[str, str, str]] = []
    for name in ("get_more_info", "get_cost_info"):
        real = getattr(bench.api, name)

        def spy(index, dataset, *args, _real=real, _name=name, **kwargs):
            calls.append((_name, dataset, str(kwargs.get("hp"))))
            return _real(index, dataset, *args, **kwargs)

        monkeypatch.setattr(bench.api, name, spy)

    every = bench.query(11, "cifar100", 200)  # all seven metrics
    assert set(every) == set(Metric)
    assert sorted(calls) == [("get_cost_info", "cifar100", "200"), ("get_more_info", "cifar100", "200")]
    calls.clear()
    bench.query(0, "cifar10", 12)  # CIFAR-10: validation and time from cifar10-valid, test and train from cifar10
    assert sorted(calls) == [("get_cost_info", "cifar10", "12"), ("get_more_info", "cifar10", "12"),
                             ("get_more_info", "cifar10-valid", "12")]
    calls.clear()
    bench.query(284, "ImageNet16-120", 200, metrics=["valid_accuracy", "test_accuracy", "train_time"])
    assert calls == [("get_more_info", "ImageNet16-120", "200")]
    calls.clear()
    bench.query(284, "ImageNet16-120", 200, metrics=["flops", "params"])
    assert calls == [("get_cost_info", "ImageNet16-120", "200")]
    calls.clear()
    assert bench.query(11, "cifar100", 200) == every  # records are kept: a repeat calls nothing
    bench.query_many([0, 11, 284], "cifar100", 200)
    assert sorted(calls) == [("get_cost_info", "cifar100", "200")] * 2 + [("get_more_info", "cifar100", "200")] * 2


def test_official_per_seed_values(official, topology_bench):
    for index in OFFICIAL_INDICES:
        np.testing.assert_allclose(
            official[SpaceKind.TOPOLOGY].seed_values(index, "valid_accuracy", "cifar10", 200),
            topology_bench.seed_values(index, "valid_accuracy", "cifar10", 200),
            atol=1e-4,
        )


# --- conversion -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted(official_dir, tmp_path_factory) -> dict[SpaceKind, natsbench_gym.TableBenchmark]:
    out = tmp_path_factory.mktemp("converted")
    for kind in SpaceKind:
        written = convert_official(official_dir, out, kind)
        assert written[0] == out / f"{kind.short}.csv.gz" and all(p.is_file() for p in written)
    return {kind: natsbench_gym.TableBenchmark(out, kind, cache_dir=False) for kind in SpaceKind}


def test_converted_table_equals_nats_bench(converted, raw_api):
    for kind, bench in converted.items():
        for index in OFFICIAL_INDICES:
            for ds in Dataset:
                for budget in kind.budgets:
                    got = bench.query(index, ds, budget)
                    for m, v in expected_from_nats_bench(raw_api[kind], index, ds, budget).items():
                        if m in (Metric.FLOPS, Metric.PARAMS):
                            # one column for every budget: nats_bench's hp="200" cost record can
                            # differ from hp="12"'s in the last bit (0.808276 vs 0.8082759999999999)
                            assert got[m] == pytest.approx(v, rel=1e-12), (kind, index, ds, budget, m)
                        else:
                            assert got[m] == v, (kind, index, ds, budget, m)
            cost = raw_api[kind].get_cost_info(index, "cifar10", hp=str(kind.budgets[0]))
            assert bench.query(index, "cifar10", metrics=[Metric.LATENCY], device=NATSBENCH_LATENCY_DEVICE)[
                Metric.LATENCY
            ] == cost["latency"] * 1000


def test_converted_table_lists_every_architecture(converted, topology_bench, size_bench):
    for kind, table in ((SpaceKind.TOPOLOGY, topology_bench), (SpaceKind.SIZE, size_bench)):
        np.testing.assert_array_equal(converted[kind].encodings(), table.encodings())
        values = converted[kind].query_many(None, "cifar100", metrics=[Metric.VALID_ACCURACY])[Metric.VALID_ACCURACY]
        np.testing.assert_array_equal(np.flatnonzero(~np.isnan(values)), OFFICIAL_INDICES)


def test_converted_per_seed_values(converted, raw_api):
    bench, api = converted[SpaceKind.TOPOLOGY], raw_api[SpaceKind.TOPOLOGY]
    for budget in (12, 200):
        for ds, run in ((Dataset.CIFAR10, "cifar10-valid"), (Dataset.CIFAR100, "cifar100"),
                        (Dataset.IMAGENET16_120, "ImageNet16-120")):
            assert bench.has_seed_values("valid_accuracy", ds, budget)  # noise=True works at hp=12 too
            for index in OFFICIAL_INDICES:
                seeds = api.query_meta_info_by_index(index, hp=str(budget)).get_dataset_seeds(run)
                expected = [api.get_more_info(index, run, hp=str(budget), is_random=s)["valid-accuracy"] for s in seeds]
                np.testing.assert_array_equal(bench.seed_values(index, "valid_accuracy", ds, budget), expected)


def test_validation_times_are_nats_bench_valid_per_time(official, converted, raw_api, topology_bench):
    """What ``simulate_train_eval`` adds to the training time: the official backend and a converted
    table give it exactly; the shared table (no ``valid_time_s`` column) approximates it."""
    api = raw_api[SpaceKind.TOPOLOGY]
    assert converted[SpaceKind.TOPOLOGY].validation_time_source == {ds: "table" for ds in Dataset}
    assert topology_bench.validation_time_source == {ds: "approximated" for ds in Dataset}
    for ds in Dataset:
        run = "cifar10-valid" if ds is Dataset.CIFAR10 else ds.value
        for budget in (12, 200):
            expected = [api.get_more_info(i, run, hp=str(budget), is_random=False)["valid-per-time"] for i in OFFICIAL_INDICES]
            np.testing.assert_array_equal(official[SpaceKind.TOPOLOGY].validation_times(list(OFFICIAL_INDICES), ds, budget), expected)
            # one column for every schedule: hp="12"'s record can differ from hp="200"'s in the last bits
            np.testing.assert_allclose(converted[SpaceKind.TOPOLOGY].validation_times(list(OFFICIAL_INDICES), ds, budget),
                                       expected, rtol=1e-12)
            approx = topology_bench.validation_times(list(OFFICIAL_INDICES), ds, budget)
            np.testing.assert_allclose(approx, expected, rtol=0.3)  # arch 284's real ratio is 0.49, not 0.35
        assert np.isnan(official[SpaceKind.TOPOLOGY].validation_times([12], ds, 200)).all()  # no record
    assert np.isnan(converted[SpaceKind.TOPOLOGY].validation_times([12], "cifar10", 200)).all()


def test_official_backend_keeps_few_records_loaded(official_dir, monkeypatch):
    from natsbench_gym.benchmarks import official as official_module

    monkeypatch.setattr(official_module, "MAX_LOADED_RECORDS", 1)
    bench = natsbench_gym.NATSBenchAPIBenchmark(official_dir, "topology")
    first = {i: bench.query(i, "cifar100", 200) for i in OFFICIAL_INDICES}
    assert len(bench.api.arch2infos_dict) == 1
    bench._infos.clear()
    bench._costs.clear()
    assert {i: bench.query(i, "cifar100", 200) for i in OFFICIAL_INDICES} == first  # reloaded from disk
    np.testing.assert_allclose(bench.seed_values(0, "valid_accuracy", "cifar10", 200), [82.092, 81.616, 82.24], atol=1e-4)


def test_convert_command_line(official_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert convert_main([str(official_dir / "NATS-tss-v1_0-3ffb9-simple"), str(out), "--space", "tss"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == str(out / "tss.csv.gz")
    assert all(Path(p).is_file() for p in printed)
    bench = natsbench_gym.TableBenchmark(out, "topology", cache_dir=False)
    assert bench.query(11, "cifar10", 200)[Metric.TEST_ACCURACY] == pytest.approx(91.5833, abs=1e-4)


def test_convert_command_line_rejects_unknown_space(tmp_path, capsys):
    with pytest.raises(SystemExit):
        convert_main([str(tmp_path), str(tmp_path / "out"), "--space", "cells"])
    assert "invalid choice: 'cells'" in capsys.readouterr().err


def test_convert_without_official_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="no official NATS-Bench tss files"):
        convert_official(tmp_path, tmp_path / "out", "topology")

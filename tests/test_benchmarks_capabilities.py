"""What each backend declares it can do, the public query spec, and the lazily found live fallback."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import natsbench_gym
from natsbench_gym import benchmarks as benchmarks_module
from natsbench_gym.benchmarks import (
    LIVE_FALLBACK,
    Benchmark,
    BenchmarkCapabilities,
    NATSBenchAPIBenchmark,
    QuerySpec,
    TableBenchmark,
)
from natsbench_gym.errors import DataNotFoundError, InvalidConfigError, MissingMetricError, UnknownNameError
from natsbench_gym.spaces import make_space
from natsbench_gym.types import Dataset, Metric, SpaceKind


class PlainBenchmark(Benchmark):
    """A backend that declares nothing: the base class's defaults."""

    def __init__(self, kind: SpaceKind | str = "size") -> None:
        super().__init__(make_space(kind))
        self.values = np.arange(self.space.size, dtype=np.float64)

    def available_metrics(self, dataset, budget=None):
        return frozenset({Metric.PARAMS})

    def _query_indices(self, indices, dataset, budget, metrics, device):
        return {m: self.values[indices] for m in metrics}


def test_capabilities_default_to_a_lookup_one_architecture_at_a_time():
    caps = PlainBenchmark().capabilities
    assert caps == BenchmarkCapabilities(whole_space=False, trains=False, keeps_weights=False, exact_statistics=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.whole_space = True


@pytest.mark.parametrize("kind", ["topology", "size"])
def test_the_table_backend_covers_the_whole_space_exactly(kind, tiny_tables):
    bench = natsbench_gym.load_benchmark(kind, tiny_tables)
    assert isinstance(bench, TableBenchmark)
    assert bench.capabilities == BenchmarkCapabilities(whole_space=True, trains=False, keeps_weights=False, exact_statistics=True)


@pytest.mark.parametrize("kind", ["topology", "size"])
def test_the_official_backend_queries_record_by_record_over_the_records_present(kind, official_dir, tmp_path):
    bench = NATSBenchAPIBenchmark(official_dir, kind, cache_dir=tmp_path)
    assert bench.evaluated_indices.size < bench.space.size  # the shared data holds three records
    assert bench.capabilities == BenchmarkCapabilities(whole_space=False, trains=False, keeps_weights=False, exact_statistics=False)


def test_the_live_backend_trains_and_its_statistics_are_so_far(tmp_path):
    pytest.importorskip("torch")
    from natsbench_gym.live import LiveBenchmark

    bench = LiveBenchmark("size", cache_path=False)
    assert bench.capabilities == BenchmarkCapabilities(whole_space=False, trains=True, keeps_weights=True, exact_statistics=False)
    assert bench.trainings_run == 0  # declaring costs nothing
    without = LiveBenchmark("size", cache_path=False, weights_dir=False)  # keeping weights can be turned off
    assert without.capabilities == BenchmarkCapabilities(whole_space=False, trains=True, keeps_weights=False, exact_statistics=False)


def test_resolve_gives_a_frozen_spec_and_query_resolved_answers_by_index(tiny_tables):
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    spec = bench.resolve("cifar100", 200, ["params", "valid_accuracy"])
    assert spec == QuerySpec(Dataset.CIFAR100, 200, (Metric.PARAMS, Metric.VALID_ACCURACY), None)
    assert bench.resolve("cifar10").budget == 12 and Metric.TEST_ACCURACY in bench.resolve("cifar10").metrics
    with pytest.raises(AttributeError):
        spec.budget = 12
    for index in (0, 7, bench.space.size - 1):
        assert bench.query_resolved(index, spec) == bench.query(index, "cifar100", 200, ["params", "valid_accuracy"])
    plain = PlainBenchmark()  # the base class's single-record path
    assert plain.query_resolved(5, plain.resolve("cifar10", metrics=["params"])) == {Metric.PARAMS: 5.0}
    with pytest.raises(UnknownNameError, match="training budget"):
        bench.resolve("cifar10", 90)
    with pytest.raises(MissingMetricError, match="no latency"):
        bench.resolve("cifar10", 200, ["latency"])
    with pytest.raises(natsbench_gym.InvalidArchitectureError, match="outside"):
        bench.query_resolved(bench.space.size, spec)


def test_benchmarks_import_nothing_from_live():
    """The live fallback is a string entry point: no module of natsbench_gym.benchmarks imports live."""
    package = Path(benchmarks_module.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("natsbench_gym.live") for n in names), f"{path.name} imports {names}"


def test_the_default_fallback_names_the_live_backend():
    torch = pytest.importorskip("torch")
    assert torch is not None
    from natsbench_gym.live import LiveBenchmark

    assert ("live", LIVE_FALLBACK) in benchmarks_module._FALLBACKS
    assert benchmarks_module._fallback_factory("live", LIVE_FALLBACK) is LiveBenchmark


class _Fallback(PlainBenchmark):
    name = "string-fallback"


def test_string_fallbacks_are_imported_when_they_fire(monkeypatch, tmp_path):
    monkeypatch.delenv("NATSBENCH_DATA", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(benchmarks_module, "_FALLBACKS", [])
    monkeypatch.setattr(benchmarks_module, "_LOADED", {})
    natsbench_gym.register_fallback("missing", "no_such_module_anywhere:Backend")
    with pytest.raises(DataNotFoundError, match="'missing' fallback 'no_such_module_anywhere:Backend' cannot be loaded"):
        natsbench_gym.load_benchmark("size")
    natsbench_gym.register_fallback("missing", f"{__name__}:_Fallback")  # the same name replaces it
    bench = natsbench_gym.load_benchmark("size")
    assert type(bench).__name__ == "_Fallback" and bench.space.kind is SpaceKind.SIZE
    with pytest.raises(InvalidConfigError, match="entry point 'no-colon' is not of the form 'module:attribute'"):
        natsbench_gym.register_fallback("bad", "no-colon")
    with pytest.raises(InvalidConfigError, match="got int"):
        natsbench_gym.register_fallback("bad", 42)
    assert [name for name, _ in benchmarks_module._FALLBACKS] == ["missing"]

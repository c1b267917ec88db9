"""Shared fixtures.

Real data: tests that need the NATS-Bench tables read them from ``$NATSBENCH_DATA``: a table directory
in the schema of docs/data.md that also holds the official files of a few architectures under
``official/`` (a user gets the table as the README's "Get the NATS-Bench data" says; the project's
development data is described in the README's Development section). Mark such a test ``@pytest.mark.realdata``, or
request one of the real-data fixtures (``real_data``, ``topology_bench``, ``size_bench``), which marks
it automatically; either way it is skipped with a clear reason when ``NATSBENCH_DATA`` is unset, and
``-m "not realdata"`` deselects it.

Synthetic data: ``make_tiny_table(directory, space)`` writes a table in the project schema with every
architecture of the space and made-up numbers derived from each architecture's code (see
:func:`tiny_value`), so the table reader can be tested without real data.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import natsbench_gym
from natsbench_gym.spaces import make_space
from natsbench_gym.types import SpaceKind

# Read once at import: tests that monkeypatch the environment must not change what "real data" means.
_NATSBENCH_DATA = os.environ.get("NATSBENCH_DATA") or None
REAL_DATA_SKIP_REASON = (
    "NATSBENCH_DATA is unset: real NATS-Bench data is needed (get it as README.md's \"Get the NATS-Bench "
    "data\" explains, then set NATSBENCH_DATA to the table directory, an absolute path)"
)

#: Fixtures that need real data; a test requesting any of them is marked ``realdata``.
REAL_DATA_FIXTURES = frozenset({"real_data", "topology_bench", "size_bench", "official_dir"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=REAL_DATA_SKIP_REASON)
    for item in items:
        if REAL_DATA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realdata)
        if _NATSBENCH_DATA is None and item.get_closest_marker("realdata") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_personal_preference_library(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test sees an empty default preference library (``$XDG_DATA_HOME`` in a temporary folder),
    never the developer's own: a library with earlier users would make ``--human`` searches offer a
    warm start and wait for the answer. Tests that need a library say where it is."""
    monkeypatch.delenv("NATSBENCH_GYM_LIBRARY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "xdg-data-home"))


# --- real data ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real-data directory ``$NATSBENCH_DATA`` (skips the test when it is unset)."""
    if _NATSBENCH_DATA is None:
        pytest.skip(REAL_DATA_SKIP_REASON)
    path = Path(_NATSBENCH_DATA)
    if not (path / "tss.csv.gz").is_file() or not (path / "sss.csv.gz").is_file():
        pytest.fail(
            f"NATSBENCH_DATA={_NATSBENCH_DATA!r} holds no tss.csv.gz / sss.csv.gz; point it at a table directory "
            "(README.md, \"Get the NATS-Bench data\"; docs/data.md)"
        )
    return path


@pytest.fixture(scope="session")
def official_dir(real_data: Path) -> Path:
    """The genuine official NATS-Bench files (records of archs 0, 11 and 284 per space)."""
    path = real_data / "official"
    if not path.is_dir():
        pytest.fail(
            f"{str(path)!r} is missing; the real-data tests also need official NATS-Bench files there "
            "(NATS-tss-v1_0-3ffb9-simple / NATS-sss-v1_0-50262-simple, a few records suffice)"
        )
    return path


@pytest.fixture(scope="session")
def topology_bench(real_data: Path) -> natsbench_gym.Benchmark:
    return natsbench_gym.load_benchmark("topology", path=real_data)


@pytest.fixture(scope="session")
def size_bench(real_data: Path) -> natsbench_gym.Benchmark:
    return natsbench_gym.load_benchmark("size", path=real_data)


# --- synthetic tables ---------------------------------------------------------------------------
#: Columns of the synthetic tables, as in the data README (one row per architecture and NATS-Bench run).
_TINY_COLUMNS = {
    SpaceKind.TOPOLOGY: [
        "test_acc_200", "valid_acc_200", "test_acc_12", "valid_acc_12",
        "train_acc_200", "train_acc_12", "train_time_200_s", "flops_M", "params_MB",
    ],
    SpaceKind.SIZE: ["valid_acc_90", "flops_M", "params_MB"],
}
_RUN_OFFSET = {"cifar10": 0.0, "cifar10-valid": 1.0, "cifar100": 2.0, "ImageNet16-120": 3.0}
_TEST_RUNS = ("cifar10", "cifar100", "ImageNet16-120")
_VALID_RUNS = ("cifar10-valid", "cifar100", "ImageNet16-120")
#: Like the real data, synthetic train accuracy exists only for the first 1,000 topology indices.
TINY_TRAIN_ACC_INDICES = 1000


def tiny_index(space: SpaceKind | str, codes: np.ndarray | int) -> np.ndarray | int:
    """Official index of each code in a tiny table: the code for the size space (as in NATS-Bench),
    the code reversed for the topology space (so a reader that ignores ``arch_str`` gets it wrong)."""
    kind = SpaceKind.parse(space)
    return codes if kind is SpaceKind.SIZE else make_space(kind).size - 1 - codes


def _tiny_columns(kind: SpaceKind, codes: np.ndarray, run: str) -> dict[str, np.ndarray]:
    size = make_space(kind).size
    offset = _RUN_OFFSET[run]
    nan = np.full(codes.shape, np.nan)
    out = {
        "flops_M": 1 + codes / 100 + max(offset - 1.0, 0.0) * 0.01,  # both CIFAR-10 runs: one network
        "params_MB": codes / 1e5 + max(offset - 1.0, 0.0) * 0.01,
        "train_time_200_s": 100 + codes / 10 + offset if run in _VALID_RUNS else nan,
    }
    for budget in kind.budgets:
        for prefix, runs, extra in (("test", _TEST_RUNS, 0.0), ("valid", _VALID_RUNS, 0.1), ("train", _TEST_RUNS, 0.2)):
            value = 10 + 80 * codes / (size - 1) + offset + extra - (5.0 if budget == 12 else 0.0)
            if prefix == "train":
                value = np.where(tiny_index(kind, codes) < TINY_TRAIN_ACC_INDICES, value, np.nan)
            out[f"{prefix}_acc_{budget}"] = value if run in runs else nan
    return {column: out[column] for column in _TINY_COLUMNS[kind]}


def tiny_value(space: SpaceKind | str, code: int, run: str, column: str) -> float:
    """The synthetic value of ``column`` for the architecture with ``code`` in ``run`` (nan if empty).

    Accuracies are ``10 + 80 * code / (size - 1)`` plus 1 per run (``cifar10`` 0 ... ``ImageNet16-120``
    3), plus 0.1 for valid and 0.2 for train, minus 5 after 12 epochs; FLOPs ``1 + code / 100``,
    params ``code / 1e5`` (both plus 0.01 per run past CIFAR-10); training time ``100 + code / 10 + run``.
    Cells are empty where the real data's are (train accuracy only below index 1,000, for instance).
    """
    kind = SpaceKind.parse(space)
    return float(_tiny_columns(kind, np.array([code], dtype=np.int64), run)[column][0])


def make_tiny_table(directory: str | os.PathLike, space: SpaceKind | str) -> Path:
    """Write ``tss.csv.gz`` or ``sss.csv.gz`` with every architecture of ``space`` into ``directory``.

    The table follows the data README's schema (one row per architecture and NATS-Bench run, empty
    cells where the real data has none); values come from :func:`tiny_value`. Returns ``directory``.
    """
    kind = SpaceKind.parse(space)
    space_obj = make_space(kind)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    codes = np.arange(space_obj.size, dtype=np.int64)
    order = np.argsort(tiny_index(kind, codes))
    arch_strs = [space_obj.format(enc) for enc in space_obj.all_encodings().tolist()]
    cells = {
        run: [["" if v != v else repr(v) for v in column.tolist()] for column in _tiny_columns(kind, codes, run).values()]
        for run in _RUN_OFFSET
    }
    with gzip.open(out / f"{kind.short}.csv.gz", "wt", newline="", compresslevel=1) as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch_index", "arch_str", "dataset", *_TINY_COLUMNS[kind]])
        for code in order.tolist():
            index = tiny_index(kind, code)
            for run, columns in cells.items():
                writer.writerow([index, arch_strs[code], run, *(column[code] for column in columns)])
    return out


@pytest.fixture(name="make_tiny_table")
def make_tiny_table_fixture() -> Callable[[str | os.PathLike, SpaceKind | str], Path]:
    """``make_tiny_table(tmp_path, "topology")`` writes a synthetic table and returns its directory."""
    return make_tiny_table


@pytest.fixture(name="tiny_value")
def tiny_value_fixture() -> Callable[[SpaceKind | str, int, str, str], float]:
    """The formula behind the synthetic tables: ``tiny_value(space, code, run, column)``."""
    return tiny_value


@pytest.fixture(scope="session")
def tiny_tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory with synthetic ``tss.csv.gz`` and ``sss.csv.gz``, written once per session.

    Read-only by convention: a test that loads it with caching on writes its ``.npz`` cache there,
    which is harmless; a test that changes files must build its own with ``make_tiny_table``.
    """
    directory = tmp_path_factory.mktemp("tiny_tables")
    make_tiny_table(directory, "topology")
    make_tiny_table(directory, "size")
    return directory


# --- independent random metrics (reward-model tests) ---------------------------------------------
class RandomMetricsBenchmark(natsbench_gym.Benchmark):
    """The topology space with independent, uniformly random metrics (latency included).

    Unlike the tiny tables, whose metrics all grow with the code, no metric here predicts another,
    so a test can tell which one a learned preference follows. Accuracies are plausible percentages,
    FLOPs MFLOPs, params millions, latency milliseconds on ``"fake_device"``; no value is missing.
    """

    name = "random-metrics"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(make_space("topology"))
        rng = np.random.default_rng(seed)
        n = self.space.size
        Metric = natsbench_gym.Metric  # noqa: N806 - the enum, under its usual name
        self._values = {
            Metric.TEST_ACCURACY: rng.uniform(10.0, 95.0, n),
            Metric.VALID_ACCURACY: rng.uniform(10.0, 92.0, n),
            Metric.FLOPS: rng.uniform(1.0, 200.0, n),
            Metric.PARAMS: rng.uniform(0.1, 1.5, n),
            Metric.LATENCY: rng.uniform(1.0, 20.0, n),
        }

    @property
    def latency_devices(self) -> tuple[str, ...]:
        return ("fake_device",)

    def available_metrics(self, dataset, budget=None):
        return frozenset(self._values)

    def _query_indices(self, indices, dataset, budget, metrics, device):
        return {m: self._values[m][indices] for m in metrics}


@pytest.fixture(scope="session")
def random_metrics_bench() -> natsbench_gym.Benchmark:
    """A :class:`RandomMetricsBenchmark` (topology space, independent random metrics, no files)."""
    return RandomMetricsBenchmark(seed=0)


@pytest.fixture(scope="session")
def load_script() -> Callable:
    """``load_script("benchmarks/bench_x.py", "bench_x")``: import a script that is not in a package."""
    root = Path(__file__).resolve().parents[1]

    def load(relpath: str, name: str):
        spec = importlib.util.spec_from_file_location(name, root / relpath)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    return load

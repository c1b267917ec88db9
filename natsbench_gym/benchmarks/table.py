"""The fast table backend: NATS-Bench numbers from gzip CSV files, cached as ``.npz``.

The directory follows the schema of the project's data README (``tss.csv.gz``,
``tss_latency_ms.csv.gz``, ``tss_seeds_200.csv.gz``, ``sss.csv.gz``); ``natsbench-gym-convert``
writes that schema from the official NATS-Bench files. Optional extra columns are read when present
(``test_acc_90``, ``train_acc_90``, ``train_time_90_s`` for the size space, for instance).

The first load parses the CSV files (about a second) and writes a compact ``.npz`` cache beside
them, or under the cache directory when theirs is read-only; later loads read only the cache.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
from pathlib import Path

import numpy as np

from natsbench_gym.benchmarks.base import Benchmark, BenchmarkCapabilities
from natsbench_gym.errors import DataNotFoundError, InvalidArchitectureError
from natsbench_gym.fileio import atomic_write
from natsbench_gym.spaces import SearchSpace, make_space
from natsbench_gym.types import Dataset, Metric, SpaceKind

__all__ = ["TableBenchmark", "default_cache_dir", "CACHE_VERSION"]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1

#: Column prefix of each accuracy metric (suffix: ``_<epochs>``).
_ACC_COLUMNS = {Metric.TEST_ACCURACY: "test_acc", Metric.VALID_ACCURACY: "valid_acc", Metric.TRAIN_ACCURACY: "train_acc"}

#: For CIFAR-10, which NATS-Bench run (CSV ``dataset`` value) each metric comes from (see Dataset).
_CIFAR10_SOURCE = {
    Metric.TEST_ACCURACY: "cifar10",
    Metric.TRAIN_ACCURACY: "cifar10",
    Metric.FLOPS: "cifar10",
    Metric.PARAMS: "cifar10",
    Metric.VALID_ACCURACY: "cifar10-valid",
    Metric.TRAIN_TIME: "cifar10-valid",
}

#: Per-seed file: the (csv dataset, split) whose per-seed values are a given dataset's metric.
_SEED_SOURCES = {(Dataset.CIFAR10, Metric.VALID_ACCURACY): ("cifar10-valid", "x-valid")}


def default_cache_dir() -> Path:
    """``$NATSBENCH_GYM_CACHE``, else ``$XDG_CACHE_HOME/natsbench-gym``, else ``~/.cache/natsbench-gym``."""
    if os.environ.get("NATSBENCH_GYM_CACHE"):
        return Path(os.environ["NATSBENCH_GYM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "natsbench-gym"


class TableBenchmark(Benchmark):
    """NATS-Bench results read from a table directory.

    Args:
        path: directory holding ``tss.csv.gz`` (topology) or ``sss.csv.gz`` (size) and companions.
        space: ``"topology"`` or ``"size"``.
        cache_dir: where to write the ``.npz`` cache when ``path`` is not writable
            (default :func:`default_cache_dir`); ``False`` disables caching.

    Example:
        >>> import os, natsbench_gym
        >>> bench = natsbench_gym.TableBenchmark(os.environ["NATSBENCH_DATA"], "topology")  # doctest: +SKIP
        >>> bench.query(6111, "cifar10", 200)[natsbench_gym.Metric.TEST_ACCURACY]  # doctest: +SKIP
        94.3733
    """

    name = "table"
    capabilities = BenchmarkCapabilities(whole_space=True, exact_statistics=True)

    def __init__(
        self, path: str | os.PathLike, space: SpaceKind | str | SearchSpace = "topology", cache_dir=None
    ) -> None:
        space_obj = space if isinstance(space, SearchSpace) else make_space(space)
        self.path = Path(path)
        kind = space_obj.kind.short
        main = self.path / f"{kind}.csv.gz"
        if not main.is_file():
            raise DataNotFoundError(
                f"no {kind}.csv.gz in {str(self.path)!r}; point NATSBENCH_DATA (or path=) at a directory in "
                "the natsbench-gym table schema, or convert official NATS-Bench files with "
                "`natsbench-gym-convert`"
            )
        files = [p for p in sorted(self.path.glob(f"{kind}*.csv.gz")) if p.is_file()]
        arrays = self._load_cached(files, space_obj, cache_dir)
        self._arrays = arrays
        super().__init__(space_obj, arrays["index_to_code"])
        self._columns: dict[tuple[Dataset, int], dict[Metric, np.ndarray]] = {}
        self._latency: dict[str, np.ndarray] = {}
        self._seeds: dict[tuple[Dataset, int, Metric], np.ndarray] = {}
        self._rows: dict[tuple, tuple[tuple[Metric, ...], np.ndarray]] = {}
        for key, arr in arrays.items():
            parts = key.split("|")
            if parts[0] == "metric":
                ds, b, m = Dataset.parse(parts[1]), int(parts[2]), Metric.parse(parts[3])
                self._columns.setdefault((ds, b), {})[m] = arr
            elif parts[0] == "latency":
                self._latency[parts[1]] = arr
            elif parts[0] == "seeds":
                self._seeds[(Dataset.parse(parts[1]), int(parts[2]), Metric.parse(parts[3]))] = arr
        self._available = {
            key: frozenset(m for m, a in cols.items() if not np.all(np.isnan(a)))
            | (frozenset({Metric.LATENCY}) if self._latency else frozenset())
            for key, cols in self._columns.items()
        }
        self._budgets = tuple(b for b in space_obj.kind.budgets if any(k[1] == b for k in self._columns))
        self._datasets = tuple(d for d in Dataset if any(k[0] is d for k in self._columns))

    # --- loading -----------------------------------------------------------------------------
    @classmethod
    def _load_cached(cls, files: list[Path], space: SearchSpace, cache_dir) -> dict[str, np.ndarray]:
        h = hashlib.sha1(f"v{CACHE_VERSION}".encode())
        for f in files:
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        name = f"{space.kind.short}-{h.hexdigest()[:16]}.npz"
        candidates = []
        if cache_dir is not False:
            candidates = [files[0].parent / ".natsbench_gym_cache" / name, Path(cache_dir or default_cache_dir()) / name]
        for cand in candidates:
            if cand.is_file():
                try:
                    with np.load(cand, allow_pickle=False) as z:
                        logger.debug("loaded table cache %s", cand)
                        return {k: z[k] for k in z.files}
                except (OSError, ValueError) as exc:  # a corrupt cache is rebuilt, never trusted
                    logger.warning("ignoring unreadable cache %s: %s", cand, exc)
        logger.info("parsing %s table from %s (first load; a cache is written afterwards)", space.kind.value, files[0].parent)
        arrays = _parse_tables(files, space)
        for cand in candidates:
            if _write_npz_atomic(cand, arrays):
                logger.info("wrote table cache %s", cand)
                break
        return arrays

    # --- Benchmark interface -------------------------------------------------------------------
    @property
    def datasets(self) -> tuple[Dataset, ...]:
        return self._datasets

    @property
    def budgets(self) -> tuple[int, ...]:
        return self._budgets

    @property
    def latency_devices(self) -> tuple[str, ...]:
        return tuple(self._latency)

    def available_metrics(self, dataset, budget=None) -> frozenset[Metric]:
        return self._available.get((self.check_dataset(dataset), self.check_budget(budget)), frozenset())

    def _column(self, metric: Metric, dataset: Dataset, budget: int, device: str | None) -> np.ndarray:
        if metric is Metric.LATENCY:
            return self._latency[device]
        return self._columns[(dataset, budget)][metric]

    def _query_indices(self, indices, dataset, budget, metrics, device):
        return {m: self._column(m, dataset, budget, device)[indices] for m in metrics}

    def query(self, arch, dataset, budget=None, metrics=None, device=None):
        # Hot path (env steps, agents): one dict lookup for the arguments, one row of a stacked array.
        key = (dataset, budget, metrics if metrics is None or isinstance(metrics, tuple) else tuple(metrics), device)
        try:
            names, rows = self._rows[key]
        except KeyError:
            ds, b, ms, dev = self.resolve(dataset, budget, metrics, device)
            stacked = np.stack([self._column(m, ds, b, dev) for m in ms], axis=1) if ms else np.empty((self.space.size, 0))
            names, rows = self._rows.setdefault(key, (ms, stacked))
        except TypeError:  # unhashable arguments: take the general path
            return super().query(arch, dataset, budget, metrics, device)
        index = arch if type(arch) is int and 0 <= arch < len(rows) else self.index(arch)
        return dict(zip(names, rows[index].tolist(), strict=True))

    def _query_one(self, index, dataset, budget, metrics, device):
        return {m: float(self._column(m, dataset, budget, device)[index]) for m in metrics}

    def _seed_values(self, index, metric, dataset, budget):
        arr = self._seeds.get((dataset, budget, metric))
        if arr is None:
            return None
        row = arr[index]
        return row[~np.isnan(row)]

    def describe(self) -> str:
        return f"table {self.space.kind.value} from {self.path}"


# --- parsing ----------------------------------------------------------------------------------
def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def _floats(values: list[str]) -> np.ndarray:
    return np.array([float(v) if v else np.nan for v in values], dtype=np.float64)


def _parse_tables(files: list[Path], space: SearchSpace) -> dict[str, np.ndarray]:
    kind = space.kind.short
    by_name = {f.name: f for f in files}
    header, rows = _read_csv(by_name[f"{kind}.csv.gz"])
    col = {name: i for i, name in enumerate(header)}
    for needed in ("arch_index", "arch_str", "dataset"):
        if needed not in col:
            raise DataNotFoundError(f"{kind}.csv.gz has no {needed!r} column; is it in the natsbench-gym schema?")
    n = space.size
    index_to_code = np.full(n, -1, dtype=np.int64)
    groups: dict[str, list[list[str]]] = {}
    for row in rows:
        groups.setdefault(row[col["dataset"]], []).append(row)
    any_rows = next(iter(groups.values()))
    idx = np.array([int(r[col["arch_index"]]) for r in any_rows], dtype=np.int64)
    codes = np.array([space.code(space.parse(r[col["arch_str"]])) for r in any_rows], dtype=np.int64)
    index_to_code[idx] = codes
    if np.any(index_to_code < 0):
        missing = int(np.flatnonzero(index_to_code < 0)[0])
        raise InvalidArchitectureError(f"{kind}.csv.gz lists no architecture for index {missing}; every index must be present")
    arrays: dict[str, np.ndarray] = {"index_to_code": index_to_code}

    def column(source: str, name: str) -> np.ndarray | None:
        if name not in col or source not in groups:
            return None
        rs = groups[source]
        out = np.full(n, np.nan)
        out[np.array([int(r[col["arch_index"]]) for r in rs])] = _floats([r[col[name]] for r in rs])
        return out

    for ds in Dataset:
        for budget in space.kind.budgets:
            for metric in (*_ACC_COLUMNS, Metric.FLOPS, Metric.PARAMS, Metric.TRAIN_TIME):
                source = _CIFAR10_SOURCE[metric] if ds is Dataset.CIFAR10 else ds.value
                if metric in _ACC_COLUMNS:
                    values = column(source, f"{_ACC_COLUMNS[metric]}_{budget}")
                elif metric is Metric.FLOPS:
                    values = column(source, "flops_M")
                elif metric is Metric.PARAMS:
                    values = column(source, "params_MB")
                else:
                    values = column(source, f"train_time_{budget}_s")
                    if values is None and budget != 200 and "train_time_200_s" in col:
                        # NATS-Bench's per-epoch time is the same under every schedule, so the
                        # time of a shorter schedule is the 200-epoch time scaled by its epochs.
                        full = column(source, "train_time_200_s")
                        values = None if full is None else full * (budget / 200.0)
                if values is not None and not np.all(np.isnan(values)):
                    arrays[f"metric|{ds.value}|{budget}|{metric.value}"] = values

    lat_name = f"{kind}_latency_ms.csv.gz"
    if lat_name in by_name:
        lheader, lrows = _read_csv(by_name[lat_name])
        lidx = np.array([int(r[0]) for r in lrows], dtype=np.int64)
        for j, device in enumerate(lheader):
            if device in ("arch_index", "arch_str"):
                continue
            values = np.full(n, np.nan)
            values[lidx] = _floats([r[j] for r in lrows])
            arrays[f"latency|{device}"] = values

    for budget in space.kind.budgets:
        seed_name = f"{kind}_seeds_{budget}.csv.gz"
        if seed_name not in by_name:
            continue
        sheader, srows = _read_csv(by_name[seed_name])
        scol = {name: i for i, name in enumerate(sheader)}
        for (ds, metric), (source, split) in _SEED_SOURCES.items():
            sel = [r for r in srows if r[scol["dataset"]] == source and r[scol["split"]] == split]
            if not sel:
                continue
            per_arch: dict[int, list[float]] = {}
            for r in sel:
                per_arch.setdefault(int(r[scol["arch_index"]]), []).append(float(r[scol[f"acc_{budget}"]]))
            width = max(len(v) for v in per_arch.values())
            values = np.full((n, width), np.nan)
            for i, vs in per_arch.items():
                values[i, : len(vs)] = vs
            arrays[f"seeds|{ds.value}|{budget}|{metric.value}"] = values
    return arrays


def _write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write(path, buf.getvalue())
        return True
    except OSError as exc:
        logger.debug("cannot write cache %s: %s", path, exc)
        return False

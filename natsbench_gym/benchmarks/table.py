"""The fast table backend: NATS-Bench numbers from gzip CSV files, cached as ``.npz``.

The directory follows the schema of the project's data README (``tss.csv.gz``,
``tss_latency_ms.csv.gz``, ``tss_seeds_200.csv.gz``, ``sss.csv.gz``); ``natsbench-gym-convert``
writes that schema from the official NATS-Bench files. Optional extra columns are read when present
(``test_acc_90``, ``train_acc_90``, ``train_time_90_s`` for the size space, for instance).

The first load parses the CSV files (about a second) and writes a compact ``.npz`` cache into the
cache folder (:func:`default_cache_dir`: ``$NATSBENCH_GYM_CACHE``, else the user cache), never into
the data folder, which may be shared or read-only; later loads read only the cache. The cache's name
is a hash of the cache format version and each source file's path, size and modification time, so
an edited or replaced table is parsed again; the key is also stored inside the cache and checked, and
a cache that cannot be read (truncated, corrupt, another format) is ignored and rebuilt. It is
written atomically (:mod:`natsbench_gym.fileio`), so a half-written cache is never read.

A table file that cannot be read -- not gzip, truncated, corrupt, or not in the schema
(docs/data.md) -- raises :class:`~natsbench_gym.errors.DataFileError` naming the file and the fix.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
import zlib
from pathlib import Path

import numpy as np

from natsbench_gym.benchmarks.base import Benchmark, BenchmarkCapabilities
from natsbench_gym.errors import DataFileError, DataNotFoundError, NATSBenchGymError
from natsbench_gym.fileio import atomic_write
from natsbench_gym.spaces import SearchSpace, make_space
from natsbench_gym.types import Dataset, Metric, SpaceKind

__all__ = ["TableBenchmark", "default_cache_dir", "CACHE_VERSION"]

logger = logging.getLogger(__name__)

#: Format version of the ``.npz`` cache (part of its name and of the key stored in it).
CACHE_VERSION = 3

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
_SEED_SOURCES = {
    (Dataset.CIFAR10, Metric.VALID_ACCURACY): ("cifar10-valid", "x-valid"),
    (Dataset.CIFAR100, Metric.VALID_ACCURACY): ("cifar100", "x-valid"),
    (Dataset.IMAGENET16_120, Metric.VALID_ACCURACY): ("ImageNet16-120", "x-valid"),
}

#: Images in the training set and the validation split of the run each dataset searches on
#: (cifar10-valid: half of CIFAR-10's training set each; CIFAR-100 / ImageNet16-120: the x-valid
#: half of their test sets). NATS-Bench derives the times of the other runs from cifar10-valid's by
#: these counts (CIFAR-100's training epoch takes exactly 2x cifar10-valid's in its records).
_RUN_IMAGES = {Dataset.CIFAR10: (25_000, 25_000), Dataset.CIFAR100: (50_000, 5_000), Dataset.IMAGENET16_120: (151_700, 3_000)}

#: Cost of validating one image relative to training on one, for tables without ``valid_time_s``:
#: NATS-Bench's records of architectures 0, 11 and 284 give 0.35, 0.33 and 0.49 (median 0.35).
VALID_PER_TRAIN_IMAGE = 0.35


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
        cache_dir: where to write the ``.npz`` cache (default :func:`default_cache_dir`); ``False``
            disables caching. Nothing is ever written into ``path``.

    Raises:
        DataNotFoundError: ``path`` holds no ``tss.csv.gz`` / ``sss.csv.gz``.
        DataFileError: a table file is not gzip, truncated, corrupt or not in the schema.

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
                "the natsbench-gym table schema (docs/data.md), or convert official NATS-Bench files with "
                "`natsbench-gym-convert` (the README's \"Get the NATS-Bench data\")"
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
        #: Where :meth:`validation_times` come from, per dataset: ``"table"`` (the ``valid_time_s``
        #: column), ``"approximated"`` (from the training time, see :data:`VALID_PER_TRAIN_IMAGE`).
        self.validation_time_source: dict[Dataset, str] = {}
        self._valid_times: dict[Dataset, np.ndarray] = {}
        for ds in self._datasets:
            if f"valid_time|{ds.value}" in arrays:
                self._valid_times[ds] = arrays[f"valid_time|{ds.value}"]
                self.validation_time_source[ds] = "table"
            elif Metric.TRAIN_TIME in self._columns.get((ds, 200), {}):
                n_train, n_valid = _RUN_IMAGES[ds]
                per_train_image = self._columns[(ds, 200)][Metric.TRAIN_TIME] / 200.0 / n_train
                self._valid_times[ds] = VALID_PER_TRAIN_IMAGE * per_train_image * n_valid
                self.validation_time_source[ds] = "approximated"

    # --- loading -----------------------------------------------------------------------------
    @classmethod
    def _load_cached(cls, files: list[Path], space: SearchSpace, cache_dir) -> dict[str, np.ndarray]:
        key = _cache_key(files)
        cache = None if cache_dir is False else Path(cache_dir or default_cache_dir()) / f"{space.kind.short}-{key[:16]}.npz"
        if cache is not None and cache.is_file():
            arrays = _read_cache(cache, key, space)
            if arrays is not None:
                logger.debug("loaded table cache %s", cache)
                return arrays
        logger.info("parsing %s table from %s (first load; a cache is written afterwards)", space.kind.value, files[0].parent)
        arrays = _parse_tables(files, space)
        if cache is not None and _write_npz_atomic(cache, {**arrays, _KEY_ENTRY: np.array(key)}):
            logger.info("wrote table cache %s", cache)
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

    def _validation_times(self, indices, dataset, budget):
        values = self._valid_times.get(dataset)
        return np.full(len(indices), np.nan) if values is None else values[indices]

    def _seed_values(self, index, metric, dataset, budget):
        arr = self._seeds.get((dataset, budget, metric))
        if arr is None:
            return None
        row = arr[index]
        return row[~np.isnan(row)]

    def describe(self) -> str:
        return f"table {self.space.kind.value} from {self.path}"


# --- cache -------------------------------------------------------------------------------------
_KEY_ENTRY = "__cache_key__"


def _cache_key(files: list[Path]) -> str:
    """Hash of the cache format and each source file's identity (resolved path, size, mtime)."""
    h = hashlib.sha1(f"natsbench-gym table cache v{CACHE_VERSION}".encode())
    for f in files:
        st = f.stat()
        h.update(f"|{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _read_cache(path: Path, key: str, space: SearchSpace) -> dict[str, np.ndarray] | None:
    """The arrays of a cache written for ``key``, or None (and a warning) if it is unusable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        stored = arrays.pop(_KEY_ENTRY, None)
        if stored is None or str(stored) != key:
            raise ValueError("it was written for other source files or another cache version")
        order = arrays.get("index_to_code")
        if order is None or order.shape != (space.size,) or any(
            a.ndim not in (1, 2) or a.shape[0] != space.size for a in arrays.values()
        ):
            raise ValueError("its arrays do not cover the space")
    except Exception as exc:  # noqa: BLE001 - any unreadable cache (zip, zlib, format errors) is rebuilt
        logger.warning("ignoring unreadable cache %s (%s: %s); rebuilding it", path, type(exc).__name__, exc)
        return None
    return arrays


# --- parsing ----------------------------------------------------------------------------------
def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a gzip CSV; every way the file can be unreadable becomes a DataFileError."""
    try:
        with gzip.open(path, "rt", newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = list(reader)
    except gzip.BadGzipFile as exc:
        problem = "not a gzip file" if str(exc).startswith("Not a gzipped file") else "corrupt gzip data"
        raise DataFileError(path, f"{problem} ({exc})") from exc
    except EOFError as exc:
        raise DataFileError(path, f"truncated: the gzip stream ends early ({exc}); the download or copy was cut short") from exc
    except (zlib.error, OSError) as exc:
        raise DataFileError(path, f"corrupt gzip data ({exc})") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(path, f"not a CSV text file inside the gzip ({exc})") from exc
    if header is None:
        raise DataFileError(path, "empty: no header line")
    return header, rows


def _columns(path: Path, header: list[str], needed: tuple[str, ...]) -> dict[str, int]:
    col = {name: i for i, name in enumerate(header)}
    missing = [c for c in needed if c not in col]
    if missing:
        raise DataFileError(
            path, f"no {', '.join(repr(c) for c in missing)} column (header: {', '.join(header[:8]) or 'empty'}); "
            "it is not in the natsbench-gym table schema"
        )
    return col


def _check_widths(path: Path, header: list[str], rows: list[list[str]]) -> None:
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataFileError(path, f"line {line} has {len(row)} fields where the header has {len(header)}")


def _floats(values: list[str], path: Path | None = None, what: str = "") -> np.ndarray:
    try:
        return np.array([float(v) if v else np.nan for v in values], dtype=np.float64)
    except ValueError as exc:
        bad = next(v for v in values if v and not _is_float(v))
        raise DataFileError(path, f"{what} holds {bad!r}, not a number") from exc


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _indices(path: Path, values: list[str], size: int) -> np.ndarray:
    try:
        idx = np.array([int(v) for v in values], dtype=np.int64)
    except ValueError as exc:
        bad = next(v for v in values if not v.strip().lstrip("-").isdigit())
        raise DataFileError(path, f"arch_index holds {bad!r}, not an integer") from exc
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        bad = int(idx[(idx < 0) | (idx >= size)][0])
        raise DataFileError(path, f"arch_index {bad} is outside 0..{size - 1}")
    return idx


def _parse_tables(files: list[Path], space: SearchSpace) -> dict[str, np.ndarray]:
    kind = space.kind.short
    by_name = {f.name: f for f in files}
    n = space.size
    arrays: dict[str, np.ndarray] = {}
    # The companions first: they are small, so a damaged one is reported before the big table is parsed.
    lat_name = f"{kind}_latency_ms.csv.gz"
    if lat_name in by_name:
        path = by_name[lat_name]
        lheader, lrows = _read_csv(path)
        lcol = _columns(path, lheader, ("arch_index",))
        _check_widths(path, lheader, lrows)
        lidx = _indices(path, [r[lcol["arch_index"]] for r in lrows], n)
        for j, device in enumerate(lheader):
            if device in ("arch_index", "arch_str"):
                continue
            values = np.full(n, np.nan)
            values[lidx] = _floats([r[j] for r in lrows], path, f"device column {device!r}")
            arrays[f"latency|{device}"] = values

    for budget in space.kind.budgets:
        seed_name = f"{kind}_seeds_{budget}.csv.gz"
        if seed_name not in by_name:
            continue
        path = by_name[seed_name]
        sheader, srows = _read_csv(path)
        scol = _columns(path, sheader, ("arch_index", "dataset", "split", f"acc_{budget}"))
        _check_widths(path, sheader, srows)
        for (ds, metric), (source, split) in _SEED_SOURCES.items():
            sel = [r for r in srows if r[scol["dataset"]] == source and r[scol["split"]] == split]
            if not sel:
                continue
            sidx = _indices(path, [r[scol["arch_index"]] for r in sel], n)
            accs = _floats([r[scol[f"acc_{budget}"]] for r in sel], path, f"column 'acc_{budget}'")
            per_arch: dict[int, list[float]] = {}
            for i, acc in zip(sidx.tolist(), accs.tolist(), strict=True):
                per_arch.setdefault(i, []).append(acc)
            width = max(len(v) for v in per_arch.values())
            values = np.full((n, width), np.nan)
            for i, vs in per_arch.items():
                values[i, : len(vs)] = vs
            arrays[f"seeds|{ds.value}|{budget}|{metric.value}"] = values
    main = by_name[f"{kind}.csv.gz"]
    header, rows = _read_csv(main)
    col = _columns(main, header, ("arch_index", "arch_str", "dataset"))
    _check_widths(main, header, rows)
    if not rows:
        raise DataFileError(main, "no rows: the table lists no architecture")
    index_to_code = np.full(n, -1, dtype=np.int64)
    groups: dict[str, list[list[str]]] = {}
    for row in rows:
        groups.setdefault(row[col["dataset"]], []).append(row)
    any_rows = next(iter(groups.values()))
    idx = _indices(main, [r[col["arch_index"]] for r in any_rows], n)
    try:
        codes = np.array([space.code(space.parse(r[col["arch_str"]])) for r in any_rows], dtype=np.int64)
    except NATSBenchGymError as exc:
        raise DataFileError(main, f"an arch_str is not a {space.kind.value} architecture: {exc}") from exc
    index_to_code[idx] = codes
    if np.any(index_to_code < 0):
        missing = int(np.flatnonzero(index_to_code < 0)[0])
        raise DataFileError(main, f"lists no architecture for index {missing}; every index 0..{n - 1} must be present")
    if len(np.unique(index_to_code)) != n:
        raise DataFileError(main, "lists an architecture under two indices; each must appear once")
    arrays["index_to_code"] = index_to_code

    def column(source: str, name: str) -> np.ndarray | None:
        if name not in col or source not in groups:
            return None
        rs = groups[source]
        out = np.full(n, np.nan)
        out[_indices(main, [r[col["arch_index"]] for r in rs], n)] = _floats([r[col[name]] for r in rs], main, f"column {name!r}")
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
        valid_time = column(_CIFAR10_SOURCE[Metric.TRAIN_TIME] if ds is Dataset.CIFAR10 else ds.value, "valid_time_s")
        if valid_time is not None and not np.all(np.isnan(valid_time)):
            arrays[f"valid_time|{ds.value}"] = valid_time

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

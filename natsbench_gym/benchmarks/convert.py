"""Convert official NATS-Bench files into the project's table (run once, query fast forever).

Command line: ``natsbench-gym-convert OFFICIAL_DIR OUT_DIR [--space topology|size]``. Every
architecture of the space gets a row (its index and string come from ``meta_archs``); metrics are
filled for every architecture whose record is in the official directory, and left empty otherwise.
Besides the metrics it writes each run's validation time (``valid_time_s``) and the per-seed
validation accuracies of every schedule (``<space>_seeds_<epochs>.csv.gz``). The schema is in
docs/data.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import logging
import os
from pathlib import Path

import numpy as np

from natsbench_gym.benchmarks.official import NATSBENCH_LATENCY_DEVICE, NATSBenchAPIBenchmark
from natsbench_gym.fileio import atomic_path
from natsbench_gym.types import Dataset, Metric, SpaceKind

__all__ = ["convert_official", "main"]

logger = logging.getLogger(__name__)


def _fmt(value: float) -> str:
    return "" if value is None or np.isnan(value) else repr(float(value))


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with atomic_path(path) as tmp, gzip.open(tmp, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def convert_official(
    official_dir: str | os.PathLike, out_dir: str | os.PathLike, space: SpaceKind | str = "topology",
    progress: bool = False,
) -> list[Path]:
    """Write ``<tss|sss>.csv.gz`` (and latency / per-seed files) from official NATS-Bench files.

    Records are read one at a time and let go (``nats_bench`` would otherwise hold about 4 MB per
    record in memory), so a whole archive converts in bounded memory.

    Args:
        official_dir: official directory (``NATS-tss-v1_0-3ffb9-simple``) or a directory holding it.
        out_dir: directory to write the table into (created if needed).
        space: ``"topology"`` or ``"size"``.
        progress: show a progress bar over the records (tqdm, on stderr).

    Returns:
        The files written.
    """
    api = NATSBenchAPIBenchmark(official_dir, space)
    kind = api.space.kind
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    budgets = kind.budgets
    acc_cols = [f"{p}_acc_{b}" for b in budgets for p in ("test", "valid", "train")]
    header = ["arch_index", "arch_str", "dataset", *acc_cols, *[f"train_time_{b}_s" for b in budgets],
              "valid_time_s", "flops_M", "params_MB"]
    evaluated = api.evaluated_indices
    metrics = tuple(m for m in Metric if m is not Metric.LATENCY)
    n = len(evaluated)
    values = {(ds, b): {m: np.full(n, np.nan) for m in metrics} for ds in Dataset for b in budgets}
    valid_times = {ds: np.full(n, np.nan) for ds in Dataset}  # one validation pass, the same under every schedule
    latency = np.full(n, np.nan)
    seed_rows: dict[int, list[list]] = {b: [] for b in budgets}
    records = evaluated.tolist()
    if progress:
        from tqdm import tqdm

        records = tqdm(records, desc=f"reading {kind.short} records", unit="record")
    for j, index in enumerate(records):
        for ds in Dataset:
            for b in budgets:
                for m, v in api.query(index, ds, b, metrics).items():
                    values[(ds, b)][m][j] = v
            valid_times[ds][j] = api.validation_times([index], ds, budgets[-1])[0]
        latency[j] = api.query(index, Dataset.CIFAR10, budgets[0], [Metric.LATENCY], NATSBENCH_LATENCY_DEVICE)[Metric.LATENCY]
        for b in budgets:
            for run in ("cifar10-valid", "cifar100", "ImageNet16-120"):  # the validation runs a search reads
                for seed in api.seed_runs(index, run, b):
                    info = api.api.get_more_info(index, run, hp=str(b), is_random=seed)
                    if "valid-accuracy" in info:
                        seed_rows[b].append([index, run, seed, "x-valid", _fmt(info["valid-accuracy"])])
    pos = {int(i): j for j, i in enumerate(evaluated)}
    rows = []
    runs = [("cifar10", Dataset.CIFAR10, {Metric.TEST_ACCURACY, Metric.TRAIN_ACCURACY}),
            ("cifar10-valid", Dataset.CIFAR10, {Metric.VALID_ACCURACY, Metric.TRAIN_TIME}),
            ("cifar100", Dataset.CIFAR100, set(Metric)),
            ("ImageNet16-120", Dataset.IMAGENET16_120, set(Metric))]
    for index in range(api.space.size):
        arch_str = api.api.meta_archs[index]
        j = pos.get(index)
        for run, ds, keep in runs:
            row = [index, arch_str, run]
            for b in budgets:
                for m in (Metric.TEST_ACCURACY, Metric.VALID_ACCURACY, Metric.TRAIN_ACCURACY):
                    row.append(_fmt(values[(ds, b)][m][j]) if j is not None and m in keep else "")
            for b in budgets:
                row.append(_fmt(values[(ds, b)][Metric.TRAIN_TIME][j]) if j is not None and Metric.TRAIN_TIME in keep else "")
            row.append(_fmt(valid_times[ds][j]) if j is not None and Metric.TRAIN_TIME in keep else "")
            for m in (Metric.FLOPS, Metric.PARAMS):
                row.append(_fmt(values[(ds, budgets[0])][m][j]) if j is not None else "")
            rows.append(row)
    written = [out / f"{kind.short}.csv.gz"]
    _write_csv(written[0], header, rows)

    lat_rows = [[index, api.api.meta_archs[index], _fmt(latency[pos[index]]) if index in pos else ""] for index in range(api.space.size)]
    written.append(out / f"{kind.short}_latency_ms.csv.gz")
    _write_csv(written[-1], ["arch_index", "arch_str", NATSBENCH_LATENCY_DEVICE], lat_rows)

    for b in budgets:
        if seed_rows[b]:
            written.append(out / f"{kind.short}_seeds_{b}.csv.gz")
            _write_csv(written[-1], ["arch_index", "dataset", "seed", "split", f"acc_{b}"], seed_rows[b])
    logger.info("converted %d records of %d %s architectures into %s", len(evaluated), api.space.size, kind.value, out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="natsbench-gym-convert", description=__doc__.splitlines()[0])
    parser.add_argument("official_dir", help="official NATS-Bench directory, or a directory holding it")
    parser.add_argument("out_dir", help="directory to write the table into")
    parser.add_argument("--space", default="topology", choices=["topology", "size", "tss", "sss"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in convert_official(args.official_dir, args.out_dir, args.space, progress=True):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""Convert official NATS-Bench files into the project's table (run once, query fast forever).

Command line: ``natsbench-gym-convert OFFICIAL_DIR OUT_DIR [--space topology|size]``. Every
architecture of the space gets a row (its index and string come from ``meta_archs``); metrics are
filled for every architecture whose record is in the official directory, and left empty otherwise.
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


def convert_official(official_dir: str | os.PathLike, out_dir: str | os.PathLike, space: SpaceKind | str = "topology") -> list[Path]:
    """Write ``<tss|sss>.csv.gz`` (and latency / per-seed files) from official NATS-Bench files.

    Args:
        official_dir: official directory (``NATS-tss-v1_0-3ffb9-simple``) or a directory holding it.
        out_dir: directory to write the table into (created if needed).
        space: ``"topology"`` or ``"size"``.

    Returns:
        The files written.
    """
    api = NATSBenchAPIBenchmark(official_dir, space)
    kind = api.space.kind
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    budgets = kind.budgets
    acc_cols = [f"{p}_acc_{b}" for b in budgets for p in ("test", "valid", "train")]
    header = ["arch_index", "arch_str", "dataset", *acc_cols, *[f"train_time_{b}_s" for b in budgets], "flops_M", "params_MB"]
    evaluated = api.evaluated_indices
    values = {}  # (dataset, budget) -> {metric: array over evaluated}
    for ds in Dataset:
        for b in budgets:
            values[(ds, b)] = api.query_many(evaluated, ds, b, [m for m in Metric if m is not Metric.LATENCY])
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
            for m in (Metric.FLOPS, Metric.PARAMS):
                row.append(_fmt(values[(ds, budgets[0])][m][j]) if j is not None else "")
            rows.append(row)
    written = [out / f"{kind.short}.csv.gz"]
    _write_csv(written[0], header, rows)

    lat = api.query_many(evaluated, Dataset.CIFAR10, budgets[0], [Metric.LATENCY], NATSBENCH_LATENCY_DEVICE)[Metric.LATENCY]
    lat_rows = [[index, api.api.meta_archs[index], _fmt(lat[pos[index]]) if index in pos else ""] for index in range(api.space.size)]
    written.append(out / f"{kind.short}_latency_ms.csv.gz")
    _write_csv(written[-1], ["arch_index", "arch_str", NATSBENCH_LATENCY_DEVICE], lat_rows)

    seed_rows = []
    for b in budgets:
        seed_rows.clear()
        for index in evaluated.tolist():
            try:
                seeds = api.api.query_meta_info_by_index(index, hp=str(b)).get_dataset_seeds("cifar10-valid")
            except Exception:  # noqa: BLE001 - a record without that run simply has no per-seed rows
                continue
            for seed in seeds:
                info = api.api.get_more_info(index, "cifar10-valid", hp=str(b), is_random=seed)
                if "valid-accuracy" in info:
                    seed_rows.append([index, "cifar10-valid", seed, "x-valid", _fmt(info["valid-accuracy"])])
        if seed_rows:
            written.append(out / f"{kind.short}_seeds_{b}.csv.gz")
            _write_csv(written[-1], ["arch_index", "dataset", "seed", "split", f"acc_{b}"], seed_rows)
    logger.info("converted %d records of %d %s architectures into %s", len(evaluated), api.space.size, kind.value, out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="natsbench-gym-convert", description=__doc__.splitlines()[0])
    parser.add_argument("official_dir", help="official NATS-Bench directory, or a directory holding it")
    parser.add_argument("out_dir", help="directory to write the table into")
    parser.add_argument("--space", default="topology", choices=["topology", "size", "tss", "sss"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in convert_official(args.official_dir, args.out_dir, args.space):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

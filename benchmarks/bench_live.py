"""How long the live backend takes: one architecture of each space with the default config, and a cached query.

Usage: ``python benchmarks/bench_live.py [--archs 2] [--seed 0] [--threads N]``. Results go to a
temporary SQLite file, so every run trains for real; the first evaluation of a process also pays
for loading the digits and warming torch up, so it is reported apart.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=2, help="architectures evaluated per space (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the architecture sample")
    parser.add_argument("--threads", type=int, default=None, help="LiveConfig.num_threads (default: the config's, 1)")
    parser.add_argument("--queries", type=int, default=2000, help="cached queries timed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from natsbench_gym.live import LiveBenchmark, LiveConfig
    from natsbench_gym.types import Metric

    config = LiveConfig() if args.threads is None else LiveConfig(num_threads=args.threads)
    print(f"config: {config}")
    with tempfile.TemporaryDirectory() as tmp:
        for space in ("topology", "size"):
            bench = LiveBenchmark(space, config, cache_path=Path(tmp) / "live.sqlite", progress=False)
            rng = np.random.default_rng(args.seed)
            indices = rng.choice(bench.space.size, size=args.archs, replace=False)
            for i, index in enumerate(indices):
                start = time.perf_counter()
                result = bench.query(int(index), "cifar10")
                wall = time.perf_counter() - start
                note = " (first: loads digits, warms torch up)" if i == 0 and space == "topology" else ""
                print(
                    f"{space:8s} {bench.arch_str(int(index)):>80s}  evaluate {wall:6.2f} s{note}  "
                    f"train {result[Metric.TRAIN_TIME]:5.2f} s  valid {result[Metric.VALID_ACCURACY]:5.1f}%  "
                    f"test {result[Metric.TEST_ACCURACY]:5.1f}%  latency {result[Metric.LATENCY]:6.2f} ms  "
                    f"{result[Metric.FLOPS]:7.2f} MFLOPs  {result[Metric.PARAMS]:.4f} M params"
                )
            index = int(indices[0])
            times = []
            for _ in range(args.queries):
                start = time.perf_counter()
                bench.query(index, "cifar10")
                times.append(time.perf_counter() - start)
            print(f"{space:8s} cached query: median {1e6 * statistics.median(times):.1f} us over {args.queries}")
            reopened = LiveBenchmark(space, config, cache_path=Path(tmp) / "live.sqlite", progress=False)
            start = time.perf_counter()
            reopened.query(index, "cifar10")
            print(f"{space:8s} first query after reopening the cache file: {1e3 * (time.perf_counter() - start):.2f} ms")
            bench.close()
            reopened.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

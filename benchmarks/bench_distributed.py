"""Live trainings on 1 vs 2 workers: the speed-up of the executors, and the same results as serial.

Usage: ``python benchmarks/bench_distributed.py [--archs 16] [--executors process,ray] [--seed 0]``

Trains ``--archs`` seeded random topology architectures with the live backend's defaults
(:class:`LiveConfig() <natsbench_gym.live.config.LiveConfig>`: sklearn digits, C=8, N=1, 16x16,
3 epochs; every metric, latency included, as a search asks) five ways, each on a fresh
in-memory cache with the data already loaded: in this process (the serial reference), then on each executor with 1 and with 2
workers. Workers are started (and torch imported in them) before the clock starts. Prints the wall
time of each, the speed-up of 2 workers over 1 (and over serial), whether the accuracies are the
serial ones to the last bit, and the machine's load (``/proc/loadavg``) before and after, since a
shared machine's other work takes cores away.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np


def load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def run(executor, indices, config) -> tuple[float, dict]:
    from natsbench_gym.live.benchmark import LiveBenchmark

    bench = LiveBenchmark("topology", config, cache_path=False, executor=executor, reference_size=0)
    bench.data("cifar10"), bench.costs("cifar10")  # loading the digits (~2 s) is the same serial cost for every run
    start = time.perf_counter()
    out = bench.query_many(indices, "cifar10")
    seconds = time.perf_counter() - start
    assert bench.trainings_run == len(indices), bench.trainings_run
    return seconds, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=16, help="architectures trained per run")
    p.add_argument("--executors", default="process,ray", help="comma-separated: process, ray")
    p.add_argument("--seed", type=int, default=0, help="seed of the architectures drawn")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from natsbench_gym.live import LiveConfig
    from natsbench_gym.live.executor import ProcessExecutor, RayExecutor
    from natsbench_gym.spaces import make_space
    from natsbench_gym.types import Metric

    config = LiveConfig()
    space = make_space("topology")
    codes = space.codes(space.sample_many(np.random.default_rng(args.seed), args.archs, unique=True))
    from natsbench_gym.live.benchmark import LiveBenchmark

    indices = LiveBenchmark("topology", config, cache_path=False, reference_size=0)._code_to_index[codes]
    accuracies = (Metric.TRAIN_ACCURACY, Metric.VALID_ACCURACY, Metric.TEST_ACCURACY)

    print(f"{args.archs} live topology architectures (seed {args.seed}), LiveConfig() defaults; "
          f"{os.cpu_count()} CPUs; load before: {load()}")
    rows = []
    serial_s, serial = run(None, indices, config)
    rows.append(("in-process (serial)", 1, serial_s, True))
    print(f"  in-process serial: {serial_s:.1f} s  (load {load()})", flush=True)
    makers = {"process": lambda n: ProcessExecutor(n), "ray": lambda n: RayExecutor(n, init_kwargs={"log_to_driver": False})}
    for name in [n for n in args.executors.split(",") if n]:
        times = {}
        for workers in (1, 2):
            executor = makers[name](workers)
            executor.start()
            seconds, out = run(executor, indices, config)
            executor.shutdown()
            same = all(np.array_equal(out[m], serial[m]) for m in accuracies)
            times[workers] = seconds
            rows.append((name, workers, seconds, same))
            print(f"  {name} x{workers}: {seconds:.1f} s, same accuracies as serial: {same}  (load {load()})", flush=True)
        print(f"  {name}: speed-up 2 vs 1 worker {times[1] / times[2]:.2f}x, 2 workers vs serial {serial_s / times[2]:.2f}x")
    print(f"load after: {load()}")
    print("\n| executor | workers | seconds | speed-up vs 1 worker | same results as serial |\n|---|---|---|---|---|")
    one = {name: s for name, w, s, _ in rows if w == 1}
    for name, workers, seconds, same in rows:
        print(f"| {name} | {workers} | {seconds:.1f} | {one[name] / seconds:.2f}x | {'yes' if same else 'NO'} |")
    return 0 if all(same for *_, same in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

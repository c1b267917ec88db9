"""How fast is the table backend? Load time, memory, and query latency against ``nats_bench``.

Usage: ``python benchmarks/bench_table.py [--data DIR] [--repeat 7] [--number 20000]``

``--data`` (default ``$NATSBENCH_DATA``) is a table directory; its ``official/`` folder, when present,
holds the official NATS-Bench files the same query is timed on. The cold load parses the CSV files
into a fresh temporary directory (the table's files are linked there, so neither the cache beside
the data nor the user's cache is touched); the cached load reads the ``.npz`` written by the cold one.
Prints figures only; the headline is how many times faster one table query is than ``nats_bench``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

ARCH = 11  # an architecture whose official record is in the shared official files


def rss_mib() -> float:
    """Resident set size of this process now (``/proc``), else its peak (``getrusage``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Median over ``repeat`` runs of the mean time of one call, in microseconds."""
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def linked_copy(data: Path, short: str, into: Path) -> Path:
    """Link ``<short>*.csv.gz`` of ``data`` into ``into`` so that a load there starts cold."""
    into.mkdir(parents=True, exist_ok=True)
    for f in sorted(data.glob(f"{short}*.csv.gz")):
        (into / f.name).symlink_to(f.resolve())
    return into


def bench_space(kind: str, data: Path, tmp: Path, args: argparse.Namespace) -> tuple[object, float]:
    """Print load, memory and query figures for one space; return the benchmark and one query's time (us)."""
    from natsbench_gym import Metric, TableBenchmark
    from natsbench_gym.spaces import make_space

    short = make_space(kind).kind.short
    table_dir = linked_copy(data, short, tmp / short)
    rss_before = rss_mib()
    _, cold = timed(lambda: TableBenchmark(table_dir, kind, cache_dir=tmp / "cache"))
    bench, cached = timed(lambda: TableBenchmark(table_dir, kind, cache_dir=tmp / "cache"))
    cache_files = list((tmp / "cache").glob("*.npz"))  # the cache folder only: never beside the data
    cache_mib = sum(f.stat().st_size for f in cache_files) / 2**20
    budget = bench.budgets[-1]
    print(f"\n== {kind} space ({bench.space.size:,} architectures) ==")
    print(f"load, cold (parse CSV, write cache): {cold * 1e3:10.1f} ms")
    print(f"load, cached (.npz, {cache_mib:.1f} MiB):     {cached * 1e3:10.1f} ms")
    print(f"RSS after loading: {rss_mib():.0f} MiB (+{rss_mib() - rss_before:.0f} MiB, parsing garbage included)")

    one = per_call_us(lambda: bench.query(ARCH, "cifar10", budget), args.number, args.repeat)
    metrics = [m.value for m in bench.available_metrics("cifar10", budget)]
    print(f"query(arch {ARCH}, cifar10, {budget} epochs), all {len(metrics)} metrics: {one:8.2f} us")
    single = per_call_us(
        lambda: bench.query(ARCH, "cifar10", budget, metrics=[Metric.VALID_ACCURACY]), args.number, args.repeat
    )
    print(f"query(..., metrics=[valid_accuracy]):               {single:8.2f} us")
    arch_str = bench.arch_str(ARCH)
    by_str = per_call_us(lambda: bench.query(arch_str, "cifar10", budget), args.number // 4 or 1, args.repeat)
    print(f"query by architecture string:                        {by_str:8.2f} us")
    whole = per_call_us(lambda: bench.query_many(None, "cifar10", budget), max(args.number // 200, 1), args.repeat)
    print(f"query_many(None) -- the whole space, all metrics:    {whole / 1e3:8.3f} ms "
          f"({whole * 1e3 / bench.space.size:.1f} ns per architecture)")
    return bench, one


_FRESH_PROCESS = """
import sys
sys.path.insert(0, {bench_dir!r})
from bench_table import rss_mib
before = rss_mib()
import natsbench_gym
imported = rss_mib()
benches = [natsbench_gym.TableBenchmark({tmp!r} + "/" + s, k, cache_dir={tmp!r} + "/cache") for s, k in (("tss", "topology"), ("sss", "size"))]
print(f"{{before:.0f}} {{imported:.0f}} {{rss_mib():.0f}}")
"""


def fresh_process_rss(tmp: Path) -> str:
    """RSS of a new process that imports natsbench_gym and loads both tables from the cache."""
    code = _FRESH_PROCESS.format(bench_dir=str(Path(__file__).resolve().parent), tmp=str(tmp))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return f"(fresh process failed: {out.stderr.strip().splitlines()[-1:]})"
    start, imported, loaded = (float(x) for x in out.stdout.split())
    return (f"fresh process: {start:.0f} MiB at start, {imported:.0f} MiB after import, "
            f"{loaded:.0f} MiB with both tables loaded from cache (+{loaded - imported:.0f} MiB)")


def bench_nats_bench(official: Path, table_us: float, args: argparse.Namespace) -> None:
    """Time the same query through the ``nats_bench`` package and through our official backend."""
    import nats_bench

    from natsbench_gym import NATSBenchAPIBenchmark

    tss = official / "NATS-tss-v1_0-3ffb9-simple"
    api, create = timed(lambda: nats_bench.create(str(tss), "tss", fast_mode=True, verbose=False))

    def same_query() -> None:
        # everything TableBenchmark.query returns for CIFAR-10: validation accuracy and training time
        # come from the cifar10-valid run, test/train accuracy from cifar10, costs from get_cost_info
        api.get_more_info(ARCH, "cifar10-valid", hp="200", is_random=False)
        api.get_more_info(ARCH, "cifar10", hp="200", is_random=False)
        api.get_cost_info(ARCH, "cifar10", hp="200")

    def minimal_query() -> None:
        api.get_more_info(ARCH, "cifar10-valid", hp="200", is_random=False)
        api.get_cost_info(ARCH, "cifar10", hp="200")

    _, first = timed(same_query)  # fast_mode loads the record lazily, on this first call
    number = max(args.number // 1000, 5)
    same = per_call_us(same_query, number, args.repeat)
    minimal = per_call_us(minimal_query, number, args.repeat)
    wrapped = NATSBenchAPIBenchmark(official, "topology")
    ours = per_call_us(lambda: wrapped.query(ARCH, "cifar10", 200), number, args.repeat)
    print("\n== nats_bench on the official files (topology, arch 11, 200 epochs) ==")
    print(f"nats_bench.create(fast_mode=True):                  {create * 1e3:10.1f} ms")
    print(f"first query (loads the record lazily):              {first * 1e3:10.1f} ms")
    print(f"same query: 2x get_more_info + get_cost_info:       {same:10.1f} us")
    print(f"minimal: get_more_info + get_cost_info:             {minimal:10.1f} us")
    print(f"NATSBenchAPIBenchmark.query (all metrics):          {ours:10.1f} us")
    print(f"\nHEADLINE: one table query is {same / table_us:,.0f}x faster than the same query through "
          f"nats_bench ({table_us:.2f} us vs {same:.0f} us; goal >= 1000x); "
          f"{minimal / table_us:,.0f}x against its minimal 2-call form")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("NATSBENCH_DATA"),
                        help="table directory (default: $NATSBENCH_DATA)")
    parser.add_argument("--repeat", type=int, default=7, help="timing repeats; the median is reported")
    parser.add_argument("--number", type=int, default=20000, help="calls per repeat of a table query")
    args = parser.parse_args(argv)
    if not args.data:
        print("no data: set NATSBENCH_DATA (e.g. NATSBENCH_DATA=../shared/natsbench) or pass --data", file=sys.stderr)
        return 2
    data = Path(args.data)
    if not (data / "tss.csv.gz").is_file():
        print(f"{str(data)!r} holds no tss.csv.gz", file=sys.stderr)
        return 2

    rss_start = rss_mib()
    import natsbench_gym  # noqa: F401 - timed on its own: importing must stay cheap

    print(f"python {sys.version.split()[0]}, data {data}")
    print(f"RSS: {rss_start:.0f} MiB at start, {rss_mib():.0f} MiB after importing natsbench_gym")
    loaded = []
    with tempfile.TemporaryDirectory(prefix="bench_table-") as tmp:
        topology, topology_us = bench_space("topology", data, Path(tmp), args)
        loaded.append(topology)
        if (data / "sss.csv.gz").is_file():
            loaded.append(bench_space("size", data, Path(tmp), args)[0])
            print(f"\nRSS, {fresh_process_rss(Path(tmp))}")
    print(f"RSS, this process with both spaces loaded: {rss_mib():.0f} MiB "
          f"(peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, cold parses included)")
    official = data / "official"
    if (official / "NATS-tss-v1_0-3ffb9-simple").is_dir():
        bench_nats_bench(official, topology_us, args)
    else:
        print(f"\n(no official files under {official}; nats_bench comparison skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

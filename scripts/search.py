"""Main job: a small architecture search with a fixed metric on the benchmark that is found.

Usage: ``python scripts/search.py [--space topology] [--dataset cifar10] [--metric accuracy] [--n 100] [--seed 0]``

Samples ``--n`` architectures uniformly at random (seeded), scores them with the fixed metric on the
validation accuracy of the search budget, and prints the best ones with their test accuracy.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

import natsbench_gym
from natsbench_gym.rewards import ScoringContext, make_fixed_metric
from natsbench_gym.types import Metric


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="topology", choices=["topology", "size"])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--metric", default="accuracy", help="fixed metric: accuracy, latency, params, flops, weighted, ...")
    parser.add_argument("--budget", type=int, default=None, help="training epochs (topology: 12/200; size: 90)")
    parser.add_argument("--n", type=int, default=100, help="architectures to evaluate")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="benchmark path (default: NATSBENCH_DATA, then $TORCH_HOME)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    bench = natsbench_gym.load_benchmark(args.space, args.data)
    ctx = ScoringContext.create(bench, args.dataset, args.budget)
    metric = make_fixed_metric(args.metric)
    rng = np.random.default_rng(args.seed)
    indices = bench.indices_of_encodings(bench.space.sample_many(rng, args.n, unique=True))
    scores = metric.score_many(ctx.query(indices, metric.required_metrics(ctx)), ctx)
    order = np.argsort(-scores, kind="stable")[: args.top]
    final = max(bench.budgets)  # report after the longest schedule, as NATS-Bench does
    report = bench.query_many(indices[order], ctx.dataset, final, device=ctx.device)
    print(f"benchmark: {bench.describe()}  dataset: {ctx.dataset.value}  search budget: {ctx.budget} epochs; "
          f"reported metrics after {final} epochs")
    print(f"best {len(order)} of {args.n} random architectures by {args.metric}:")
    for rank, j in enumerate(order):
        values = "  ".join(
            f"{m.value}={report[m][rank]:.4g}" for m in (Metric.TEST_ACCURACY, Metric.VALID_ACCURACY, Metric.FLOPS, Metric.PARAMS) if m in report
        )
        print(f"{rank + 1:2d}. score={scores[j]:.4f}  #{indices[j]:<6d} {bench.arch_str(int(indices[j]))}  {values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

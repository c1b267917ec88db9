"""How fast RankNet is: fitting on 100 comparisons, and scoring the whole topology space.

Prints the median (and min/max) of several runs of

* ``fit``: :meth:`RankNetRewardModel.fit` on 100 judged pairs (synthetic ``weighted`` user) among
  100 random architectures -- the largest fit of the Table I reproduction -- with the default
  metric-family prior (which explains these judgments, so no network is trained) and without it;
* ``score space``: :meth:`RankNetRewardModel.score_many` on all 15,625 topology architectures (the
  metrics already queried, as an env that caches them would), and the same including the query;
* ``engines``: the interactive loop's model (5-member bootstrap ensemble, metric-family prior with
  the target structures) on 10, 20 and 40 random judgments of a user outside the family
  (``pixel3_threshold``: latency on a phone, the env reads a GPU's), so that the network is trained, with each training engine
  (``RankNetTrainer(engine=...)``: closed-form numpy gradients, the default, or torch autograd):
  fit time, epochs, and how often the two engines' models order 3,000 random pairs alike.

Uses ``$NATSBENCH_DATA`` (or ``--data``); with no data it falls back to made-up metrics of the same
shape, which time the same computation.

Example:
    NATSBENCH_DATA=../shared/natsbench python benchmarks/bench_ranknet.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _line(label: str, seconds: list[float], unit: str = "ms") -> str:
    scale = 1000.0 if unit == "ms" else 1.0
    return f"{label:<42s} median {statistics.median(seconds) * scale:8.1f} {unit}   (min {min(seconds) * scale:.1f}, max {max(seconds) * scale:.1f}, n={len(seconds)})"


def _benchmark(data: str | None):
    import natsbench_gym

    data = data or os.environ.get("NATSBENCH_DATA")
    if data:
        return natsbench_gym.load_benchmark("topology", path=data), f"NATS-Bench data at {data}"
    # Without data the resolution chain would end in live training; time the same computation on
    # made-up metrics instead.
    return _FakeTopology(), "made-up metrics (no NATSBENCH_DATA)"


class _FakeTopology:  # built lazily so that importing this file needs nothing
    def __new__(cls):
        import natsbench_gym
        from natsbench_gym.spaces import make_space
        from natsbench_gym.types import Metric

        class Fake(natsbench_gym.Benchmark):
            name = "fake"

            def __init__(self) -> None:
                super().__init__(make_space("topology"))
                rng = np.random.default_rng(0)
                n = self.space.size
                self.values = {Metric.TEST_ACCURACY: rng.uniform(10, 95, n), Metric.VALID_ACCURACY: rng.uniform(10, 92, n),
                               Metric.FLOPS: rng.uniform(1, 200, n), Metric.PARAMS: rng.uniform(0.1, 1.5, n),
                               Metric.LATENCY: rng.uniform(1, 20, n)}

            @property
            def datasets(self):
                return tuple(natsbench_gym.Dataset)

            @property
            def latency_devices(self):
                return ("fake",)

            def available_metrics(self, dataset, budget=None):
                return frozenset(self.values)

            def _query_indices(self, indices, dataset, budget, metrics, device):
                return {m: self.values[m][indices] for m in metrics}

        return Fake()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Time RankNet fitting and whole-space scoring.")
    p.add_argument("--data", default=None, help="NATS-Bench data (default: $NATSBENCH_DATA)")
    p.add_argument("--dataset", default="cifar100")
    p.add_argument("--comparisons", type=int, default=100)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (tiny networks: 1 is fastest)")
    p.add_argument("--engines", default="numpy,torch", help="training engines to compare on the loop's model ('' skips)")
    p.add_argument("--judgments", default="10,20,40", help="judgment counts of the engine comparison")
    p.add_argument("--user", default="pixel3_threshold", help="the engine comparison's synthetic user (one outside the family trains the network)")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    import torch

    from natsbench_gym.rewards import ScoringContext
    from reward_models import PreferenceDataset, RandomPairSelector, SyntheticUser
    from reward_models.ranknet import RankNetRewardModel

    import_s = time.perf_counter() - t0
    torch.set_num_threads(args.threads)
    bench, source = _benchmark(args.data)
    ctx = ScoringContext.create(bench, args.dataset, 200 if 200 in bench.budgets else None, accuracy_metric="test_accuracy")
    rng = np.random.default_rng(0)
    population = rng.choice(bench.space.size, size=100, replace=False)
    pairs = RandomPairSelector().select(population, args.comparisons, rng)
    data = PreferenceDataset(SyntheticUser("weighted", ctx).judge_many(pairs, rng, selector=pairs.strategy))

    print(f"RankNet benchmark: {source}, {args.dataset}, topology space ({bench.space.size} architectures)")
    print(f"torch {torch.__version__}, {args.threads} thread(s), ensemble={args.ensemble}, python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
    print(f"{'import torch + reward_models':<42s} {import_s * 1000:8.1f} ms (once per process)")
    # The default model (metric-family prior: the weighted user is inside the family, so mode
    # "prior" and no network is trained) and the plain network (prior=None; a user outside the
    # family gets about this fit time plus the prior's).
    variants = (("default (metric-family prior)", {}), ("plain network (prior=None)", {"prior": None}))
    for label, overrides in variants:
        model = RankNetRewardModel(seed=0, ensemble=args.ensemble, **overrides)
        fit_s = _timed(lambda model=model: model.fit(data, ctx), args.repeats)
        metrics = ctx.query(None, model.required_metrics(ctx))
        score_s = _timed(lambda model=model, metrics=metrics: model.score_many(metrics, ctx), max(args.repeats, 20))
        query_score_s = _timed(lambda model=model: model.score_many(ctx.query(None, model.required_metrics(ctx)), ctx), max(args.repeats, 20))
        print(f"-- {label}: mode {model.mode!r}")
        print(_line(f"fit on {args.comparisons} comparisons", fit_s) + f"   [{model.metadata['epochs']} epochs]")
        print(_line(f"score space ({bench.space.size} archs)", score_s))
        print(_line("query + score space", query_score_s))
    engines = [e for e in args.engines.split(",") if e]
    if engines:
        _engines(ctx, engines, [int(n) for n in args.judgments.split(",")], args.repeats, args.user)
    return 0


def _engines(ctx, engines: list[str], judgments: list[int], repeats: int, user_name: str) -> None:
    """Each training engine on the interactive loop's model, fitted to a user outside the family."""
    from agents.personalization import INTERACTIVE_TARGET_PRIOR
    from reward_models import PreferenceDataset, RandomPairSelector
    from reward_models.human_preference import make_user
    from reward_models.ranknet import RankNetRewardModel

    user = make_user(user_name, ctx, seed=0)
    n = ctx.benchmark.space.size
    rng = np.random.default_rng(1)
    held = rng.integers(0, n, size=(3000, 2))
    print(f"-- the interactive loop's model (ensemble 5, bootstrap, target prior), user {user_name}")
    for nj in judgments:
        population = rng.choice(n, size=100, replace=False)
        pairs = RandomPairSelector().select(population, nj, rng)
        data = PreferenceDataset(user.judge_many(pairs, rng, selector=pairs.strategy))
        scores = {}
        for engine in engines:
            model = RankNetRewardModel(seed=0, ensemble=5, bootstrap=True, target_prior=INTERACTIVE_TARGET_PRIOR, engine=engine)
            fit_s = _timed(lambda model=model, data=data: model.fit(data, ctx), repeats)
            scores[engine] = model.score_many(ctx.query(None, model.required_metrics(ctx)), ctx)
            print(_line(f"{nj} judgments, engine {engine}", fit_s) + f"   [{model.mode}, {model.metadata['epochs']} epochs]")
        if len(engines) > 1:
            s0, s1 = scores[engines[0]], scores[engines[1]]
            d0 = np.sign(s0[held[:, 0]] - s0[held[:, 1]])
            d1 = np.sign(s1[held[:, 0]] - s1[held[:, 1]])
            print(f"{'':<42s} {engines[0]} and {engines[1]} order {np.mean(d0 == d1):.1%} of 3,000 random pairs alike")


if __name__ == "__main__":
    sys.exit(main())

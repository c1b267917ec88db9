"""When is RankNet's metric-family prior alone the model? The two acceptance rules, side by side.

For each synthetic user (optionally careless: ``NAME@P`` reverses each answer with probability P),
number of judgments N and seed: N random judgments among 100 random architectures, the interactive
loop's default model (RankNet, metric-family prior with the target structures at 0.25, 5-member
bootstrap ensemble) fitted with ``acceptance="agreement"`` (the 90 % rule) and with
``acceptance="likelihood"`` (cross-validated), and the held-out pairwise accuracy of each over 3,000
random pairs of the whole topology space (the share of pairs with different true utilities that the
model orders as the user's noise-free utility does). Prints one line per user and N: the two means,
and for each seed whether the fit trained the network (N) or kept the prior (P); the longest fit.

Example (the table of docs/personalization.md, "The learner"):
    NATSBENCH_DATA=../shared/natsbench python benchmarks/bench_acceptance.py \\
        --users weighted@0.1,weighted@0.2,accuracy_constraint@0.1,flop_constraint@0.15,random_weighted@0.1,accuracy@0.15,latency_knee,cobb_douglas,worst_of,latency_band,two_devices,near_best_then_cheapest,latency_class_then_accuracy,pixel3_threshold,sweet_spot,mid_size
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

RULES = ("agreement", "likelihood")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", required=True, help="comma-separated user names, NAME@P for a user who reverses answers with probability P")
    parser.add_argument("--judgments", default="20,40")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--pool", type=int, default=100, help="random architectures the judged pairs are drawn among")
    parser.add_argument("--held-out", type=int, default=3000, help="random held-out pairs of the whole space")
    args = parser.parse_args(argv)
    if not os.environ.get("NATSBENCH_DATA"):
        print("this benchmark needs the NATS-Bench table: set NATSBENCH_DATA (see README, 'Get the NATS-Bench data')", file=sys.stderr)
        return 2
    import gymnasium as gym
    from tqdm import tqdm

    from natsbench_gym import ENV_IDS
    from reward_models import RandomPairSelector, RankNetRewardModel
    from reward_models.human_preference import NoiseModel, make_user

    ctx = gym.make(ENV_IDS["topology"], dataset=args.dataset).unwrapped.context
    n = ctx.benchmark.space.size
    specs = [s.strip() for s in args.users.split(",") if s.strip()]
    judgments = [int(x) for x in args.judgments.split(",")]
    with tqdm(total=len(specs) * len(judgments) * args.seeds, desc="fits", unit="seed") as bar:
        for spec in specs:
            name, _, flip = spec.partition("@")
            user = make_user(name, ctx, seed=0, noise=NoiseModel(flip_probability=float(flip)) if flip else None)
            truth = make_user(name, ctx, seed=0).utilities(np.arange(n))
            for nj in judgments:
                acc = {r: [] for r in RULES}
                modes = {r: "" for r in RULES}
                longest = 0.0
                for seed in range(args.seeds):
                    rng = np.random.default_rng(seed)
                    judged = list(user(RandomPairSelector().select(rng.choice(n, args.pool, replace=False), nj, rng), rng=rng))
                    held = rng.integers(0, n, (args.held_out, 2))
                    a, b = held[:, 0], held[:, 1]
                    decided = truth[a] != truth[b]
                    for rule in RULES:
                        start = time.perf_counter()
                        model = RankNetRewardModel(seed=seed, acceptance=rule, ensemble=5, bootstrap=True, target_prior=0.25).fit(judged, ctx)
                        if rule == "likelihood":
                            longest = max(longest, time.perf_counter() - start)
                        s = model.score_many(ctx.query(np.arange(n), model.required_metrics(ctx)), ctx)
                        acc[rule].append(float(np.mean((s[a] > s[b])[decided] == (truth[a] > truth[b])[decided])))
                        modes[rule] += "P" if model.mode == "prior" else "N"
                    bar.update()
                tqdm.write(f"{spec:30s} N={nj:2d} agreement {np.mean(acc['agreement']):.3f} {modes['agreement']}  "
                             f"likelihood {np.mean(acc['likelihood']):.3f} {modes['likelihood']}  longest likelihood fit {longest:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train a stable-baselines3 agent (PPO, A2C, MaskablePPO) on a NATS-Bench environment.

Prints the best architectures found during training with their test accuracy (after the longest
budget the benchmark has, 200 epochs for the topology space, as NATS-Bench reports; validation accuracy
where there is no test accuracy, as in the size-space table), and the mean of the same accuracy over
architectures sampled from the final policy and over uniformly random ones.

Example (``python scripts/train_agent.py`` runs the same)::

    NATSBENCH_DATA=../shared/natsbench natsbench-gym train \\
        --env NATSBench-Topology-v0 --algo ppo --reward accuracy --dataset cifar10 \\
        --timesteps 20000 --tensorboard runs/ --seed 0

``--save FILE`` keeps the trained policy (stable-baselines3's zip); ``--load FILE`` evaluates a
saved policy without training again. A progress bar shows the steps done, their rate and the time
left (``--no-progress-bar`` turns it off).

Constraints (``--forbid-ops``, ``--allowed-widths``, ``--max-params``, ``--max-flops``,
``--max-latency``) are enforced through action masks, so they need ``--algo maskable_ppo``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import warnings

import gymnasium as gym
import numpy as np

import natsbench_gym
from natsbench_gym.errors import NATSBenchGymError
from natsbench_gym.registration import ENV_IDS
from natsbench_gym.rewards import FIXED_METRICS
from natsbench_gym.types import Metric

logger = logging.getLogger("train_agent")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of environment steps, got {value}")
    return value


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train an SB3 agent on a NATS-Bench environment and print the best architectures found."
    )
    parser.add_argument("--env", default=ENV_IDS["topology"], choices=tuple(ENV_IDS.values()))
    parser.add_argument("--algo", default="ppo", choices=("ppo", "a2c", "maskable_ppo"))
    parser.add_argument("--reward", default="accuracy", help=f"fixed metric: {', '.join(FIXED_METRICS)}")
    parser.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or ImageNet16-120")
    parser.add_argument("--budget", type=int, default=None, help="training epochs of the search metrics (topology: 12 or 200)")
    parser.add_argument("--timesteps", type=_positive_int, default=20_000, help="environment steps to train for (> 0)")
    parser.add_argument("--save", default=None, metavar="FILE", help="save the trained policy (SB3's .zip) to FILE")
    parser.add_argument("--load", default=None, metavar="FILE",
                        help="evaluate the policy saved in FILE (by --save, same --algo and --env) instead of training")
    parser.add_argument("--no-progress-bar", dest="progress_bar", action="store_false", help="no progress bar while training")
    parser.add_argument("--tensorboard", default=None, metavar="DIR", help="TensorBoard log directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="benchmark data directory (default: $NATSBENCH_DATA, ...)")
    parser.add_argument("--noise", action="store_true", help="score one random seed's accuracy (NATS-Bench's is_random)")
    parser.add_argument("--device", default=None, help="latency device (e.g. 1080ti_1, pixel3)")
    parser.add_argument("--forbid-ops", nargs="+", default=None, metavar="OP", help="topology: ops no edge may take")
    parser.add_argument("--allowed-widths", nargs="+", type=int, default=None, metavar="W", help="size: widths allowed")
    parser.add_argument("--max-params", type=float, default=None, help="cap on parameters (millions)")
    parser.add_argument("--max-flops", type=float, default=None, help="cap on FLOPs (millions)")
    parser.add_argument("--max-latency", type=float, default=None, help="cap on latency (ms) on --device")
    parser.add_argument("--top", type=int, default=5, help="how many of the best architectures to print")
    parser.add_argument("--samples", type=int, default=100, help="architectures to sample from the final policy")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these tiny MLPs)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def env_kwargs_from_args(args: argparse.Namespace) -> dict:
    """Keyword arguments of ``gym.make`` from the command line (raises ValueError on misuse)."""
    kwargs = {
        "dataset": args.dataset,
        "reward_model": args.reward,
        "benchmark": args.data,
        "budget": args.budget,
        "noise": args.noise,
        "device": args.device,
        "max_params": args.max_params,
        "max_flops": args.max_flops,
        "max_latency": args.max_latency,
    }
    topology = args.env == ENV_IDS["topology"]
    if args.forbid_ops is not None:
        if not topology:
            raise ValueError("--forbid-ops applies to NATSBench-Topology-v0; use --allowed-widths for the size space")
        kwargs["forbidden_ops"] = tuple(args.forbid_ops)
    if args.allowed_widths is not None:
        if topology:
            raise ValueError("--allowed-widths applies to NATSBench-Size-v0; use --forbid-ops for the topology space")
        kwargs["allowed_widths"] = tuple(args.allowed_widths)
    return kwargs


def report_accuracy(benchmark: natsbench_gym.Benchmark, dataset: str, indices: list[int]) -> tuple[np.ndarray, str]:
    """Test accuracy of ``indices`` at the longest budget that has it, and its label (``"test@200"``).

    A backend without test accuracy (the size-space table) reports validation accuracy instead.
    """
    for metric, name in ((Metric.TEST_ACCURACY, "test"), (Metric.VALID_ACCURACY, "valid")):
        for budget in sorted(benchmark.budgets, reverse=True):
            if metric in benchmark.available_metrics(dataset, budget):
                values = benchmark.query_many(np.array(indices, dtype=np.int64), dataset, budget, [metric])
                return values[metric], f"{name}@{budget}"
    return np.full(len(indices), math.nan), "acc (n/a)"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    import torch

    from agents.sb3 import NASCallback, make_sb3_agent
    from agents.sb3.factory import ALGORITHMS

    torch.set_num_threads(args.threads)
    if args.progress_bar:  # SB3 draws its bar with tqdm.rich, which warns that it is experimental
        from tqdm import TqdmExperimentalWarning

        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
    try:
        kwargs = env_kwargs_from_args(args)
        env = gym.make(args.env, **kwargs)
    except (NATSBenchGymError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = env.unwrapped
    if base.constraints and args.algo != "maskable_ppo":
        print("error: constraints are enforced through action masks; use --algo maskable_ppo", file=sys.stderr)
        return 2

    run_name = f"{args.algo}_{base.space.kind.value}_{args.dataset}_{args.reward}_s{args.seed}"
    bench = base.benchmark
    if args.load:
        try:
            model = ALGORITHMS[args.algo].load(args.load, env=env, device="cpu")
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: cannot load an --algo {args.algo} policy for {args.env} from {args.load!r}: {exc}", file=sys.stderr)
            return 2
        print(f"loaded the {args.algo} policy from {args.load}")
        return _report_policy(args, model, kwargs, bench, base)

    model = make_sb3_agent(args.algo, env, seed=args.seed, tensorboard_log=args.tensorboard, verbose=max(0, args.verbose - 1))
    callback = NASCallback(verbose=args.verbose)
    model.learn(args.timesteps, callback=callback, tb_log_name=run_name, progress_bar=args.progress_bar)
    if args.save:
        model.save(args.save)
        print(f"saved the policy to {args.save if args.save.endswith('.zip') else args.save + '.zip'} "
              f"(evaluate it again with --load)")

    top = callback.top(args.top)
    test, label = report_accuracy(bench, base.dataset.value, [ev.index for ev in top])
    print(f"{args.algo} on {args.env} ({base.dataset.value}, reward {args.reward}, {base.budget} epochs): "
          f"{len(callback.history)} architectures evaluated, {base.total_train_time:,.0f} s simulated training")
    print(f"{'rank':>4} {'reward':>8} {'valid':>7} {label:>9} {'params':>7} {'MFLOPs':>8}  arch")
    for rank, (ev, acc) in enumerate(zip(top, test, strict=True), start=1):
        valid = ev.metrics.get("valid_accuracy", math.nan)
        print(f"{rank:>4} {ev.reward:>8.4f} {valid:>7.2f} {acc:>9.2f} {ev.metrics.get('params', math.nan):>7.3f} "
              f"{ev.metrics.get('flops', math.nan):>8.1f}  {ev.arch}")

    _report_policy(args, model, kwargs, bench, base)
    if args.tensorboard:
        print(f"TensorBoard logs: {args.tensorboard}/{run_name}_*")
    return 0


def _report_policy(args, model, kwargs, bench, base) -> int:
    """Print the mean accuracy of architectures sampled from ``model``'s policy beside uniform random ones."""
    from agents.sb3 import sample_architectures

    if args.samples > 0:
        eval_env = gym.make(args.env, **{**kwargs, "benchmark": bench})
        eval_env.reset(seed=args.seed)
        infos = sample_architectures(model, eval_env, args.samples, np.random.default_rng(args.seed))
        sampled, label = report_accuracy(bench, base.dataset.value, [i["index"] for i in infos])
        rng = np.random.default_rng(args.seed + 1)
        feasible = np.flatnonzero(base.feasible)
        random_codes = rng.choice(feasible, size=args.samples)
        random_idx = bench.indices_of_encodings(base.space.all_encodings()[random_codes])
        uniform, _ = report_accuracy(bench, base.dataset.value, random_idx.tolist())
        print(f"final policy: mean {label} {np.nanmean(sampled):.2f} over {args.samples} sampled architectures "
              f"({len({i['index'] for i in infos})} distinct); uniform random: {np.nanmean(uniform):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reproduce the paper's Table I and Fig. 3: RankNet top-10 precision vs number of judged pairs.

Protocol (paper Sec. IV-B): per dataset and repetition, draw 100 training and 100 test architectures
of the topology space at random; a synthetic user (one of the six metrics of Table I, noise-free,
test accuracy after 200 epochs, latency on the default device) judges k pairs of training
architectures, k in {1, 2, 3, 4, 5, 10, 25, 50, 100}; RankNet is fitted on them and scored by its
top-10 precision on the test architectures (:func:`reward_models.evaluation.top_k_precision`). Pairs
come from the paper's random selection (Alg. 2) or from active selection (``active`` =
``active:disagreement``: the pairs on which the model's members -- hypotheses drawn from RankNet's
metric-family posterior, or the members of a RankNet ensemble (``--ensemble``) -- disagree most,
among the better half of the training architectures; ``active:uncertainty``: the pairs whose mean
predicted preference is closest to a coin flip); both grow one sequence of judgments, so the
k = 10 set extends the k = 5 set. An active selector asks for ``--active-batch`` pairs (default 1)
before the model is refitted, as an interface would; 0 chooses all pairs up to the next k with the
model fitted at the previous k. RankNet uses its defaults (:class:`reward_models.ranknet.RankNetConfig`,
with the metric-family prior) apart from ``--ensemble`` and ``--prior``, the same for every metric
and dataset.

Writes to ``--out``: ``runs.csv`` (one row per dataset, metric, selector, k and repetition),
``summary.csv`` (mean, std and count), ``table1.md`` (ours beside the paper's values) and
``fig3.png`` (CIFAR-100, like the paper's Fig. 3).

Example:
    NATSBENCH_DATA=../shared/natsbench python scripts/reproduce_table1.py --out results/table1
"""

from __future__ import annotations

import argparse
import csv
import logging
import multiprocessing as mp
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reward_models.human_preference import EXTRA_USERS, NoiseModel, make_synthetic_preference

logger = logging.getLogger("reproduce_table1")

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
KS = (1, 2, 3, 4, 5, 10, 25, 50, 100)
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "ImageNet16-120": "ImageNet16-120"}
METRIC_LABELS = {
    "accuracy_constraint": "accuracy constraint",
    "accuracy": "accuracy",
    "flop_constraint": "flops constraint",
    "latency": "latency",
    "params": "params",
    "weighted": "weighted",
}

#: The paper's Table I (top-10 precision at k = 1, 2, 3, 4, 5, 10, 25, 50, 100). The extracted text
#: misplaces two labels per dataset; per dataset the rows are, in order: accuracy constraint,
#: accuracy, flops constraint, latency, params, weighted.
PAPER_TABLE1: dict[str, dict[str, tuple[float, ...]]] = {
    "cifar10": {
        "accuracy_constraint": (0.216, 0.265, 0.284, 0.269, 0.206, 0.382, 0.285, 0.394, 0.369),
        "accuracy": (0.105, 0.617, 0.570, 0.471, 0.705, 0.746, 0.692, 0.622, 0.833),
        "flop_constraint": (0.282, 0.215, 0.288, 0.168, 0.234, 0.241, 0.232, 0.294, 0.419),
        "latency": (0.713, 0.696, 0.512, 0.770, 0.703, 0.753, 0.659, 0.671, 0.665),
        "params": (0.642, 0.703, 0.663, 0.740, 0.810, 0.735, 0.766, 0.898, 0.858),
        "weighted": (0.321, 0.312, 0.428, 0.418, 0.308, 0.682, 0.577, 0.539, 0.565),
    },
    "cifar100": {
        "accuracy_constraint": (0.275, 0.239, 0.234, 0.250, 0.226, 0.212, 0.235, 0.354, 0.265),
        "accuracy": (0.417, 0.244, 0.623, 0.640, 0.594, 0.783, 0.683, 0.727, 0.826),
        "flop_constraint": (0.296, 0.206, 0.236, 0.199, 0.236, 0.236, 0.194, 0.297, 0.265),
        "latency": (0.539, 0.527, 0.494, 0.611, 0.557, 0.569, 0.572, 0.600, 0.566),
        "params": (0.349, 0.494, 0.483, 0.527, 0.474, 0.546, 0.677, 0.679, 0.770),
        "weighted": (0.227, 0.369, 0.434, 0.324, 0.400, 0.610, 0.509, 0.630, 0.527),
    },
    "ImageNet16-120": {
        "accuracy_constraint": (0.257, 0.257, 0.159, 0.162, 0.184, 0.144, 0.240, 0.265, 0.317),
        "accuracy": (0.242, 0.696, 0.637, 0.679, 0.698, 0.527, 0.803, 0.790, 0.832),
        "flop_constraint": (0.217, 0.213, 0.226, 0.227, 0.119, 0.232, 0.275, 0.337, 0.326),
        "latency": (0.391, 0.310, 0.323, 0.340, 0.322, 0.148, 0.191, 0.268, 0.421),
        "params": (0.421, 0.572, 0.573, 0.576, 0.594, 0.616, 0.628, 0.742, 0.685),
        "weighted": (0.331, 0.489, 0.351, 0.545, 0.444, 0.688, 0.571, 0.759, 0.604),
    },
}

#: The synthetic users beyond the paper's six (``--metrics random_weighted,latency_constraint,...``),
#: for checking that the metric-family prior does not only work for the users it was built around;
#: see :data:`reward_models.human_preference.EXTRA_USERS`.
METRIC_LABELS.update({m: m.replace("_", " ") for m in EXTRA_USERS})

RUN_FIELDS = ["dataset", "metric", "selector", "k", "rep", "precision", "fit_seconds", "epochs", "mode", "prior_agreement"]

# --- worker state (one benchmark per process) ---------------------------------------------------------
_BENCH = None
_ARGS: dict = {}


def _init_worker(data: str | None, settings: dict) -> None:
    global _BENCH, _ARGS
    import torch

    import natsbench_gym

    torch.set_num_threads(1)  # tiny networks: threads only add overhead, and workers run side by side
    _BENCH = natsbench_gym.load_benchmark("topology", path=data)
    _ARGS = settings


def _run_task(task: tuple[int, str, int, int, str, int]) -> list[dict]:
    """One dataset, repetition, metric and selector: judge pairs for every k, fit and evaluate."""
    from natsbench_gym.rewards import ScoringContext
    from reward_models import PreferenceDataset, SyntheticUser, make_selector
    from reward_models.evaluation import top_k_precision
    from reward_models.ranknet import RankNetRewardModel
    from reward_models.selection import ActivePairSelector

    d, dataset, rep, m, metric, s = task
    a = _ARGS
    ctx = ScoringContext.create(_BENCH, dataset, a["budget"], a["device"], accuracy_metric="test_accuracy")
    # The split depends on (seed, dataset, rep) only: every metric and selector sees the same archs.
    split_rng = np.random.default_rng(np.random.SeedSequence([a["seed"], d, rep]))
    archs = split_rng.choice(_BENCH.space.size, size=a["train_size"] + a["test_size"], replace=False)
    train, test = archs[: a["train_size"]], archs[a["train_size"] :]
    noise = NoiseModel(flip_probability=a["flip_probability"])
    preference = make_synthetic_preference(metric, ctx, seed=np.random.SeedSequence([a["seed"], d, rep, 0x5553]))
    user = SyntheticUser(preference, ctx, noise=noise)
    truth = user.utilities(test)
    seq = np.random.SeedSequence([a["seed"], d, rep, m, s])
    rng = np.random.default_rng(seq)
    model_seed = int(seq.generate_state(1)[0] % (2**31))
    selector = make_selector(a["selectors"][s])
    active = isinstance(selector, ActivePairSelector)
    judged = PreferenceDataset()
    model = None
    rows = []
    for k in a["ks"]:
        while len(judged) < k:
            # With active_batch, an active selector asks for at most that many pairs per model, as
            # a person would see the model refitted while judging; 0 means one model per k.
            n = k - len(judged)
            if active and model is not None and a["active_batch"] > 0:
                n = min(n, a["active_batch"])
            batch = selector.select(train, n, rng, exclude=judged.judged_pairs(), model=model, context=ctx)
            judged.extend(user.judge_many(batch, rng, selector=batch.strategy))
            model = RankNetRewardModel(seed=model_seed, ensemble=a["ensemble"], prior=a["prior"], **a["ranknet"]).fit(judged, ctx)
        scores = model.score_many(ctx.query(test, model.required_metrics(ctx)), ctx)
        rows.append(
            {
                "dataset": dataset,
                "metric": metric,
                "selector": a["selectors"][s],
                "k": k,
                "rep": rep,
                "precision": top_k_precision(scores, truth, a["top"]),
                "fit_seconds": round(model.metadata["fit_seconds"], 4),
                "epochs": model.metadata["epochs"],
                "mode": model.mode,
                # share of the decided judgments the metric-family prior orders as judged ("" without a prior)
                "prior_agreement": "" if model.metadata.get("prior_agreement") is None else round(model.metadata["prior_agreement"], 4),
            }
        )
    return rows


# --- outputs ---------------------------------------------------------------------------------------------
def summarise(rows: Sequence[dict]) -> list[dict]:
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["metric"], r["selector"], int(r["k"]))].append(float(r["precision"]))
    out = []
    for (dataset, metric, selector, k), values in sorted(groups.items(), key=lambda kv: (DATASETS.index(kv[0][0]) if kv[0][0] in DATASETS else 9, kv[0][1], kv[0][2], kv[0][3])):
        v = np.array(values)
        out.append(
            {
                "dataset": dataset,
                "metric": metric,
                "selector": selector,
                "k": k,
                "mean": round(float(v.mean()), 4),
                "std": round(float(v.std(ddof=1)) if v.size > 1 else 0.0, 4),
                "n": int(v.size),
                "paper": _paper_value(dataset, metric, k),
            }
        )
    return out


def _paper_value(dataset: str, metric: str, k: int) -> float | str:
    values = PAPER_TABLE1.get(dataset, {}).get(metric)
    return values[KS.index(k)] if values is not None and k in KS else ""


def write_csv(path: Path, rows: Sequence[dict], fields: Sequence[str]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def markdown(summary: Sequence[dict], args: argparse.Namespace, command: str, runtime_s: float) -> str:
    cell = {(r["dataset"], r["metric"], r["selector"], r["k"]): r for r in summary}
    datasets = [d for d in args.datasets if any(r["dataset"] == d for r in summary)]
    metrics = [m for m in args.metrics if any(r["metric"] == m for r in summary)]
    n = max((r["n"] for r in summary), default=0)
    lines = [
        "<!-- written by scripts/reproduce_table1.py -->",
        f"Command: `{command}`",
        "",
        f"{n} repetitions per cell; runtime {runtime_s / 60:.1f} min with {args.workers} worker(s) "
        f"({platform.processor() or platform.machine()}, Python {platform.python_version()}). "
        "Cells: mean ± std of the top-10 precision over repetitions."
        + (f" Users reverse each decided answer with probability {args.flip_probability:g}." if args.flip_probability else ""),
        "",
    ]
    if 10 in args.ks:
        head = "| metric | " + " | ".join(f"{DATASET_LABELS.get(d, d)} paper | random | active" if len(args.selectors) > 1 else f"{DATASET_LABELS.get(d, d)} paper | {args.selectors[0]}" for d in datasets) + " |"
        lines += ["### At 10 comparisons", "", head, "|" + "---|" * (1 + len(datasets) * (1 + len(args.selectors)))]
        for m in metrics:
            parts = [METRIC_LABELS.get(m, m)]
            for d in datasets:
                p = _paper_value(d, m, 10)
                parts.append(f"{p:.3f}" if p != "" else "")
                for s in args.selectors:
                    r = cell.get((d, m, s, 10))
                    parts.append(f"{r['mean']:.2f} ± {r['std']:.2f}" if r else "")
            lines.append("| " + " | ".join(parts) + " |")
        lines.append("")
    for d in datasets:
        lines += [f"### {DATASET_LABELS.get(d, d)}", "", "| metric | source | " + " | ".join(str(k) for k in args.ks) + " |", "|---|---|" + "---|" * len(args.ks)]
        for m in metrics:
            label = METRIC_LABELS.get(m, m)
            paper = [_paper_value(d, m, k) for k in args.ks]
            if any(p != "" for p in paper):
                lines.append(f"| {label} | paper | " + " | ".join(f"{p:.3f}" if p != "" else "" for p in paper) + " |")
                label = ""
            for s in args.selectors:
                vals = [cell.get((d, m, s, k)) for k in args.ks]
                lines.append(f"| {label} | ours, {s} | " + " | ".join(f"{r['mean']:.2f} ± {r['std']:.2f}" if r else "" for r in vals) + " |")
                label = ""
        lines.append("")
    return "\n".join(lines)


def plot(summary: Sequence[dict], path: Path, dataset: str, selectors: Sequence[str], metrics: Sequence[str]) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summary if r["dataset"] == dataset]
    if not rows:
        return False
    fig, axes = plt.subplots(1, len(selectors), figsize=(5.2 * len(selectors), 4.2), sharey=True, squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, selector in zip(axes[0], selectors, strict=True):
        for i, m in enumerate(metrics):
            pts = sorted((r["k"], r["mean"], r["std"] / np.sqrt(max(r["n"], 1))) for r in rows if r["metric"] == m and r["selector"] == selector)
            if not pts:
                continue
            k, mean, se = map(np.array, zip(*pts, strict=True))
            ax.plot(k, mean, "o-", color=colors(i), label=METRIC_LABELS.get(m, m), ms=3)
            ax.fill_between(k, mean - se, mean + se, color=colors(i), alpha=0.15, lw=0)
            paper = PAPER_TABLE1.get(dataset, {}).get(m)
            if paper is not None and selector == "random":
                ax.plot(KS, paper, ":", color=colors(i), lw=1, alpha=0.8)
        ax.set_xscale("log")
        ax.set_xticks(KS)
        ax.set_xticklabels([str(k) for k in KS])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("pairwise comparisons")
        ax.set_title(f"{DATASET_LABELS.get(dataset, dataset)}: {selector} pairs" + (" (dotted: paper)" if selector == "random" else ""))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("top-10 precision (test architectures)")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


# --- command line -----------------------------------------------------------------------------------------
def _csv_list(kind):
    def parse(text: str) -> list:
        return [kind(x.strip()) for x in text.split(",") if x.strip()]

    return parse


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--datasets", type=_csv_list(str), default=list(DATASETS), help="comma-separated datasets")
    p.add_argument("--metrics", type=_csv_list(str), default=None, help=f"comma-separated synthetic users (default: the six of Table I; also {', '.join(EXTRA_USERS)})")
    p.add_argument("--reps", type=int, default=20, help="repetitions (different seeds) per cell")
    p.add_argument("--ks", type=_csv_list(int), default=list(KS), help="numbers of judged pairs")
    p.add_argument("--selectors", type=_csv_list(str), default=["random", "active"], help="pair selectors (random, active = active:disagreement, active:uncertainty)")
    p.add_argument("--out", type=Path, default=Path("results/table1"), help="output directory")
    p.add_argument("--seed", type=int, default=0, help="base seed")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (or Ray workers)")
    p.add_argument("--executor", choices=("pool", "ray"), default="pool",
                   help="where repetitions run: local processes (pool) or Ray (ray; docs/distributed.md)")
    p.add_argument("--address", default=None, help="Ray cluster to join with --executor ray (e.g. auto); default: start Ray here")
    p.add_argument("--data", default=None, help="NATS-Bench data (default: $NATSBENCH_DATA)")
    p.add_argument("--budget", type=int, default=200, help="training epochs of the accuracies")
    p.add_argument("--device", default=None, help="latency device (default: the benchmark's default)")
    p.add_argument("--train-size", type=int, default=100)
    p.add_argument("--test-size", type=int, default=100)
    p.add_argument("--top", type=int, default=10, help="k of the top-k precision")
    p.add_argument("--ensemble", type=int, default=1, help="RankNet ensemble members")
    p.add_argument("--active-batch", type=int, default=1, help="refit after at most this many actively chosen pairs (0: one model per k)")
    p.add_argument("--prior", default="metric-family", help="RankNet prior: metric-family, or none for the plain RankNet")
    p.add_argument("--prior-tolerance", type=float, default=None, help="RankNetConfig.prior_tolerance (default: the library's)")
    p.add_argument("--acceptance", choices=("agreement", "likelihood"), default=None,
                   help="RankNetConfig.acceptance: when the prior alone is the model (default: the library's, agreement)")
    p.add_argument("--flip-probability", type=float, default=0.0,
                   help="the synthetic users reverse each decided answer with this probability (careless clicks; "
                        "default 0: noiseless, as in the paper); the precision is still measured against their true utility")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    from natsbench_gym.errors import NATSBenchGymError
    from reward_models.fixed import PAPER_METRICS

    args.metrics = args.metrics or list(PAPER_METRICS)
    args.ks = sorted(set(args.ks))
    if args.reps < 1 or not args.ks or args.ks[0] < 1 or args.workers < 1 or args.ensemble < 1 or args.active_batch < 0:
        logger.error("--reps, --workers, --ensemble and every k must be >= 1, --active-batch >= 0")
        return 2
    if args.ks[-1] > args.train_size * (args.train_size - 1) // 2:
        logger.error("k=%d exceeds the %d pairs of %d training architectures", args.ks[-1], args.train_size * (args.train_size - 1) // 2, args.train_size)
        return 2
    if not 0.0 <= args.flip_probability <= 0.5:
        logger.error("--flip-probability must be in [0, 0.5] (above 0.5 the users prefer the worse one), got %s",
                     args.flip_probability)
        return 2
    settings = {
        "seed": args.seed, "budget": args.budget, "device": args.device, "train_size": args.train_size,
        "test_size": args.test_size, "top": args.top, "ks": args.ks, "selectors": args.selectors, "ensemble": args.ensemble,
        "active_batch": args.active_batch, "prior": None if str(args.prior).lower() == "none" else args.prior,
        "ranknet": {
            **({} if args.prior_tolerance is None else {"prior_tolerance": args.prior_tolerance}),
            **({} if args.acceptance is None else {"acceptance": args.acceptance}),
        },
        "flip_probability": args.flip_probability,
    }
    try:  # fail fast, in this process, on bad names or missing data
        _init_worker(args.data, settings)
        from natsbench_gym.rewards import ScoringContext
        from reward_models import make_selector

        if not _BENCH.capabilities.exact_statistics:
            logger.error(
                "Table I needs NATS-Bench results for the whole topology space, and the %s benchmark's "
                "statistics are not over the whole space; set NATSBENCH_DATA "
                "(e.g. NATSBENCH_DATA=../shared/natsbench) or pass --data", _BENCH.name
            )
            return 2
        for d in args.datasets:
            ScoringContext.create(_BENCH, d, args.budget, args.device, accuracy_metric="test_accuracy")
        first = ScoringContext.create(_BENCH, args.datasets[0], args.budget, args.device, accuracy_metric="test_accuracy")
        for m in args.metrics:
            make_synthetic_preference(m, first, seed=0)
        for s in args.selectors:
            make_selector(s)
        from reward_models.ranknet import RankNetConfig

        RankNetConfig(prior=settings["prior"], **settings["ranknet"])
    except NATSBenchGymError as exc:
        logger.error("%s", exc)
        return 2
    tasks = [
        (d, dataset, rep, m, metric, s)
        for d, dataset in enumerate(args.datasets)
        for rep in range(args.reps)
        for m, metric in enumerate(args.metrics)
        for s in range(len(args.selectors))
    ]
    logger.info("%d tasks (%d evaluated fits, plus refits of active selection) on %d worker(s)", len(tasks), len(tasks) * len(args.ks), args.workers)
    start = time.perf_counter()
    rows: list[dict] = []
    if args.executor == "ray":
        from natsbench_gym.live.executor import RayExecutor

        ray_executor = RayExecutor(None if args.address else args.workers, args.address)
        results = ray_executor.map_unordered(_run_task, tasks, _init_worker, (args.data, settings))
    elif args.workers == 1:
        results = map(_run_task, tasks)
    else:
        pool = mp.get_context("spawn" if sys.platform == "darwin" else "fork").Pool(args.workers, _init_worker, (args.data, settings))
        results = pool.imap_unordered(_run_task, tasks, chunksize=1)
    from tqdm import tqdm

    try:
        for task_rows in tqdm(results, total=len(tasks), desc="table I", unit="task", file=sys.stderr):
            rows.extend(task_rows)
    finally:
        if args.executor == "ray":
            ray_executor.shutdown()
        elif args.workers > 1:
            pool.close()
            pool.join()
    runtime = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    rows.sort(key=lambda r: (args.datasets.index(r["dataset"]), args.metrics.index(r["metric"]), args.selectors.index(r["selector"]), r["k"], r["rep"]))
    write_csv(args.out / "runs.csv", rows, RUN_FIELDS)
    summary = summarise(rows)
    write_csv(args.out / "summary.csv", summary, ["dataset", "metric", "selector", "k", "mean", "std", "n", "paper"])
    command = "python scripts/reproduce_table1.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out / "table1.md").write_text(markdown(summary, args, command.strip(), runtime) + "\n")
    fig_dataset = "cifar100" if "cifar100" in args.datasets else args.datasets[0]
    plot(summary, args.out / "fig3.png", fig_dataset, args.selectors, args.metrics)
    fits = np.array([r["fit_seconds"] for r in rows])
    logger.info("done in %.1f min; %.3f s per evaluated fit on average; outputs in %s", runtime / 60, fits.mean(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

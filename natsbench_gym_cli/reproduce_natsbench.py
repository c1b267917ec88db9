"""Reproduce NATS-Bench's comparison of REA, random search and REINFORCE under NATS-Bench's protocol.

NATS-Bench (Dong et al., TPAMI 2021) benchmarks its multi-trial NAS algorithms on the topology space
with the scripts of AutoDL-Projects' ``exps/NATS-algos/`` (``regularized_ea.py``, ``random_wo_share.py``,
``reinforce.py``) and reports them with ``exps/NATS-Bench/draw-table.py``. This script runs the
project's agents the same way, through ``NATSBench-Topology-v0``:

* **search signal**: the validation accuracy after the 12-epoch schedule (``hp="12"``; for CIFAR-10 the
  ``cifar10-valid`` run), the env's ``accuracy`` reward; with ``--noise on`` (default ``auto``: where
  the data has per-seed 12-epoch values) each evaluation reads one random seed's value, as
  ``simulate_train_eval(..., is_random=True)`` does;
* **budget**: 20,000 / 40,000 / 120,000 simulated seconds on CIFAR-10 / CIFAR-100 / ImageNet16-120,
  each evaluation costing its 12-epoch training time plus one validation pass (the env's
  ``total_train_time``, NATS-Bench's ``train-all-time + valid-per-time``); a search stops at the first
  evaluation that reaches the budget, and that one counts, as in NATS-Bench's loops;
* **result**: the 200-epoch test accuracy of the best architecture found (best-so-far by the search
  signal), at the budget: like ``draw-table.py``, linearly interpolated between the two evaluations
  whose elapsed time is closest to the budget; also the 200-epoch validation accuracy, and the test
  accuracy of the final best (no interpolation); mean ± std (``np.std``) over runs.

Agents: ``RegularizedEvolution(population_size=10, sample_size=3)`` (NATS-Bench's REA settings),
``RandomSearch`` (without repeats; NATS-Bench's draws with replacement), and ``MONAS`` for REINFORCE
with NATS-Bench's settings (Adam, learning rate 0.01, moving-average baseline 0.9, no entropy bonus)
but the project's LSTM controller (NATS-Bench's policy is one softmax per edge). BOHB is not run.

Writes under ``--out``: ``runs.csv`` (one row per run), ``summary.csv`` and ``summary.md`` (the table
of docs/natsbench_protocol.md).

Example::

    NATSBENCH_DATA=/path/to/table natsbench-gym reproduce-natsbench --runs 100 --workers 2 \\
        --out results/natsbench
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from natsbench_gym import ENV_IDS
from natsbench_gym.errors import UnknownNameError

logger = logging.getLogger("reproduce_natsbench")

ALGORITHMS = ("rea", "random", "reinforce")
LABELS = {"rea": "REA", "random": "RANDOM", "reinforce": "REINFORCE"}
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
#: NATS-Bench's time budgets for the topology space (simulated seconds; draw-table.py, Fig. 7's caption).
TIME_BUDGETS = {"cifar10": 20_000.0, "cifar100": 40_000.0, "ImageNet16-120": 120_000.0}
SEARCH_EPOCHS = 12
REPORT_EPOCHS = 200

#: The NATS-Bench paper's mean test accuracy (%) for these runs, (mean, std) per (algorithm, dataset).
#: Its Table 4 reports them (500 runs each); we could not retrieve the table's numbers here, so none
#: are filled in (docs/natsbench_protocol.md says so) rather than quoted from memory.
PAPER: dict[tuple[str, str], tuple[float, float]] = {}


@dataclass(frozen=True)
class Job:
    algo: str
    dataset: str
    seed: int
    time_budget: float
    noise: bool
    data: str | None


#: NATS-Bench's name of each algorithm -> the project's agent (``agents.make_agent``) and NATS-Bench's settings.
AGENT_SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "rea": ("re", {"population_size": 10, "sample_size": 3}),
    "random": ("random", {}),
    "reinforce": ("monas", {"hidden_size": 32, "learning_rate": 0.01, "baseline_decay": 0.9, "entropy_coef": 0.0}),
}


def make_agent(algo: str, seed: int):
    """The project's agent for ``algo`` with NATS-Bench's settings, through ``agents.make_agent``."""
    from agents import make_agent as make_named_agent

    if algo not in AGENT_SETTINGS:
        raise UnknownNameError("algorithm", algo, AGENT_SETTINGS)
    name, settings = AGENT_SETTINGS[algo]
    return make_named_agent(name, seed=seed, **settings)


def run_job(job: Job) -> dict[str, Any]:
    """One search under the protocol; returns the best-so-far index and the elapsed time after each evaluation."""
    import gymnasium as gym

    import natsbench_gym
    from agents.base import SearchBudget

    bench = natsbench_gym.load_benchmark("topology", job.data)
    env = gym.make(ENV_IDS["topology"], dataset=job.dataset, benchmark=bench, budget=SEARCH_EPOCHS,
                   reward_model="accuracy", accuracy_metric="valid_accuracy", noise=job.noise)
    agent = make_agent(job.algo, job.seed)
    start = time.perf_counter()
    result = agent.search(env, SearchBudget(evaluations=None, train_time=job.time_budget))
    seconds = time.perf_counter() - start
    best, best_reward = [], -math.inf
    for ev in result.history:
        if ev.reward > best_reward or not best:  # first on ties, as NATS-Bench's max()
            best_reward, best_index = ev.reward, ev.index
        best.append(best_index)
    env.close()
    return {**asdict(job), "best": best, "times": [ev.total_train_time for ev in result.history],
            "evaluations": len(result.history), "seconds": seconds}


def _init_worker() -> None:
    # Worker processes on few cores: torch's intra-op threads would only fight each other.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


# --- scoring -----------------------------------------------------------------------------------------
def interpolate_at(times: Sequence[float], values: Sequence[float], ticket: float) -> float:
    """NATS-Bench's ``query_performance``: the value at ``ticket`` seconds, linearly interpolated between
    the two entries whose time is closest to it (extrapolated if both lie on one side)."""
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.size == 1:
        return float(v[0])
    a, b = np.argsort(np.abs(t - ticket), kind="stable")[:2]
    if t[a] == t[b]:
        return float(v[a])
    return float((t[b] - ticket) / (t[b] - t[a]) * v[a] + (ticket - t[a]) / (t[b] - t[a]) * v[b])


def score_runs(runs: Sequence[dict[str, Any]], data: str | None) -> list[dict[str, Any]]:
    """Per run: the 200-epoch test and validation accuracy of the found architecture at the budget."""
    import natsbench_gym
    from natsbench_gym.types import Metric

    bench = natsbench_gym.load_benchmark("topology", data)
    accs = {ds: bench.query_many(None, ds, REPORT_EPOCHS, [Metric.TEST_ACCURACY, Metric.VALID_ACCURACY])
            for ds in {r["dataset"] for r in runs}}
    rows = []
    for r in runs:
        test, valid = accs[r["dataset"]][Metric.TEST_ACCURACY], accs[r["dataset"]][Metric.VALID_ACCURACY]
        best = np.asarray(r["best"], dtype=np.int64)
        rows.append({
            "algo": r["algo"], "dataset": r["dataset"], "seed": r["seed"], "noise": r["noise"],
            "time_budget": r["time_budget"], "evaluations": r["evaluations"], "final_time": r["times"][-1],
            "test_acc": interpolate_at(r["times"], test[best], r["time_budget"]),
            "valid_acc": interpolate_at(r["times"], valid[best], r["time_budget"]),
            "final_test_acc": float(test[best[-1]]), "final_index": int(best[-1]), "seconds": r["seconds"],
        })
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for algo in ALGORITHMS:
        for dataset in DATASETS:
            sel = [r for r in rows if r["algo"] == algo and r["dataset"] == dataset]
            if not sel:
                continue
            col = {k: np.array([r[k] for r in sel], dtype=np.float64)
                   for k in ("test_acc", "valid_acc", "final_test_acc", "evaluations", "seconds")}
            paper = PAPER.get((algo, dataset))
            out.append({
                "algo": algo, "dataset": dataset, "runs": len(sel), "noise": sel[0]["noise"],
                "time_budget": sel[0]["time_budget"],
                "test_mean": float(col["test_acc"].mean()), "test_std": float(col["test_acc"].std()),
                "valid_mean": float(col["valid_acc"].mean()), "valid_std": float(col["valid_acc"].std()),
                "final_test_mean": float(col["final_test_acc"].mean()),
                "final_test_std": float(col["final_test_acc"].std()),
                "evaluations_mean": float(col["evaluations"].mean()), "seconds_mean": float(col["seconds"].mean()),
                "paper_test_mean": paper[0] if paper else None, "paper_test_std": paper[1] if paper else None,
            })
    return out


def summary_markdown(summary: Sequence[dict[str, Any]], command: str, seconds: float, benchmark: str) -> str:
    datasets = [d for d in DATASETS if any(s["dataset"] == d for s in summary)]
    lines = [
        f"Command: `{command}`  ",
        f"Benchmark: {benchmark}  ",
        f"Runs per cell: {summary[0]['runs']}; wall time {seconds / 60:.1f} min; noisy search signal: "
        f"{'yes' if summary[0]['noise'] else 'no (the data has no per-seed 12-epoch accuracies)'}.",
        "",
        "200-epoch test accuracy (%) of the architecture found at the time budget, mean ± std over runs "
        "(NATS-Bench's interpolation at the budget); the paper's figure in brackets where we have it:",
        "",
        "| algorithm | " + " | ".join(f"{d} ({int(TIME_BUDGETS[d]):,} s)" for d in datasets) + " |",
        "|---|" + "---|" * len(datasets),
    ]
    for algo in ALGORITHMS:
        cells = []
        for d in datasets:
            s = next((s for s in summary if s["algo"] == algo and s["dataset"] == d), None)
            if s is None:
                cells.append("")
                continue
            paper = f" [{s['paper_test_mean']:.2f} ± {s['paper_test_std']:.2f}]" if s["paper_test_mean"] is not None else ""
            cells.append(f"{s['test_mean']:.2f} ± {s['test_std']:.2f}{paper}")
        if any(cells):
            lines.append(f"| {LABELS[algo]} | " + " | ".join(cells) + " |")
    lines += ["", "Also: 200-epoch validation accuracy (interpolated) / test accuracy of the final best (not "
              "interpolated) / evaluations per run / seconds per run:", "",
              "| algorithm | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for algo in ALGORITHMS:
        cells = []
        for d in datasets:
            s = next((s for s in summary if s["algo"] == algo and s["dataset"] == d), None)
            cells.append("" if s is None else f"{s['valid_mean']:.2f} ± {s['valid_std']:.2f} / "
                         f"{s['final_test_mean']:.2f} ± {s['final_test_std']:.2f} / {s['evaluations_mean']:.0f} / "
                         f"{s['seconds_mean']:.2f}")
        if any(cells):
            lines.append(f"| {LABELS[algo]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --- main --------------------------------------------------------------------------------------------
def _csv_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad[0]!r}; expected some of: {', '.join(allowed)}")
    return items


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Reproduce NATS-Bench's REA / random / REINFORCE comparison under its protocol.")
    p.add_argument("--algos", default=",".join(ALGORITHMS), type=lambda s: _csv_list(s, ALGORITHMS, "algorithm"))
    p.add_argument("--datasets", default=",".join(DATASETS), type=lambda s: _csv_list(s, DATASETS, "dataset"))
    p.add_argument("--runs", type=int, default=100, help="runs per algorithm and dataset (seeds 0 .. runs-1, plus --seed-offset)")
    p.add_argument("--seed-offset", type=int, default=0)
    p.add_argument("--noise", choices=("auto", "on", "off"), default="auto",
                   help="read one seed's 12-epoch validation accuracy per evaluation (auto: where the data has them)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="multiply NATS-Bench's time budgets (1: the protocol; smaller for a quick look)")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--data", default=None, help="benchmark data directory (default: $NATSBENCH_DATA, $TORCH_HOME)")
    p.add_argument("--out", default="results/natsbench", help="output directory")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.runs < 1 or args.workers < 1 or not args.time_scale > 0:
        parser.error("--runs and --workers must be >= 1 and --time-scale > 0")
    import natsbench_gym
    from natsbench_gym.errors import NATSBenchGymError
    from natsbench_gym.types import Metric

    try:
        bench = natsbench_gym.load_benchmark("topology", args.data)
    except NATSBenchGymError as exc:
        parser.error(str(exc))
    if bench.capabilities.trains or not {SEARCH_EPOCHS, REPORT_EPOCHS} <= set(bench.budgets):
        parser.error(
            f"the protocol needs NATS-Bench's {SEARCH_EPOCHS}- and {REPORT_EPOCHS}-epoch results, and {bench.describe()} "
            f"has {', '.join(map(str, bench.budgets))} epoch(s); set NATSBENCH_DATA or --data (README: \"Get the "
            "NATS-Bench data\")"
        )
    noise = {}
    for dataset in args.datasets:
        has = bench.has_seed_values(Metric.VALID_ACCURACY, dataset, SEARCH_EPOCHS)
        if args.noise == "on" and not has:
            parser.error(f"--noise on: {bench.describe()} has no per-seed {SEARCH_EPOCHS}-epoch validation accuracy on {dataset}")
        noise[dataset] = has if args.noise == "auto" else args.noise == "on"
    jobs = [Job(algo, dataset, args.seed_offset + s, TIME_BUDGETS[dataset] * args.time_scale, noise[dataset], args.data)
            for algo in args.algos for dataset in args.datasets for s in range(args.runs)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "natsbench-gym reproduce-natsbench " + " ".join(sys.argv[1:] if argv is None else argv)
    from tqdm import tqdm

    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with tqdm(total=len(jobs), desc="searches", unit="run", file=sys.stderr) as bar:
        if args.workers == 1:
            for job in jobs:
                runs.append(run_job(job))
                bar.update()
        else:
            # The benchmark is loaded above, before the fork: the workers share it.
            with multiprocessing.get_context("fork").Pool(args.workers, initializer=_init_worker) as pool:
                for run in pool.imap_unordered(run_job, jobs, chunksize=4):
                    runs.append(run)
                    bar.update()
    seconds = time.perf_counter() - start
    runs.sort(key=lambda r: (ALGORITHMS.index(r["algo"]), DATASETS.index(r["dataset"]), r["seed"]))
    rows = score_runs(runs, args.data)
    summary = summarize(rows)
    write_csv(out / "runs.csv", rows)
    write_csv(out / "summary.csv", summary)
    text = summary_markdown(summary, command, seconds, bench.describe())
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reproduce the paper's Figs. 4 and 5: NAS agents with a predefined or a learned metric on NATS-Bench.

Runs every agent (RE, MONAS, LEMONADE, PPO, random search) x metric variant (the predefined metric,
or a RankNet learned from 10 synthetic comparisons among 5 random architectures) x dataset x seed for
a budget of evaluated architectures, on the topology space through ``NATSBench-Topology-v0``, and
writes under ``--out``:

* ``runs.csv``: one row per run and evaluation count (the best-so-far architecture and its scores);
* ``curves.csv``: mean and 95% interval over seeds per agent, variant, metric, dataset and count;
* ``summary.csv`` and ``summary.md``: the same at the full budget, the paper's numbers beside ours;
* ``ceilings.csv``: what the score can reach at all (the score of the architecture best under the search
  metric; random search's exact expected score after ``--evaluations``; how many architectures score
  >= 99.5 % and >= 99 %), also at the top of ``summary.md``;
* ``fig4.png`` (h_accuracy) and ``fig5.png`` (h_weighted).

Protocol (see docs/figs45.md):

* the search reward is the metric on *validation* accuracy after ``--epochs`` (200) epochs (what a
  search may see); ``--search-accuracy test`` searches on test accuracy instead, as the paper's Eq. 3
  literally reads;
* the architecture "found" after k evaluations is the best of the first k under the run's search
  metric (the learned one for learned runs, applied to all k);
* its **score** is ``h(found) / max over the space of h``, where ``h`` is the predefined metric computed
  on *test* accuracy after 200 epochs (``h_accuracy``: test accuracy normalised to [0, 1] over the
  space; ``h_weighted``: the mean utility of test accuracy, latency, params and FLOPs). Also
  reported: the **test-accuracy ratio** ``test accuracy(found) / best test accuracy of the space``
  in % (the paper's own definition of the h_accuracy score, "99.7% of the performance of the best
  architecture"; raw accuracies, not min-max normalised, so it is far less strict), the **regret** in points of h (``100 * (max h - h(found))``), the **test-accuracy regret**
  in points (best test accuracy of the space minus that of the found architecture), the **rank
  percentile** of the found architecture in the whole space (share of architectures with h <= its h),
  the **search score**, ``h / max h`` with ``h`` on the accuracy the search read (how well the
  agent optimised what it could see, apart from the validation-to-test gap), and the **front
  hypervolume** of every architecture evaluated so far over test accuracy, params, FLOPs and latency,
  in % of the whole space's (what LEMONADE optimises);
* learned runs: 5 random architectures are evaluated through the env (they count in the budget; for
  RE they are the first 5 of its initial population of 10), 10 pairs among them are judged by a
  synthetic user of the predefined metric (validation accuracy, like the search), RankNet is fitted
  and becomes the env's reward model. LEMONADE has no learned variant (as in the paper).

Example::

    NATSBENCH_DATA=../shared/natsbench .venv/bin/python scripts/reproduce_figs45.py \\
        --seeds 20 --evaluations 100 --workers 2 --out results/figs45
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
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("reproduce_figs45")

ALGORITHMS = ("re", "monas", "lemonade", "ppo", "random")
VARIANTS = ("predefined", "learned")
METRICS = ("accuracy", "weighted")
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
LABELS = {"re": "RE", "monas": "MONAS", "lemonade": "LEMONADE", "ppo": "PPO", "random": "Random"}
FIGURES = {"accuracy": "fig4", "weighted": "fig5"}

#: The paper's numbers at 100 evaluations (percent), from the text of Sec. IV-C; None = not stated.
PAPER: dict[tuple[str, str, str], tuple[float | None, float | None, float | None]] = {
    ("accuracy", "predefined", "re"): (99.7, 99.6, 99.8),
    ("accuracy", "predefined", "lemonade"): (99.4, 96.6, 99.8),
    ("accuracy", "predefined", "monas"): (None, 64.9, 58.7),
    ("accuracy", "learned", "re"): (99.8, 99.2, 97.1),
    ("accuracy", "learned", "monas"): (91.5, 64.8, 58.8),
    ("weighted", "predefined", "re"): (79.4, None, None),
    ("weighted", "predefined", "lemonade"): (79.5, None, None),
    ("weighted", "predefined", "monas"): (79.3, None, None),
}

MEASURES = ("score", "search_score", "test_ratio", "regret", "test_regret", "percentile", "front_hypervolume")


@dataclass(frozen=True)
class Job:
    algo: str
    variant: str
    metric: str
    dataset: str
    seed: int
    evaluations: int
    epochs: int
    search_accuracy: str
    data: str | None
    count_repeats: bool = False


#: The agents' settings for the figures (keywords of ``agents.make_agent``; the others keep the
#: classes' defaults): tuned for a 100-evaluation budget on h_accuracy with validation accuracy
#: (seeds 0-99 and 1000-1099, all three datasets; docs/figs45.md).
AGENT_SETTINGS: dict[str, dict[str, Any]] = {
    # s = p (the paper: p = 10, s = 5): the fittest of the population is mutated, aging still
    # regularizes; better on all three datasets at 100 evaluations.
    "re": {"population_size": 10, "sample_size": 10},
    # The second KDE stage: 20 children proposed, the 5 in the sparsest cheap-objective regions trained.
    "lemonade": {"population_size": 10, "num_children": 5, "num_proposals": 20},
    # The policy gradient follows the reward's rank among the distinct architectures evaluated so
    # far (agents.shaping.RankShaping) instead of the raw reward, whose differences among good
    # cells are tiny; with that, 6x MONAS's default step size and 50x its entropy bonus.
    "monas": {"hidden_size": 32, "learning_rate": 0.03, "entropy_coef": 0.05, "reward_shaping": "rank"},
    # Rank-shaped rewards as for MONAS, and an update every 3 episodes (18 steps, minibatches of 9)
    # at lr 1e-3 instead of every 10 at 3e-4: many more updates within 100 architectures.
    "ppo": {"episodes_per_update": 3, "learning_rate": 1e-3, "reward_shaping": "rank"},
    "random": {},
}


def make_figure_agent(algo: str, seed: int, personalization=None):
    """The agent ``algo`` with the figures' :data:`AGENT_SETTINGS`, through ``agents.make_agent``.

    LEMONADE has no learned-metric variant (it searches the Pareto front, as in the paper): it takes
    no ``personalization`` (``agents.errors.UnknownSettingError``)."""
    from agents import make_agent

    learned = {} if personalization is None else {"personalization": personalization}
    return make_agent(algo, seed=seed, **AGENT_SETTINGS[algo], **learned)


def make_personalization(metric: str, context):
    """10 comparisons among 5 random architectures, judged by a synthetic user of ``metric``."""
    from agents.personalization import Personalization
    from reward_models import SyntheticUser

    return Personalization(judge=SyntheticUser(metric, context), num_comparisons=10, num_architectures=5, schedule="one-shot")


def run_job(job: Job) -> dict[str, Any]:
    """One search; returns the official index of the best-so-far architecture after each evaluation."""
    import gymnasium as gym

    import natsbench_gym
    from agents.base import SearchBudget
    from natsbench_gym import ENV_IDS

    bench = natsbench_gym.load_benchmark("topology", job.data)
    env = gym.make(
        ENV_IDS["topology"], dataset=job.dataset, benchmark=bench, budget=job.epochs, reward_model=job.metric,
        accuracy_metric=f"{job.search_accuracy}_accuracy",
    )
    personalization = None
    if job.variant == "learned":
        personalization = make_personalization(job.metric, env.unwrapped.context)
    agent = make_figure_agent(job.algo, job.seed, personalization)
    start = time.perf_counter()
    result = agent.search(env, SearchBudget(evaluations=job.evaluations, count_repeats=job.count_repeats))
    seconds = time.perf_counter() - start
    scores = result.search_scores()
    found, evaluated, best, best_i, seen = [], [], -math.inf, -1, set()
    for i, (s, ev) in enumerate(zip(scores.tolist(), result.history, strict=True)):
        if s > best or best_i < 0:  # first on ties, like SearchResult.best
            best, best_i = s, i
        if job.count_repeats or ev.index not in seen:  # one entry per evaluation the budget counts
            seen.add(ev.index)
            found.append(result.history[best_i].index)
            evaluated.append(ev.index)
    # A search that stopped early (free repeats used up) keeps its best for the counts it never reached.
    found += found[-1:] * (job.evaluations - len(found))
    ceiling = -1
    model = result.info.get("learned_metric")
    if model is not None:
        # Analysis only, after the search: the learned metric's own optimum over the whole space, the
        # best any optimiser of that metric could find (the search never sees this).
        ctx = env.unwrapped.context
        ceiling = int(np.argmax(model.score_many(ctx.query(None, model.required_metrics(ctx)), ctx)))
    return {**asdict(job), "found": found, "evaluated": evaluated, "ceiling": ceiling, "seconds": seconds,
            "total_train_time": env.unwrapped.total_train_time, "env_evaluations": len(result.history)}


def _init_worker() -> None:
    # Two processes on two cores: torch's intra-op threads would only fight each other (RankNet fits
    # ran 10x slower with the default thread count). Set before any worker imports torch.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


# --- scoring -----------------------------------------------------------------------------------------
def space_values(bench, metric: str, dataset: str, epochs: int = 200, accuracy: str = "test") -> np.ndarray:
    """The predefined metric ``metric`` of every architecture of the space, on ``accuracy`` accuracy."""
    from natsbench_gym.rewards import ScoringContext, make_fixed_metric
    from natsbench_gym.types import Metric

    ctx = ScoringContext.create(bench, dataset, epochs, accuracy_metric=Metric.parse(f"{accuracy}_accuracy"))
    h = make_fixed_metric(metric)
    return np.asarray(h.score_many(ctx.query(None, h.required_metrics(ctx)), ctx), dtype=np.float64)


class Scorer:
    """``h`` on test accuracy over the whole space, for one metric and dataset; ``search_accuracy`` and
    ``search_epochs`` name the accuracy the search read, for the search score."""

    def __init__(self, bench, metric: str, dataset: str, epochs: int = 200, search_accuracy: str = "valid",
                 search_epochs: int = 200) -> None:
        from natsbench_gym.types import Metric

        self.h = space_values(bench, metric, dataset, epochs, "test")
        same = (search_accuracy, search_epochs) == ("test", epochs)  # a search on test accuracy: h itself
        self.h_search = self.h if same else space_values(bench, metric, dataset, search_epochs, search_accuracy)
        self.test = bench.query_many(None, dataset, epochs, [Metric.TEST_ACCURACY])[Metric.TEST_ACCURACY]
        self.h_max = float(np.nanmax(self.h))
        self.h_search_max = float(np.nanmax(self.h_search))
        self.test_max = float(np.nanmax(self.test))
        self._sorted = np.sort(self.h[~np.isnan(self.h)])
        self.size = int(self._sorted.size)  # architectures with a value of h

    def count_at_least(self, score: float) -> int:
        """Number of architectures in the space whose score is at least ``score`` (%)."""
        return int(self._sorted.size - np.searchsorted(self._sorted, score / 100.0 * self.h_max, side="left"))

    def measures(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        h = self.h[indices]
        return {
            "score": 100.0 * h / self.h_max,
            "search_score": 100.0 * self.h_search[indices] / self.h_search_max,
            "test_ratio": 100.0 * self.test[indices] / self.test_max,
            "regret": 100.0 * (self.h_max - h),
            "test_regret": self.test_max - self.test[indices],
            "percentile": 100.0 * np.searchsorted(self._sorted, h, side="right") / self._sorted.size,
        }

    def random_search_expected(self, k: int) -> float:
        """Exact expected score of random search after ``k`` distinct evaluations.

        Random search draws ``k`` architectures uniformly without replacement and returns the best
        under the search metric; its expected score is the mean, over where that best falls in the
        search metric's order, of the score there. Architectures tied under the search metric count
        as one group scored by its mean (every member is equally likely to be the one returned).
        """
        from scipy.special import gammaln

        ok = ~np.isnan(self.h_search) & ~np.isnan(self.h)
        search, score = self.h_search[ok], 100.0 * self.h[ok] / self.h_max
        n = search.size
        k = min(k, n)
        _, inverse, counts = np.unique(-search, return_inverse=True, return_counts=True)  # best group first
        group_score = np.bincount(inverse, weights=score) / counts
        above = np.concatenate(([0], np.cumsum(counts)))  # architectures in better groups, then through each

        def none_drawn(m: np.ndarray) -> np.ndarray:  # P(none of m given architectures among the k drawn)
            out = np.zeros(m.shape)
            room = n - m >= k  # otherwise some of them are always drawn
            out[room] = np.exp(gammaln(n - m[room] + 1) - gammaln(n - m[room] - k + 1)
                               - gammaln(n + 1) + gammaln(n - k + 1))
            return out

        p_best_group = none_drawn(above[:-1]) - none_drawn(above[1:])
        return float(np.dot(p_best_group, group_score))


#: Objectives of the front measure: test accuracy (maximised) and the costs LEMONADE minimises.
FRONT_OBJECTIVES = ("test_accuracy", "params", "flops", "latency")


class FrontScorer:
    """Hypervolume of a set of architectures over ``FRONT_OBJECTIVES`` (those the benchmark has), in % of
    the whole space's.

    Each objective becomes a loss ``1 - utility`` (the project's normalisation over the space: 0 for the
    space's best value, 1 for its worst), as LEMONADE's own ``hypervolume``; the reference point is 1 in
    every objective, and the space's hypervolume is that of its non-dominated set (pymoo).
    """

    def __init__(self, bench, dataset: str, epochs: int = 200) -> None:
        from pymoo.indicators.hv import HV
        from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

        from natsbench_gym.rewards import ScoringContext, utility
        from natsbench_gym.types import Metric

        ctx = ScoringContext.create(bench, dataset, epochs, accuracy_metric=Metric.TEST_ACCURACY)
        available = bench.available_metrics(dataset, epochs)
        metrics = [m for m in map(Metric.parse, FRONT_OBJECTIVES) if m in available]
        self.objectives = tuple(m.value for m in metrics)
        values = ctx.query(None, metrics)
        self.losses = np.stack([1.0 - utility(m, np.asarray(values[m], dtype=np.float64), ctx) for m in metrics],
                               axis=1)
        self._hv = HV(ref_point=np.ones(len(metrics)))
        known = self.losses[~np.isnan(self.losses).any(axis=1)]
        front = NonDominatedSorting().do(known, only_non_dominated_front=True)
        self.space_hypervolume = float(self._hv(known[front]))

    def score(self, indices: Sequence[int]) -> float:
        """Hypervolume of the architectures ``indices`` (official indices), in % of the space's."""
        losses = self.losses[np.asarray(indices, dtype=np.int64)]
        return 100.0 * float(self._hv(losses[~np.isnan(losses).any(axis=1)])) / self.space_hypervolume


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval over seeds (nan half-width for one seed)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    n = values.size
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan
    return mean, float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def ceilings(data: str | None, metrics: Sequence[str], datasets: Sequence[str], search_accuracy: str,
             epochs: int = 200, evaluations: int = 100) -> list[dict[str, Any]]:
    """What the scores can reach at all: per metric and dataset, the score of the architecture that is best
    under the search metric (what a search that optimises it perfectly returns), random search's exact
    expected score after ``evaluations`` distinct evaluations, and how many architectures score at
    least 99.5 % and 99 % (analysis only; no search reads it)."""
    import natsbench_gym

    bench = natsbench_gym.load_benchmark("topology", data)
    rows = []
    for metric in metrics:
        for dataset in datasets:
            scorer = Scorer(bench, metric, dataset, search_accuracy=search_accuracy, search_epochs=epochs)
            best = int(np.nanargmax(scorer.h_search))
            rows.append({"metric": metric, "dataset": dataset, "search_accuracy": search_accuracy,
                         "search_best_score": float(scorer.measures(np.array([best]))["score"][0]),
                         "evaluations": evaluations,
                         "random_search_expected": scorer.random_search_expected(evaluations),
                         "archs_at_least_99.5": scorer.count_at_least(99.5),
                         "archs_at_least_99": scorer.count_at_least(99.0), "archs": scorer.size})
    return rows


# --- output ------------------------------------------------------------------------------------------
def score_runs(runs: Sequence[dict[str, Any]], data: str | None, epochs: int = 200) -> list[dict[str, Any]]:
    """One row per run and evaluation count with every measure."""
    import natsbench_gym

    bench = natsbench_gym.load_benchmark("topology", data)
    scorers: dict[tuple[str, str, str, int], Scorer] = {}
    fronts: dict[str, FrontScorer] = {}
    rows = []
    for run in runs:
        key = (run["metric"], run["dataset"], run["search_accuracy"], run["epochs"])
        if key not in scorers:
            scorers[key] = Scorer(bench, run["metric"], run["dataset"], epochs=epochs,
                                  search_accuracy=run["search_accuracy"], search_epochs=run["epochs"])
        if run["dataset"] not in fronts:
            fronts[run["dataset"]] = FrontScorer(bench, run["dataset"], epochs)
        found = np.asarray(run["found"], dtype=np.int64)
        m = scorers[key].measures(found)
        m["front_hypervolume"] = np.array([fronts[run["dataset"]].score(run["evaluated"][: k + 1])
                                           for k in range(found.size)])
        ceiling = math.nan
        if run.get("ceiling", -1) >= 0:
            ceiling = float(scorers[key].measures(np.array([run["ceiling"]]))["score"][0])
        for k in range(found.size):
            rows.append({
                "algo": run["algo"], "variant": run["variant"], "metric": run["metric"], "dataset": run["dataset"],
                "seed": run["seed"], "evaluations": k + 1, "index": int(found[k]),
                **{name: float(m[name][k]) for name in MEASURES}, "ceiling": ceiling,
            })
    return rows


def aggregate(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["metric"], r["dataset"], r["algo"], r["variant"], r["evaluations"])].append(r)
    out = []
    for (metric, dataset, algo, variant, k), rs in sorted(groups.items(), key=lambda kv: _order(kv[0])):
        row: dict[str, Any] = {"metric": metric, "dataset": dataset, "algo": algo, "variant": variant,
                               "evaluations": k, "seeds": len(rs)}
        for name in (*MEASURES, "ceiling"):
            mean, half = mean_ci(np.array([r[name] for r in rs]))
            row[f"{name}_mean"], row[f"{name}_ci95"] = mean, half
        out.append(row)
    return out


def _order(key: tuple) -> tuple:
    metric, dataset, algo, variant, k = key
    return (METRICS.index(metric) if metric in METRICS else 99, DATASETS.index(dataset) if dataset in DATASETS else 99,
            ALGORITHMS.index(algo) if algo in ALGORITHMS else 99, VARIANTS.index(variant), k)


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def plot(curves: Sequence[dict[str, Any]], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in curves if r["metric"] == metric]
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]
    if not datasets:
        return
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.8), squeeze=False)
    colors = {"re": "tab:blue", "monas": "tab:red", "lemonade": "tab:green", "ppo": "tab:purple", "random": "tab:gray"}
    for ax, dataset in zip(axes[0], datasets, strict=True):
        lows = []
        for algo in ALGORITHMS:
            for variant in VARIANTS:
                sel = [r for r in rows if r["dataset"] == dataset and r["algo"] == algo and r["variant"] == variant]
                if not sel:
                    continue
                k = np.array([r["evaluations"] for r in sel])
                mean = np.array([r["score_mean"] for r in sel])
                half = np.nan_to_num(np.array([r["score_ci95"] for r in sel]))
                label = f"{LABELS[algo]} ({variant})"
                ax.plot(k, mean, color=colors[algo], ls="-" if variant == "predefined" else "--", label=label, lw=1.6)
                ax.fill_between(k, mean - half, mean + half, color=colors[algo], alpha=0.12, lw=0)
                lows.append(float(np.min((mean - half)[k >= min(20, k.max())])))
        ax.set_title(dataset)
        ax.set_xlabel("evaluated architectures")
        ax.set_ylabel(f"h_{metric} of best so far / best in space (%)")
        ax.set_ylim(max(0.0, min(lows) - 0.5) if lows else None, 100.05)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"h_{metric} (test accuracy, 200 epochs) of the best-so-far architecture: mean over seeds, 95% interval")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(mean: float, half: float, digits: int = 1) -> str:
    if math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def _table(
    rows: Sequence[dict[str, Any]], datasets: Sequence[str], cell, *, variants: Sequence[str] | None = VARIANTS
) -> list[str]:
    """A markdown table: one line per algorithm (and variant, unless ``variants`` is None), one column per
    dataset; ``cell(row, algo, variant, dataset)`` formats the summary row of that configuration."""
    columns = ["algorithm"] + (["variant"] if variants is not None else [])
    lines = ["| " + " | ".join([*columns, *datasets]) + " |", "|" + "---|" * (len(columns) + len(datasets))]
    for algo in ALGORITHMS:
        for variant in variants if variants is not None else (None,):
            cells = []
            for d in datasets:
                sel = [r for r in rows if r["algo"] == algo and r["dataset"] == d
                       and (variant is None or r["variant"] == variant)]
                cells.append(cell(sel[0], algo, variant, d) if sel else "")
            if any(cells):
                lines.append("| " + " | ".join([LABELS[algo], *([variant] if variant else []), *cells]) + " |")
    return lines


def summary_markdown(summary: Sequence[dict[str, Any]], command: str, seconds: float, n_runs: int,
                     ceiling_rows: Sequence[dict[str, Any]] = ()) -> str:
    lines = [
        f"Command: `{command}`  ",
        f"Runs: {n_runs}; wall time {seconds / 60:.1f} min.",
        "",
    ]
    if ceiling_rows:
        acc = ceiling_rows[0]["search_accuracy"]
        datasets = list(dict.fromkeys(r["dataset"] for r in ceiling_rows))
        k = ceiling_rows[0]["evaluations"]
        lines += [f"What the score can reach: score of the architecture that is best under the search metric "
                  f"(on {acc} accuracy: what a perfect optimiser of the search metric returns) / random search's "
                  f"exact expected score after {k} evaluations / architectures "
                  f"scoring >= 99.5 % / >= 99 % (of {ceiling_rows[0]['archs']:,}):", "",
                  "| metric | " + " | ".join(datasets) + " |", "|" + "---|" * (1 + len(datasets))]
        for metric in dict.fromkeys(r["metric"] for r in ceiling_rows):
            cells = [f"{r['search_best_score']:.2f} / {r['random_search_expected']:.2f} / "
                     f"{r['archs_at_least_99.5']} / {r['archs_at_least_99']}"
                     for r in ceiling_rows if r["metric"] == metric]
            lines.append(f"| h_{metric} | " + " | ".join(cells) + " |")
        lines.append("")
    for metric in METRICS:
        rows = [r for r in summary if r["metric"] == metric]
        if not rows:
            continue
        k = rows[0]["evaluations"]
        datasets = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]

        def score(r, algo, variant, d, metric=metric):
            paper = PAPER.get((metric, variant, algo), (None, None, None))[DATASETS.index(d)]
            return _fmt(r["score_mean"], r["score_ci95"], 2) + (f" [{paper}]" if paper is not None else "")

        lines += [f"### h_{metric} after {k} evaluations ({rows[0]['seeds']} seeds, mean ± 95% CI)", ""]
        lines += ["Score = h(found) / max h, in % (paper's number in brackets where the text gives one):", ""]
        lines += _table(rows, datasets, score)
        lines += ["", "Test-accuracy ratio = test accuracy of the found architecture / best test accuracy in the "
                  "space, in % (the paper's definition of the h_accuracy score: \"99.7% of the performance of the "
                  "best architecture\"; not min-max normalised):", ""]
        lines += _table(rows, datasets, lambda r, *_: _fmt(r["test_ratio_mean"], r["test_ratio_ci95"], 2))
        lines += ["", "Search score = h on the accuracy the search read, found / best in the space, in % (how well "
                  "the agent optimised what it could see; equals the score when the search reads test accuracy):", ""]
        lines += _table(rows, datasets, lambda r, *_: _fmt(r["search_score_mean"], r["search_score_ci95"], 2))
        lines += ["", "Front of the evaluated architectures: hypervolume over test accuracy, params, FLOPs and latency "
                  "(those the benchmark has; losses normalised over the space, reference point 1), in % of the whole space's:", ""]
        lines += _table(rows, datasets, lambda r, *_: _fmt(r["front_hypervolume_mean"], r["front_hypervolume_ci95"], 2))
        lines += ["", "Regret in points of h (100 x (max h - h)) / test-accuracy regret in points / rank percentile "
                  "in the space (%):", ""]
        lines += _table(rows, datasets, lambda r, *_: (
            f"{r['regret_mean']:.2f} / {r['test_regret_mean']:.2f} / {r['percentile_mean']:.3f}"))
        learned = [r for r in rows if r["variant"] == "learned" and not math.isnan(r["ceiling_mean"])]
        if learned:
            lines += ["", "Learned metric: score of the found architecture / score of the learned metric's own optimum "
                      "over the whole space (what a perfect optimiser of the learned metric would find):", ""]
            lines += _table(learned, datasets, lambda r, *_: f"{r['score_mean']:.2f} / {r['ceiling_mean']:.2f}",
                            variants=None)
        lines.append("")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------
def _csv_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad[0]!r}; expected some of: {', '.join(allowed)}")
    return items


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Reproduce Figs. 4-5: NAS agents with predefined and learned metrics.")
    p.add_argument("--algos", default=",".join(ALGORITHMS), type=lambda s: _csv_list(s, ALGORITHMS, "algorithm"))
    p.add_argument("--variants", default=",".join(VARIANTS), type=lambda s: _csv_list(s, VARIANTS, "variant"))
    p.add_argument("--metrics", default=",".join(METRICS), type=lambda s: _csv_list(s, METRICS, "metric"))
    p.add_argument("--datasets", default=",".join(DATASETS), type=lambda s: _csv_list(s, DATASETS, "dataset"))
    p.add_argument("--seeds", type=int, default=20, help="seeds per configuration (0 .. seeds-1, plus --seed-offset)")
    p.add_argument("--seed-offset", type=int, default=0)
    p.add_argument("--evaluations", type=int, default=100,
                   help="evaluated architectures per run (distinct ones unless --count-repeats)")
    p.add_argument("--count-repeats", action="store_true",
                   help="charge re-evaluations of an architecture to the budget (the protocol before 0.2; "
                        "default: a repeat is free, SearchBudget(count_repeats=False))")
    p.add_argument("--epochs", type=int, default=200, help="training epochs of the search metrics (12 or 200)")
    p.add_argument("--search-accuracy", choices=("valid", "test"), default="valid",
                   help="accuracy the search reward reads (valid: what a search may see; test: the paper's Eq. 3)")
    p.add_argument("--out", default="results/figs45", help="output directory")
    p.add_argument("--workers", type=int, default=2, help="worker processes (or Ray workers)")
    p.add_argument("--executor", choices=("pool", "ray"), default="pool",
                   help="where runs go: local processes (pool) or Ray (ray; docs/distributed.md)")
    p.add_argument("--address", default=None, help="Ray cluster to join with --executor ray (e.g. auto); default: start Ray here")
    p.add_argument("--data", default=None, help="benchmark data directory (default: $NATSBENCH_DATA ...)")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("agents").setLevel(logging.WARNING)  # one line per SB3 model built is noise here
    if args.seeds < 1 or args.evaluations < 1:
        parser.error("--seeds and --evaluations must be >= 1")
    jobs = [
        Job(algo, variant, metric, dataset, args.seed_offset + s, args.evaluations, args.epochs, args.search_accuracy,
            args.data, args.count_repeats)
        for metric in args.metrics
        for dataset in args.datasets
        for algo in args.algos
        for variant in args.variants
        if not (algo == "lemonade" and variant == "learned")
        for s in range(args.seeds)
    ]
    if not jobs:
        parser.error("nothing to run (LEMONADE has only the predefined variant)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python scripts/reproduce_figs45.py " + " ".join(sys.argv[1:] if argv is None else argv)
    logger.info("%d runs on %d worker(s) -> %s", len(jobs), args.workers, out)
    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    if args.executor == "ray":
        from natsbench_gym.live.executor import RayExecutor

        with RayExecutor(None if args.address else args.workers, args.address) as ray_executor, _bar(len(jobs)) as bar:
            for run in ray_executor.map_unordered(run_job, jobs, _init_worker):
                runs.append(run)
                bar.update()
    elif args.workers <= 1:
        with _bar(len(jobs)) as bar:
            for job in jobs:
                runs.append(run_job(job))
                bar.update()
    else:
        with multiprocessing.get_context("fork").Pool(args.workers, initializer=_init_worker) as pool, _bar(len(jobs)) as bar:
            for run in pool.imap_unordered(run_job, jobs, chunksize=4):
                runs.append(run)
                bar.update()
    seconds = time.perf_counter() - start
    runs.sort(key=lambda r: (_order((r["metric"], r["dataset"], r["algo"], r["variant"], 0)), r["seed"]))

    rows = score_runs(runs, args.data, epochs=200)
    curves = aggregate(rows)
    summary = [r for r in curves if r["evaluations"] == args.evaluations]
    write_csv(out / "runs.csv", rows)
    write_csv(out / "curves.csv", curves)
    write_csv(out / "summary.csv", summary)
    timing = defaultdict(list)
    for r in runs:
        timing[r["algo"], r["variant"]].append(r["seconds"])
    env_evaluations = defaultdict(list)
    for r in runs:
        env_evaluations[r["algo"], r["variant"]].append(r["env_evaluations"])
    write_csv(out / "timing.csv", [{"algo": a, "variant": v, "runs": len(t), "mean_seconds": float(np.mean(t)),
                                    "mean_env_evaluations": float(np.mean(env_evaluations[a, v]))}
                                   for (a, v), t in sorted(timing.items())])
    ceiling_rows = ceilings(args.data, args.metrics, args.datasets, args.search_accuracy, args.epochs,
                            args.evaluations)
    write_csv(out / "ceilings.csv", ceiling_rows)
    for metric in args.metrics:
        plot(curves, metric, out / f"{FIGURES[metric]}.png")
    text = summary_markdown(summary, command, seconds, len(runs), ceiling_rows)
    (out / "summary.md").write_text(text)
    print(text)
    return 0


def _bar(total: int):
    """The progress bar over the sweep's runs (count, rate, time left)."""
    from tqdm import tqdm

    return tqdm(total=total, desc="figs 4-5", unit="run", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

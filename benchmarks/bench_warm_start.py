"""Warm start from earlier users: a simulated population, leave-one-user-out, with and without.

Usage (needs the NATS-Bench table: ``NATSBENCH_DATA``)::

    python benchmarks/bench_warm_start.py [--per-cluster 13] [--judgments 5,10,20] [--grid 1,2,3,...,40]
        [--datasets cifar10,cifar100,ImageNet16-120] [--workers 2] [--out results/warm_start]

The population: ``4 x --per-cluster`` synthetic users in four clusters (below), each with its own
weights or threshold drawn from its cluster, plus six outliers like none of them. Every population
user first ran one earlier session (a cold start, 20 judgments, on one of the three datasets in
turn, on its own device) that is kept in a preference library (a temporary SQLite file). Then, for
each user, dataset, judgment budget ``N`` and mode, a personalized search runs: regularized
evolution (population 10, tournament 5), 100 evaluations, ``Personalization(user, N)`` with the
interactive default; mode ``warm`` adds ``warm_start=`` the population prior of the library
*without the user's own session* (leave-one-user-out; the outliers see all the population's), mode
``cold`` does not. Cold and warm runs of a cell share the seed.

Measured per run: the top-10 precision of the final model on 100 random test architectures
(the paper's protocol; the same 100 for both modes), the recommendation's percentile in the user's
own utility over the whole space, the population's share of the posterior at the end and whether
the judgments disagree with the population. Judgments needed = the smallest ``N`` of the grid whose
run reaches 0.9 top-10 precision (censored at the largest).

Clusters (utilities in [0, 1], 1 best; ``q``: a quantile over the space on the dataset and device):

* ``accurate``: ``w . (accuracy, latency, params, FLOPs)``, ``w ~ Dirichlet(40 * (.8, .1, .05, .05))``;
* ``mobile``: the best accuracy among the architectures whose latency on the user's phone
  (``pixel3`` or ``samsung_a50``, stated as the env's device) is at most its ``q``-quantile,
  ``q ~ U(.25, .45)``;
* ``small``: the best accuracy with params at most the ``q``-quantile, ``q ~ U(.2, .4)``;
* ``balanced``: ``w ~ Dirichlet(40 * (.45, .15, .1, .3))``.

Outliers: latency first (``w = (.05, .9, .025, .025)``), params first (``(.3, 0, .7, 0)``), a tight
FLOPs budget (best accuracy with FLOPs at most the 10 % quantile), and three out-of-family users of
docs/personalization.md (``cobb_douglas``, ``latency_knee``, ``near_best_then_cheapest``).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
CLUSTERS = ("accurate", "mobile", "small", "balanced")
PHONES = ("pixel3", "samsung_a50")
OUTLIERS = (
    {"name": "outlier:latency_first", "cluster": "outlier", "kind": "weighted", "w": (0.05, 0.9, 0.025, 0.025), "device": None},
    {"name": "outlier:params_first", "cluster": "outlier", "kind": "weighted", "w": (0.3, 0.0, 0.7, 0.0), "device": None},
    {"name": "outlier:tight_flops", "cluster": "outlier", "kind": "budget", "metric": "flops", "q": 0.1, "device": None},
    {"name": "outlier:cobb_douglas", "cluster": "outlier", "kind": "named", "user": "cobb_douglas", "device": None},
    {"name": "outlier:latency_knee", "cluster": "outlier", "kind": "named", "user": "latency_knee", "device": None},
    {"name": "outlier:near_best_then_cheapest", "cluster": "outlier", "kind": "named", "user": "near_best_then_cheapest", "device": None},
)
_ENVS: dict = {}
_PRIORS: dict = {}
#: Each weighted cluster's Dirichlet concentration over (accuracy, latency, params, FLOPs), and each
#: budget cluster's metric and quantile range (see :func:`population_specs`).
CLUSTER_WEIGHTS = {"accurate": 40 * np.array([0.8, 0.1, 0.05, 0.05]), "balanced": 40 * np.array([0.45, 0.15, 0.1, 0.3])}
CLUSTER_BUDGETS = {"mobile": ("latency", 0.25, 0.45), "small": ("params", 0.2, 0.4)}


class ClusterOracle:
    """The best prior a library of earlier users could give (``--oracle``): the user's own cluster's
    distribution itself, known exactly, as the whole prior (weight 1). A weighted cluster's mass on
    the family's trade-off draws is its Dirichlet density there; a budget cluster's mass is spread
    evenly over the constraints "best accuracy where the metric's rank utility >= 1 - q" for the
    levels of the cluster's ``q`` range. No library can know a new user's cluster, so the judgments
    it needs bound what any warm start of the metric-family prior can reach on this population.
    The posterior's empirical-Bayes rule applies as for a library (a user unlike it gets the flat
    prior)."""

    users = 1
    weight = 1.0

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.effective_draws: float | None = None

    def population_distribution(self, hyp, features, thresholds, key=None):
        f = len(features)
        order = [next(i for i, n in enumerate(features) if name in n) for name in ("accuracy", "latency", "params", "flops")]
        h_lin, h_con = hyp.weights.shape[0], hyp.objective.size
        out = np.zeros(hyp.size)
        if self.cluster in CLUSTER_WEIGHTS:
            alpha = np.empty(f)
            alpha[order] = CLUSTER_WEIGHTS[self.cluster]
            draws = np.clip(hyp.weights[f:h_lin], 1e-12, None)
            logpdf = np.log(draws) @ (alpha - 1.0)
            w = np.exp(logpdf - logpdf.max())
            out[f:h_lin] = w / w.sum()
            self.effective_draws = float(w.sum() ** 2 / (w**2).sum())
        else:
            metric, low, high = CLUSTER_BUDGETS[self.cluster]
            acc, con = order[0], order[("accuracy", "latency", "params", "flops").index(metric)]
            level = hyp.level
            rows = (hyp.objective == acc) & (hyp.constrained == con) & (level >= 1 - high - 1e-9) & (level <= 1 - low + 1e-9)
            out[h_lin : h_lin + h_con][rows] = 1.0
        return out / out.sum()


def population_specs(per_cluster: int, seed: int = 0) -> list[dict]:
    """The population's users, drawn from the four clusters (see the module docs)."""
    rng = np.random.default_rng([seed, 0x90B])
    specs = []
    for c in CLUSTERS:
        for j in range(per_cluster):
            name = f"{c}:{j}"
            if c == "accurate":
                specs.append({"name": name, "cluster": c, "kind": "weighted", "w": tuple(rng.dirichlet(40 * np.array([0.8, 0.1, 0.05, 0.05]))), "device": None})
            elif c == "balanced":
                specs.append({"name": name, "cluster": c, "kind": "weighted", "w": tuple(rng.dirichlet(40 * np.array([0.45, 0.15, 0.1, 0.3]))), "device": None})
            elif c == "mobile":
                specs.append({"name": name, "cluster": c, "kind": "budget", "metric": "latency", "q": float(rng.uniform(0.25, 0.45)), "device": PHONES[j % 2]})
            else:
                specs.append({"name": name, "cluster": c, "kind": "budget", "metric": "params", "q": float(rng.uniform(0.2, 0.4)), "device": None})
    return specs


def _env(dataset: str, device: str | None):
    key = (dataset, device)
    if key not in _ENVS:
        import gymnasium as gym

        from natsbench_gym import ENV_IDS

        _ENVS[key] = gym.make(ENV_IDS["topology"], dataset=dataset, **({"device": device} if device else {}))
    return _ENVS[key]


def make_population_user(spec: dict, context):
    """The synthetic judge of ``spec`` in ``context`` (its device is the context's)."""
    from natsbench_gym.rewards import utility
    from natsbench_gym.types import Metric
    from reward_models.human_preference import SyntheticUser, UtilityUser, make_user

    if spec["kind"] == "named":
        return make_user(spec["user"], context)
    if spec["kind"] == "weighted":
        w = np.asarray(spec["w"], dtype=np.float64)
        return SyntheticUser(UtilityUser(spec["name"], lambda acc, lat, par, flo: w[0] * acc + w[1] * lat + w[2] * par + w[3] * flo), context)
    metric = Metric.parse(spec["metric"])
    bound = float(np.quantile(context.space_values(metric), spec["q"]))
    cut = float(np.asarray(utility(metric, np.asarray([bound]), context)).reshape(-1)[0])
    column = {"latency": 1, "params": 2, "flops": 3}[spec["metric"]]

    def fn(*u):
        return np.where(u[column] >= cut - 1e-12, 1.0 + u[0], u[0] - 1.0)

    return SyntheticUser(UtilityUser(spec["name"], fn), context)


def _percentile(u: np.ndarray, i: int) -> float:
    return float(100.0 * np.mean(u <= u[i]))


_WEIGHT: dict = {"weight": 0.5, "em_steps": None}


def _prior(library: str, exclude: int | None):
    key = (library, exclude)
    if key not in _PRIORS:
        from reward_models.library import PreferenceLibrary

        _PRIORS[key] = PreferenceLibrary(library).population_prior(
            space="topology", exclude=() if exclude is None else (exclude,), weight=_WEIGHT["weight"],
            **({} if _WEIGHT["em_steps"] is None else {"em_steps": _WEIGHT["em_steps"]}),
        )
    return _PRIORS[key]


def run_search(spec: dict, session: int | None, dataset: str, n: int, mode: str, seed: int, library: str, evaluations: int) -> list[dict]:
    """One personalized search (``n`` judgments, interactive default); its row."""
    from agents.evolution import RegularizedEvolution
    from agents.personalization import Personalization

    env = _env(dataset, spec["device"])
    ctx = env.unwrapped.context
    user = make_population_user(spec, ctx)
    u = user.utilities(np.arange(ctx.benchmark.space.size))
    kwargs = {"warm_start": _prior(library, session)} if mode == "warm" else {}
    start = time.perf_counter()
    result = RegularizedEvolution(10, 5, seed=seed, personalization=Personalization(user, n, **kwargs)).search(env, evaluations)
    seconds = time.perf_counter() - start
    ws = result.info.get("warm_start") or {}
    rec = result.best.index
    evaluated = [ev.index for ev in result.history]
    return [{
        "kind": "search", "user": spec["name"], "cluster": spec["cluster"], "dataset": dataset, "judgments": n, "mode": mode, "seed": seed,
        "precision": "", "percentile": _percentile(u, rec),
        "is_best_evaluated": bool(u[rec] >= max(u[i] for i in evaluated)),
        "population_share": "" if ws.get("share") is None else round(float(ws["share"]), 4),
        "disagrees": "" if not ws else bool(ws.get("disagrees")),
        "seconds": round(seconds, 3),
    }]


def run_curve(spec: dict, session: int | None, dataset: str, grid: tuple[int, ...], mode: str, seed: int, library: str) -> list[dict]:
    """The learner alone, Table I's protocol: the first ``n`` of a fixed sequence of random pairs
    among 50 random architectures (the same pairs for both modes), the default interactive model
    (RankNet, 5-member bootstrap ensemble, metric-family prior; with a warm start the population's
    mixture) fitted for each ``n`` of the grid, top-10 precision on 100 other random architectures.
    One row per ``n``.

    (The product's EUBO queries aim at the single best architecture, not at the order of a top ten,
    so with them top-10 precision plateaus near 0.7 for every user, warm or cold: measured while
    building this benchmark. Random pairs measure what the prior knows about the whole ranking.)"""
    from agents.personalization import Personalization
    from reward_models.evaluation import top_k_precision

    env = _env(dataset, spec["device"])
    ctx = env.unwrapped.context
    user = make_population_user(spec, ctx)
    size = ctx.benchmark.space.size
    rng = np.random.default_rng([seed, 0xC0FE])
    archs = rng.choice(size, size=150, replace=False)
    pool, test = archs[:50], archs[50:]
    pairs = [tuple(int(x) for x in rng.choice(pool, size=2, replace=False)) for _ in range(max(grid))]
    comparisons = user(pairs, rng=rng)
    truth = user.utilities(test)
    population = _prior(library, session) if mode == "warm" else (ClusterOracle(spec["cluster"]) if mode == "oracle" else None)
    loop = Personalization(user, max(grid))
    metrics = None
    rows = []
    for n in grid:
        start = time.perf_counter()
        model = loop.new_model(seed + n, population).fit(comparisons[:n], ctx)  # the interactive loop's default model
        if metrics is None:
            metrics = ctx.query(test, model.required_metrics(ctx))
        scores = np.asarray(model.score_many(metrics, ctx), dtype=np.float64)
        post = model.posterior
        share = None if post is None else post.population_share
        rows.append({
            "kind": "curve", "user": spec["name"], "cluster": spec["cluster"], "dataset": dataset, "judgments": n, "mode": mode, "seed": seed,
            "precision": top_k_precision(scores, truth, 10), "percentile": "", "is_best_evaluated": "",
            "population_share": "" if share is None else round(float(share), 4),
            "disagrees": "" if post is None or post.population_evidence is None else bool(post.population_evidence < -np.log(3.0)),
            "seconds": round(time.perf_counter() - start, 3),
        })
    return rows


def _task(args):
    kind, *rest = args
    try:
        return (run_search if kind == "search" else run_curve)(*rest)
    except Exception as exc:  # noqa: BLE001 - one failing run is reported, not the sweep lost
        import traceback

        return [{"error": f"{kind} {rest[0]['name']} {rest[2:5]}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"}]


def _init_worker(weight: float = 0.5, em_steps: int | None = None) -> None:
    _WEIGHT["weight"] = weight
    _WEIGHT["em_steps"] = em_steps
    import torch

    torch.set_num_threads(1)


def build_library(path: str, specs: list[dict], judgments: int, evaluations: int) -> dict[str, int]:
    """Every population user's earlier session (cold, ``judgments``, dataset in turn), remembered."""
    from agents.evolution import RegularizedEvolution
    from agents.personalization import Personalization
    from reward_models.library import PreferenceLibrary

    lib = PreferenceLibrary(path)
    ids = {}
    for i, spec in enumerate(specs):
        dataset = DATASETS[i % len(DATASETS)]
        env = _env(dataset, spec["device"])
        user = make_population_user(spec, env.unwrapped.context)
        p = Personalization(user, judgments, remember=lib, remember_label=spec["name"])
        result = RegularizedEvolution(10, 5, seed=50_000 + i, personalization=p).search(env, evaluations)
        ids[spec["name"]] = int(result.info["remembered"]["session"])
    return ids


def judgments_needed(rows: list[dict], grid: tuple[int, ...], goal: float = 0.9) -> dict[tuple, float]:
    """``(user, dataset, mode) -> the smallest N of the grid whose run reaches ``goal`` (inf: none)."""
    by: dict[tuple, dict[int, float]] = {}
    for r in rows:
        if r["kind"] != "curve":
            continue
        by.setdefault((r["user"], r["dataset"], r["mode"]), {})[int(r["judgments"])] = float(r["precision"])
    out = {}
    for key, prec in by.items():
        out[key] = next((float(n) for n in grid if prec.get(n, -1.0) >= goal - 1e-12), float("inf"))
    return out


def summarise(rows: list[dict], grid: tuple[int, ...], datasets: tuple[str, ...], report: tuple[int, ...] = (5, 10, 20)) -> str:
    need = judgments_needed(rows, grid)
    curve = [r for r in rows if r["kind"] == "curve"]
    rows = [r for r in rows if r["kind"] == "search"]
    groups = {"population": lambda r: r["cluster"] != "outlier", "outlier": lambda r: r["cluster"] == "outlier"}
    out = []
    out.append("Judgments needed to reach 0.9 top-10 precision (the learner on random pairs; median over the users and datasets; "
               "> max: not reached within the grid), and the mean top-10 precision at 5, 10 and 20 judgments:\n")
    out.append("| users | dataset | cold: median N | warm: median N | cold / warm | warm halves it | " +
               " | ".join(f"precision at {n}: cold / warm" for n in report) + " |")
    out.append("|---|---|---|---|---|---|" + "---|" * len(report))

    def med(values):
        v = np.asarray(values, dtype=np.float64)
        return float(np.median(v)) if v.size else float("nan")

    def fmt_n(x):
        return f"> {grid[-1]}" if not np.isfinite(x) else f"{x:g}"

    for gname, pred in groups.items():
        users = sorted({r["user"] for r in curve if pred(r)})
        for ds in (*datasets, "all"):
            dss = datasets if ds == "all" else (ds,)
            cold = [need[(u, d, "cold")] for u in users for d in dss if (u, d, "cold") in need]
            warm = [need[(u, d, "warm")] for u in users for d in dss if (u, d, "warm") in need]
            mc, mw = med(cold), med(warm)
            ratio = mc / mw if np.isfinite(mc) and np.isfinite(mw) and mw > 0 else float("nan")
            prec = []
            for n in report:
                pc = [float(r["precision"]) for r in curve if pred(r) and r["dataset"] in dss and int(r["judgments"]) == n and r["mode"] == "cold"]
                pw = [float(r["precision"]) for r in curve if pred(r) and r["dataset"] in dss and int(r["judgments"]) == n and r["mode"] == "warm"]
                prec.append(f"{np.mean(pc):.3f} / {np.mean(pw):.3f}" if pc and pw else "n/a")
            halves = "yes" if np.isfinite(ratio) and ratio >= 2 - 1e-9 else ("n/a" if not np.isfinite(ratio) else f"no ({ratio:.2f}x)")
            label = ds if ds != "all" else "**all three**"
            out.append(f"| {gname} ({len(users)}) | {label} | {fmt_n(mc)} | {fmt_n(mw)} | {ratio:.2f}x | {halves} | " + " | ".join(prec) + " |")
    if any(r["mode"] == "oracle" for r in curve):
        out.append("")
        out.append("The bound (`--oracle`): the learner with the user's own cluster's distribution as its whole prior, "
                   "judgments needed (median) and mean top-10 precision, cold / warm / oracle:\n")
        out.append("| cluster | cold: median N | warm | oracle | cold / oracle | " + " | ".join(f"precision at {n}" for n in report) + " |")
        out.append("|---|---|---|---|---|" + "---|" * len(report))
        clusters = sorted({r["cluster"] for r in curve if r["mode"] == "oracle"})
        for cl in (*clusters, "all"):
            users = sorted({r["user"] for r in curve if r["mode"] == "oracle" and (cl == "all" or r["cluster"] == cl)})
            ns = {m: med([need[(u, d, m)] for u in users for d in datasets if (u, d, m) in need]) for m in ("cold", "warm", "oracle")}
            ratio = ns["cold"] / ns["oracle"] if np.isfinite(ns["cold"]) and np.isfinite(ns["oracle"]) and ns["oracle"] > 0 else float("nan")
            prec = []
            for n in report:
                vals = [np.mean([float(r["precision"]) for r in curve if r["user"] in users and int(r["judgments"]) == n and r["mode"] == m] or [np.nan])
                        for m in ("cold", "warm", "oracle")]
                prec.append(" / ".join(f"{v:.3f}" for v in vals))
            out.append(f"| {cl if cl != 'all' else '**all four**'} | {fmt_n(ns['cold'])} | {fmt_n(ns['warm'])} | {fmt_n(ns['oracle'])} | {ratio:.2f}x | " + " | ".join(prec) + " |")
    out.append("")
    out.append("Mean percentile of the recommendation of a personalized search (regularized evolution, 100 evaluations, "
               "interactive rounds; the user's own utility over the whole space), cold / warm / warm - cold:\n")
    out.append("| users | dataset | " + " | ".join(f"N = {n}" for n in report) + " |")
    out.append("|---|---|" + "---|" * len(report))
    for gname, pred in groups.items():
        for ds in (*datasets, "all"):
            dss = datasets if ds == "all" else (ds,)
            cells = []
            for n in report:
                pc = [float(r["percentile"]) for r in rows if pred(r) and r["dataset"] in dss and int(r["judgments"]) == n and r["mode"] == "cold"]
                pw = [float(r["percentile"]) for r in rows if pred(r) and r["dataset"] in dss and int(r["judgments"]) == n and r["mode"] == "warm"]
                cells.append(f"{np.mean(pc):.2f} / {np.mean(pw):.2f} / {np.mean(pw) - np.mean(pc):+.2f}" if pc and pw else "n/a")
            out.append(f"| {gname} | {ds if ds != 'all' else '**all three**'} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Outliers, each (mean over the datasets; percentile cold / warm, the population's share of the final posterior, "
               "share of runs whose judgments disagree with the population):\n")
    out.append("| outlier | " + " | ".join(f"N = {n}" for n in report) + " |")
    out.append("|---|" + "---|" * len(report))
    for user in sorted({r["user"] for r in rows if r["cluster"] == "outlier"}):
        cells = []
        for n in report:
            rc = [r for r in rows if r["user"] == user and int(r["judgments"]) == n and r["mode"] == "cold"]
            rw = [r for r in rows if r["user"] == user and int(r["judgments"]) == n and r["mode"] == "warm"]
            if not rc or not rw:
                cells.append("n/a")
                continue
            share = np.mean([float(r["population_share"]) for r in rw if r["population_share"] != ""])
            dis = np.mean([str(r["disagrees"]) == "True" for r in rw])
            cells.append(f"{np.mean([float(r['percentile']) for r in rc]):.2f} / {np.mean([float(r['percentile']) for r in rw]):.2f}, share {share:.2f}, disagree {dis:.0%}")
        out.append(f"| {user} | " + " | ".join(cells) + " |")
    out.append("")
    for gname, pred in groups.items():
        for mode in ("cold", "warm"):
            best = [str(r["is_best_evaluated"]) == "True" for r in rows if pred(r) and r["mode"] == mode]
            if best:
                out.append(f"{gname}, {mode}: the recommendation is the best architecture the search evaluated in {np.mean(best):.1%} of runs.  ")
    pop_rows = [r for r in rows if r["cluster"] != "outlier" and r["mode"] == "warm" and r["population_share"] != ""]
    if pop_rows:
        out.append(f"Population users, warm: mean population share of the final posterior {np.mean([float(r['population_share']) for r in pop_rows]):.2f}, "
                   f"judgments said to disagree with the population in {np.mean([str(r['disagrees']) == 'True' for r in pop_rows]):.1%} of runs.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-cluster", type=int, default=13, help="users per cluster (4 clusters)")
    parser.add_argument("--grid", default="1,2,3,4,5,6,8,10,12,15,20,25,30,40,50",
                        help="judgment counts of the learner's curve (judgments needed for 0.9 top-10 precision)")
    parser.add_argument("--judgments", default="5,10,20", help="judgment budgets of the personalized searches")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--library-judgments", type=int, default=20, help="judgments of each user's earlier (remembered) session")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--seed", type=int, default=0, help="draws the population")
    parser.add_argument("--weight", type=float, default=0.5, help="the population's weight in the prior (PopulationPrior.weight)")
    parser.add_argument("--modes", default="cold,warm", help="which of cold, warm to run (e.g. warm alone, to compare prior settings)")
    parser.add_argument("--em-steps", type=int, default=None,
                        help="PopulationPrior.em_steps (default: the library's, 20): EM steps toward the earlier users' common prior; "
                             "1: the mean of their summaries")
    parser.add_argument("--kinds", default="curve,search", help="what to run: curve (the learner), search (the personalized searches)")
    parser.add_argument("--users", default="all", choices=("all", "population", "outliers"), help="whose runs (the library is always built)")
    parser.add_argument("--search-seeds", type=int, default=1, help="seeds of each personalized search cell (user, dataset, N, mode)")
    parser.add_argument("--oracle", action="store_true",
                        help="also the learner with the user's own cluster's distribution as its prior (ClusterOracle): the bound of any warm start")
    parser.add_argument("--out", default="results/warm_start")
    args = parser.parse_args(argv)
    if not os.environ.get("NATSBENCH_DATA"):
        print("this benchmark needs the NATS-Bench table: set NATSBENCH_DATA (see README, 'Get the NATS-Bench data')", file=sys.stderr)
        return 2
    from tqdm import tqdm

    _init_worker(args.weight, args.em_steps)
    grid = tuple(sorted(int(x) for x in args.grid.split(",")))
    report = tuple(sorted(int(x) for x in args.judgments.split(",")))
    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    specs = population_specs(args.per_cluster, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        library = os.path.join(tmp, "library.sqlite")
        sessions = build_library(library, specs, args.library_judgments, args.evaluations)
        built = time.perf_counter() - start
        print(f"library: {len(sessions)} earlier sessions in {built:.0f} s", file=sys.stderr)
        tasks = []
        for i, spec in enumerate([*specs, *OUTLIERS]):
            if args.users != "all" and (spec["cluster"] == "outlier") != (args.users == "outliers"):
                continue
            for d, ds in enumerate(datasets):
                for mode in ("cold", "warm", "oracle"):
                    if mode == "oracle" and (not args.oracle or spec["cluster"] == "outlier"):
                        continue
                    if mode != "oracle" and mode not in args.modes.split(","):
                        continue
                    session = sessions.get(spec["name"])
                    if "curve" in args.kinds:
                        tasks.append(("curve", spec, session, ds, grid, mode, 1000 * i + d, library))
                    if mode == "oracle":
                        continue
                    for n in report if "search" in args.kinds else ():
                        for k in range(args.search_seeds):
                            seed = 1000 * i + 100 * d + n + 1_000_000 * k
                            tasks.append(("search", spec, session, ds, n, mode, seed, library, args.evaluations))
        rows: list[dict] = []
        with ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=(args.weight, args.em_steps)) as pool:
            futures = [pool.submit(_task, t) for t in tasks]
            for f in tqdm(as_completed(futures), total=len(futures), desc="runs", unit="run"):
                rows.extend(f.result())
    errors = [r.pop("error") for r in rows if "error" in r]
    rows = [r for r in rows if r]
    for error in errors:
        print(f"FAILED {error}", file=sys.stderr)
    rows.sort(key=lambda r: (r["kind"], r["cluster"], r["user"], r["dataset"], r["judgments"], r["mode"]))
    with open(out / "runs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    elapsed = time.perf_counter() - start
    summary = summarise(rows, grid, datasets, report)
    summary += (f"\nRuntime: {elapsed / 60:.1f} min with {args.workers} workers (library {built:.0f} s); {len(rows)} runs, "
                f"{len(errors)} failed; command: `python benchmarks/bench_warm_start.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n")
    (out / "summary.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How good is the recommendation of an interactive personalized search, for users the paper never tried?

For each synthetic user (the paper's six, docs/table1.md's four extra users and the out-of-family
users of :data:`reward_models.human_preference.OUT_OF_FAMILY_USERS`), dataset and seed, regularized
evolution (p = 10, s = 5, 100 evaluations on the table) runs personalized with N judgments in all,
and the recommendation (``result.best``) is placed in the user's own utility over the whole space
(percentile: share of the space it is at least as good as). Methods, all in the same runs:

* ``interactive`` -- the default loop (``Personalization(user, N)``: rounds during the search, EUBO
  pairs among the best candidates, RankNet with its metric-family prior);
* ``one-shot`` -- the paper's protocol (one round of N random pairs among the initial population);
* ``botorch`` -- the peer: BoTorch's ``PairwiseGP`` as the model and BoTorch's EUBO choosing the
  pairs, in the same interactive loop (needs ``pip install "natsbench-gym[botorch]"``);
* ``ceiling`` -- regularized evolution with the user's true utility as its fitness;
* ``random`` -- the best of 100 distinct random architectures under the true utility;
* ``devices`` (only when named in ``--methods``) -- ``interactive`` with ``devices="all"``: the model
  reads the latency of all 27 devices and follows the one the judgments fit best.
* ``own-device`` (only when named; users whose utility reads a device's latency, others are skipped)
  -- ``interactive`` with the user's device(s) stated: one device becomes the env's latency device
  (``gym.make(..., device=...)``), several are named as ``devices=[...]``.
* ``judged`` (only when named) -- ``interactive`` with ``recommend="judged"``: the recommendation is
  the best candidate under the final model among those the judge has seen in a pair.
* ``likelihood`` (only when named) -- ``interactive`` with ``model_options={"acceptance": "likelihood"}``:
  the prior is accepted by its cross-validated likelihood against the network's, not by agreement.

``--flip P``: the users answer carelessly, reversing each answer with probability ``P`` (the
percentile stays that of their noise-free utility).

It also reports the share of runs whose recommendation is the best architecture the search
evaluated (under the true utility), and the slowest round's refit and next-pair choice.

Writes ``runs.csv`` (one row per run), ``summary.csv`` (per cell: seeds, mean and standard
deviation of the percentile, the best evaluated architecture's, the share of runs whose
recommendation is it, the median of the runs' longest wait; docs/personalization_summary.csv) and
``summary.md`` (the tables of docs/personalization.md) under ``--out``; shows a progress bar.
``--previous SUMMARY_CSV`` rerunning one method alone: the cells this run lacks are read from an
earlier run's ``summary.csv`` (they count in the tables with their mean and are copied into the new
``summary.csv`` as they were).

Example:
    NATSBENCH_DATA=../shared/natsbench python benchmarks/bench_personalization.py --seeds 20 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
METHODS = ("interactive", "one-shot", "botorch", "ceiling", "random")
#: Methods that are run when named in ``--methods`` but not by default.
EXTRA_METHODS = ("devices", "own-device", "judged", "likelihood")
_ENVS: dict = {}


def _users() -> dict[str, tuple[str, ...]]:
    from reward_models.fixed import PAPER_METRICS
    from reward_models.human_preference import EXTRA_USERS, OUT_OF_FAMILY_USERS

    return {"paper": PAPER_METRICS, "extra": EXTRA_USERS, "new": OUT_OF_FAMILY_USERS}


def _env(dataset: str, device: str | None = None):
    key = (dataset, device)
    if key not in _ENVS:
        import gymnasium as gym

        from natsbench_gym import ENV_IDS

        _ENVS[key] = gym.make(ENV_IDS["topology"], dataset=dataset, **({"device": device} if device else {}))
    return _ENVS[key]


def _percentile(u: np.ndarray, i: int) -> float:
    return float(100.0 * np.mean(u <= u[i]))


def run_one(
    user_name: str, dataset: str, seed: int, judgments: tuple[int, ...], methods: tuple[str, ...], evaluations: int,
    peer_judgments: tuple[int, ...] | None = None, flip: float = 0.0,
) -> list[dict]:
    """Every method for one user, dataset and seed; one row per (method, N)."""
    from agents.evolution import RegularizedEvolution
    from agents.personalization import Personalization
    from reward_models.human_preference import make_user

    env = _env(dataset)
    ctx = env.unwrapped.context
    from reward_models.human_preference import NoiseModel

    user = make_user(user_name, ctx, seed=seed, noise=NoiseModel(flip_probability=flip) if flip else None)
    u = user.utilities(np.arange(ctx.benchmark.space.size))
    rows = []

    def row(method: str, n: int, rec: int, evaluated: list[int], seconds: float, round_seconds: float = 0.0, mode: str = "",
            device: str = "") -> dict:
        return {
            "method": method, "user": user_name, "dataset": dataset, "judgments": n, "seed": seed,
            "percentile": _percentile(u, rec),
            "best_evaluated_percentile": _percentile(u, max(evaluated, key=lambda i: u[i])),
            "is_best_evaluated": bool(u[rec] >= max(u[i] for i in evaluated)),
            "seconds": seconds, "max_round_seconds": round_seconds, "mode": mode, "device": device,
        }

    for method in methods:
        if method in ("interactive", "one-shot", "botorch", "devices", "own-device", "judged", "likelihood"):
            own = tuple(getattr(user, "devices", ()) or ())
            if method == "own-device" and not own:
                continue  # the user reads the env's device: the same as interactive
            search_env = _env(dataset, own[0]) if method == "own-device" and len(own) == 1 else env
            for n in judgments if method != "botorch" or peer_judgments is None else peer_judgments:
                kwargs = {}
                if method == "own-device" and len(own) > 1:
                    kwargs = {"devices": list(own)}
                elif method == "one-shot":
                    kwargs = {"schedule": "one-shot"}
                elif method == "devices":
                    kwargs = {"devices": "all"}  # the model reads all 27 devices and learns which one
                elif method == "likelihood":
                    kwargs = {"model_options": {"acceptance": "likelihood"}}
                elif method == "judged":
                    kwargs = {"recommend": "judged"}
                elif method == "botorch":
                    from reward_models.pairwise_gp import BoTorchEUBOSelector, PairwiseGPRewardModel

                    kwargs = {"make_reward_model": lambda s: PairwiseGPRewardModel(seed=s % 2**31), "pair_selector": BoTorchEUBOSelector()}
                start = time.perf_counter()
                agent = RegularizedEvolution(10, 5, seed=seed, personalization=Personalization(user, n, **kwargs))
                result = agent.search(search_env, evaluations)
                rounds = result.info.get("rounds") or []
                rows.append(row(
                    method, n, result.best.index, [ev.index for ev in result.history], time.perf_counter() - start,
                    max((r["seconds"] for r in rounds), default=0.0),
                    str(getattr(result.info.get("learned_metric"), "mode", ""))
                    + ("/non-monotone" if getattr(result.info.get("learned_metric"), "monotone", True) is False else ""),
                    str(getattr(result.info.get("learned_metric"), "device", "") or ""),
                ))
        elif method == "ceiling":
            start = time.perf_counter()
            result = _OracleEvolution(u, seed).search(env, evaluations)
            rows.append(row("ceiling", 0, int(result.best.index), [ev.index for ev in result.history], time.perf_counter() - start))
        elif method == "random":
            picks = np.random.default_rng([seed, 0x5EED]).choice(u.size, size=evaluations, replace=False)
            best = int(picks[np.argmax(u[picks])])
            rows.append(row("random", 0, best, picks.tolist(), 0.0))
    return rows


def _oracle_class():
    from agents.evolution import RegularizedEvolution

    class OracleEvolution(RegularizedEvolution):
        """Regularized evolution whose fitness is the user's true utility (the ceiling)."""

        def __init__(self, utilities: np.ndarray, seed: int) -> None:
            super().__init__(10, 5, seed=seed)
            self.utilities = utilities

        def search_score(self, evaluation) -> float:
            return float(self.utilities[evaluation.index])

        def _result_scores(self):
            return [self.search_score(ev) for ev in self.history]

    return OracleEvolution


def _OracleEvolution(u: np.ndarray, seed: int):  # noqa: N802 - a factory standing for the class
    return _oracle_class()(u, seed)


def _task(args):
    try:
        return run_one(*args)
    except Exception as exc:  # noqa: BLE001 - one failing run is reported, not the sweep lost
        import traceback

        return [{"error": f"{args[:3]}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"}]


def _init_worker() -> None:
    """One torch thread per worker: the models are tiny, and the workers already fill the cores."""
    import torch

    torch.set_num_threads(1)


SUMMARY_FIELDS = ("method", "user", "dataset", "judgments", "seeds", "percentile_mean", "percentile_std",
                  "best_evaluated_percentile_mean", "is_best_evaluated_share", "max_round_seconds_median")


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per-cell figures (``summary.csv``) of the runs."""
    cells = defaultdict(list)
    for r in rows:
        cells[(r["method"], r["user"], r["dataset"], int(r["judgments"]))].append(r)
    out = []
    for (method, user, ds, n), rs in sorted(cells.items()):
        p = np.array([float(r["percentile"]) for r in rs])
        out.append({
            "method": method, "user": user, "dataset": ds, "judgments": n, "seeds": len(rs),
            "percentile_mean": f"{p.mean():.3f}", "percentile_std": f"{p.std(ddof=1) if p.size > 1 else 0.0:.3f}",
            "best_evaluated_percentile_mean": f"{np.mean([float(r['best_evaluated_percentile']) for r in rs]):.3f}",
            "is_best_evaluated_share": f"{np.mean([str(r['is_best_evaluated']) == 'True' for r in rs]):.3f}",
            "max_round_seconds_median": f"{np.median([float(r['max_round_seconds']) for r in rs]):.4f}",
        })
    return out


def previous_cells(path: Path, have: set[tuple]) -> tuple[list[dict], list[dict]]:
    """The cells of an earlier ``summary.csv`` that ``have`` lacks: as stand-in rows for the tables
    (``seeds`` rows at the cell's mean, seeds 0.., the best-evaluated flag on the cell's share of
    them) and as the summary rows themselves."""
    stand_in, kept = [], []
    with open(path, newline="") as fh:
        for c in csv.DictReader(fh):
            key = (c["method"], c["user"], c["dataset"], int(c["judgments"]))
            if key in have:
                continue
            kept.append(c)
            seeds = int(c["seeds"])
            best = int(round(float(c["is_best_evaluated_share"]) * seeds))
            stand_in += [{
                "method": key[0], "user": key[1], "dataset": key[2], "judgments": key[3], "seed": i,
                "percentile": float(c["percentile_mean"]), "best_evaluated_percentile": float(c["best_evaluated_percentile_mean"]),
                "is_best_evaluated": i < best, "seconds": 0.0, "max_round_seconds": float(c["max_round_seconds_median"]),
                "mode": "", "device": "",
            } for i in range(seeds)]
    return stand_in, kept


def summarise(rows: list[dict], judgments: tuple[int, ...], datasets: tuple[str, ...]) -> str:
    """The markdown tables: percentile per user, dataset and N; methods side by side; the goals."""
    from reward_models.human_preference import NON_MONOTONE_USERS

    groups = _users()
    mean = defaultdict(list)
    for r in rows:
        mean[(r["method"], r["user"], r["dataset"], r["judgments"])].append(r)

    def m(method, user, ds, n, key="percentile"):
        rs = mean.get((method, user, ds, n))
        return None if not rs else float(np.mean([float(r[key]) for r in rs]))

    def cell(v, digits=2):
        return "–" if v is None else f"{v:.{digits}f}"

    methods = [x for x in METHODS + EXTRA_METHODS if any(r["method"] == x for r in rows)]
    out = []
    seeds = len({r["seed"] for r in rows})
    out.append(f"Mean percentile of the recommendation in the user's own utility over the whole topology space "
               f"({seeds} seeds, regularized evolution, 100 evaluations).\n")
    for method in [x for x in ("interactive", "one-shot", "botorch", "devices", "own-device", "judged", "likelihood") if x in methods]:
        out.append(f"### {method}\n")
        head = "| user | " + " | ".join(f"{ds} N={n}" for ds in datasets for n in judgments) + " |"
        out += [head, "|" + "---|" * (1 + len(datasets) * len(judgments))]
        for group, names in groups.items():
            for user in names:
                if any(m(method, user, ds, n) is not None for ds in datasets for n in judgments):
                    out.append(f"| {user} ({group}) | " + " | ".join(cell(m(method, user, ds, n)) for ds in datasets for n in judgments) + " |")
        out.append("")
    if "ceiling" in methods or "random" in methods:
        out.append("### ceiling (RE on the true utility) and random search (best of 100)\n")
        out += ["| user | " + " | ".join(f"{ds} {x}" for ds in datasets for x in ("ceiling", "random")) + " |",
                "|" + "---|" * (1 + 2 * len(datasets))]
        for names in groups.values():
            for user in names:
                if any(m(x, user, ds, 0) is not None for ds in datasets for x in ("ceiling", "random")):
                    out.append(f"| {user} | " + " | ".join(cell(m(x, user, ds, 0)) for ds in datasets for x in ("ceiling", "random")) + " |")
        out.append("")
    # goals
    out.append("### goals\n")
    monotone = [u for names in groups.values() for u in names if u not in NON_MONOTONE_USERS]
    lines = []

    def check(label, method, users, n, goal):
        cells = [(user, ds, m(method, user, ds, n)) for user in users for ds in datasets]
        cells = [c for c in cells if c[2] is not None]
        if not cells:
            return
        missed = [f"{user}/{ds} {v:.2f} (-{goal - v:.2f})" for user, ds, v in cells if v < goal]
        lines.append(f"- {label}: {len(cells) - len(missed)} of {len(cells)} cells met" + (f"; missed: {', '.join(missed)}" if missed else ""))

    if 20 in judgments:
        check(">= 99.5 at 20 judgments, every monotone user (interactive)", "interactive", monotone, 20, 99.5)
    if 10 in judgments:
        check(">= 99.5 at 10 judgments, the paper's six (interactive)", "interactive", groups["paper"], 10, 99.5)
    if 40 in judgments:
        check(">= 97 at 40 judgments, non-monotone users (interactive)", "interactive", NON_MONOTONE_USERS, 40, 97.0)
    if "devices" in methods:
        if 20 in judgments:
            check(">= 99.5 at 20 judgments, every monotone user (devices='all')", "devices", monotone, 20, 99.5)
        if 10 in judgments:
            check(">= 99.5 at 10 judgments, the paper's six (devices='all')", "devices", groups["paper"], 10, 99.5)
        pairs = defaultdict(list)
        for r in rows:
            if r["method"] in ("interactive", "devices"):
                pairs[(r["user"], r["dataset"], r["judgments"], r["seed"])].append(r)
        diff = defaultdict(list)
        for (user, _ds, n, _seed), rs in pairs.items():
            by = {r["method"]: float(r["percentile"]) for r in rs}
            if len(by) == 2:
                diff[(user, n)].append(by["devices"] - by["interactive"])
        lines.append("- devices='all' minus interactive (paired seeds, mean over datasets and seeds, percentile points): "
                     + ", ".join(f"{user}/N={n} {np.mean(v):+.2f}" for (user, n), v in sorted(diff.items())))
        switched = [r for r in rows if r["method"] == "devices" and r.get("device") not in ("", "1080ti_1")]
        total = sum(1 for r in rows if r["method"] == "devices")
        lines.append(f"- devices='all' reads another device than the env's in {len(switched)} of {total} runs")
    if "botorch" in methods:
        worse = []
        total = 0
        for user in [u for names in groups.values() for u in names]:
            for ds in datasets:
                for n in judgments:
                    b = m("botorch", user, ds, n)
                    peer_seeds = {r["seed"] for r in mean.get(("botorch", user, ds, n), [])}
                    same = [float(r["percentile"]) for r in mean.get(("interactive", user, ds, n), []) if r["seed"] in peer_seeds]
                    a = float(np.mean(same)) if same else None
                    if a is None or b is None:
                        continue
                    total += 1
                    if a < b:
                        worse.append(f"{user}/{ds}/N={n} {a:.2f} vs {b:.2f}")
        lines.append(f"- at least as good as BoTorch PairwiseGP + EUBO (interactive on the peer's seeds): {total - len(worse)} of {total} cells"
                     + (f"; worse: {', '.join(worse)}" if worse else ""))
    for n in judgments:
        rs = [r for r in rows if r["method"] == "interactive" and r["judgments"] == n]
        if rs:
            share = np.mean([str(r["is_best_evaluated"]) == "True" for r in rs])
            lines.append(f"- recommendation = best evaluated architecture at {n} judgments (interactive): {100 * share:.1f} % of {len(rs)} runs")
    for method in ("interactive", "botorch", "devices", "own-device", "judged", "likelihood"):
        rs = [float(r["max_round_seconds"]) for r in rows if r["method"] == method]
        if rs:
            lines.append(f"- slowest round's refit + next-pair choice ({method}): median {np.median(rs):.3f} s, max {max(rs):.3f} s")
    out += lines
    out.append("")
    # methods side by side, means per user group
    out.append("### methods side by side (mean over the users of each group and the datasets)\n")
    out += ["| group | N | " + " | ".join(methods) + " |", "|" + "---|" * (2 + len(methods))]
    for group, names in groups.items():
        for n in judgments:
            vals = []
            for method in methods:
                nn = 0 if method in ("ceiling", "random") else n
                v = [m(method, user, ds, nn) for user in names for ds in datasets]
                v = [x for x in v if x is not None]
                vals.append(cell(float(np.mean(v))) if v else "–")
            out.append(f"| {group} | {n} | " + " | ".join(vals) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--users", default="all", help="comma-separated user names, or all")
    parser.add_argument("--judgments", default="10,20,40")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed-start", type=int, default=0, help="the first seed (seeds run from it; --peer-seeds counts from 0)")
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--flip", type=float, default=0.0, metavar="P",
                        help="careless users: each answer is reversed with probability P (default 0: never)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--peer-seeds", type=int, default=5,
                        help="run the BoTorch peer on the first this many seeds only (a run takes 5-30 s)")
    parser.add_argument("--peer-judgments", default="10,20",
                        help="the judgment counts the BoTorch peer runs (its refits make 40 judgments slow)")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--cells", default=None, metavar="USER/DATASET/N,...",
                        help="run only these cells (user, dataset, judgments), e.g. sweet_spot/cifar10/20: every method "
                             "named and every seed (--peer-seeds still limits the peer); overrides --users, --datasets, --judgments")
    parser.add_argument("--from-runs", default=None, metavar="RUNS_CSV,...",
                        help="run nothing: summarise these earlier runs.csv files together (with --previous, too)")
    parser.add_argument("--previous", default=None, metavar="SUMMARY_CSV",
                        help="an earlier run's summary.csv: its cells that this run lacks enter the tables with their mean")
    parser.add_argument("--out", default="results/personalization")
    args = parser.parse_args(argv)
    if not os.environ.get("NATSBENCH_DATA"):
        print("this benchmark needs the NATS-Bench table: set NATSBENCH_DATA (see README, 'Get the NATS-Bench data')", file=sys.stderr)
        return 2
    from tqdm import tqdm

    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    judgments = tuple(int(x) for x in args.judgments.split(","))
    methods = tuple(x.strip() for x in args.methods.split(","))
    unknown = sorted(set(methods) - set(METHODS + EXTRA_METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; expected some of {', '.join(METHODS + EXTRA_METHODS)}")
    users = [u for names in _users().values() for u in names] if args.users == "all" else args.users.split(",")
    def methods_for(seed: int) -> tuple[str, ...]:
        return tuple(x for x in methods if x != "botorch" or seed < args.peer_seeds)

    peer_judgments = tuple(int(x) for x in args.peer_judgments.split(","))
    tasks = [(user, ds, seed, judgments, methods_for(seed), args.evaluations, peer_judgments, args.flip)
             for ds in datasets for user in users for seed in range(args.seed_start, args.seed_start + args.seeds)]
    if args.cells:
        cells = [tuple(c.strip().split("/")) for c in args.cells.split(",") if c.strip()]
        bad = [c for c in cells if len(c) != 3 or c[1] not in DATASETS or not c[2].isdigit()]
        if bad:
            parser.error(f"--cells takes USER/DATASET/N items (datasets: {', '.join(DATASETS)}), got {bad}")
        # the cell's own N for every method that asks; ceiling and random do not depend on it
        tasks = [(user, ds, seed, (int(n),), methods_for(seed), args.evaluations, (int(n),), args.flip)
                 for user, ds, n in cells for seed in range(args.seed_start, args.seed_start + args.seeds)]
        datasets = tuple(d for d in DATASETS if any(c[1] == d for c in cells))
        judgments = tuple(sorted({int(c[2]) for c in cells}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows: list[dict] = []
    if args.from_runs:
        for path in args.from_runs.split(","):
            with open(path, newline="") as fh:
                for r in csv.DictReader(fh):
                    rows.append({**r, "judgments": int(r["judgments"]), "seed": int(r["seed"])})
        tasks = []
    with ProcessPoolExecutor(args.workers, initializer=_init_worker) as pool:
        futures = [pool.submit(_task, t) for t in tasks]
        for f in tqdm(as_completed(futures), total=len(futures), desc="runs", unit="user x dataset x seed"):
            rows.extend(f.result())
    errors = [r.pop("error") for r in rows if "error" in r]
    rows = [r for r in rows if r]
    for error in errors:
        print(f"FAILED {error}", file=sys.stderr)
    rows.sort(key=lambda r: (r["method"], r["dataset"], r["user"], r["judgments"], r["seed"]))
    with open(out / "runs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    elapsed = time.perf_counter() - start
    cells = summary_rows(rows)
    table_rows = rows
    if args.previous:
        stand_in, kept = previous_cells(Path(args.previous), {(c["method"], c["user"], c["dataset"], c["judgments"]) for c in cells})
        table_rows = rows + stand_in
        cells = sorted(cells + kept, key=lambda c: (c["method"], c["user"], c["dataset"], int(c["judgments"])))
    with open(out / "summary.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(SUMMARY_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(cells)
    summary = summarise(table_rows, judgments, datasets)
    command = f"`python benchmarks/bench_personalization.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
    if args.from_runs:
        summary += f"\nSummarised from earlier runs (their runtimes are in their own summary.md); command: {command}\n"
    else:
        summary += f"\nRuntime: {elapsed / 60:.1f} min with {args.workers} workers; command: {command}\n"
    (out / "summary.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The main job: personalized neural architecture search, end to end (the paper's Alg. 1).

1. evaluate an initial population of random architectures through ``NATSBench-*-v0``;
2. draw pairs among them (Alg. 2) and have them judged -- by a synthetic user of a preference you name
   (default), or by you in the browser (``--human``, or ``--human --tui`` in the terminal): the page
   shows the search's own pairs and the search continues once you have answered them; a rerun with the
   same seed and ``--session`` replays the answers you gave and asks only the rest;
3. fit RankNet on the judgments (Alg. 3): your personal reward;
4. continue regularized evolution under that learned reward and recommend the best architectures.

Runs on whatever benchmark is found: the fast table (``NATSBENCH_DATA``; seconds), official
NATS-Bench files under ``$TORCH_HOME``, or -- with no data at all -- live training of the real
NATS-Bench networks on this machine (a few minutes; the dataset line then says what the accuracies
were trained on). Writes under ``--out``: the history (JSONL), ``run.json`` (benchmark, dataset, what
was trained on, seed), the judgments (JSONL), the learned reward model, a plot and TensorBoard logs.

**Warm start** (issue 17): ``--remember`` adds the finished session to a local preference library
(one SQLite file, ``--library PATH``; default ``$NATSBENCH_GYM_LIBRARY``, else
``$XDG_DATA_HOME/natsbench-gym/preferences.sqlite``, else ``~/.local/share/...``), and
``--warm-start`` starts a search from the library's earlier users in the same space
(:mod:`reward_models.library`). Nothing is read from or written to the library without these flags,
except that with ``--human`` the page offers "Start from N earlier users" or "Start fresh" when the
library has earlier users (``--warm-start`` / ``--cold-start`` answer it beforehand). After the search
it prints how the warm start went and where the session was remembered.

Example (``python scripts/search.py`` and ``make run RUN_ARGS=...`` run the same)::

    natsbench-gym search --preference weighted --evaluations 100 --seed 0
    NATSBENCH_DATA=../shared/natsbench natsbench-gym search --dataset cifar100 --preference flop_constraint
    natsbench-gym search --human --remember --warm-start
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import natsbench_gym
from natsbench_gym import ENV_IDS
from natsbench_gym.errors import NATSBenchGymError
from natsbench_gym.rewards import FIXED_METRICS, ScoringContext
from natsbench_gym.types import LATENCY_DEVICES, Metric
from natsbench_gym_cli.console import SearchProgressBar, log_to_file

logger = logging.getLogger("search")

#: The synthetic users --preference takes (the paper's fixed metrics, docs/table1.md's extra users and
#: the out-of-family users of docs/personalization.md); names only, so the parser needs no import.
USERS = (*FIXED_METRICS, "random_weighted", "latency_constraint", "worst_of", "sweet_spot", "cobb_douglas",
         "latency_knee", "latency_class_then_accuracy", "near_best_then_cheapest", "pixel3_threshold", "two_devices", "mid_size",
         "latency_band", "params_quadratic")

SHOWN = (Metric.VALID_ACCURACY, Metric.TEST_ACCURACY, Metric.PARAMS, Metric.FLOPS, Metric.LATENCY)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Personalized NAS (Alg. 1): learn your reward from pairwise judgments, then search.")
    p.add_argument("--space", default="topology", choices=sorted(ENV_IDS))
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or ImageNet16-120")
    p.add_argument("--budget", type=int, default=None, help="training epochs of the search metrics (default: the benchmark's first)")
    p.add_argument("--preference", default="weighted", help=f"the synthetic user's preference: {', '.join(USERS)}")
    p.add_argument("--flip", type=float, default=0.0, help="the synthetic user's probability of answering the wrong way")
    p.add_argument("--human", action="store_true", help="judge the search's pairs yourself in the browser (preference_ui.SearchJudge)")
    p.add_argument("--tui", action="store_true", help="with --human: judge in the terminal instead")
    p.add_argument("--session", default=None, help="with --human: judgments file (default: OUT/judgments-human.jsonl)")
    p.add_argument("--port", type=int, default=0, help="with --human: the page's port on 127.0.0.1 (default 0: any free port; "
                                                       "a fixed one lets an open tab reload after a restart)")
    p.add_argument("--no-browser", action="store_true", help="with --human: do not open a browser (open the printed URL yourself)")
    p.add_argument("--evaluations", type=int, default=100, help="architectures to evaluate (the initial population included)")
    p.add_argument("--population", type=int, default=10, help="regularized evolution's population p")
    p.add_argument("--sample", type=int, default=5, help="regularized evolution's tournament sample s")
    p.add_argument("--comparisons", type=int, default=10, help="judgments in all, over every round (the paper: 10)")
    p.add_argument("--schedule", default="interactive", choices=("interactive", "one-shot"),
                   help="interactive (default): rounds during the search on its best candidates, and a final round; "
                        "one-shot: the paper's single round on the initial population")
    p.add_argument("--batch-size", type=int, default=1, metavar="N",
                   help="interactive schedule: pairs asked between two refits of the model (default 1: each next pair is "
                        "chosen after a refit on every answer so far; 0: a round's pairs all at once, so the page shows them together)")
    p.add_argument("--judged-architectures", type=int, default=None,
                   help="the first round's pool: the first N of the initial population (the paper's one-shot: 5; default: all of it)")
    p.add_argument("--stop-when-sure", type=float, default=None, metavar="P",
                   help="skip a later round when the model is this sure its best candidate beats the runner-up (e.g. 0.95)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="the latency device that matters to you (default: the benchmark's, 1080ti_1); one of: " + ", ".join(LATENCY_DEVICES))
    p.add_argument("--devices", default=None, metavar="DEVICES",
                   help="latency devices you may care about besides --device, comma-separated, or 'all': the model reads "
                        "each one's latency and follows the one your judgments fit best (default: --device only)")
    p.add_argument("--acceptance", default=None, choices=("agreement", "likelihood"),
                   help="when the metric family alone is the model: agreement (default: it orders >= 90%% of your judgments) or "
                        "likelihood (it predicts held-out judgments at least as well as the network; kinder to careless clicks, "
                        "slower refits; docs/personalization.md)")
    p.add_argument("--recommend", default="model", choices=("model", "judged"),
                   help="the recommendation after the final round: model (default: the best under the final model) or "
                        "judged (the best under it among the architectures you have seen in a pair; docs/personalization.md)")
    p.add_argument("--library", default=None, metavar="PATH",
                   help="the preference library of earlier sessions (default: $NATSBENCH_GYM_LIBRARY, else "
                        "$XDG_DATA_HOME/natsbench-gym/preferences.sqlite, else ~/.local/share/natsbench-gym/preferences.sqlite)")
    p.add_argument("--remember", action="store_true",
                   help="add this session, once finished, to the library so that later searches can start from it "
                        "(nothing is stored without it; delete the library file to forget)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--warm-start", action="store_true",
                       help="start from the library's earlier users in this space: their preferences in the model's prior "
                            "(your judgments decide how much of it stays) and their recommendations among the first architectures")
    start.add_argument("--cold-start", action="store_true",
                       help="start fresh; with --human the page then does not offer to start from earlier users")
    p.add_argument("--top", type=int, default=5, help="recommendations to print")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="benchmark path (default: NATSBENCH_DATA, $TORCH_HOME, else live training)")
    p.add_argument("--out", default="runs/search", help="output directory")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    log_to_file(Path(args.out) / "search.log", verbose=args.verbose)  # the console keeps the bar and the summary
    try:
        return run(args)
    except (NATSBenchGymError, ValueError) as exc:
        logger.error("%s", exc)
        return 2


def run(args: argparse.Namespace) -> int:
    from agents import RegularizedEvolution, TensorBoardCallback
    from agents.personalization import Personalization
    from reward_models import NoiseModel, PreferenceDataset
    from reward_models.human_preference import make_user

    started = time.perf_counter()
    library = _open_library(args)  # before anything else: a file that is not a library is an error, left as it is
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bench = natsbench_gym.load_benchmark(args.space, args.data)
    env = gym.make(ENV_IDS[args.space], dataset=args.dataset, benchmark=bench, budget=args.budget, device=args.device)
    context: ScoringContext = env.unwrapped.context
    trained_on = env.unwrapped.trained_on  # what live accuracies were really trained on (None: the dataset)
    dataset_text = context.dataset.value + (f" (trained here on: {trained_on})" if trained_on else "")
    print(f"benchmark: {bench.describe()}")
    print(f"space: {args.space}  dataset: {dataset_text}  search budget: {context.budget} epochs"
          + (f"  latency on: {context.device}" if context.device else ""))

    callbacks = [TensorBoardCallback(out / "tensorboard", run_name=f"{args.space}-{context.dataset.value}-seed{args.seed}"),
                 SearchProgressBar(total=args.evaluations)]
    if args.human:  # a person judges the search's own candidates; a rerun replays the session's answers
        from preference_ui import SearchJudge

        user = None
        shown = () if args.devices in (None, "all") else [d.strip() for d in args.devices.split(",") if d.strip()]
        judge = SearchJudge.open(Path(args.session) if args.session else out / "judgments-human.jsonl", context, seed=args.seed,
                                 devices=shown)  # the page shows the latency on the devices named
        print(f"judge: you (session {judge.session.path})")
    else:
        noise = NoiseModel(flip_probability=args.flip) if args.flip else None
        user = judge = make_user(args.preference, context, seed=args.seed, noise=noise)
        print(f"judge: {user.name} (a synthetic user; --human to judge yourself)")
    space = env.unwrapped.space.kind.value
    warm: dict = {}  # what the search started from, for the summary

    def search():
        if args.human:  # asks on the page unless decided (a flag, or the session's recorded answer)
            judge.show_remember(library.path if args.remember else None)
            prior = judge.warm_start(library, space, choice=True if args.warm_start else False if args.cold_start else None)
            warm["asked"] = judge.session.start_choice is not None and judge.session.start_choice.asked
            warm["wanted"] = judge.session.start_choice is not None and judge.session.start_choice.warm
        else:
            prior = library.population_prior(space=space) if args.warm_start else None
            warm["wanted"] = bool(args.warm_start)
        personalization = Personalization(judge, num_comparisons=args.comparisons, schedule=args.schedule,
                                          num_architectures=args.judged_architectures, stop_when_sure=args.stop_when_sure,
                                          batch_size=args.batch_size or None, warm_start=prior,
                                          remember=library if args.remember else None, devices=args.devices,
                                          model_options={"acceptance": args.acceptance} if args.acceptance else None,
                                          recommend=args.recommend)
        agent = RegularizedEvolution(args.population, args.sample, seed=args.seed, personalization=personalization)
        if args.human:
            judge.watch(agent)
        return agent.search(env, args.evaluations, callback=callbacks)

    result = judge.serve(search, tui=args.tui, port=args.port, open_browser=not args.no_browser) if args.human else search()
    model = result.info.get("learned_metric", env.unwrapped.reward_model)
    comparisons = result.info.get("comparisons") or []

    result.save_jsonl(out / "history.jsonl")
    run_info = {"benchmark": bench.describe(), "space": args.space, "dataset": context.dataset.value,
                "trained_on": trained_on, "budget_epochs": context.budget, "seed": args.seed,
                "judge": "human" if args.human else args.preference, "evaluations": len(result.history)}
    (out / "run.json").write_text(json.dumps(run_info, indent=2) + "\n")
    if comparisons:
        (out / "judgments.jsonl").unlink(missing_ok=True)  # this run's judgments only
        store = PreferenceDataset.open(out / "judgments.jsonl")
        for c in comparisons:
            store.append(c)
    if hasattr(model, "save"):
        model.save(out / "reward_model.pt")

    scores = result.search_scores()
    order = _unique_best(result.history, scores, args.top)
    truth = None
    if user is not None:
        truth = user.utilities([ev.index for ev in result.history])
    _print_rounds(result)
    _print_warm_start(result, warm, library, space)
    _print_recommendations(result, scores, order, truth, context)
    if user is not None and bench.capabilities.whole_space:
        _print_space_rank(bench, context, user, result.history[order[0]].index)
    _plot(result, scores, truth, order, out / "search.png", context)
    elapsed = time.perf_counter() - started
    spent = result.history[-1].total_train_time
    spent_text = f"{spent / 3600:.1f} h" if spent >= 3600 else f"{spent:.0f} s"
    kind = "actual" if bench.capabilities.trains else "simulated"
    print(f"\n{len(result.history)} architectures evaluated in {elapsed:.1f} s ({kind} training time {spent_text})")
    print(f"wrote {out / 'history.jsonl'}, {out / 'run.json'}, {out / 'search.log'}, {out / 'search.png'}, {out / 'tensorboard'}"
          + (f", {out / 'judgments.jsonl'}" if comparisons else "") + (f", {out / 'reward_model.pt'}" if hasattr(model, "save") else ""))
    env.close()
    return 0


def _open_library(args: argparse.Namespace):
    """The preference library, opened (which writes nothing) only when this run may use it: with
    ``--remember`` or ``--warm-start`` (a file that is not a library is then an error), or with
    ``--human`` to offer a warm start (such a file is then only a warning: no offer)."""
    from reward_models.library import PreferenceLibrary, PreferenceLibraryError, default_library_path

    path = Path(args.library).expanduser() if args.library else default_library_path()
    if args.remember or args.warm_start:
        return PreferenceLibrary(path)
    if args.human and not args.cold_start and path.exists():
        try:
            return PreferenceLibrary(path)
        except PreferenceLibraryError as exc:
            logger.warning("%s; the page offers no warm start", exc)
    return None


def _print_warm_start(result, warm: dict, library, space: str) -> None:
    """How the warm start went (earlier users, their share at the end, a disagreement) and where
    the session was remembered."""
    lines = []
    info = result.info.get("warm_start")
    if info:
        users = f"{info['users']} earlier user{'s' if info['users'] != 1 else ''}"
        share = "" if info.get("share") is None else (
            f"; their share of the model's belief at the end: {100 * info['share']:.0f} % (of the prior before your first "
            f"judgment: {100 * info['weight']:.0f} %)")
        seeded = f"; {info['seeded']} of the first architectures were their recommendations" if info.get("seeded") else ""
        lines.append(f"warm start: from {users} in {library.path}{share}{seeded}")
        if info.get("disagrees"):
            lines.append("warm start: your judgments disagree with earlier users; the search used your own judgments only")
    elif warm.get("wanted"):
        lines.append(f"warm start: no earlier user in {library.path} searched the {space} space; this was a cold start")
    elif warm.get("asked"):
        lines.append("warm start: not used (you chose to start fresh)")
    remembered = result.info.get("remembered")
    if remembered and remembered.get("error"):
        lines.append(f"not remembered: {remembered['error']} (the search's files under --out are complete)")
    elif remembered:
        lines.append(f"remembered: this session is #{remembered['session']} in {remembered['library']} "
                     "(a later --warm-start starts from it; delete the file to forget every remembered session)")
    if lines:
        print("\n" + "\n".join(lines))


def _print_rounds(result) -> None:
    rounds = result.info.get("rounds") or []
    if not rounds:
        return
    parts = []
    for r in rounds:
        sure = "" if r["confidence"] is None else f", sure {r['confidence']:.2f}"
        parts.append(f"{len(r['pairs'])} after {r['evaluations']}{sure}")
    print(f"judgments by round (pairs after N evaluations, how sure the model then was): {'; '.join(parts)}")
    confidence = result.info.get("confidence")
    if confidence is not None:
        print(f"how sure: {confidence}")
    model = result.info.get("learned_metric")
    posterior = getattr(model, "device_posterior", None)
    if posterior:
        top = sorted(posterior.items(), key=lambda kv: -kv[1])[:3]
        print(f"latency device your judgments follow: {model.device} (of {len(posterior)} read; most likely: "
              + ", ".join(f"{d} {p:.2f}" for d, p in top) + ")")


def _unique_best(history, scores: np.ndarray, k: int) -> list[int]:
    order, seen = [], set()
    for i in np.argsort(-scores, kind="stable"):
        if history[i].index not in seen:
            seen.add(history[i].index)
            order.append(int(i))
        if len(order) == k:
            break
    return order


def _fmt(name: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{name}=n/a"
    return f"{name}={value:.4g}"


def _print_recommendations(result, scores, order, truth, context) -> None:
    posterior = getattr(result.info.get("learned_metric"), "posterior", None)
    if posterior is not None:  # RankNet's metric-family prior, in words
        reading = "; ".join(f"{text} ({100 * share:.0f}%)" for share, text in posterior.explain(3))
        print(f"\nthe judgments most likely mean: {reading}")
    print(f"\nrecommended architectures (best of {len(result.history)} under the learned reward):")
    for rank, i in enumerate(order, 1):
        ev = result.history[i]
        parts = [_fmt(m.value, ev.metrics.get(m.value, math.nan)) for m in SHOWN if m.value in ev.metrics]
        true = f"  your utility={truth[i]:.3f}" if truth is not None else ""
        print(f"{rank:2d}. learned={scores[i]:.3f}{true}  #{ev.index:<6d} {ev.arch}")
        print("      " + "  ".join(parts))


def _print_space_rank(bench, context, user, index: int) -> None:
    space_scores = user.utilities(np.arange(bench.space.size))  # every synthetic user, device users too
    mine = space_scores[index]
    pct = 100.0 * float(np.mean(space_scores <= mine))
    best = int(np.argmax(space_scores))
    print(f"\nunder the user's true preference the top recommendation beats {pct:.2f}% of all "
          f"{bench.space.size:,} architectures (its utility {mine:.4f}; the best in the space {space_scores[best]:.4f}, #{best})")


def _plot(result, scores, truth, order, path: Path, context) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.arange(1, len(result.history) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    lines = ax1.plot(n, np.maximum.accumulate(scores), color="C0", label="best-so-far, learned reward")
    ax1.set_xlabel("evaluated architectures")
    ax1.set_ylabel("learned reward")
    ax1.set_title("search progress")
    if truth is not None:  # the learned reward has its own scale: the true utility gets its own axis
        best_idx = [int(np.argmax(scores[:k])) for k in n]
        twin = ax1.twinx()
        lines += twin.plot(n, truth[best_idx], color="C1", label="its true utility (synthetic user)")
        twin.set_ylabel("true utility")
    ax1.legend(lines, [ln.get_label() for ln in lines], loc="lower right")
    acc = np.array([ev.metrics.get(context.accuracy_metric.value, np.nan) for ev in result.history])
    params = np.array([ev.metrics.get("params", np.nan) for ev in result.history])
    sc = ax2.scatter(params, acc, c=scores, cmap="viridis", s=18)
    ax2.scatter(params[order], acc[order], facecolors="none", edgecolors="red", s=90, label="recommended")
    fig.colorbar(sc, ax=ax2, label="learned reward")
    ax2.set_xlabel("params (M)")
    ax2.set_ylabel(f"{context.accuracy_metric.label} (%)")
    ax2.set_title("evaluated architectures")
    ax2.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())

"""The elicitation loop both interfaces share: show a pair, take a choice, undo, fit, export.

:class:`ElicitationSession` owns one session: the candidate architectures, the pending pair, the
judgments and the fitted reward model. The web page and the terminal UI only draw its
:meth:`~ElicitationSession.state` and call its actions, so they behave the same.

**Files.** A session is its judgments file (JSONL, written by ``reward_models``' append-only
preference store; every judgment is flushed and fsynced before the call returns, and an undo is an
appended retraction) plus two files beside it:

* ``<name>.ui.json`` -- the interface's own state: space, dataset, budget and device, the seed, the
  candidate architectures, the pending pair, the pairs waiting to be shown again and the order of
  past actions (for undo). It is replaced atomically after every action.
* the fitted reward model (``<name>.ranknet`` plus the extension the model's ``save`` uses), the file
  ``RankNetRewardModel.load`` reads and the environments and agents accept.

**Durability.** A judgment is in the judgments file before the next pair is chosen and shown, so
killing the process loses nothing answered. If it dies between the two writes, :meth:`open` sees
that the judgments file and the state disagree and reconciles them from the judgments file, the
record of truth.

**Determinism.** The candidates and every new pair are drawn from generators seeded by the session
seed (and the number of pairs drawn so far), so a resumed session shows exactly the pair it showed
before it stopped, and the same sequence after.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from natsbench_gym.benchmarks.base import Benchmark
from natsbench_gym.fileio import atomic_write
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from preference_ui import adapter
from preference_ui.catalog import MetricCatalog, format_value
from preference_ui.drawing import architecture_lines, architecture_svg
from preference_ui.errors import (
    InvalidRequestError,
    NotFittedError,
    NothingToUndoError,
    SessionMismatchError,
    StalePairError,
    UnknownPairError,
)

__all__ = ["ElicitationSession", "Pair", "OUTCOMES", "STATE_FORMAT"]

logger = logging.getLogger(__name__)

OUTCOMES = ("a", "b", "tie")
STATE_FORMAT = "natsbench-gym-elicitation"
STATE_VERSION = 1
#: Architectures of the space the "what drives it" sensitivities are averaged over.
DRIVER_SAMPLE = 2000


@dataclass(frozen=True)
class Pair:
    """A pair on screen: its id (unique within the session), the official indices of A and B, and
    the strategy that chose it (``"random"``, ``"active:uncertainty"``), recorded with the judgment."""

    id: str
    a: int
    b: int
    selector: str = "random"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "a": self.a, "b": self.b, "selector": self.selector}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pair:
        return cls(str(data["id"]), int(data["a"]), int(data["b"]), str(data.get("selector", "random")))


class ElicitationSession:
    """One person's judgments on one space and dataset, and the reward model learned from them.

    Build it with :meth:`open` (which creates or resumes a session); every public method is safe to
    call from several threads (the web server is threaded).

    Args:
        path: the judgments file (JSONL).
        context: the benchmark, dataset, budget and latency device the metrics come from.
        state: the interface state (as :meth:`open` reads or creates it).
        top_k: how many top architectures :meth:`fit` reports.
    """

    def __init__(
        self, path: Path, context: ScoringContext, state: dict[str, Any], *, judge: str = "human", top_k: int = 10
    ) -> None:
        self.path = Path(path)
        self.context = context
        self.space = context.benchmark.space
        self.top_k = top_k
        self.catalog = MetricCatalog(context, candidates=state["population"])
        self._state = state
        self._lock = threading.RLock()
        self._store = adapter.JudgmentStore(self.path, context, judge)
        self._population = np.asarray(state["population"], dtype=np.int64)
        self._model: Any | None = None
        self._fit_view: dict[str, Any] | None = None
        if self.model_path.is_file() and state.get("fit"):
            self._model = adapter.load_model(self.model_path)
        self._reconcile()
        if self._state["pending"] is None:
            self._advance()
        self._save_state()

    # --- creating and resuming ------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        benchmark: Benchmark,
        dataset: str | None = None,
        *,
        budget: int | None = None,
        device: str | None = None,
        population: int = 30,
        pairs: int | None = None,
        active: bool | None = None,
        seed: int | None = None,
        judge: str = "human",
        top_k: int = 10,
    ) -> ElicitationSession:
        """Resume the session at ``path``, or start it.

        On resume, arguments left ``None`` take the session's values; a dataset, budget or device that
        differs from the session's raises :class:`SessionMismatchError` (start a new file instead).
        ``pairs`` (the goal) and ``active`` may change between runs.

        Args:
            path: the judgments file; ``<stem>.ui.json`` and the model file live beside it.
            benchmark: the benchmark of the space to judge architectures of.
            dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"`` (default ``"cifar10"``).
            budget: training epochs of the accuracies shown (default: the benchmark's first).
            device: latency device (default: the benchmark's default).
            population: how many random architectures of the space the pairs are drawn among.
            pairs: how many judgments the session aims at (default 20, the paper's ~20 comparisons).
            active: after the first fit, choose pairs the fitted model is least sure about.
            seed: seeds the candidates and the pairs (default: a fresh random seed, then stored).
            judge: who judges (recorded in every judgment).
            top_k: how many top architectures a fit reports.
        """
        path = Path(path)
        state_path = cls.state_path_for(path)
        if state_path.is_file():
            state = _read_state(state_path)
            kind = benchmark.space.kind.value
            checks = {
                "space": (kind, state["space"]),
                "dataset": (None if dataset is None else benchmark.check_dataset(dataset).value, state["dataset"]),
                "budget": (None if budget is None else benchmark.check_budget(budget), state["budget"]),
                "device": (None if device is None else benchmark.check_device(device), state["device"]),
            }
            for name, (given, stored) in checks.items():
                if given is not None and given != stored:
                    raise SessionMismatchError(
                        f"session {str(path)!r} was started with {name} {stored!r}, not {given!r}; "
                        f"resume it with {name} {stored!r} or start a new session file"
                    )
            if seed is not None and seed != state["seed"]:
                raise SessionMismatchError(f"session {str(path)!r} was started with seed {state['seed']}, not {seed}")
            if pairs is not None:
                state["target"] = _check_positive("pairs", pairs)
            if active is not None:
                state["active"] = bool(active)
            context = ScoringContext.create(benchmark, state["dataset"], state["budget"], state["device"])
            logger.info("resuming session %s", path)
        else:
            context = ScoringContext.create(benchmark, dataset or "cifar10", budget, device)
            seed = secrets.randbits(31) if seed is None else int(seed)
            size = _check_positive("population", population)
            if not 2 <= size <= benchmark.space.size:
                raise InvalidRequestError(f"population must be between 2 and {benchmark.space.size}, got {size}")
            encodings = benchmark.space.sample_many(np.random.default_rng([seed, 0]), size, unique=True)
            state = {
                "format": STATE_FORMAT,
                "version": STATE_VERSION,
                "space": benchmark.space.kind.value,
                "dataset": context.dataset.value,
                "budget": context.budget,
                "device": context.device,
                "seed": seed,
                "population": benchmark.indices_of_encodings(encodings).tolist(),
                "target": _check_positive("pairs", 20 if pairs is None else pairs),
                "active": bool(active),
                "serial": 0,
                "draws": 0,
                "pending": None,
                "queue": [],
                "actions": [],
                "fit": None,
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            logger.info("new session %s (seed %d, %d candidates)", path, seed, size)
        return cls(path, context, state, judge=judge, top_k=top_k)

    @classmethod
    def stored_settings(cls, path: str | os.PathLike) -> dict[str, Any] | None:
        """Space, dataset, budget and device a session at ``path`` was started with (``None``: new)."""
        state_path = cls.state_path_for(path)
        if not state_path.is_file():
            return None
        state = _read_state(state_path)
        return {k: state[k] for k in ("space", "dataset", "budget", "device")}

    @staticmethod
    def state_path_for(path: str | os.PathLike) -> Path:
        """Where the interface state of the judgments file ``path`` lives."""
        path = Path(path)
        return path.with_name(path.stem + ".ui.json")

    @property
    def state_path(self) -> Path:
        return self.state_path_for(self.path)

    @property
    def model_path(self) -> Path:
        """The fitted reward model's file."""
        return self.path.with_name(self.path.stem + ".ranknet" + adapter.MODEL_SUFFIX)

    @property
    def model(self) -> Any | None:
        """The fitted reward model (``None`` before the first fit)."""
        return self._model

    # --- what is on screen -------------------------------------------------------------------
    @property
    def pending(self) -> Pair | None:
        """The pair waiting for a judgment (``None`` once the goal is reached)."""
        pending = self._state["pending"]
        return None if pending is None else Pair.from_json(pending)

    def state(self) -> dict[str, Any]:
        """Everything an interface draws, as JSON-ready data."""
        with self._lock:
            pending = self.pending
            judged = self._store.count()
            return {
                "context": {
                    "space": self._state["space"],
                    "dataset": self._state["dataset"],
                    "budget": self._state["budget"],
                    "device": self._state["device"],
                    "benchmark": self.context.benchmark.describe(),
                    "population": int(self._population.size),
                    "session": self.path.name,
                    "active": self._state["active"],
                },
                "progress": {
                    "judged": judged,
                    "target": self._state["target"],
                    "skipped": sum(1 for a in self._state["actions"] if a["kind"] == "skip"),
                },
                "pair": None
                if pending is None
                else {"id": pending.id, "a": self.describe(pending.a), "b": self.describe(pending.b)},
                "can_undo": bool(self._state["actions"]),
                "can_fit": judged > 0,
                "fit": self._fit_summary(),
            }

    def describe(self, index: int) -> dict[str, Any]:
        """One architecture as the interfaces show it: drawing, text lines and every metric."""
        encoding = self.context.benchmark.encoding(index)
        arch_str = self.space.format(encoding)
        return {
            "index": int(index),
            "arch_str": arch_str,
            "svg": architecture_svg(self.space, encoding, title=f"#{index} {arch_str}"),
            "lines": architecture_lines(self.space, encoding),
            "metrics": [view.to_json() for view in self.catalog.describe(index)],
        }

    # --- actions ---------------------------------------------------------------------------------
    def judge(self, pair_id: str, outcome: str) -> dict[str, Any]:
        """Record that A (``"a"``), B (``"b"``) or neither (``"tie"``) is preferred; show the next pair.

        The judgment is durable (flushed and fsynced) before the next pair is chosen.

        Raises:
            InvalidRequestError: ``outcome`` is not ``"a"``, ``"b"`` or ``"tie"``.
            UnknownPairError, StalePairError: ``pair_id`` is not the pending pair.
        """
        if outcome not in OUTCOMES:
            raise InvalidRequestError(f"outcome {outcome!r} is not one of {', '.join(map(repr, OUTCOMES))}")
        with self._lock:
            pair = self._check_pending(pair_id)
            self._store.append(pair.a, pair.b, outcome, pair.selector)
            self._state["actions"].append({"kind": "judge", "a": pair.a, "b": pair.b, "selector": pair.selector})
            self._state["pending"] = None
            self._advance()
            self._save_state()
            return self.state()

    def skip(self, pair_id: str) -> dict[str, Any]:
        """Show the next pair without judging this one (it is not shown again unless undone)."""
        with self._lock:
            pair = self._check_pending(pair_id)
            self._state["actions"].append({"kind": "skip", "a": pair.a, "b": pair.b, "selector": pair.selector})
            self._state["pending"] = None
            self._advance()
            self._save_state()
            return self.state()

    def undo(self) -> dict[str, Any]:
        """Take back the last judgment (an appended retraction) or skip, and show that pair again.

        Raises:
            NothingToUndoError: nothing was judged or skipped.
        """
        with self._lock:
            actions = self._state["actions"]
            if not actions:
                raise NothingToUndoError("nothing to undo: no pair was judged or skipped in this session")
            last = actions.pop()
            if last["kind"] == "judge":
                self._store.retract_last()
            self._show_again(last)
            self._save_state()
            return self.state()

    def fit(self, top_k: int | None = None) -> dict[str, Any]:
        """Train RankNet on the judgments so far, save it beside the session, and summarise it.

        Raises:
            NotFittedError: there is no judgment yet, or none the model can learn from.
        """
        with self._lock:
            if top_k is not None:
                self.top_k = int(top_k)
            comparisons = self._store.comparisons()
            if not comparisons:
                raise NotFittedError("judge at least one pair before fitting the reward model")
            fit_seed = int(np.random.default_rng([self._state["seed"], 1, len(comparisons)]).integers(2**31))
            model = adapter.fit_model(comparisons, self.context, seed=fit_seed)
            adapter.save_model(model, self.model_path)
            self._model = model
            self._fit_view = None
            self._state["fit"] = {"judgments": len(comparisons), "seed": fit_seed}
            self._save_state()
            logger.info("fitted RankNet on %d judgments; saved %s", len(comparisons), self.model_path)
            return self.state()

    # --- export ------------------------------------------------------------------------------------
    def export_judgments(self) -> bytes:
        """The judgments in force (retracted ones left out) as JSONL, one comparison a line."""
        with self._lock:
            return self._store.export_jsonl()

    def model_path_for_export(self) -> Path:
        """The fitted model's file.

        Raises:
            NotFittedError: nothing was fitted yet.
        """
        with self._lock:
            if self._model is None or not self.model_path.is_file():
                raise NotFittedError("no reward model yet: fit one first")
            return self.model_path

    def export_name(self, what: str) -> str:
        """Download name of an export: ``<session>-judgments.jsonl`` or ``<session>-ranknet<suffix>``."""
        stem = self.path.stem
        return f"{stem}-judgments.jsonl" if what == "judgments" else f"{stem}-ranknet{adapter.MODEL_SUFFIX}"

    def export_to(self, directory: str | os.PathLike) -> list[Path]:
        """Write the judgments (and the model, once fitted) into ``directory``; return the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            out = [directory / self.export_name("judgments")]
            atomic_write(out[0], self.export_judgments())
            if self._model is not None and self.model_path.is_file():
                out.append(directory / self.export_name("model"))
                atomic_write(out[-1], self.model_path.read_bytes())
            return out

    # --- internals -------------------------------------------------------------------------------
    def _check_pending(self, pair_id: str) -> Pair:
        if not isinstance(pair_id, str):
            raise InvalidRequestError(f"pair_id must be a string, got {type(pair_id).__name__}")
        pending = self.pending
        if pending is not None and pair_id == pending.id:
            return pending
        if pair_id.isdigit() and int(pair_id) <= self._state["serial"]:
            now = f"pair {pending.id}" if pending is not None else "no pair (the goal is reached)"
            raise StalePairError(f"pair {pair_id} was already answered, skipped or undone; pending now: {now}")
        raise UnknownPairError(f"unknown pair id {pair_id!r}; this session has shown pairs 1..{self._state['serial']}")

    def _new_pair(self, a: int, b: int, selector: str) -> dict[str, Any]:
        self._state["serial"] += 1
        return Pair(str(self._state["serial"]), int(a), int(b), selector).to_json()

    def _show_again(self, action: dict[str, Any]) -> None:
        """Make the pair of an undone ``action`` pending; the pair it displaces waits in the queue."""
        pending = self._state["pending"]
        if pending is not None:
            self._state["queue"].insert(0, {k: pending[k] for k in ("a", "b", "selector")})
        self._state["pending"] = self._new_pair(action["a"], action["b"], action.get("selector", "random"))

    def _advance(self) -> None:
        """Choose the next pending pair: one waiting to be shown again, else a new draw (or none)."""
        self._state["pending"] = None
        if self._store.count() >= self._state["target"]:
            return
        if self._state["queue"]:
            queued = self._state["queue"].pop(0)
            self._state["pending"] = self._new_pair(queued["a"], queued["b"], queued["selector"])
            return
        rng = np.random.default_rng([self._state["seed"], 2, self._state["draws"]])
        self._state["draws"] += 1
        model = self._model if self._state["active"] else None
        # Never propose a pair that was judged, skipped, or is waiting to be shown again.
        exclude = set(self._store.judged_pairs())
        exclude.update(adapter.pair_key(a["a"], a["b"]) for a in self._state["actions"])
        exclude.update(adapter.pair_key(q["a"], q["b"]) for q in self._state["queue"])
        chosen = adapter.select_pair(self._population, self.context, rng, exclude=exclude, model=model)
        if chosen is not None:
            self._state["pending"] = self._new_pair(*chosen)

    def _reconcile(self) -> None:
        """Make the state agree with the judgments file after a crash between their two writes."""
        judged = self._store.count()
        recorded = [i for i, a in enumerate(self._state["actions"]) if a["kind"] == "judge"]
        if judged > len(recorded):
            # Judgments saved after the state was: the pending pair was answered (or the file was
            # judged elsewhere, e.g. by a synthetic user): adopt them, so undo can take them back.
            extra = self._store.comparisons()[len(recorded):]
            for c in extra:
                a, b = c.indices
                self._state["actions"].append({"kind": "judge", "a": a, "b": b, "selector": c.selector})
                pending = self._state["pending"]
                if pending is not None and adapter.pair_key(pending["a"], pending["b"]) == adapter.pair_key(a, b):
                    self._state["pending"] = None
            if recorded or self._state["serial"]:
                logger.warning("session state was behind the judgments file by %d judgment(s); caught up", len(extra))
        elif judged < len(recorded):
            # Retractions saved after the state was: finish those undos.
            missing = len(recorded) - judged
            for i in reversed(recorded[-missing:]):
                self._show_again(self._state["actions"].pop(i))
            logger.warning("session state was ahead of the judgments file by %d undo(s); caught up", missing)
        fit = self._state.get("fit")
        if fit and self._model is None:
            self._state["fit"] = None

    def _save_state(self) -> None:
        atomic_write(self.state_path, (json.dumps(self._state, indent=1) + "\n").encode())

    def _fit_summary(self) -> dict[str, Any] | None:
        if self._model is None:
            return None
        if self._fit_view is None:
            self._fit_view = self._summarise_model()
        judged = self._store.count()
        fitted_on = self._state["fit"]["judgments"]
        return {**self._fit_view, "judgments": fitted_on, "stale": judged != fitted_on, "new_since": max(judged - fitted_on, 0)}

    def _summarise_model(self) -> dict[str, Any]:
        """Top-k of the whole space under the model, and how much each metric moves its score."""
        features = adapter.model_metrics(self._model, self.context, self.catalog.metrics)
        all_values = self.catalog.values(None)
        usable = np.all([~np.isnan(all_values[m]) for m in features], axis=0)
        candidates = np.flatnonzero(usable)
        scores = np.asarray(
            self._model.score_many({m: all_values[m][candidates] for m in features}, self.context), dtype=np.float64
        ).reshape(-1)
        order = np.argsort(-scores, kind="stable")[: self.top_k]
        shown = [m for m in self.catalog.metrics if m in features] or list(self.catalog.metrics)
        top = []
        for rank, j in enumerate(order, start=1):
            index = int(candidates[j])
            arch_str = self.context.benchmark.arch_str(index)
            cells = []
            for m in shown:
                v = float(all_values[m][index])
                cells.append("n/a" if math.isnan(v) else format_value(v))
            top.append({"rank": rank, "index": index, "arch_str": arch_str, "short": _short_arch(self.space, arch_str),
                        "score": float(scores[j]), "cells": cells})
        rng = np.random.default_rng([self._state["seed"], 3])
        sample = rng.choice(candidates, size=min(DRIVER_SAMPLE, candidates.size), replace=False)
        drivers = _drivers(self._model, self.context, {m: all_values[m][sample] for m in features}, self.catalog)
        legend = (
            "Architecture: the op on each of the 6 edges, in the official order "
            "(3 = conv 3×3, 1 = conv 1×1, p = avg pool 3×3, s = skip, · = none)."
            if self.space.kind.value == "topology"
            else "Architecture: the channels of the 5 layers."
        )
        scope = "Top architectures in the whole space" if self.catalog.whole_space else "Top architectures evaluated so far"
        # RankNet's metric-family prior, in words: what the judgments most likely mean.
        posterior = getattr(self._model, "posterior", None)
        reading = [{"text": text, "share": share} for share, text in posterior.explain(3)] if posterior is not None else []
        return {"top": top, "columns": [f"{m.label} ({m.unit})" for m in shown], "legend": legend, "drivers": drivers,
                "scope": scope, "reading": reading}


def _drivers(model, context: ScoringContext, values: dict[Metric, np.ndarray], catalog: MetricCatalog) -> list[dict[str, Any]]:
    """How much the model's score moves when one metric sweeps the space's range, the others fixed.

    A central finite difference at each sampled architecture (step: 5% of the metric's range),
    averaged and scaled to the full range: the linearised score change from the worst to the best
    value -- positive when the model prefers higher values. It needs nothing but ``score_many``.
    """
    out = []
    for metric, column in values.items():
        stats = context.stats(metric)
        span = stats.max - stats.min
        if span <= 0:
            continue
        step = 0.05 * span
        # Keep perturbed values inside the space's range, where the model's normalisation is linear.
        centre = np.clip(column, stats.min + step, stats.max - step)
        plus = {**values, metric: centre + step}
        minus = {**values, metric: centre - step}
        diff = np.asarray(model.score_many(plus, context), dtype=np.float64) - np.asarray(
            model.score_many(minus, context), dtype=np.float64
        )
        effect = float(np.mean(diff) / (2 * step) * span)
        out.append({"key": metric.value, "label": metric.label, "effect": effect})
    total = sum(abs(d["effect"]) for d in out) or 1.0
    for d in out:
        d["share"] = abs(d["effect"]) / total
        d["prefers"] = "prefers higher" if d["effect"] > 0 else "prefers lower" if d["effect"] < 0 else "no effect"
    out.sort(key=lambda d: -abs(d["effect"]))
    return out


def _short_arch(space, arch_str: str) -> str:
    """A compact form of an architecture for tables: op initials per edge, or the widths."""
    if space.kind.value == "size":
        return arch_str
    short = {"none": "·", "skip_connect": "s", "nor_conv_1x1": "1", "nor_conv_3x3": "3", "avg_pool_3x3": "p"}
    enc = space.parse(arch_str)
    return "".join(short[space.ops[i]] for i in enc)


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidRequestError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SessionMismatchError(f"cannot read session state {str(path)!r}: {exc}; delete it to start the interface state afresh") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise SessionMismatchError(f"{str(path)!r} is not an elicitation session state file")
    if state.get("version") != STATE_VERSION:
        raise SessionMismatchError(f"{str(path)!r} has state version {state.get('version')!r}; this version reads {STATE_VERSION}")
    return state

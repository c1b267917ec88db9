"""The elicitation loop both interfaces share: show a pair, take a choice, undo, fit, export.

:class:`ElicitationSession` owns one session: the candidate architectures, the pending pair, the
judgments and the fitted reward model. The web page and the terminal UI only draw its
:meth:`~ElicitationSession.state` and call its actions, so they behave the same.

**Where the pairs come from.** A session opened with :meth:`ElicitationSession.open` draws its own
pairs among random candidates (``scripts/elicit.py``). One opened with
:meth:`ElicitationSession.open_for_search` shows only the pairs a running search asks about, in
*rounds*: :meth:`~ElicitationSession.ask` puts a round of pairs on screen, and
:meth:`~ElicitationSession.wait` returns the judgments once the person has answered them all
(:class:`preference_ui.SearchJudge` is the search's side of it). A pair already judged in the
session file is answered from it, without asking again.

**Warm start** (issue 17). Before a search's first pair, :meth:`~ElicitationSession.offer_start`
puts an offer on screen ("Start from N earlier users" or "Start fresh", the earlier users of a
:class:`~reward_models.library.PreferenceLibrary`); :meth:`~ElicitationSession.choose_start` takes
the answer and :meth:`~ElicitationSession.wait_for_start` hands it to the search. The answer is kept
in the interface state (:class:`~preference_ui.state.StartChoice`), so a resumed session does not ask
again. While the search runs, the interfaces show how the warm start goes
(:meth:`~ElicitationSession.show_warm_start`: the earlier users' share of the model's belief, or that
the person's judgments disagree with them) and whether the session will be remembered
(:meth:`~ElicitationSession.show_remember`).

**What the person can do.** Judge the pair on screen (A, B or tie), skip it, undo the last action
(the answer is shown with what was undone), change any earlier answer from the history
(:meth:`~ElicitationSession.change`: a retraction and the new answer, appended), fit RankNet in the
background while judging on (:meth:`~ElicitationSession.start_fit`; the fit reports how sure it is:
the posterior mass of its best reading, agreement with held-out judgments, a warning while judgments
are few), queue two of the fitted top architectures as the next pair
(:meth:`~ElicitationSession.compare`) and look at what the two networks of a pair do
(:meth:`~ElicitationSession.evidence_for_pair`, :meth:`~ElicitationSession.gradcam`:
:mod:`preference_ui.evidence`).

**Files.** A session is its judgments file (JSONL, written by ``reward_models``' append-only
preference store; every judgment is flushed and fsynced before the call returns, and an undo is an
appended retraction) plus two files beside it:

* ``<name>.ui.json`` -- the interface's own state (:class:`~preference_ui.state.SessionState`):
  space, dataset, budget and device, the seed, the candidate architectures, the pending pair, the
  pairs waiting to be shown again and the order of past actions (for undo). It is replaced
  atomically after every action.
* the fitted reward model (``<name>.ranknet`` plus the extension the model's ``save`` uses), the file
  ``RankNetRewardModel.load`` reads and the environments and agents accept.
* ``<name>.token`` -- the web page's access token when it is served off loopback
  (:func:`preference_ui.web.session_token`; permissions 0600).

Temporary files an interrupted atomic write left beside them are deleted when the session opens.

**Durability.** A judgment is in the judgments file before the next pair is chosen and shown, so
killing the process loses nothing answered. If it dies between the two writes, :meth:`open` sees
that the judgments file and the state disagree and reconciles them from the judgments file, the
record of truth.

**Determinism.** The candidates and every new pair are drawn from generators seeded by the session
seed (and the number of pairs drawn so far), so a resumed session shows exactly the pair it showed
before it stopped, and the same sequence after.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from natsbench_gym.benchmarks.base import Benchmark
from natsbench_gym.fileio import atomic_write, remove_stale_temporaries
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import DeviceLatency, Metric
from preference_ui import adapter
from preference_ui.catalog import MetricCatalog, format_value
from preference_ui.drawing import architecture_lines, architecture_svg
from preference_ui.errors import (
    AnswerLockedError,
    InvalidRequestError,
    JudgingStoppedError,
    NotFittedError,
    NothingToUndoError,
    SessionMismatchError,
    StalePairError,
    UnknownPairError,
)
from preference_ui.state import STATE_FORMAT, Action, FitRecord, Pair, QueuedPair, SessionState, StartChoice
from reward_models.preferences import OUTCOMES, Comparison, Outcome

__all__ = ["ElicitationSession", "Pair", "Round", "STATE_FORMAT"]

logger = logging.getLogger(__name__)

#: Architectures of the space the "what drives it" sensitivities are averaged over.
DRIVER_SAMPLE = 2000
#: Below this many judgments a fit warns that its ranking is a guess (the paper asks about ~10-20).
FEW_JUDGMENTS = 10
#: Posterior mass of the best reading at which the fit counts as "leaning" / "fairly sure".
LEANING, SURE = 0.5, 0.8
#: The words of each answer, in the orientation shown.
ANSWER_WORDS = {"a": "A preferred", "b": "B preferred", "tie": "a tie"}


@dataclass
class Round:
    """One batch of pairs a search asked about (:meth:`ElicitationSession.ask`).

    Attributes:
        number: 1 for the session's first round in this process, then 2, 3, ...
        pairs: the pairs as asked, ``(index a, index b)``, in order.
        selector: how the search chose them (recorded with each judgment).
        replayed: how many of them were answered from the session file without asking.
        todo: the pairs still to be answered, in the order they will be shown (the first is on
            screen); a skipped pair goes to the end.
        search_round: the personalized search's round these pairs belong to, and how many rounds its
            schedule has (``(None, None)``: not said). With one pair asked at a time (the
            default ``batch_size=1``) several of these rounds make one search round.
    """

    number: int
    pairs: tuple[tuple[int, int], ...]
    selector: str
    replayed: int = 0
    todo: list[tuple[int, int]] = field(default_factory=list)
    search_round: tuple[int | None, int | None] = (None, None)

    @property
    def done(self) -> bool:
        return not self.todo


class ElicitationSession:
    """One person's judgments on one space and dataset, and the reward model learned from them.

    Build it with :meth:`open` (which creates or resumes a session that draws its own pairs) or
    :meth:`open_for_search` (one that shows the pairs a search asks about); every public method is
    safe to call from several threads (the web server is threaded, and a search waits in its own).

    Args:
        path: the judgments file (JSONL).
        context: the benchmark, dataset, budget and latency device the metrics come from.
        state: the interface state (as :meth:`open` reads or creates it).
        judge: who judges (recorded in every judgment).
        top_k: how many top architectures :meth:`fit` reports.
        for_search: show only the pairs a search asks about (:meth:`ask`); never draw pairs.
        evidence: what shows the networks' predictions and Grad-CAM
            (:class:`~preference_ui.evidence.EvidenceProvider`; default: one over ``context``, made
            on first use).

    Attributes:
        revision: counts the changes of what an interface draws (a new round, an answer), so that an
            interface can tell when to redraw.
    """

    def __init__(
        self,
        path: Path,
        context: ScoringContext,
        state: SessionState,
        *,
        judge: str = "human",
        top_k: int = 10,
        for_search: bool = False,
        evidence: Any = None,
    ) -> None:
        self.path = Path(path)
        self.context = context
        self.space = context.benchmark.space
        self.top_k = top_k
        self.for_search = bool(for_search)
        self.catalog = MetricCatalog(context, candidates=state.population)
        self._state = state
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._store = adapter.JudgmentStore(self.path, context, judge)
        self._population = np.asarray(state.population, dtype=np.int64)
        self._model: Any | None = None
        self._fit_view: dict[str, Any] | None = None
        self._round: Round | None = None
        self._rounds = 0
        self._stopped: str | None = None
        self._offer: dict[str, Any] | None = None  # the warm-start offer on screen (search sessions)
        self._warm_view: dict[str, Any] | None = None
        self._remember_view: dict[str, Any] | None = None
        self._evidence = evidence
        self._fit_lock = threading.Lock()  # one fit at a time; the session lock stays free meanwhile
        self._fitting: dict[str, Any] | None = None  # the fit running now: started, phase, progress
        self._fit_error: str | None = None
        self.revision = 0
        if self.model_path.is_file() and state.fit:
            self._model = adapter.load_model(self.model_path)
        self._reconcile()
        if self.for_search:
            # A round lives as long as the search that asked it: a restarted search asks again,
            # and what was answered is replayed from the judgments file.
            self._state.pending, self._state.queue = None, []
            self._state.target = self._store.count()
        # Undo reaches only what no search has received yet (in a search session: the open round).
        self._handed_over = len(self._state.actions) if self.for_search else 0
        if self._state.pending is None:
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
        evidence: Any = None,
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
            evidence: the :class:`~preference_ui.evidence.EvidenceProvider` (default: made on first use).
        """
        return cls._open(path, benchmark, dataset, budget=budget, device=device, population=population, pairs=pairs,
                         active=active, seed=seed, judge=judge, top_k=top_k, for_search=False, evidence=evidence)

    @classmethod
    def open_for_search(
        cls,
        path: str | os.PathLike,
        context: ScoringContext,
        *,
        seed: int | None = None,
        judge: str = "human",
        top_k: int = 10,
        evidence: Any = None,
        devices: Sequence[str] = (),
    ) -> ElicitationSession:
        """Resume or start a session that shows the pairs a search asks about (:meth:`ask`).

        The session takes the benchmark, dataset, budget and device of the search's ``context``;
        resuming one started with others raises :class:`SessionMismatchError`. The candidates are the
        architectures the search has asked about so far.

        Args:
            path: the judgments file; ``<stem>.ui.json`` and the model file live beside it.
            context: the search's scoring context (``env.unwrapped.context``).
            seed: seeds the fits of the reward model the page offers (default: a fresh random seed,
                then stored); the pairs are the search's.
            judge: who judges (recorded in every judgment).
            top_k: how many top architectures a fit reports.
            evidence: the :class:`~preference_ui.evidence.EvidenceProvider` (default: made on first use).
            devices: more latency devices whose latency each architecture shows ("latency on pixel3"),
                e.g. those the person named to the search (``Personalization(devices=...)``).
        """
        session = cls._open(path, context.benchmark, context.dataset.value, budget=context.budget, device=context.device,
                            population=None, pairs=None, active=None, seed=seed, judge=judge, top_k=top_k, for_search=True,
                            evidence=evidence)
        if devices:
            session.show_devices(devices)
        return session

    def show_devices(self, devices: Sequence[str]) -> None:
        """Show each architecture's latency on ``devices`` too (beside the session's own device)."""
        extra = tuple(DeviceLatency(self.context.benchmark.check_device(d)) for d in dict.fromkeys(devices) if d != self.context.device)
        with self._lock:
            shown = tuple(m for m in self.catalog.metrics if not isinstance(m, DeviceLatency))
            self.catalog = MetricCatalog(self.context, shown + extra, candidates=self._state.population)

    @classmethod
    def _open(
        cls,
        path: str | os.PathLike,
        benchmark: Benchmark,
        dataset: str | None,
        *,
        budget: int | None,
        device: str | None,
        population: int | None,
        pairs: int | None,
        active: bool | None,
        seed: int | None,
        judge: str,
        top_k: int,
        for_search: bool,
        evidence: Any = None,
    ) -> ElicitationSession:
        path = Path(path)
        state_path = cls.state_path_for(path)
        # what a write interrupted by a crash left beside the session (never read as the files)
        for target in (state_path, cls.model_path_for(path), cls.token_path_for(path)):
            remove_stale_temporaries(target)
        if state_path.is_file():
            state = SessionState.read(state_path)
            kind = benchmark.space.kind.value
            checks = {
                "space": (kind, state.space),
                "dataset": (None if dataset is None else benchmark.check_dataset(dataset).value, state.dataset),
                "budget": (None if budget is None else benchmark.check_budget(budget), state.budget),
                "device": (None if device is None else benchmark.check_device(device), state.device),
            }
            for name, (given, stored) in checks.items():
                if given is not None and given != stored:
                    raise SessionMismatchError(
                        f"session {str(path)!r} was started with {name} {stored!r}, not {given!r}; "
                        f"resume it with {name} {stored!r} or start a new session file"
                    )
            if seed is not None and seed != state.seed:
                raise SessionMismatchError(f"session {str(path)!r} was started with seed {state.seed}, not {seed}")
            if pairs is not None:
                state.target = _check_positive("pairs", pairs)
            if active is not None:
                state.active = bool(active)
            context = ScoringContext.create(benchmark, state.dataset, state.budget, state.device)
            logger.info("resuming session %s", path)
        else:
            context = ScoringContext.create(benchmark, dataset or "cifar10", budget, device)
            seed = secrets.randbits(31) if seed is None else int(seed)
            if population is None:  # a search's session: the candidates are what it asks about
                candidates: list[int] = []
            else:
                size = _check_positive("population", population)
                if not 2 <= size <= benchmark.space.size:
                    raise InvalidRequestError(f"population must be between 2 and {benchmark.space.size}, got {size}")
                encodings = benchmark.space.sample_many(np.random.default_rng([seed, 0]), size, unique=True)
                candidates = benchmark.indices_of_encodings(encodings).tolist()
            state = SessionState(
                space=benchmark.space.kind.value,
                dataset=context.dataset.value,
                budget=context.budget,
                device=context.device,
                seed=seed,
                population=candidates,
                target=_check_positive("pairs", 20 if pairs is None else pairs),
                active=bool(active),
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            logger.info("new session %s (seed %d, %d candidates)", path, seed, len(candidates))
        return cls(path, context, state, judge=judge, top_k=top_k, for_search=for_search, evidence=evidence)

    @classmethod
    def stored_settings(cls, path: str | os.PathLike) -> dict[str, Any] | None:
        """Space, dataset, budget and device a session at ``path`` was started with (``None``: new)."""
        state_path = cls.state_path_for(path)
        if not state_path.is_file():
            return None
        return SessionState.read(state_path).settings

    @staticmethod
    def state_path_for(path: str | os.PathLike) -> Path:
        """Where the interface state of the judgments file ``path`` lives."""
        path = Path(path)
        return path.with_name(path.stem + ".ui.json")

    @property
    def state_path(self) -> Path:
        return self.state_path_for(self.path)

    @staticmethod
    def model_path_for(path: str | os.PathLike) -> Path:
        """Where the fitted reward model of the judgments file ``path`` lives."""
        path = Path(path)
        return path.with_name(path.stem + ".ranknet" + adapter.MODEL_SUFFIX)

    @staticmethod
    def token_path_for(path: str | os.PathLike) -> Path:
        """Where the web page's access token of the judgments file ``path`` is kept (0600)."""
        path = Path(path)
        return path.with_name(path.stem + ".token")

    @property
    def model_path(self) -> Path:
        """The fitted reward model's file."""
        return self.model_path_for(self.path)

    @property
    def token_path(self) -> Path:
        return self.token_path_for(self.path)

    @property
    def model(self) -> Any | None:
        """The fitted reward model (``None`` before the first fit)."""
        return self._model

    @property
    def judge_name(self) -> str:
        """Who judges, as recorded in every judgment."""
        return self._store.judge

    # --- what is on screen -------------------------------------------------------------------
    @property
    def pending(self) -> Pair | None:
        """The pair waiting for a judgment (``None`` once the goal is reached, or while a search
        session waits for the search to ask)."""
        return self._state.pending

    def state(self) -> dict[str, Any]:
        """Everything an interface draws, as JSON-ready data."""
        with self._lock:
            pending = self.pending
            judged = self._store.count()
            return {
                "context": {
                    "space": self._state.space,
                    "dataset": self._state.dataset,
                    "budget": self._state.budget,
                    "device": self._state.device,
                    "benchmark": self.context.benchmark.describe(),
                    "population": int(self._population.size),
                    "session": self.path.name,
                    "active": self._state.active,
                },
                "progress": {
                    "judged": judged,
                    "target": self._state.target,
                    "skipped": sum(1 for a in self._state.actions if a.kind == "skip"),
                },
                "pair": None
                if pending is None
                else {"id": pending.id, "a": self.describe(pending.a), "b": self.describe(pending.b),
                      "selector": pending.selector},
                "can_undo": len(self._state.actions) > self._handed_over,
                "can_fit": judged > 0,
                "can_compare": not self.for_search,
                "fit": self._fit_summary(),
                "fitting": self._fitting_view(),
                "history": self.history(),
                "evidence": self.evidence_available(),
                "search": self._search_view(),
                "warm_start": self._warm_start_view(),
                "revision": self.revision,
            }

    def describe(self, index: int) -> dict[str, Any]:
        """One architecture as the interfaces show it: drawing, text lines and every metric."""
        encoding = self.context.benchmark.encoding(index)
        arch_str = self.space.format(encoding)
        return {
            "index": int(index),
            "arch_str": arch_str,
            "short": _short_arch(self.space, arch_str),
            "svg": architecture_svg(self.space, encoding, title=f"#{index} {arch_str}"),
            "lines": architecture_lines(self.space, encoding),
            "metrics": [view.to_json() for view in self.catalog.describe(index)],
        }

    def history(self) -> list[dict[str, Any]]:
        """The answers in force, in the order first given: each with its comparison ``id`` (what
        :meth:`change` takes), the pair, the ``outcome``, the first answer given if the one in force differs
        (``changed_from``) and whether it can still be changed (a search's earlier rounds: no)."""
        with self._lock:
            in_force = {c.key: c for c in self._store.comparisons()}
            first: dict[tuple[int, int], Comparison] = {}
            for c in self._store.history():
                first.setdefault(c.key, c)
            locked = {adapter.pair_key(a.a, a.b) for a in self._state.actions[: self._handed_over] if a.kind == "judge"}
            open_ = {adapter.pair_key(a.a, a.b) for a in self._state.actions[self._handed_over :] if a.kind == "judge"}
            order = sorted(in_force, key=lambda k: first[k].timestamp)
            out = []
            for n, key in enumerate(order, start=1):
                c = in_force[key]
                # the first answer given, if the one in force differs (in the orientation of the latter)
                original = first[key]
                same_side = original.indices == c.indices
                before = original.outcome.value if same_side or original.outcome is Outcome.TIE else original.outcome.flipped.value
                if original.id == c.id or before == c.outcome.value:
                    before = None
                changeable = key in open_ if self.for_search else True
                if self.for_search and key in locked:
                    changeable = False
                a, b = c.indices
                out.append({
                    "n": n, "id": c.id, "a": a, "b": b,
                    "a_short": _short_arch(self.space, c.arch_a.arch_str), "b_short": _short_arch(self.space, c.arch_b.arch_str),
                    "outcome": c.outcome.value, "text": ANSWER_WORDS[c.outcome.value], "changed_from": before,
                    "changeable": changeable, "timestamp": c.timestamp,
                })
            return out

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
            self._state.actions.append(Action("judge", pair.a, pair.b, pair.selector))
            if self._round is not None:
                self._round.todo.remove((pair.a, pair.b))
            self._state.pending = None
            self._advance()
            self._save_state()
            return self.state()

    def skip(self, pair_id: str) -> dict[str, Any]:
        """Show the next pair without judging this one.

        A session that draws its own pairs does not show it again unless undone; in a search's round
        it is asked again after the round's other pairs (the round needs an answer to every pair:
        say "tie" when neither is better).
        """
        with self._lock:
            pair = self._check_pending(pair_id)
            self._state.actions.append(Action("skip", pair.a, pair.b, pair.selector))
            if self._round is not None:
                self._round.todo.remove((pair.a, pair.b))
                self._round.todo.append((pair.a, pair.b))
            self._state.pending = None
            self._advance()
            self._save_state()
            return self.state()

    def change(self, comparison_id: str, outcome: str) -> dict[str, Any]:
        """Replace the answer of an earlier judgment (an entry of :meth:`history`) with ``outcome``.

        Append-only: the old judgment is retracted and the new one appended (both flushed and
        fsynced), so the file keeps both; undo changes it back. Giving the answer it already has
        changes nothing.

        Raises:
            InvalidRequestError: ``outcome`` is not ``"a"``, ``"b"`` or ``"tie"``.
            UnknownPairError: no judgment has this id.
            AnswerLockedError: the judgment was changed or undone since (use the latest id), or a
                search already received it.
        """
        if outcome not in OUTCOMES:
            raise InvalidRequestError(f"outcome {outcome!r} is not one of {', '.join(map(repr, OUTCOMES))}")
        if not isinstance(comparison_id, str):
            raise InvalidRequestError(f"id must be a string, got {type(comparison_id).__name__}")
        with self._lock:
            current = self._store.find(comparison_id)
            if current is None:
                raise UnknownPairError(f"no judgment has id {comparison_id!r}; the history lists the ids of the answers in force")
            if self._store.is_retracted(comparison_id):
                raise AnswerLockedError(f"judgment {comparison_id!r} was changed or undone since; reload to see the answer in force")
            entry = next(e for e in self.history() if e["id"] == comparison_id)
            if not entry["changeable"]:
                raise AnswerLockedError("the search already received this answer (an earlier round); "
                                        "answers of the round on screen can be changed")
            if current.outcome.value == outcome:
                return self.state()
            a, b = current.indices
            # the retraction first: a crash between the two writes leaves the pair unanswered, and
            # the session asks it again, rather than two answers in force
            self._store.retract_pair(a, b, reason="changed")
            self._store.append(a, b, outcome, current.selector)
            self._state.actions.append(Action("change", a, b, current.selector, before=current.outcome.value, after=outcome))
            self._save_state()
            logger.info("changed the answer of #%d vs #%d from %s to %s", a, b, current.outcome.value, outcome)
            return self.state()

    def undo(self) -> dict[str, Any]:
        """Take back the last judgment (an appended retraction), skip or change of an answer.

        An undone judgment or skip shows its pair again; an undone change restores the earlier
        answer (a retraction and the earlier answer, appended). In a search session only the answers
        of the round on screen can be taken back: the search already has the earlier ones. The
        state returned says what was undone (``undone``: ``{"kind", "a", "b", "outcome", "text"}``).

        Raises:
            NothingToUndoError: nothing was judged, skipped or changed (in this round).
        """
        with self._lock:
            actions = self._state.actions
            if len(actions) <= self._handed_over:
                if self.for_search and actions:
                    raise NothingToUndoError("nothing to undo in this round: the search already has the earlier answers")
                raise NothingToUndoError("nothing to undo: no pair was judged or skipped in this session")
            last = actions.pop()
            undone: dict[str, Any] = {"kind": last.kind, "a": last.a, "b": last.b, "outcome": None}
            if last.kind == "change":
                self._store.retract_pair(last.a, last.b, reason="undo")
                self._store.append(last.a, last.b, last.before, last.selector)
                undone["outcome"] = last.after
                undone["text"] = (f"Undone: your change of #{last.a} vs #{last.b} from {ANSWER_WORDS[last.before]} "
                                  f"to {ANSWER_WORDS[last.after]}; it is {ANSWER_WORDS[last.before]} again.")
                self._save_state()
                return self.state() | {"undone": undone}
            if last.kind == "judge":
                retracted = self._store.retract_pair(last.a, last.b)
                if retracted is not None:
                    word = retracted.outcome.value if retracted.indices == (last.a, last.b) or retracted.outcome is Outcome.TIE \
                        else retracted.outcome.flipped.value
                    undone["outcome"] = word
                    undone["text"] = f"Undone: your answer to #{last.a} vs #{last.b} ({ANSWER_WORDS[word]}); the pair is shown again."
            if undone.get("text") is None:
                undone["text"] = f"Undone: the skip of #{last.a} vs #{last.b}; the pair is shown again."
            if self._round is not None:
                pair = (last.a, last.b)
                if pair in self._round.todo:  # an undone skip
                    self._round.todo.remove(pair)
                self._round.todo.insert(0, pair)
                self._state.pending = None
                self._advance()
            else:
                self._show_again(last)
            self._save_state()
            return self.state() | {"undone": undone}

    def compare(self, a: int, b: int) -> dict[str, Any]:
        """Show the pair ``(a, b)`` next (e.g. two of the fitted top architectures); the pair on
        screen waits in the queue and comes after it.

        Raises:
            InvalidRequestError: not two different architectures of the space, or a search session
                (a search chooses its own pairs).
            AnswerLockedError: the pair is judged already (change its answer in the history).
        """
        for name, value in (("a", a), ("b", b)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InvalidRequestError(f"{name} must be an architecture index, got {value!r}")
        a, b = int(a), int(b)
        size = self.space.size
        if a == b or not (0 <= a < size and 0 <= b < size):
            raise InvalidRequestError(f"({a}, {b}) is not two different architectures of the {self.space.kind.value} space (0..{size - 1})")
        with self._lock:
            if self.for_search:
                raise InvalidRequestError("this session shows the pairs a search asks about; it cannot queue pairs of its own")
            done = self._store.in_force(a, b)
            if done is not None:
                raise AnswerLockedError(f"#{a} vs #{b} is judged already ({ANSWER_WORDS[done.outcome.value]}); change it in the history")
            pending = self._state.pending
            if pending is not None and adapter.pair_key(pending.a, pending.b) == adapter.pair_key(a, b):
                return self.state()
            if pending is not None:
                self._state.queue.insert(0, QueuedPair(pending.a, pending.b, pending.selector))
            key = adapter.pair_key(a, b)
            self._state.queue = [q for q in self._state.queue if adapter.pair_key(q.a, q.b) != key]
            self._state.pending = self._new_pair(a, b, "manual:compare")
            self._save_state()
            return self.state()

    def fit(self, top_k: int | None = None, *, check: bool = True) -> dict[str, Any]:
        """Train RankNet on the judgments so far, save it beside the session, and summarise it.

        The session stays usable while it trains (judging, undo, ...): the fit works on the
        judgments in force when it started, and the summary says what changed since. One fit runs
        at a time; a second call waits for the first. :meth:`start_fit` runs it in the background.

        Args:
            top_k: how many top architectures to report (default: the session's).
            check: also hold out each judgment in turn and report how often a model fitted without it
                agrees with it (leave-one-out; at most ``adapter.HELD_OUT_LIMIT`` of them).

        Raises:
            NotFittedError: there is no judgment yet, or none the model can learn from.
        """
        with self._fit_lock:
            with self._lock:
                if top_k is not None:
                    self.top_k = int(top_k)
                comparisons = self._store.comparisons()
                if not comparisons:
                    raise NotFittedError("judge at least one pair before fitting the reward model")
                fit_seed = int(np.random.default_rng([self._state.seed, 1, len(comparisons)]).integers(2**31))
                self._fitting = {"started": time.monotonic(), "phase": "fitting", "judgments": len(comparisons),
                                 "done": 0, "total": 0}
                self._fit_error = None
                self._touch()
            try:
                model = adapter.fit_model(comparisons, self.context, seed=fit_seed)
                view = self._summarise_model(model)
                quality = None
                if check and len(comparisons) >= 2:
                    self._set_fitting(phase="checking")
                    quality = adapter.held_out_agreement(
                        comparisons, self.context, fit_seed, progress=lambda done, total: self._set_fitting(done=done, total=total))
                with self._lock:
                    adapter.save_model(model, self.model_path)
                    self._model = model
                    self._fit_view = view
                    self._state.fit = FitRecord(len(comparisons), fit_seed, tuple(c.id for c in comparisons), quality)
                    self._save_state()
                logger.info("fitted RankNet on %d judgments; saved %s", len(comparisons), self.model_path)
            except Exception as exc:
                with self._lock:
                    self._fit_error = str(exc)
                raise
            finally:
                with self._lock:
                    self._fitting = None
                    self._touch()
            return self.state()

    def start_fit(self, top_k: int | None = None) -> dict[str, Any]:
        """:meth:`fit` in a background thread; returns at once (the state shows ``fitting`` with
        the seconds so far, then the new ``fit``, or ``fit_error``). A fit already running is left
        to finish (this returns its state).

        Raises:
            NotFittedError: there is no judgment yet.
        """
        with self._lock:
            if self._fitting is not None:
                return self.state()
            if self._store.count() == 0:
                raise NotFittedError("judge at least one pair before fitting the reward model")
            # mark it running now, so that the state returned (and a second click) sees it
            self._fitting = {"started": time.monotonic(), "phase": "starting", "judgments": self._store.count(),
                             "done": 0, "total": 0}

        def run() -> None:
            try:
                self.fit(top_k)
            except Exception as exc:  # noqa: BLE001 - shown on the page as fit_error
                logger.warning("the fit failed: %s", exc)
                with self._lock:
                    self._fitting, self._fit_error = None, str(exc)
                    self._touch()

        threading.Thread(target=run, name="fit", daemon=True).start()
        return self.state()

    @property
    def fitting(self) -> bool:
        """Whether a fit is running."""
        return self._fitting is not None

    def wait_for_fit(self, timeout: float | None = None) -> bool:
        """Block until no fit runs (``False`` on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._fitting is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(0.2 if left is None else min(0.2, left))
        return True

    def _set_fitting(self, **changes: Any) -> None:
        with self._lock:
            if self._fitting is not None:
                self._fitting.update(changes)
                self._touch()

    def _fitting_view(self) -> dict[str, Any] | None:
        if self._fitting is None:
            return {"running": False, "error": self._fit_error} if self._fit_error else None
        f = self._fitting
        return {"running": True, "elapsed_s": round(time.monotonic() - f["started"], 1), "phase": f["phase"],
                "judgments": f["judgments"], "done": f["done"], "total": f["total"], "error": None}

    # --- evidence: what the networks do -------------------------------------------------------------
    @property
    def evidence(self) -> Any:
        """The :class:`~preference_ui.evidence.EvidenceProvider` of this session (made on first use)."""
        with self._lock:
            if self._evidence is None:
                from preference_ui.evidence import EvidenceProvider

                self._evidence = EvidenceProvider(self.context, seed=self._state.seed)
            return self._evidence

    @evidence.setter
    def evidence(self, provider: Any) -> None:
        with self._lock:
            if self._evidence is not None and self._evidence is not provider:
                self._evidence.close()
            self._evidence = provider

    @property
    def seed(self) -> int:
        """The session's seed (candidates, pairs, fits, the evidence's image grid)."""
        return self._state.seed

    def evidence_available(self) -> dict[str, Any]:
        """Whether the evidence panel can work here (``{"available", "why"}``; imports nothing)."""
        import importlib.util

        missing = [name for name in ("torch", "captum") if importlib.util.find_spec(name) is None]
        if missing:
            return {"available": False, "why": f"needs {' and '.join(missing)}: pip install -e '.[evidence]'"}
        return {"available": True, "why": None}

    def _shown(self, index: int) -> bool:
        """Whether architecture ``index`` is one this session shows (candidates, pairs, judged)."""
        if index in set(self._state.population):
            return True
        pending = self._state.pending
        pairs = [(q.a, q.b) for q in self._state.queue] + [(a.a, a.b) for a in self._state.actions] + self._store.pairs()
        if pending is not None:
            pairs.append((pending.a, pending.b))
        return any(index in pair for pair in pairs)

    def _check_shown(self, *indices: int) -> None:
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise InvalidRequestError(f"an architecture index must be an integer, got {index!r}")
            with self._lock:
                shown = self._shown(int(index))
            if not shown:
                raise UnknownPairError(f"architecture #{index} is not one this session shows; evidence is for its candidates and pairs")

    def evidence_for_pair(self, a: int, b: int) -> dict[str, Any]:
        """What the networks of ``a`` and ``b`` do (:meth:`EvidenceProvider.pair
        <preference_ui.evidence.EvidenceProvider.pair>`); queues their training or loading.

        Raises:
            UnknownPairError: an architecture this session does not show.
        """
        self._check_shown(a, b)
        return self.evidence.pair(int(a), int(b))

    def gradcam(self, index: int, image: int, target: str = "predicted") -> dict[str, Any]:
        """Grad-CAM of the network of ``index`` for validation image ``image`` (see
        :meth:`EvidenceProvider.gradcam <preference_ui.evidence.EvidenceProvider.gradcam>`)."""
        self._check_shown(index)
        return self.evidence.gradcam(int(index), image, target)

    # --- rounds: the pairs a search asks about ------------------------------------------------------
    def ask(
        self,
        pairs: list[tuple[int, int]] | tuple[tuple[int, int], ...],
        selector: str = "manual",
        search_round: tuple[int | None, int | None] = (None, None),
    ) -> Round:
        """Put a round of pairs on screen, first to last; pairs judged before are not asked again.

        Only a session opened with :meth:`open_for_search` takes rounds, one at a time: :meth:`wait`
        for a round's answers before asking the next.

        Args:
            pairs: ``(index a, index b)`` of two different architectures each.
            selector: how the pairs were chosen (recorded with each judgment).
            search_round: the search's round number and its number of rounds, shown instead of
                this batch's own number when given.

        Raises:
            InvalidRequestError: not a search session, a round is open, or a pair is malformed.
            JudgingStoppedError: the session was stopped (:meth:`stop`).
        """
        asked = tuple((int(a), int(b)) for a, b in pairs)
        size = self.space.size
        for a, b in asked:
            if a == b or not (0 <= a < size and 0 <= b < size):
                raise InvalidRequestError(f"pair ({a}, {b}) is not two different architectures of the {self.space.kind.value} space (0..{size - 1})")
        with self._lock:
            if not self.for_search:
                raise InvalidRequestError("this session draws its own pairs; open it with ElicitationSession.open_for_search to ask it about a search's pairs")
            if self._stopped is not None:
                raise JudgingStoppedError.of_session(self._stopped, self.path)
            if self._round is not None:
                raise InvalidRequestError(f"round {self._round.number} is still open; wait for its answers before asking again")
            known = self._answered()
            todo: dict[tuple[int, int], tuple[int, int]] = {}  # by order-free key: a pair is asked once
            for a, b in asked:
                key = adapter.pair_key(a, b)
                if key not in known:
                    todo.setdefault(key, (a, b))
            self._rounds += 1
            replayed = sum(adapter.pair_key(a, b) in known for a, b in asked)
            round_ = Round(self._rounds, asked, str(selector), replayed, list(todo.values()), tuple(search_round))
            if round_.done:
                logger.info("round %d: all %d pairs were judged before; replayed from %s", round_.number, len(asked), self.path)
                return round_
            candidates = set(self._state.population)
            new = [i for pair in round_.todo for i in pair if i not in candidates]
            self._state.population.extend(dict.fromkeys(new))
            self._population = np.asarray(self._state.population, dtype=np.int64)
            self._state.target = self._store.count() + len(todo)
            self._round = round_
            self._advance()
            self._save_state()
            logger.info("round %d: %d pairs to judge (%d replayed from the session file)", round_.number, len(todo), round_.replayed)
            return round_

    def wait(self, round_: Round, timeout: float | None = None, poll: float = 0.5) -> list[Comparison]:
        """Block until every pair of ``round_`` is answered; its judgments, in the order asked.

        Each judgment is the one in force in the session file for that pair (the orientation it was
        shown in: a pair judged before as ``(b, a)`` comes back so).

        Args:
            round_: what :meth:`ask` returned.
            timeout: give up after this many seconds (``None``: wait as long as it takes).
            poll: wake up this often (so that Ctrl+C reaches a waiting main thread).

        Raises:
            JudgingStoppedError: the session was stopped before the round was answered.
            TimeoutError: ``timeout`` passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not round_.done:
                if self._stopped is not None:
                    raise JudgingStoppedError.of_session(self._stopped, self.path)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"round {round_.number} has {len(round_.todo)} pair(s) unanswered after {timeout} s")
                self._changed.wait(poll if left is None else min(poll, left))
            known = self._answered()
            if self._round is round_:
                self._round = None
                self._handed_over = len(self._state.actions)
                self._state.pending = None
                self._save_state()
            return [known[adapter.pair_key(a, b)] for a, b in round_.pairs]

    def stop(self, reason: str = "the person stopped judging") -> None:
        """End the session's rounds: a search waiting in :meth:`wait` (or asking next) gets
        :class:`JudgingStoppedError` with ``reason``. Judgments already made stay in the file."""
        with self._changed:
            self._stopped = reason
            self._offer = None
            self._touch()

    @property
    def stopped(self) -> bool:
        return self._stopped is not None

    @property
    def judged(self) -> int:
        """How many judgments are in force in the session file."""
        with self._lock:
            return self._store.count()

    # --- warm start: start from earlier users, or fresh ---------------------------------------------
    @property
    def start_choice(self) -> StartChoice | None:
        """How this search session started (``None``: not decided yet)."""
        return self._state.start

    def offer_start(self, sessions: list[int] | tuple[int, ...], library: str) -> None:
        """Offer the person to start from the earlier users of ``library`` (``sessions``: their ids)
        or fresh, before the search's first pair; :meth:`wait_for_start` waits for the answer.

        Raises:
            InvalidRequestError: not a search session, no earlier session, or the start is decided already.
        """
        ids = tuple(int(i) for i in sessions)
        with self._lock:
            if not self.for_search:
                raise InvalidRequestError("only a search session starts from earlier users; open it with open_for_search")
            if not ids:
                raise InvalidRequestError("there is no earlier user to start from: offer a warm start only with earlier sessions")
            if self._state.start is not None:
                raise InvalidRequestError(f"this session's start is decided already ({_start_words(self._state.start)})")
            self._offer = {"users": len(ids), "sessions": ids, "library": str(library)}
            self._touch()

    def choose_start(self, start: str) -> dict[str, Any]:
        """The person's answer to the offer: ``"warm"`` (start from the earlier users) or ``"fresh"``.

        The answer is kept in the interface state before this returns, so a resumed session does
        not ask again.

        Raises:
            InvalidRequestError: ``start`` is neither, or nothing is offered.
            AnswerLockedError: the start was chosen already.
        """
        if start not in ("warm", "fresh"):
            raise InvalidRequestError(f"start {start!r} is not 'warm' (from earlier users) or 'fresh'")
        with self._lock:
            if self._state.start is not None:
                raise AnswerLockedError(f"the start was chosen already ({_start_words(self._state.start)}); "
                                        "start a new session file to choose again")
            offer = self._offer
            if offer is None:
                raise InvalidRequestError("no start is offered: the search offers it before its first pair, "
                                          "when the preference library has earlier users")
            warm = start == "warm"
            self._state.start = StartChoice(warm, offer["sessions"] if warm else (), offer["library"], asked=True)
            self._offer = None
            self._save_state()
            logger.info("the person chose to start %s", _start_words(self._state.start))
            return self.state()

    def record_start(self, choice: StartChoice) -> None:
        """Keep a start decided without asking (a flag, or no earlier users), so that a resumed
        session starts the same way.

        Raises:
            AnswerLockedError: another start was recorded already.
        """
        with self._lock:
            if self._state.start is not None and self._state.start != choice:
                raise AnswerLockedError(f"this session started {_start_words(self._state.start)} already")
            self._offer = None
            self._state.start = choice
            self._save_state()

    def wait_for_start(self, timeout: float | None = None, poll: float = 0.5) -> StartChoice:
        """Block until the start is chosen (:meth:`choose_start`); the choice.

        Raises:
            JudgingStoppedError: the session was stopped first.
            TimeoutError: ``timeout`` passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._state.start is None:
                if self._stopped is not None:
                    raise JudgingStoppedError.of_session(self._stopped, self.path)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no start was chosen after {timeout} s")
                self._changed.wait(poll if left is None else min(poll, left))
            return self._state.start

    def show_warm_start(self, view: dict[str, Any] | None) -> None:
        """What the interfaces say about the warm start while the search runs: a dict with at least
        ``text`` (and ``disagrees``: the person's judgments disagree with the earlier users)."""
        with self._lock:
            if view != self._warm_view:
                self._warm_view = None if view is None else dict(view)
                self._touch()

    def show_remember(self, library: str | os.PathLike | None) -> None:
        """Say that the finished session will be added to the preference library at ``library``
        (``None``: it will not)."""
        with self._lock:
            self._remember_view = None if library is None else {
                "library": str(library),
                "text": f"This session will be remembered in {library} when the search ends (--remember), so later "
                        "searches can start from it; delete that file to forget.",
            }
            self._touch()

    def _warm_start_view(self) -> dict[str, Any] | None:
        """The warm start as the interfaces show it (``None``: not a search session)."""
        if not self.for_search:
            return None
        choice = self._state.start
        return {
            "offer": None if self._offer is None else {"users": self._offer["users"], "library": self._offer["library"]},
            "choice": None if choice is None else {"warm": choice.warm, "users": choice.users, "asked": choice.asked},
            "status": self._warm_view,
            "remember": self._remember_view,
        }

    @property
    def current_round(self) -> Round | None:
        """The round on screen (``None`` while no search waits for answers)."""
        return self._round

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
        if pair_id.isdigit() and int(pair_id) <= self._state.serial:
            now = f"pair {pending.id}" if pending is not None else "no pair (the goal is reached)"
            raise StalePairError(f"pair {pair_id} was already answered, skipped or undone; pending now: {now}")
        raise UnknownPairError(f"unknown pair id {pair_id!r}; this session has shown pairs 1..{self._state.serial}")

    def _answered(self) -> dict[tuple[int, int], Comparison]:
        """The judgment in force of each judged pair, by order-free key (the latest one wins)."""
        return {c.key: c for c in self._store.comparisons()}

    def _new_pair(self, a: int, b: int, selector: str) -> Pair:
        self._state.serial += 1
        return Pair(str(self._state.serial), int(a), int(b), selector)

    def _show_again(self, action: Action) -> None:
        """Make the pair of an undone ``action`` pending; the pair it displaces waits in the queue."""
        pending = self._state.pending
        if pending is not None:
            self._state.queue.insert(0, QueuedPair(pending.a, pending.b, pending.selector))
        self._state.pending = self._new_pair(action.a, action.b, action.selector)

    def _advance(self) -> None:
        """Choose the next pending pair: the round's next (search sessions), else one waiting to be
        shown again, else a new draw (or none)."""
        self._state.pending = None
        if self.for_search:
            if self._round is not None and self._round.todo:
                self._state.pending = self._new_pair(*self._round.todo[0], self._round.selector)
            return
        if self._store.count() >= self._state.target:
            return
        if self._state.queue:
            queued = self._state.queue.pop(0)
            self._state.pending = self._new_pair(queued.a, queued.b, queued.selector)
            return
        rng = np.random.default_rng([self._state.seed, 2, self._state.draws])
        self._state.draws += 1
        model = self._model if self._state.active else None
        # Never propose a pair that was judged, skipped, or is waiting to be shown again.
        exclude = set(self._store.judged_pairs())
        exclude.update(adapter.pair_key(a.a, a.b) for a in self._state.actions)
        exclude.update(adapter.pair_key(q.a, q.b) for q in self._state.queue)
        chosen = adapter.select_pair(self._population, self.context, rng, exclude=exclude, model=model)
        if chosen is not None:
            self._state.pending = self._new_pair(*chosen)

    def _reconcile(self) -> None:
        """Make the state agree with the judgments file after a crash between their two writes.

        By pair: a pair judged in the file that no action records was answered after the state was
        saved (or judged elsewhere, e.g. by a synthetic user): it is adopted, so undo can take it back;
        a pair an action records as judged that the file no longer holds was undone (or its answer
        was being changed) after the state was saved: the pair is shown again."""
        in_force = [c.key for c in self._store.comparisons()]
        recorded = {adapter.pair_key(a.a, a.b): i for i, a in enumerate(self._state.actions) if a.kind == "judge"}
        extra = [c for c in self._store.comparisons() if c.key not in recorded]
        for c in extra:
            a, b = c.indices
            self._state.actions.append(Action("judge", a, b, c.selector))
            pending = self._state.pending
            if pending is not None and adapter.pair_key(pending.a, pending.b) == c.key:
                self._state.pending = None
        if extra and (recorded or self._state.serial):
            logger.warning("session state was behind the judgments file by %d judgment(s); caught up", len(extra))
        present = set(in_force)
        gone = sorted(i for key, i in recorded.items() if key not in present)
        gone_actions = [self._state.actions[i] for i in gone]
        gone_keys = {adapter.pair_key(a.a, a.b) for a in gone_actions}
        # a change recorded for such a pair goes too: the pair is unanswered, nothing to change back
        self._state.actions = [x for i, x in enumerate(self._state.actions)
                               if i not in set(gone) and not (x.kind == "change" and adapter.pair_key(x.a, x.b) in gone_keys)]
        for action in reversed(gone_actions):
            self._show_again(action)
        if gone:
            logger.warning("session state was ahead of the judgments file by %d undo(s); caught up", len(gone))
        if self._state.fit and self._model is None:
            self._state.fit = None

    def _touch(self) -> None:
        """Note a change an interface must redraw, and wake a search waiting for answers."""
        with self._changed:
            self.revision += 1
            self._changed.notify_all()

    def _save_state(self) -> None:
        self._state.write(self.state_path)
        self._touch()

    def _search_view(self) -> dict[str, Any] | None:
        """What a search session shows beside the pair: the round, or that it waits for the search
        (``stopped``: why the rounds ended, or ``None``)."""
        if not self.for_search:
            return None
        r = self._round
        return {
            "waiting": r is None and self._stopped is None,
            "stopped": self._stopped,
            "round": None if r is None else (r.search_round[0] or r.number),
            "rounds": None if r is None else r.search_round[1],
            "asked": 0 if r is None else len(r.pairs),
            "left": 0 if r is None else len(r.todo),
        }

    def _fit_summary(self) -> dict[str, Any] | None:
        """The fitted model as the interfaces show it, with what changed since it was fitted:
        ``new_since`` judgments it has not seen, ``gone_since`` it saw that were undone or changed."""
        if self._model is None or self._state.fit is None:
            return None
        if self._fit_view is None:
            self._fit_view = self._summarise_model(self._model)
        record = self._state.fit
        fitted_on = record.judgments
        if record.ids is not None:
            now = {c.id for c in self._store.comparisons()}
            seen = set(record.ids)
            new_since, gone_since = len(now - seen), len(seen - now)
        else:  # a state written before the ids were recorded: counts only
            judged = self._store.count()
            new_since, gone_since = max(judged - fitted_on, 0), max(fitted_on - judged, 0)
        view = {**self._fit_view, "judgments": fitted_on, "stale": bool(new_since or gone_since),
                "new_since": new_since, "gone_since": gone_since, "check": record.check}
        view["confidence"] = _confidence(view["reading"], fitted_on, record.check)
        few = fitted_on < FEW_JUDGMENTS
        tentative = few or view["confidence"]["level"] != "fairly sure"
        view["tentative"] = tentative
        view["scope"] = ("What the model would pick now (tentative): " if tentative else "") + view["scope"]
        return view

    def _summarise_model(self, model: Any) -> dict[str, Any]:
        """Top-k of the whole space under ``model``, and how much each metric moves its score."""
        features = adapter.model_metrics(model, self.context, self.catalog.metrics)
        all_values = self.catalog.values(None)
        usable = np.all([~np.isnan(all_values[m]) for m in features], axis=0)
        candidates = np.flatnonzero(usable)
        scores = np.asarray(
            model.score_many({m: all_values[m][candidates] for m in features}, self.context), dtype=np.float64
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
        rng = np.random.default_rng([self._state.seed, 3])
        sample = rng.choice(candidates, size=min(DRIVER_SAMPLE, candidates.size), replace=False)
        drivers = _drivers(model, self.context, {m: all_values[m][sample] for m in features}, self.catalog)
        legend = (
            "Architecture: the op on each of the 6 edges, in the official order "
            "(3 = conv 3×3, 1 = conv 1×1, p = avg pool 3×3, s = skip, · = none)."
            if self.space.kind.value == "topology"
            else "Architecture: the channels of the 5 layers."
        )
        scope = "top architectures in the whole space" if self.catalog.whole_space else "top architectures evaluated so far"
        # RankNet's metric-family prior, in words: what the judgments most likely mean.
        posterior = getattr(model, "posterior", None)
        reading = [{"text": plain_reading(text), "share": share} for share, text in posterior.explain(3)] if posterior is not None else []
        return {"top": top, "columns": [f"{m.label} ({m.unit})" for m in shown], "legend": legend, "drivers": drivers,
                "scope": scope, "reading": reading, "mode": getattr(model, "mode", None)}


def _start_words(choice: StartChoice) -> str:
    return f"from {choice.users} earlier user{'s' if choice.users != 1 else ''}" if choice.warm else "fresh"


def plain_reading(text: str) -> str:
    """A structure of the metric-family posterior (``MetricFamilyPosterior.explain``) in plain words,
    with units: no percentages inside (the page shows the posterior mass beside it) and a threshold
    with its metric's unit.

    >>> plain_reading("a trade-off: valid accuracy 60%, params 40%")
    'a trade-off: 0.60 × valid accuracy + 0.40 × params'
    >>> plain_reading("best valid accuracy with flops at most 110.5")
    'the best valid accuracy with flops at most 110.5 MFLOPs'
    """
    if text.startswith("a trade-off: "):
        parts = [re.fullmatch(r"\s*(.+?) (\d+)%\s*", part) for part in text[len("a trade-off: "):].split(",")]
        if all(parts):
            return "a trade-off: " + " + ".join(f"{int(m.group(2)) / 100:.2f} × {m.group(1)}" for m in parts)
        return text
    match = re.fullmatch(r"best (.+?) with (.+?) (at most|at least) ([-+0-9.eE]+)", text)
    if match:
        unit = next((m.unit for m in Metric if m.label == match.group(2)), "")
        return f"the best {match.group(1)} with {match.group(2)} {match.group(3)} {match.group(4)}" + (f" {unit}" if unit else "")
    return text


def _confidence(reading: list[dict[str, Any]], judgments: int, check: dict[str, int] | None) -> dict[str, Any]:
    """How sure a fit is, in words: the posterior mass of its best reading, agreement with held-out
    judgments, and a warning while the judgments are few."""
    parts = []
    if reading:
        share = reading[0]["share"]
        level = "fairly sure" if share >= SURE else "leaning" if share >= LEANING else "unsure"
        parts.append(f"The best reading of your judgments, {reading[0]['text']}, holds {round(100 * share)} % of the "
                     f"model's belief ({level}).")
    else:
        level = "unsure"
        parts.append("This model has no metric-family reading to weigh (a plain RankNet).")
    if check is not None and check["held_out"]:
        agree, held = check["agree"], check["held_out"]
        ties = f"; {check['ties']} tie(s) held out cannot agree or disagree" if check["ties"] else ""
        parts.append(f"Fitted without it, the model agrees with {agree} of {held} judgment(s) it had not seen "
                     f"(leave-one-out{ties}).")
        if agree / held < 0.7 and level == "fairly sure":
            level = "leaning"
    warning = None
    if judgments < FEW_JUDGMENTS:
        warning = (f"Only {judgments} judgment{'s' if judgments != 1 else ''}: the ranking below is a guess. "
                   f"Judge at least {FEW_JUDGMENTS} pairs before you trust it.")
    return {"level": level, "text": " ".join(parts), "warning": warning}


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


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

**Files.** A session is its judgments file (JSONL, written by ``reward_models``' append-only
preference store; every judgment is flushed and fsynced before the call returns, and an undo is an
appended retraction) plus two files beside it:

* ``<name>.ui.json`` -- the interface's own state (:class:`~preference_ui.state.SessionState`):
  space, dataset, budget and device, the seed, the candidate architectures, the pending pair, the
  pairs waiting to be shown again and the order of past actions (for undo). It is replaced
  atomically after every action.
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

import logging
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
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
    JudgingStoppedError,
    NotFittedError,
    NothingToUndoError,
    SessionMismatchError,
    StalePairError,
    UnknownPairError,
)
from preference_ui.state import STATE_FORMAT, Action, FitRecord, Pair, QueuedPair, SessionState
from reward_models.preferences import OUTCOMES, Comparison

__all__ = ["ElicitationSession", "Pair", "Round", "STATE_FORMAT"]

logger = logging.getLogger(__name__)

#: Architectures of the space the "what drives it" sensitivities are averaged over.
DRIVER_SAMPLE = 2000


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
    """

    number: int
    pairs: tuple[tuple[int, int], ...]
    selector: str
    replayed: int = 0
    todo: list[tuple[int, int]] = field(default_factory=list)

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
        return cls._open(path, benchmark, dataset, budget=budget, device=device, population=population, pairs=pairs,
                         active=active, seed=seed, judge=judge, top_k=top_k, for_search=False)

    @classmethod
    def open_for_search(
        cls,
        path: str | os.PathLike,
        context: ScoringContext,
        *,
        seed: int | None = None,
        judge: str = "human",
        top_k: int = 10,
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
        """
        return cls._open(path, context.benchmark, context.dataset.value, budget=context.budget, device=context.device,
                         population=None, pairs=None, active=None, seed=seed, judge=judge, top_k=top_k, for_search=True)

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
    ) -> ElicitationSession:
        path = Path(path)
        state_path = cls.state_path_for(path)
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
        return cls(path, context, state, judge=judge, top_k=top_k, for_search=for_search)

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

    @property
    def model_path(self) -> Path:
        """The fitted reward model's file."""
        return self.path.with_name(self.path.stem + ".ranknet" + adapter.MODEL_SUFFIX)

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
                else {"id": pending.id, "a": self.describe(pending.a), "b": self.describe(pending.b)},
                "can_undo": len(self._state.actions) > self._handed_over,
                "can_fit": judged > 0,
                "fit": self._fit_summary(),
                "search": self._search_view(),
                "revision": self.revision,
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

    def undo(self) -> dict[str, Any]:
        """Take back the last judgment (an appended retraction) or skip, and show that pair again.

        In a search session only the answers of the round on screen can be taken back: the search
        already has the earlier ones.

        Raises:
            NothingToUndoError: nothing was judged or skipped (in this round).
        """
        with self._lock:
            actions = self._state.actions
            if len(actions) <= self._handed_over:
                if self.for_search and actions:
                    raise NothingToUndoError("nothing to undo in this round: the search already has the earlier answers")
                raise NothingToUndoError("nothing to undo: no pair was judged or skipped in this session")
            last = actions.pop()
            if last.kind == "judge":
                self._store.retract_last()
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
            fit_seed = int(np.random.default_rng([self._state.seed, 1, len(comparisons)]).integers(2**31))
            model = adapter.fit_model(comparisons, self.context, seed=fit_seed)
            adapter.save_model(model, self.model_path)
            self._model = model
            self._fit_view = None
            self._state.fit = FitRecord(len(comparisons), fit_seed)
            self._save_state()
            logger.info("fitted RankNet on %d judgments; saved %s", len(comparisons), self.model_path)
            return self.state()

    # --- rounds: the pairs a search asks about ------------------------------------------------------
    def ask(self, pairs: list[tuple[int, int]] | tuple[tuple[int, int], ...], selector: str = "manual") -> Round:
        """Put a round of pairs on screen, first to last; pairs judged before are not asked again.

        Only a session opened with :meth:`open_for_search` takes rounds, one at a time: :meth:`wait`
        for a round's answers before asking the next.

        Args:
            pairs: ``(index a, index b)`` of two different architectures each.
            selector: how the pairs were chosen (recorded with each judgment).

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
            round_ = Round(self._rounds, asked, str(selector), replayed, list(todo.values()))
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
            self._touch()

    @property
    def stopped(self) -> bool:
        return self._stopped is not None

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
        """Make the state agree with the judgments file after a crash between their two writes."""
        judged = self._store.count()
        recorded = [i for i, a in enumerate(self._state.actions) if a.kind == "judge"]
        if judged > len(recorded):
            # Judgments saved after the state was: the pending pair was answered (or the file was
            # judged elsewhere, e.g. by a synthetic user): adopt them, so undo can take them back.
            extra = self._store.comparisons()[len(recorded):]
            for c in extra:
                a, b = c.indices
                self._state.actions.append(Action("judge", a, b, c.selector))
                pending = self._state.pending
                if pending is not None and adapter.pair_key(pending.a, pending.b) == adapter.pair_key(a, b):
                    self._state.pending = None
            if recorded or self._state.serial:
                logger.warning("session state was behind the judgments file by %d judgment(s); caught up", len(extra))
        elif judged < len(recorded):
            # Retractions saved after the state was: finish those undos.
            missing = len(recorded) - judged
            for i in reversed(recorded[-missing:]):
                self._show_again(self._state.actions.pop(i))
            logger.warning("session state was ahead of the judgments file by %d undo(s); caught up", missing)
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
            "round": None if r is None else r.number,
            "asked": 0 if r is None else len(r.pairs),
            "left": 0 if r is None else len(r.todo),
        }

    def _fit_summary(self) -> dict[str, Any] | None:
        if self._model is None:
            return None
        if self._fit_view is None:
            self._fit_view = self._summarise_model()
        judged = self._store.count()
        fitted_on = self._state.fit.judgments
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
        rng = np.random.default_rng([self._state.seed, 3])
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


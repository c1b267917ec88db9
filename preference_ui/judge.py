"""A person as the judge of a running search: the pairs the search asks about, on the page or in the terminal.

:class:`SearchJudge` is a :class:`reward_models.human_preference.Judge`, interchangeable with a
:class:`~reward_models.human_preference.SyntheticUser` in ``agents.personalization.Personalization``.
The search thread calls ``judge(pairs, rng=...)``; the web page (:mod:`preference_ui.web`) or the
terminal UI (:mod:`preference_ui.tui`) shows exactly those pairs, the search's own candidates, and the
call returns their judgments once the person has answered every one. Each call is one *round* on the
same :class:`~preference_ui.core.ElicitationSession`, so a search may ask as often as it likes (the
interface says "waiting for the search" in between).

**Durable and resumable.** Every judgment is written to the session's JSON Lines file (flushed and
fsynced) as it is made. A pair that already has a judgment in force in that file is answered from it
without asking, so a search restarted with the same seed and session replays its judgments up to
where it stopped, and the person carries on from there.

**Warm start** (issue 17). :meth:`SearchJudge.warm_start` decides, once per session, whether the
search starts from the earlier users of a :class:`~reward_models.library.PreferenceLibrary`: the
interface offers "Start from N earlier users" or "Start fresh" before the first pair (unless a flag
decided), and the answer is kept in the session, so that a resumed search starts the same way.
:meth:`SearchJudge.watch` lets the interface say how it goes while the search runs: the earlier
users' share of the model's belief, or that the person's judgments disagree with them.

**Skip and tie.** A round needs an answer to every pair, because the search fits on all it asked
for: "skip" shows the pair again after the round's other pairs; "tie" says neither is better. Undo
takes back answers of the round on screen (not of earlier rounds: the search has those already).

Example::

    from agents import RegularizedEvolution
    from agents.personalization import Personalization
    from preference_ui import SearchJudge

    judge = SearchJudge.open("judgments.jsonl", env.unwrapped.context)
    agent = RegularizedEvolution(10, 5, seed=0, personalization=Personalization(judge))
    result = judge.serve(lambda: agent.search(env, 100))   # opens the page; tui=True for the terminal
"""

from __future__ import annotations

import logging
import os
import threading
import webbrowser
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from natsbench_gym.rewards import ScoringContext
from preference_ui.core import ElicitationSession
from preference_ui.errors import JudgingStoppedError, SessionMismatchError
from preference_ui.state import StartChoice
from reward_models.library import DISAGREE_BELOW  # re-exported: the page's threshold is the library's
from reward_models.preferences import Comparison

__all__ = ["SearchJudge", "warm_start_view", "DISAGREE_BELOW"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

class SearchJudge:
    """A person behind the preference interface, judging the pairs a search asks about.

    Args:
        session: a session opened with :meth:`ElicitationSession.open_for_search` (or use :meth:`open`).
        timeout: give up on a round after this many seconds (``None``: wait as long as it takes).

    Attributes:
        name: who judges, as recorded in every judgment.
        session: the session the rounds are asked on.
    """

    def __init__(self, session: ElicitationSession, *, timeout: float | None = None) -> None:
        if not session.for_search:
            raise ValueError("a SearchJudge needs a session opened with ElicitationSession.open_for_search")
        self.session = session
        self.timeout = timeout
        self.name = session.judge_name
        self._agent: Any = None
        self._population: Any = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        context: ScoringContext,
        *,
        judge: str = "human",
        seed: int | None = None,
        timeout: float | None = None,
        devices: Sequence[str] = (),
    ) -> SearchJudge:
        """Resume or start the session at ``path`` for a search in ``context`` (see
        :meth:`ElicitationSession.open_for_search`; ``devices``: more latency devices each
        architecture shows)."""
        return cls(ElicitationSession.open_for_search(path, context, seed=seed, judge=judge, devices=devices), timeout=timeout)

    def __call__(self, pairs: Sequence[tuple[int, int]], *, rng: np.random.Generator | None = None) -> list[Comparison]:
        """Judge ``pairs`` (a :class:`~reward_models.selection.PairBatch`: its strategy is recorded).

        Blocks until the person has answered every pair not judged before; ``rng`` is not drawn
        from (a person's answers are their own), so the search's random stream is the same whether
        the answers come from the person or from the session file.

        Raises:
            JudgingStoppedError: the person stopped (the interface was closed) before answering all.
        """
        batch = [(int(a), int(b)) for a, b in pairs]
        if not batch:
            return []
        self._show_progress()
        round_ = self.session.ask(batch, getattr(pairs, "strategy", "manual"),
                                  search_round=(getattr(pairs, "round", None), getattr(pairs, "rounds", None)))
        return self.session.wait(round_, timeout=self.timeout)

    # --- warm start ----------------------------------------------------------------------------------
    def warm_start(self, library: Any, space: str, *, choice: bool | None = None) -> Any:
        """Whether the search starts from the earlier users of ``library`` in ``space``: decided once
        per session and kept in it.

        A session that decided before (a resumed search) starts the same way, from the same earlier
        sessions, without asking. Otherwise ``choice`` decides (``True``: ``--warm-start``,
        ``False``: ``--cold-start``), or, when it is ``None`` and the library has earlier users in
        ``space``, the person does: the interface offers "Start from N earlier users" or "Start
        fresh" and this waits for the answer. Without earlier users the start is fresh.

        Args:
            library: a :class:`~reward_models.library.PreferenceLibrary`, or ``None`` (none to start from).
            space: the search space (``"topology"`` or ``"size"``).
            choice: see above.

        Returns:
            The :class:`~reward_models.library.PopulationPrior` to pass as
            ``Personalization(warm_start=...)``, or ``None`` for a fresh start.

        Raises:
            SessionMismatchError: ``choice`` contradicts how the session started, or it started from
                earlier users and ``library`` is ``None``.
            JudgingStoppedError: the person stopped before choosing.
        """
        session = self.session
        recorded = session.start_choice
        if recorded is None and session.judged:
            # judgments without a recorded start: the session began before warm starts existed
            recorded = StartChoice(False)
            session.record_start(recorded)
        if recorded is not None:
            if (choice is True and not recorded.warm) or (choice is False and recorded.users):
                how = f"from {recorded.users} earlier users" if recorded.warm else "fresh"
                flag = "--warm-start" if choice else "--cold-start"
                raise SessionMismatchError(f"session {str(session.path)!r} started {how}, so it cannot resume with {flag}; "
                                           f"resume it without {flag} or start a new session file")
        else:
            ids = [s.id for s in library.sessions(space=space)] if library is not None else []
            if choice is None and ids:
                session.offer_start(ids, str(library.path))
                recorded = session.wait_for_start(timeout=self.timeout)
            else:
                recorded = StartChoice(bool(choice), tuple(ids) if choice else (), None if library is None else str(library.path))
                session.record_start(recorded)
        # the earlier sessions recorded, not the library's now: a session added meanwhile stays out
        prior = self._resume(recorded, library, space) if recorded.warm else None
        self._population = prior
        if prior is not None and prior.users:
            session.show_warm_start(warm_start_view(prior.users, prior.weight))
        elif recorded.warm:
            session.show_warm_start({"warm": False, "users": 0, "disagrees": False,
                                     "text": f"No earlier user has searched the {space} space yet: a fresh start."})
        elif recorded.asked:
            session.show_warm_start({"warm": False, "users": 0, "disagrees": False,
                                     "text": "You chose to start fresh: the search learns from your judgments only."})
        return prior if prior is not None and prior.users else None

    def _resume(self, recorded: StartChoice, library: Any, space: str) -> Any:
        """The population prior of the earlier sessions a resumed session started from."""
        if library is None:
            raise SessionMismatchError(
                f"session {str(self.session.path)!r} starts from {recorded.users} earlier users of the preference library "
                f"{recorded.library}, which cannot be read now; give that library (--library) or start a new session file"
            )
        now = [s.id for s in library.sessions(space=space)]
        missing = sorted(set(recorded.sessions) - set(now))
        if missing:
            logger.warning("the preference library %s no longer holds %d of the %d earlier sessions this search started from "
                           "(ids %s); it resumes from the others, so it may not repeat the interrupted run",
                           library.path, len(missing), recorded.users, missing)
        return library.population_prior(space=space, exclude=[i for i in now if i not in set(recorded.sessions)])

    def watch(self, agent: Any) -> None:
        """Show, while ``agent`` (a personalized search judged by this judge) runs, how its warm
        start goes: before each pair the interface gets the earlier users' share of the current
        model's belief, and whether the person's judgments disagree with them."""
        self._agent = agent

    def show_remember(self, library: str | os.PathLike | None) -> None:
        """Let the interface say that the finished session will be remembered in ``library``."""
        self.session.show_remember(library)

    def _show_progress(self) -> None:
        if self._agent is None or self._population is None or not self._population.users:
            return
        model = getattr(self._agent, "learned_metric", None)
        posterior = model if hasattr(model, "population_share") else getattr(model, "posterior", None)
        share = getattr(posterior, "population_share", None)
        if share is None:
            return
        self.session.show_warm_start(warm_start_view(
            self._population.users, self._population.weight, share, getattr(posterior, "population_evidence", None),
            len(getattr(self._agent, "comparisons", None) or ()),
        ))

    def stop(self, reason: str = "the person stopped judging") -> None:
        """Make a waiting or later call raise :class:`~preference_ui.errors.JudgingStoppedError`."""
        self.session.stop(reason)

    def serve(
        self,
        work: Callable[[], T],
        *,
        tui: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        open_browser: bool = True,
        announce: Callable[[str], Any] = print,
    ) -> T:
        """Run ``work`` (a search that calls this judge) while the person answers; return its result.

        With ``tui=False`` the web page is served on ``host:port`` (``port=0``: a free one) in a
        background thread and ``work`` runs in this thread; stopping it (Ctrl+C) stops the search.
        With ``tui=True`` the terminal UI runs in this thread and ``work`` in another; quitting the UI
        stops the search. Either way a search stopped while it waits raises
        :class:`~preference_ui.errors.JudgingStoppedError` here, and its judgments are saved.

        Args:
            work: the search, e.g. ``lambda: agent.search(env, 100)``.
            tui: the terminal UI instead of the web page.
            host, port, token: where the page is served (see :func:`preference_ui.web.start_server`).
            open_browser: open the page in the default browser.
            announce: where the URL and instructions are printed.
        """
        if tui:
            from preference_ui.tui import ElicitationApp

            announce("judge the search's pairs in the terminal UI; q stops the search (your judgments are saved)")
            return ElicitationApp(self.session).run_search(work)
        from preference_ui.web import start_server

        server = start_server(self.session, host=host, port=port, token=token)
        announce(f"judge the search's pairs on {server.url} ; Ctrl+C stops the search (your judgments are saved)")
        if open_browser:
            threading.Timer(0.5, webbrowser.open, args=(server.url,)).start()
        try:
            return work()
        except KeyboardInterrupt:
            self.stop("stopped with Ctrl+C")
            raise JudgingStoppedError.of_session("stopped with Ctrl+C", self.session.path) from None
        finally:
            server.stop()

    def __repr__(self) -> str:
        return f"SearchJudge({self.name!r}, session={str(self.session.path)!r})"


def warm_start_view(users: int, weight: float, share: float | None = None, evidence: float | None = None,
                    judgments: int = 0) -> dict[str, Any]:
    """How a warm start goes, as the interfaces say it: ``{"warm", "users", "weight", "share",
    "evidence", "disagrees", "judgments", "text"}``.

    Args:
        users: the earlier users the search started from.
        weight: their share of the prior before any judgment.
        share: their share of the current model's belief (``None``: no judgment yet).
        evidence: the log Bayes factor of their prior against the flat one on the judgments.
        judgments: how many judgments the model saw.

    >>> warm_start_view(3, 0.5)["text"]
    'Started from 3 earlier users: their preferences hold 50 % of the prior; your judgments decide how much of it stays.'
    >>> warm_start_view(3, 0.5, 0.0, -2.0, 4)["text"]
    'Your judgments disagree with the 3 earlier users; the search uses your own judgments only.'
    """
    disagrees = evidence is not None and evidence < DISAGREE_BELOW
    someone = f"{users} earlier user{'s' if users != 1 else ''}"
    if share is None or not judgments:
        text = (f"Started from {someone}: their preferences hold {round(100 * weight)} % of the prior; "
                "your judgments decide how much of it stays.")
    elif disagrees:
        text = f"Your judgments disagree with the {someone}; the search uses your own judgments only."
    elif share <= 0.0:
        text = (f"Started from {someone}: your {judgments} judgments fit them no better than a fresh start, "
                "so for now the search uses your own judgments only.")
    else:
        text = (f"Started from {someone}: after your {judgments} judgment{'s' if judgments != 1 else ''} their "
                f"preferences hold {round(100 * share)} % of the model's belief.")
    return {"warm": True, "users": int(users), "weight": float(weight), "share": share, "evidence": evidence,
            "disagrees": bool(disagrees), "judgments": int(judgments), "text": text}

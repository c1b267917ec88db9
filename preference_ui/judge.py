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
from preference_ui.errors import JudgingStoppedError
from reward_models.preferences import Comparison

__all__ = ["SearchJudge"]

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

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        context: ScoringContext,
        *,
        judge: str = "human",
        seed: int | None = None,
        timeout: float | None = None,
    ) -> SearchJudge:
        """Resume or start the session at ``path`` for a search in ``context`` (see
        :meth:`ElicitationSession.open_for_search`)."""
        return cls(ElicitationSession.open_for_search(path, context, seed=seed, judge=judge), timeout=timeout)

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
        round_ = self.session.ask(batch, getattr(pairs, "strategy", "manual"))
        return self.session.wait(round_, timeout=self.timeout)

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

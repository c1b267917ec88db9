"""The terminal UI: the same loop as the web page, for people working over SSH (Textual).

Keys: ``a`` prefer A, ``b`` prefer B, ``t`` tie, ``s`` skip, ``u`` undo, ``f`` fit the reward
model (in the background: judging goes on), ``v`` what each network does (its per-class accuracy
and predictions on validation images, as text; the web page also draws Grad-CAM), ``e`` export the
judgments and the model, ``q`` quit. Everything is done by the shared
:class:`~preference_ui.core.ElicitationSession`; this module only draws its state.

With a search (:meth:`ElicitationApp.run_search`, which :meth:`preference_ui.SearchJudge.serve`
uses), the search runs in a thread beside the app, the app shows each round of pairs the search asks
about as it comes, and it closes when the search ends; quitting it first stops the search. When the
search offers to start from earlier users (issue 17's warm start), ``w`` starts from them and ``n``
starts fresh; a line under the session's context then says how the warm start goes (and whether the
session will be remembered).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, ProgressBar, Static

from preference_ui.core import ElicitationSession
from preference_ui.errors import ElicitationError

__all__ = ["ElicitationApp"]

logger = logging.getLogger(__name__)

_SIDE_COLORS = {"a": "#3b9ddd", "b": "#f07f3c"}


def percentile_bar(percentile: float | None, width: int = 12) -> Text:
    """``███████░░░░░ p58``: a bar for a percentile (0-100), or ``—`` when there is none."""
    if percentile is None:
        return Text("—", style="dim")
    filled = round(width * percentile / 100)
    return Text.assemble(("█" * filled, "cyan"), ("░" * (width - filled), "grey37"), f" p{round(percentile):>3}")


def architecture_panel(side: str, arch: dict[str, Any]) -> Panel:
    """One architecture as a rich panel: its drawing in words and a table of its metrics."""
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column("metric", style="grey70", ratio=3)
    table.add_column("value", justify="right", ratio=3)
    table.add_column("percentile", ratio=4, no_wrap=True)
    for m in arch["metrics"]:
        arrow = "▲" if m["higher_is_better"] else "▼"
        value = Text("n/a", style="dim") if m["value"] is None else Text(m["text"], style="bold")
        table.add_row(f"{m['label']} {arrow}", value, percentile_bar(m["percentile"]))
    drawing = Text("\n".join(arch["lines"]), style="grey85")
    title = Text.assemble((f" {side.upper()} ", f"bold white on {_SIDE_COLORS[side]}"), f"  #{arch['index']}")
    return Panel(
        Group(Text(arch["arch_str"], style="dim", overflow="ellipsis", no_wrap=True), drawing, Text(""), table),
        title=title, title_align="left", border_style=_SIDE_COLORS[side],
    )


def fit_panel(fit: dict[str, Any], fitting: dict[str, Any] | None = None) -> Panel:
    """The fitted model: how sure it is, which metrics drive it and the top architectures.

    Compact enough for a 40-row terminal: readings and drivers one line each, at most 10 top rows.
    """
    drivers = Table(box=None, padding=(0, 1), show_header=False)
    largest = max((abs(d["effect"]) for d in fit["drivers"]), default=1.0) or 1.0
    for d in fit["drivers"]:
        length = round(10 * abs(d["effect"]) / largest)
        bar = Text("█" * length, style="magenta")
        drivers.add_row(d["label"], bar, Text(f"{d['prefers']} · {round(100 * d['share'])} % of the effect", style="grey70"))
    top = Table(box=None, padding=(0, 1), header_style="grey70")
    for column in ("#", "architecture", "score", *(c.replace(" (", "\n(") for c in fit["columns"])):
        top.add_column(column, no_wrap=True)  # units under the names: the table fits 80 columns
    for row in fit["top"][:10]:
        top.add_row(str(row["rank"]), f"#{row['index']} {row['short']}", f"{row['score']:.3f}", *row["cells"])
    note = f"RankNet fitted on {fit['judgments']} judgment(s)"
    since = [f"{fit['new_since']} new"] if fit.get("new_since") else []
    since += [f"{fit['gone_since']} undone or changed"] if fit.get("gone_since") else []
    note += f" · since then: {', '.join(since)}: press f to fit again" if since else " · up to date"
    if fitting and fitting.get("running"):
        note += f" · fitting again… {fitting['elapsed_s']:.1f} s"
    parts: list[Any] = [Text(note, style="grey70")]
    confidence = fit.get("confidence") or {}
    if confidence.get("warning"):
        parts.append(Text(confidence["warning"], style="bold yellow"))
    if confidence.get("text"):
        parts.append(Text(confidence["text"]))
    readings = Table(box=None, padding=(0, 1), show_header=False)
    for r in fit.get("reading", []):
        readings.add_row(Text(f"{round(100 * r['share'])} %", style="bold"), Text(r["text"], overflow="ellipsis", no_wrap=True))
    scope = fit.get("scope", "top architectures")
    parts += [readings, Text("What drives it", style="bold"), drivers, Text(scope[:1].upper() + scope[1:], style="bold"), top]
    return Panel(Group(*parts), title="Your learned preference", title_align="left", border_style="magenta")


def evidence_panel(view: dict[str, Any], images: int = 10) -> Panel:
    """What the two networks do, as text: accuracy on the validation split, per class, and the
    predictions on ``images`` validation images (where they differ first); or their status."""
    source = view.get("source", {}).get("text", "")
    parts: list[Any] = [Text(source, style="yellow" if view.get("source", {}).get("kind") == "trained_here" else "grey70")]
    if not view.get("ready"):
        for side in ("a", "b"):
            s = view.get(side, {})
            state = s.get("state", "queued")
            extra = f" {s.get('elapsed_s', 0):.1f} s" if state == "preparing" else f": {s.get('message')}" if state == "error" else ""
            parts.append(Text(f"{side.upper()} #{s.get('index')}: {state}{extra}"))
        return Panel(Group(*parts), title="What each network does", title_align="left", border_style="cyan")
    a, b = view["a"], view["b"]
    parts.append(Text(
        f"On {view['split_size']} validation images: A right on {a['correct']} ({a['accuracy']:.1f} %), "
        f"B on {b['correct']} ({b['accuracy']:.1f} %); they disagree on {view['disagree']}."))
    classes = Table(box=None, padding=(0, 1), header_style="grey70")
    for column in ("class", "n", "A %", "B %"):
        classes.add_column(column, justify="right")
    for row in view["per_class"]:
        def cell(x, other):
            if x is None:
                return Text("—", style="dim")
            return Text(f"{x:.1f}", style="red" if other is not None and x < other else "")
        classes.add_row(row["label"], str(row["n"]), cell(row["a"], row["b"]), cell(row["b"], row["a"]))
    predictions = Table(box=None, padding=(0, 1), header_style="grey70")
    for column in ("image", "true", "A says", "B says"):
        predictions.add_column(column, justify="right")
    shown = list(dict.fromkeys(view["different"] + view["grid"]))[:images]
    for i in shown:
        im = view["images"][str(i)]
        def said(p):
            return Text(f"{p['pred']} ({round(100 * p['p'])} %)" + ("" if p["correct"] else " ✗"), style="" if p["correct"] else "red")
        predictions.add_row(str(i), im["label"], said(im["a"]), said(im["b"]))
    both = Table.grid(padding=(0, 4))
    both.add_row(Group(Text("Accuracy per class", style="bold"), classes),
                 Group(Text("Predictions (where they differ first)", style="bold"), predictions))
    parts.append(both)
    return Panel(Group(*parts), title="What each network does", title_align="left", border_style="cyan")


class ElicitationApp(App):
    """Pairwise judgments in the terminal.

    Args:
        session: the elicitation session to draw and act on.
        export_dir: where ``e`` writes the judgments and the model (default: beside the session file).
        search: a search to run in a thread while the app is up (see :meth:`run_search`); the app
            closes when it ends.

    Attributes:
        search_outcome: once the search has ended, ``(True, its result)`` or ``(False, its exception)``.
    """

    TITLE = "Which network do you prefer?"
    CSS = """
    #context { padding: 0 1; color: $text-muted; }
    #notes { padding: 0 1; height: auto; }
    #progress-row { height: 1; padding: 0 1; }
    #progress-text { width: auto; padding-right: 2; }
    #pair { height: auto; }
    #pair > Static { width: 1fr; }
    #message { padding: 0 1; height: auto; }
    #message.error { color: $error; }
    #evidence { height: auto; }
    #fit { height: auto; }
    """
    BINDINGS = [
        Binding("a", "judge('a')", "prefer A"),
        Binding("b", "judge('b')", "prefer B"),
        Binding("t", "judge('tie')", "tie"),
        Binding("s", "skip", "skip"),
        Binding("u", "undo", "undo"),
        Binding("f", "fit", "fit"),
        Binding("v", "evidence", "evidence"),
        Binding("e", "export", "export"),
        Binding("q", "quit", "quit"),
        Binding("w", "start('warm')", "start from earlier users", show=False),
        Binding("n", "start('fresh')", "start fresh", show=False),
    ]

    def __init__(
        self, session: ElicitationSession, export_dir: str | Path | None = None, search: Callable[[], Any] | None = None
    ) -> None:
        super().__init__()
        self.session = session
        self.export_dir = Path(export_dir) if export_dir else session.path.with_name(session.path.stem + "-export")
        self.busy = False
        self.search = search
        self.search_outcome: tuple[bool, Any] | None = None
        self._search_thread: threading.Thread | None = None
        self._drawn = -1
        self.show_evidence = False
        self._evidence_view: dict[str, Any] | None = None

    def run_search(self, search: Callable[[], Any]) -> Any:
        """Run the app with ``search`` in a thread beside it; return the search's result.

        The app shows the rounds of pairs the search asks about and closes when the search ends.
        Quitting it earlier stops the session's rounds, so a search waiting for answers raises
        :class:`~preference_ui.errors.JudgingStoppedError`, which this re-raises (as it does any
        error of the search).
        """
        self.search = search
        self.run()
        return self.finish_search()

    def finish_search(self) -> Any:
        """After the app has closed: stop a search still waiting for answers, wait for it to end, and
        return its result (or raise its error)."""
        thread = self._search_thread
        if thread is None:
            raise RuntimeError("no search was started: pass search= or call run_search")
        if thread.is_alive():
            self.session.stop("the terminal UI was closed")
            thread.join()
        ok, value = self.search_outcome
        if not ok:
            raise value
        return value

    def _run_search(self) -> None:
        try:
            self.search_outcome = (True, self.search())
        except BaseException as exc:  # handed to the main thread by finish_search
            self.search_outcome = (False, exc)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll():
            yield Static(id="context")
            yield Static(id="notes")
            with Horizontal(id="progress-row"):
                yield Static(id="progress-text")
                yield ProgressBar(total=1, show_eta=False, id="progress")
            with Horizontal(id="pair"):
                yield Static(id="card-a")
                yield Static(id="card-b")
            yield Static(id="message")
            yield Static(id="evidence")
            yield Static(id="fit")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view(self.session.state())
        self.set_interval(0.5, self._tick)
        if self.session.for_search or self.search is not None:  # the search acts from its own thread
            self.set_interval(0.2, self._follow_the_search)
        if self.search is not None:
            self._search_thread = threading.Thread(target=self._run_search, name="search", daemon=True)
            self._search_thread.start()

    def _follow_the_search(self) -> None:
        """Close once the search has ended; else redraw when it changed the session (a new round)."""
        if self.search_outcome is not None:
            self.exit()
        elif not self.busy and self.session.revision != self._drawn:
            self.refresh_view(self.session.state())

    def _tick(self) -> None:
        """Redraw what changes by itself: a fit's elapsed time, networks becoming ready. A tick that
        fires while the app closes after the search (its widgets already gone) draws nothing."""
        try:
            fitting = self.session.fitting
            if fitting or self.session.revision != self._drawn:
                self.refresh_view(self.session.state())
            if self.show_evidence:
                self._draw_evidence()
        except NoMatches:
            if self.search_outcome is None:  # not closing after the search: a real missing widget
                raise

    # --- drawing -----------------------------------------------------------------------------------
    def refresh_view(self, state: dict[str, Any]) -> None:
        """Draw ``state`` (the session's :meth:`~ElicitationSession.state`)."""
        self.state = state
        self._drawn = state["revision"]
        c = state["context"]
        device = f" · latency on {c['device']}" if c["device"] else ""
        self.query_one("#context", Static).update(
            f"{c['space']} space · {c['dataset']} · {c['budget']} epochs{device} · "
            f"{c['population']} candidates · session {c['session']}"
        )
        p = state["progress"]
        skipped = f" · {p['skipped']} skipped" if p["skipped"] else ""
        search = state.get("search")
        round_ = (f"round {search['round']}" + (f" of {search['rounds']}" if search.get("rounds") else "") + " · "
                  if search and search["round"] else "")
        self.query_one("#progress-text", Static).update(f"{round_}{p['judged']} of {p['target']} judged{skipped}")
        self.query_one("#progress", ProgressBar).update(total=max(p["target"], 1), progress=min(p["judged"], p["target"]))
        warm = state.get("warm_start") or {}
        notes = []
        if warm.get("status"):
            notes.append(Text(warm["status"]["text"], style="bold yellow" if warm["status"].get("disagrees") else "green"))
        if warm.get("remember"):
            notes.append(Text(warm["remember"]["text"], style="grey70"))
        self.query_one("#notes", Static).update(Group(*notes) if notes else "")
        pair = state["pair"]
        card_a, card_b = self.query_one("#card-a", Static), self.query_one("#card-b", Static)
        offer = warm.get("offer")
        if pair is None and offer:
            users = f"{offer['users']} earlier user{'s' if offer['users'] != 1 else ''}"
            card_a.update(Panel(Group(
                Text(f"Start from {users}?", style="bold"),
                Text(f"{users} judged architectures of this space before (kept in {offer['library']}). Their preferences join "
                     "the model's prior and their recommendations the first architectures; your own judgments decide how "
                     "much of it stays."),
                Text.assemble(("w", "bold"), f" start from {users} · ", ("n", "bold"), " start fresh"),
            ), title="Warm start", title_align="left", border_style="green"))
            card_b.update("")
        elif pair is None:
            if search and search["stopped"]:
                note = f"The search has stopped asking ({search['stopped']}); every answer is saved."
            elif search:
                note = "Waiting for the search: the pairs it asks about next appear here by themselves."
            else:
                note = "No pair left to judge: press f to fit the reward model, or u to undo."
            card_a.update(Panel(Text(note, style="bold"), border_style="grey50"))
            card_b.update("")
        else:
            card_a.update(architecture_panel("a", pair["a"]))
            card_b.update(architecture_panel("b", pair["b"]))
        fitting = state.get("fitting")
        if state["fit"]:
            self.query_one("#fit", Static).update(fit_panel(state["fit"], fitting))
        elif fitting and fitting.get("running"):
            self.query_one("#fit", Static).update(Text(f"Fitting RankNet on {fitting['judgments']} judgment(s)… {fitting['elapsed_s']:.1f} s"))
        else:
            self.query_one("#fit", Static).update("")
        if self.show_evidence:
            self._draw_evidence()

    def _draw_evidence(self) -> None:
        widget = self.query_one("#evidence", Static)
        pair = self.state.get("pair") if self.show_evidence else None
        if pair is None:
            widget.update("")
            return
        try:
            view = self.session.evidence_for_pair(pair["a"]["index"], pair["b"]["index"])
        except ElicitationError as exc:
            widget.update(Text(f"evidence: {exc}", style="red"))
            return
        widget.update(evidence_panel(view))

    def say(self, message: str, error: bool = False) -> None:
        widget = self.query_one("#message", Static)
        widget.update(message)
        widget.set_class(error, "error")

    def _do(self, action, *args, message: str = "") -> None:
        if self.busy:
            return
        try:
            self.refresh_view(action(*args))
            self.say(message)
        except ElicitationError as exc:
            self.say(str(exc), error=True)
            self.refresh_view(self.session.state())

    # --- actions -----------------------------------------------------------------------------------
    def action_judge(self, outcome: str) -> None:
        pair = self.state["pair"]
        if pair is None:
            self.say("no pair to judge: press f to fit, or u to undo", error=True)
            return
        self._do(self.session.judge, pair["id"], outcome)

    def action_skip(self) -> None:
        pair = self.state["pair"]
        if pair is None:
            self.say("no pair to skip", error=True)
            return
        self._do(self.session.skip, pair["id"])

    def action_start(self, start: str) -> None:
        warm = self.state.get("warm_start") or {}
        if not warm.get("offer"):
            self.say("no start to choose: the search offers one before its first pair, when there are earlier users", error=True)
            return
        self._do(self.session.choose_start, start,
                 message="Starting from the earlier users." if start == "warm" else "Starting fresh.")

    def action_undo(self) -> None:
        try:
            state = self.session.undo()
        except ElicitationError as exc:
            self.say(str(exc), error=True)
            return
        self.refresh_view(state)
        self.say(state["undone"]["text"])

    def action_evidence(self) -> None:
        if not self.session.evidence_available()["available"]:
            self.say(f"the evidence {self.session.evidence_available()['why']}", error=True)
            return
        self.show_evidence = not self.show_evidence
        self._draw_evidence()

    def action_fit(self) -> None:
        if self.session.fitting:
            self.say("a fit is running already")
            return
        self.say("Fitting the reward model in the background; keep judging meanwhile.")
        self._fit()

    @work(thread=True, exclusive=True)
    def _fit(self) -> None:
        # A thread, so the screen stays live while RankNet trains.
        try:
            state = self.session.fit()
        except ElicitationError as exc:
            self.call_from_thread(self._fit_done, None, str(exc))
        else:
            self.call_from_thread(self._fit_done, state, "")

    def _fit_done(self, state: dict[str, Any] | None, error: str) -> None:
        if state is None:
            self.say(error, error=True)
            return
        self.refresh_view(state)
        self.say(f"Fitted. The model is saved at {self.session.model_path}")

    def action_export(self) -> None:
        try:
            paths = self.session.export_to(self.export_dir)
        except (ElicitationError, OSError) as exc:
            self.say(f"export failed: {exc}", error=True)
            return
        self.say("Exported: " + ", ".join(str(p) for p in paths))

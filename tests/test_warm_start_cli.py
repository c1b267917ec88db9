"""Issue 17's user-facing warm start: ``natsbench-gym search --library --remember --warm-start
--cold-start``, and the offer "Start from N earlier users" / "Start fresh" a search's page and
terminal UI make before the first pair.

What must hold: nothing is written to a preference library without ``--remember`` (a missing one is
not created, an existing one keeps its bytes and its modification time); a file that is not a
library gives the typed error as a one-line CLI error and is left as it is; ``--remember`` then
``--warm-start`` works end to end and says how the warm start went; the person's answer to the offer
is kept in the session, so a resumed search neither asks again nor starts differently.
"""

from __future__ import annotations

import importlib
import sqlite3
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import natsbench_gym
from preference_ui import JudgingStoppedError, SearchJudge
from preference_ui.errors import SessionMismatchError
from preference_ui.judge import warm_start_view
from preference_ui.state import SessionState, StartChoice
from reward_models import SyntheticUser
from reward_models.library import PreferenceLibrary, PreferenceLibraryError
from reward_models.posterior import MetricFamilyPosterior

#: A small search: 16 evaluations, 4 judgments (a few seconds on the tiny table).
SMALL = ["--evaluations", "16", "--population", "6", "--sample", "3", "--comparisons", "4"]
#: Big enough for the judgments to tell users apart on the real table (about 7 s each).
REAL = ["--evaluations", "30", "--population", "8", "--sample", "4", "--comparisons", "6"]


@pytest.fixture(scope="module")
def search():
    return importlib.import_module("natsbench_gym_cli.search")


@pytest.fixture(autouse=True)
def no_user_library(tmp_path, monkeypatch) -> Path:
    """Every test's default library lives under its tmp_path (never the developer's own)."""
    monkeypatch.delenv("NATSBENCH_GYM_LIBRARY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "xdg" / "natsbench-gym" / "preferences.sqlite"


def fingerprint(path: Path) -> tuple[bytes, int]:
    """A file's bytes and modification time (ns): what 'left as it is' means."""
    return path.read_bytes(), path.stat().st_mtime_ns


def library_with(path: Path, context, n: int, space: str = "topology") -> PreferenceLibrary:
    """A library with ``n`` earlier sessions (the family's prior as their posterior: fast)."""
    library = PreferenceLibrary(path)
    prior = MetricFamilyPosterior.prior(context)
    for i in range(n):
        library.add(prior, space=space, dataset="cifar10", device=None, recommended=[context.benchmark.arch_str(i)])
    return library


# --- nothing is stored without --remember ----------------------------------------------------------
def test_without_remember_no_library_is_created_and_an_existing_one_is_unchanged(
    search, tiny_tables, tmp_path, no_user_library, monkeypatch, capsys
):
    run = ["--data", str(tiny_tables), *SMALL]
    # a plain search, and one asking for a warm start from the default library: neither creates it
    assert search.main([*run, "--out", str(tmp_path / "plain")]) == 0
    assert search.main([*run, "--warm-start", "--out", str(tmp_path / "warm")]) == 0
    assert "warm start: no earlier user in" in capsys.readouterr().out
    assert not no_user_library.exists() and not no_user_library.parent.exists()

    # --remember creates it; later runs without --remember leave its bytes and mtime alone
    library = tmp_path / "lib" / "preferences.sqlite"
    assert search.main([*run, "--library", str(library), "--remember", "--out", str(tmp_path / "first")]) == 0
    assert "remembered: this session is #1 in" in capsys.readouterr().out
    before = fingerprint(library)
    files = sorted(p.name for p in library.parent.iterdir())
    time.sleep(0.05)  # a write now would show in the mtime
    assert search.main([*run, "--library", str(library), "--warm-start", "--out", str(tmp_path / "again")]) == 0
    printed = capsys.readouterr().out
    assert f"warm start: from 1 earlier user in {library}" in printed and "remembered" not in printed
    monkeypatch.setenv("NATSBENCH_GYM_LIBRARY", str(library))  # the default path now
    assert search.main([*run, "--out", str(tmp_path / "plain2")]) == 0
    assert fingerprint(library) == before
    assert sorted(p.name for p in library.parent.iterdir()) == files  # no journal left beside it either
    assert len(PreferenceLibrary(library)) == 1


def test_a_file_that_is_not_a_library_is_a_clean_error_and_left_as_it_is(search, tmp_path, monkeypatch, capsys, caplog):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"my notes, not a library\n")
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE recipes (name TEXT)")
    con.commit()
    con.close()
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    for path, why in ((garbage, "not an SQLite file"), (other, "without its tables"), (empty, "empty file")):
        before = fingerprint(path)
        for flags in (["--remember"], ["--warm-start"], ["--remember", "--warm-start"]):
            caplog.clear()
            # fails before any benchmark is loaded: no data needed
            assert search.main([*flags, "--library", str(path), "--out", str(tmp_path / "out")]) == 2
            errors = [r for r in caplog.records if r.levelname == "ERROR"]
            assert len(errors) == 1 and "\n" not in errors[0].getMessage(), errors
            message = errors[0].getMessage()
            assert f"{path} is not a natsbench-gym preference library" in message and why in message
            assert "left as it is" in message and "--library PATH" in message
            assert fingerprint(path) == before, f"{path.name} was touched by {flags}"
    assert "Traceback" not in capsys.readouterr().err
    # the default path (here $NATSBENCH_GYM_LIBRARY) is checked the same way
    monkeypatch.setenv("NATSBENCH_GYM_LIBRARY", str(garbage))
    assert search.main(["--remember", "--out", str(tmp_path / "out")]) == 2
    assert fingerprint(garbage)[0] == b"my notes, not a library\n"
    with pytest.raises(PreferenceLibraryError, match="not an SQLite file"):
        PreferenceLibrary(garbage)


def test_with_human_an_unreadable_library_only_means_no_offer(search, tmp_path, caplog):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a library")
    args = search.build_parser().parse_args(["--human", "--library", str(garbage)])
    assert search._open_library(args) is None
    assert "the page offers no warm start" in caplog.text
    assert search._open_library(search.build_parser().parse_args(["--human", "--cold-start", "--library", str(garbage)])) is None
    assert search._open_library(search.build_parser().parse_args(["--library", str(garbage)])) is None  # not used at all
    assert garbage.read_bytes() == b"not a library"


def test_warm_start_and_cold_start_exclude_each_other(search, capsys):
    with pytest.raises(SystemExit):
        search.build_parser().parse_args(["--warm-start", "--cold-start"])
    assert "not allowed with argument" in capsys.readouterr().err


# --- --remember, then --warm-start, end to end -------------------------------------------------------
@pytest.mark.slow  # five searches on the real table: about 40 s on a busy 2-core machine
def test_remember_then_warm_start_end_to_end(search, real_data, tmp_path, capsys):
    library = tmp_path / "preferences.sqlite"
    run = ["--data", str(real_data), *REAL, "--library", str(library)]
    for seed in (0, 1):  # two earlier users who care about params
        assert search.main([*run, "--preference", "params", "--remember", "--seed", str(seed), "--out", str(tmp_path / f"u{seed}")]) == 0
        assert f"remembered: this session is #{seed + 1} in {library}" in capsys.readouterr().out
    assert PreferenceLibrary(library).count(space="topology") == 2

    # a new user like them: the earlier users' preferences keep a share of the model's belief
    assert search.main([*run, "--preference", "params", "--warm-start", "--seed", "5", "--out", str(tmp_path / "alike")]) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("warm start: from"))
    assert line.startswith(f"warm start: from 2 earlier users in {library}; their share of the model's belief at the end: ")
    assert "(of the prior before your first judgment: 50 %)" in line and "of the first architectures were their recommendations" in line
    assert "disagree" not in printed and "remembered" not in printed

    # a user unlike them: told so, and the search uses their own judgments only
    before = fingerprint(library)
    assert search.main([*run, "--preference", "accuracy", "--warm-start", "--seed", "5", "--out", str(tmp_path / "unlike")]) == 0
    printed = capsys.readouterr().out
    assert "their share of the model's belief at the end: 0 %" in printed
    assert "warm start: your judgments disagree with earlier users; the search used your own judgments only" in printed
    assert fingerprint(library) == before

    # warm start and remember together: the third session starts from two and is kept as the third
    assert search.main([*run, "--preference", "params", "--warm-start", "--remember", "--seed", "6", "--out", str(tmp_path / "both")]) == 0
    printed = capsys.readouterr().out
    assert "warm start: from 2 earlier users" in printed and f"remembered: this session is #3 in {library}" in printed

    # another space: no earlier user there, a cold start, said so
    assert search.main([*run, "--space", "size", "--warm-start", "--out", str(tmp_path / "size")]) == 0
    assert f"warm start: no earlier user in {library} searched the size space; this was a cold start" in capsys.readouterr().out


# --- the offer on a search's page: the server and the session ---------------------------------------
@pytest.fixture
def context(tiny_tables):
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    env = gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar10")
    yield env.unwrapped.context
    env.close()


class Deciding(threading.Thread):
    """``judge.warm_start(...)`` in a thread, as the search calls it (it blocks on the offer)."""

    def __init__(self, judge: SearchJudge, *args, **kwargs) -> None:
        super().__init__(daemon=True)
        self.judge, self.args, self.kwargs = judge, args, kwargs
        self.prior = self.error = None
        self.start()

    def run(self) -> None:
        try:
            self.prior = self.judge.warm_start(*self.args, **self.kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            self.error = exc


def wait_for_offer(client) -> dict:
    for _ in range(500):
        state = client.get("/api/state").get_json()
        if state["warm_start"]["offer"]:
            return state
        time.sleep(0.01)
    raise AssertionError("no offer came")


def test_the_page_offers_a_warm_start_and_a_resumed_session_keeps_the_answer(tmp_path, context):
    pytest.importorskip("flask", reason="the web app needs the 'ui' extra: pip install -e '.[ui]'")
    from preference_ui.web import create_app

    library = library_with(tmp_path / "lib.sqlite", context, 2)
    judge = SearchJudge.open(tmp_path / "s.jsonl", context, seed=0)
    judge.show_remember(library.path)
    client = create_app(judge.session).test_client()
    deciding = Deciding(judge, library, "topology")
    state = wait_for_offer(client)
    assert state["pair"] is None
    assert state["warm_start"]["offer"] == {"users": 2, "library": str(library.path)}
    assert state["warm_start"]["remember"]["text"].startswith(f"This session will be remembered in {library.path}")
    assert client.post("/api/start", json={"start": "maybe"}).status_code == 400
    assert client.post("/api/start", json={"start": True}).status_code == 400
    response = client.post("/api/start", json={"start": "warm"})
    assert response.status_code == 200, response.get_json()
    deciding.join(10)
    assert deciding.error is None and deciding.prior.users == 2
    state = client.get("/api/state").get_json()["warm_start"]
    assert state["offer"] is None and state["choice"] == {"warm": True, "users": 2, "asked": True}
    assert state["status"]["text"] == ("Started from 2 earlier users: their preferences hold 50 % of the prior; "
                                       "your judgments decide how much of it stays.")
    response = client.post("/api/start", json={"start": "fresh"})
    assert response.status_code == 409 and "chosen already" in response.get_json()["error"]
    recorded = SessionState.read(judge.session.state_path).start
    assert recorded == StartChoice(True, (1, 2), str(library.path), asked=True)

    # another user finishes meanwhile; the resumed session asks nothing and starts from the same two
    library_with(library.path, context, 1)
    resumed = SearchJudge.open(tmp_path / "s.jsonl", context)
    assert resumed.warm_start(library, "topology").users == 2
    assert resumed.warm_start(library, "topology", choice=True).users == 2
    with pytest.raises(SessionMismatchError, match="started from 2 earlier users, so it cannot resume with --cold-start"):
        resumed.warm_start(library, "topology", choice=False)
    with pytest.raises(SessionMismatchError, match="cannot be read now"):
        resumed.warm_start(None, "topology")


def test_start_fresh_no_earlier_users_flags_and_stopping(tmp_path, context):
    pytest.importorskip("flask", reason="the web app needs the 'ui' extra: pip install -e '.[ui]'")
    from preference_ui.web import create_app

    library = library_with(tmp_path / "lib.sqlite", context, 3)
    # the person starts fresh
    judge = SearchJudge.open(tmp_path / "fresh.jsonl", context, seed=0)
    client = create_app(judge.session).test_client()
    deciding = Deciding(judge, library, "topology")
    wait_for_offer(client)
    assert client.post("/api/start", json={"start": "fresh"}).status_code == 200
    deciding.join(10)
    assert deciding.error is None and deciding.prior is None
    assert judge.session.state()["warm_start"]["status"]["text"].startswith("You chose to start fresh")
    with pytest.raises(SessionMismatchError, match="started fresh, so it cannot resume with --warm-start"):
        SearchJudge.open(tmp_path / "fresh.jsonl", context).warm_start(library, "topology", choice=True)
    # no earlier user in this space: nothing is offered, the start is fresh and kept
    judge = SearchJudge.open(tmp_path / "size.jsonl", context, seed=0)
    assert judge.warm_start(library, "size") is None and judge.session.start_choice == StartChoice(False, (), str(library.path))
    assert judge.warm_start(None, "topology") is None
    # a flag decides without asking
    judge = SearchJudge.open(tmp_path / "flag.jsonl", context, seed=0)
    assert judge.warm_start(library, "topology", choice=True).users == 3
    assert judge.session.start_choice == StartChoice(True, (1, 2, 3), str(library.path), asked=False)
    judge = SearchJudge.open(tmp_path / "cold.jsonl", context, seed=0)
    assert judge.warm_start(library, "topology", choice=False) is None
    # closing the page (Ctrl+C) while it offers stops the search
    judge = SearchJudge.open(tmp_path / "stop.jsonl", context, seed=0)
    deciding = Deciding(judge, library, "topology")
    wait_for_offer(create_app(judge.session).test_client())
    judge.stop("stopped with Ctrl+C")
    deciding.join(10)
    assert isinstance(deciding.error, JudgingStoppedError)
    assert judge.session.state()["warm_start"]["offer"] is None and judge.session.start_choice is None


def test_what_the_interfaces_say_as_the_warm_start_goes():
    assert warm_start_view(1, 0.5)["text"].startswith("Started from 1 earlier user: their preferences hold 50 %")
    going = warm_start_view(4, 0.5, 0.63, 0.4, 3)
    assert going["text"] == "Started from 4 earlier users: after your 3 judgments their preferences hold 63 % of the model's belief."
    assert not going["disagrees"]
    unsure = warm_start_view(4, 0.5, 0.0, -0.5, 3)  # worse than flat, not yet a disagreement
    assert not unsure["disagrees"] and "no better than a fresh start" in unsure["text"]
    disagree = warm_start_view(4, 0.5, 0.0, -1.2, 5)
    assert disagree["disagrees"]
    assert disagree["text"] == "Your judgments disagree with the 4 earlier users; the search uses your own judgments only."


def test_a_search_on_the_page_reports_the_disagreement_round_by_round(tmp_path, context):
    """The page's status follows the search's model: a person unlike the earlier users is told so."""
    pytest.importorskip("flask", reason="the web app needs the 'ui' extra: pip install -e '.[ui]'")
    from agents import RegularizedEvolution
    from agents.personalization import Personalization
    from preference_ui.web import create_app
    from reward_models.library import PopulationPrior

    # earlier users who want the opposite of this person: the fewest params (on the tiny table every
    # metric grows with the architecture's code, so the fewest params is the lowest accuracy)
    rng = np.random.default_rng(0)
    library = PreferenceLibrary(tmp_path / "lib.sqlite")
    for _ in range(3):
        pairs = [tuple(int(i) for i in rng.choice(context.benchmark.space.size, 2, replace=False)) for _ in range(12)]
        judged = SyntheticUser("params", context)(pairs)
        library.add(MetricFamilyPosterior().fit(judged, context), space="topology", dataset="cifar10", device=None)
    judge = SearchJudge.open(tmp_path / "s.jsonl", context, seed=0)
    prior = judge.warm_start(library, "topology", choice=True)
    assert isinstance(prior, PopulationPrior) and prior.users == 3
    personalization = Personalization(judge, num_comparisons=4, num_architectures=4, schedule="interactive", warm_start=prior)
    agent = RegularizedEvolution(6, 3, seed=0, personalization=personalization)
    judge.watch(agent)
    client = create_app(judge.session).test_client()
    statuses: list[dict] = []
    stop = threading.Event()

    def person() -> None:  # prefers the higher accuracy (the tiny table: the bigger code)
        while not stop.is_set():
            state = client.get("/api/state").get_json()
            pair = state["pair"]
            if pair is None:
                time.sleep(0.01)
                continue
            statuses.append(state["warm_start"]["status"])
            acc = {s: next(m["value"] for m in pair[s]["metrics"] if m["key"] == "valid_accuracy") for s in "ab"}
            client.post("/api/judge", json={"pair_id": pair["id"], "outcome": "a" if acc["a"] >= acc["b"] else "b"})

    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    env = gym.make("NATSBench-Topology-v0", benchmark=context.benchmark, dataset="cifar10")
    try:
        result = agent.search(env, 12)
    finally:
        stop.set()
        env.close()
    info = result.info["warm_start"]
    assert statuses[0]["text"].startswith("Started from 3 earlier users: their preferences hold 50 % of the prior")
    assert all(s is not None and s["users"] == 3 for s in statuses)
    later = statuses[1:]
    assert later and all(s["judgments"] >= 1 for s in later)
    # the person's judgments contradict the earlier users: the page said so while the search ran
    assert statuses[-1]["disagrees"] and statuses[-1]["share"] == 0.0
    assert statuses[-1]["text"] == "Your judgments disagree with the 3 earlier users; the search uses your own judgments only."
    assert info["users"] == 3 and info["disagrees"] and info["share"] == 0.0


def test_the_terminal_ui_offers_the_warm_start_too(tmp_path, context):
    pytest.importorskip("textual", reason="the terminal UI needs the 'ui' extra: pip install -e '.[ui]'")
    import asyncio

    from textual.widgets import Static

    from preference_ui.tui import ElicitationApp

    def text_of(app, selector: str) -> str:
        widget = app.query_one(selector, Static)
        lines = app.console.render_lines(widget.content, app.console.options.update_width(widget.size.width or 100))
        return "\n".join("".join(segment.text for segment in line) for line in lines)

    library = library_with(tmp_path / "lib.sqlite", context, 2)
    judge = SearchJudge.open(tmp_path / "s.jsonl", context, seed=0)
    judge.show_remember(library.path)

    async def scenario():
        app = ElicitationApp(judge.session, search=lambda: judge.warm_start(library, "topology"))
        async with app.run_test(size=(160, 50)) as pilot:
            for _ in range(200):
                await pilot.pause(0.02)
                if judge.session.state()["warm_start"]["offer"]:
                    break
            await pilot.pause(0.3)
            offer = text_of(app, "#card-a")
            assert "Start from 2 earlier users?" in offer and "w start from 2 earlier users · n start fresh" in offer
            assert "This session will be remembered in" in text_of(app, "#notes")
            await pilot.press("w")
            for _ in range(200):
                await pilot.pause(0.02)
                if app.search_outcome is not None:
                    break
        return app

    app = asyncio.run(scenario())
    assert app.finish_search().users == 2
    assert judge.session.start_choice == StartChoice(True, (1, 2), str(library.path), asked=True)

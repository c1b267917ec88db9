"""The terminal UI, driven through Textual's test pilot (keys a / b / t / s / u / f / e)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import natsbench_gym
from preference_ui import ElicitationSession
from reward_models import PreferenceDataset

pytest.importorskip("textual", reason="the terminal UI needs the 'ui' extra: pip install -e '.[ui]'")
from textual.widgets import Static  # noqa: E402

from preference_ui.tui import ElicitationApp, percentile_bar  # noqa: E402


@pytest.fixture()
def session(tmp_path: Path, tiny_tables: Path) -> ElicitationSession:
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    return ElicitationSession.open(tmp_path / "s.jsonl", bench, "cifar10", population=12, pairs=6, seed=3)


def text_of(app: ElicitationApp, selector: str) -> str:
    """What a Static shows, as plain text (rendered at the app's width)."""
    widget = app.query_one(selector, Static)
    console = app.console
    lines = console.render_lines(widget.content, console.options.update_width(widget.size.width or 100))
    return "\n".join("".join(segment.text for segment in line) for line in lines)


def run(coro):
    return asyncio.run(coro)


def test_judge_skip_undo_fit_and_export_from_the_keyboard(session, tmp_path):
    async def scenario():
        app = ElicitationApp(session, export_dir=tmp_path / "export")
        async with app.run_test(size=(160, 60)) as pilot:
            first = session.pending
            assert f"#{first.a}" in text_of(app, "#card-a") and f"#{first.b}" in text_of(app, "#card-b")
            assert "valid accuracy" in text_of(app, "#card-a")
            for key in ("a", "b", "t"):
                await pilot.press(key)
            assert "3 of 6 judged" in text_of(app, "#progress-text")
            await pilot.press("s")
            assert "3 of 6 judged · 1 skipped" in text_of(app, "#progress-text")
            await pilot.press("u")  # takes back the skip
            await pilot.press("u")  # and the tie
            assert "2 of 6 judged" in text_of(app, "#progress-text")
            assert "Undone" in text_of(app, "#message")
            await pilot.press("f")
            await app.workers.wait_for_complete()
            await pilot.pause()
            fit = text_of(app, "#fit")
            assert "Your learned preference" in fit and "RankNet fitted on 2 judgment(s)" in fit
            # two judgments: the top-k is a guess, and the panel says so
            assert "What the model would pick now (tentative): top architectures in the whole space" in fit
            assert "Only 2 judgments" in fit and "valid accuracy" in fit
            assert session.model_path.is_file()
            await pilot.press("e")
            assert "Exported" in text_of(app, "#message")
            await pilot.press("q")
        return first

    first = run(scenario())
    data = PreferenceDataset.open(session.path)
    assert [c.outcome.value for c in data] == ["a", "b"]
    assert data.comparisons[0].indices == (first.a, first.b)
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["s-judgments.jsonl", "s-ranknet.pt"]


def test_errors_are_shown_not_raised(session):
    async def scenario():
        app = ElicitationApp(session)
        async with app.run_test(size=(160, 60)) as pilot:
            await pilot.press("u")
            assert "nothing to undo" in text_of(app, "#message")
            await pilot.press("f")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "judge at least one pair" in text_of(app, "#message")
            assert app.query_one("#message").has_class("error")

    run(scenario())
    assert not session.path.exists()


def test_the_goal_shows_the_end_and_a_resumed_app_continues(session, tiny_tables):
    async def answer(app_session, keys):
        app = ElicitationApp(app_session)
        async with app.run_test(size=(160, 60)) as pilot:
            for key in keys:
                await pilot.press(key)
            return text_of(app, "#card-a"), text_of(app, "#progress-text")

    run(answer(session, "abab"))
    resumed = ElicitationSession.open(session.path, natsbench_gym.load_benchmark("topology", tiny_tables))
    card, progress = run(answer(resumed, "ab"))
    assert "6 of 6 judged" in progress and "No pair left to judge" in card
    assert len(PreferenceDataset.open(session.path)) == 6


def test_percentile_bars():
    assert percentile_bar(None).plain == "—"
    assert percentile_bar(50.0, width=10).plain == "█████░░░░░ p 50"


# --- a search's pairs, round by round -------------------------------------------------------------
def test_the_terminal_shows_a_search_s_rounds_and_closes_when_it_ends(tmp_path, tiny_tables):
    import gymnasium as gym

    from agents import RegularizedEvolution
    from agents.personalization import Personalization
    from preference_ui import JudgingStoppedError, SearchJudge

    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    env = gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar10")
    judge = SearchJudge.open(tmp_path / "s.jsonl", env.unwrapped.context, seed=0)
    personalization = Personalization(judge, num_comparisons=4, num_architectures=4, schedule="one-shot")
    agent = RegularizedEvolution(population_size=6, sample_size=3, seed=0, personalization=personalization)

    async def scenario(app, answers):
        seen = []
        async with app.run_test(size=(160, 60)) as pilot:
            for _ in range(500):
                await pilot.pause(0.02)
                if app.search_outcome is not None or len(seen) == answers:
                    break
                pending = judge.session.pending
                if pending is not None and app.state["pair"] and app.state["pair"]["id"] == pending.id:
                    assert f"#{pending.a}" in text_of(app, "#card-a") and "round 1" in text_of(app, "#progress-text")
                    seen.append((pending.a, pending.b))
                    await pilot.press("b")
            if app.search_outcome is None:
                await pilot.press("q")  # the person quits while the search waits
        return seen

    # quitting in the middle of the round stops the search; the answers so far are kept
    stopped = ElicitationApp(judge.session, search=lambda: agent.search(env, 12))
    assert len(run(scenario(stopped, answers=2))) == 2
    with pytest.raises(JudgingStoppedError, match="the terminal UI was closed"):
        stopped.finish_search()
    # a new app and judge on the same session: the two answers are replayed, two more are asked
    judge = SearchJudge.open(tmp_path / "s.jsonl", env.unwrapped.context)
    personalization.judge = judge
    app = ElicitationApp(judge.session, search=lambda: agent.search(env, 12))
    seen = run(scenario(app, answers=10))
    result = app.finish_search()
    assert len(seen) == 2 and len(result.history) == 12
    assert [c.outcome.value for c in result.info["comparisons"]] == ["b"] * 4
    assert len(PreferenceDataset.open(tmp_path / "s.jsonl")) == 4
    env.close()


def test_the_fit_panel_fits_a_40_row_terminal(session):
    from rich.console import Console

    from preference_ui.tui import fit_panel

    for outcome in ("a", "b", "tie", "a", "b"):
        session.judge(session.pending.id, outcome)
    state = session.fit(top_k=10)
    for width in (80, 120):
        console = Console(width=width, record=True)
        lines = console.render_lines(fit_panel(state["fit"], None), console.options.update_width(width), pad=False)
        assert len(lines) <= 38, f"{len(lines)} rows at width {width}: the panel must fit a 40-row terminal with the footer"
    text = "\n".join("".join(seg.text for seg in line) for line in lines)
    assert "Only 5 judgments" in text and "leave-one-out" in text and "model's belief" in text
    assert "valid accuracy" in text and "(MFLOPs)" in text and "…" not in text.split("What the model would pick")[1], \
        "the top table is not cut at 120 columns"


def test_the_terminal_shows_per_class_accuracy_and_predictions(session, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("captum")
    from natsbench_gym.live import LiveConfig
    from preference_ui.evidence import EvidenceProvider

    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "cache"))
    tiny = LiveConfig(epochs=1, channels=4, cells_per_stage=1, batch_size=32, input_size=8, max_train_samples=120)
    session.evidence = EvidenceProvider(session.context, config=tiny, cache_path=tmp_path / "live.sqlite")
    pair = session.pending
    assert session.evidence.wait([pair.a, pair.b], timeout=300)

    async def scenario():
        app = ElicitationApp(session)
        async with app.run_test(size=(160, 60)) as pilot:
            await pilot.press("v")
            await pilot.pause()
            return text_of(app, "#evidence")

    text = run(scenario())
    assert "What each network does" in text and "Trained here on sklearn digits" in text
    assert "Accuracy per class" in text and "A %" in text and "B says" in text
    view = session.evidence_for_pair(pair.a, pair.b)
    assert f"A right on {view['a']['correct']}" in text

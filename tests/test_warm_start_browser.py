"""Issue 17's offer in a real browser: a person clicks "Start from 2 earlier users" on a running
search's page, judges its rounds, the search is SIGKILLed mid-round, and the restarted search asks
nothing about the start again and ends with the history of a run that was never interrupted, even
though a third user was remembered in the library meanwhile.

The earlier users are synthetic (``natsbench-gym search --preference params --remember``); the
person is Playwright driving Chromium, pressing the key of the card with the higher validation
accuracy shown (the helpers of ``tests/test_personalization_browser.py``). Needs what that test
needs (Chromium, Playwright, ``NATSBENCH_DATA``).
"""

from __future__ import annotations

import importlib
import os
import re

import pytest
from test_personalization_browser import (
    KILL_AFTER,
    PAGE_TIMEOUT,
    SEARCH_ARGS,
    SearchServer,
    free_port,
    judge_rounds,
    judged_pairs,
    progress,
)
from test_preference_ui_browser import CHROMIUM_ARGS, need_browser

from reward_models.library import PreferenceLibrary

#: The earlier users' searches (synthetic judges, remembered): small, a few seconds each.
EARLIER = ["--evaluations", "20", "--population", "6", "--sample", "3", "--comparisons", "6", "--preference", "params"]


@pytest.mark.slow
def test_a_person_starts_from_earlier_users_and_a_sigkilled_search_resumes_without_asking_again(tmp_path, real_data, monkeypatch):
    sync_playwright, expect, browser_path = need_browser()
    cache = tmp_path / "cache"
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(cache))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # never the developer's own library
    monkeypatch.delenv("NATSBENCH_GYM_LIBRARY", raising=False)
    library = tmp_path / "preferences.sqlite"
    search = importlib.import_module("natsbench_gym_cli.search")

    def remember_an_earlier_user(seed: int) -> None:
        argv = ["--data", str(real_data), *EARLIER, "--seed", str(seed), "--library", str(library), "--remember",
                "--out", str(tmp_path / f"earlier{seed}")]
        assert search.main(argv) == 0

    remember_an_earlier_user(1)
    remember_an_earlier_user(2)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NATSBENCH_DATA": str(real_data)}
    port = free_port()

    def args(name: str, *extra: str) -> list[str]:
        return [*SEARCH_ARGS, "--port", str(port), "--library", str(library), *extra,
                "--session", str(tmp_path / f"{name}.jsonl"), "--out", str(tmp_path / name)]

    def start_from_earlier_users(page) -> None:
        expect(page.locator("#offer")).to_be_visible(timeout=PAGE_TIMEOUT * 1000)
        expect(page.locator("#pair")).to_be_hidden()
        expect(page.locator("#offer-text")).to_contain_text(f"2 earlier users judged architectures of this space before (kept in {library})")
        expect(page.locator("#btn-fresh")).to_have_text("Start fresh")
        page.click("#btn-warm")
        expect(page.locator("#offer")).to_be_hidden()
        expect(page.locator("#warm-status")).to_have_text(
            "Started from 2 earlier users: their preferences hold 50 % of the prior; your judgments decide how much of it stays.")

    server = None
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            # the reference: started from the two earlier users, never interrupted (not remembered)
            server = SearchServer(args("straight"), env)
            page.goto(server.url)
            expect(page.locator("#btn-warm")).to_have_text("Start from 2 earlier users", timeout=PAGE_TIMEOUT * 1000)
            start_from_earlier_users(page)
            expect(page.locator("#remember-status")).to_be_hidden()
            straight = judge_rounds(page, expect, server)
            server.finish()
            # the page said how the warm start went after the judgments, from the search's model
            expect(page.locator("#warm-status")).to_have_text(
                re.compile(r"after your \d+ judgments? their preferences hold \d+ %|disagree with the 2 earlier users|no better than a fresh start"))
            printed = "".join(server.output)
            assert "warm start: from 2 earlier users in" in printed and "remembered" not in printed
            assert len(PreferenceLibrary(library)) == 2

            # the same search, remembered, SIGKILLed with the second round's next pair on screen
            server = SearchServer(args("killed", "--remember"), env)
            page.goto(server.url)
            expect(page.locator("#remember-status")).to_have_text(
                f"This session will be remembered in {library} when the search ends (--remember), so later searches can "
                "start from it; delete that file to forget.", timeout=PAGE_TIMEOUT * 1000)
            start_from_earlier_users(page)
            before = judge_rounds(page, expect, server, stop_after=KILL_AFTER)
            round_at_kill, judged, _ = progress(page)
            assert judged == KILL_AFTER
            server.kill()
            assert judged_pairs(tmp_path / "killed.jsonl") == [(a.a, a.b, a.outcome) for a in before]

            # meanwhile a third user is remembered; the restarted search asks nothing about the start
            # and starts from the same two earlier users it started from before the kill
            remember_an_earlier_user(3)
            assert len(PreferenceLibrary(library)) == 3
            server = SearchServer(args("killed", "--remember"), env)
            page.reload()
            resumed_progress = re.compile(rf"^round {round_at_kill} of 4 · {KILL_AFTER} of \d+ judged$")
            expect(page.locator("#progress-text")).to_have_text(resumed_progress, timeout=PAGE_TIMEOUT * 1000)
            expect(page.locator("#offer")).to_be_hidden()
            expect(page.locator("#warm-status")).to_contain_text("2 earlier users")
            after = judge_rounds(page, expect, server)
            server.finish()
            browser.close()
        assert not errors, errors
    finally:
        if server is not None:
            server.kill()

    assert before + after == straight
    assert (tmp_path / "killed" / "history.jsonl").read_text() == (tmp_path / "straight" / "history.jsonl").read_text()
    printed = "".join(server.output)
    assert "warm start: from 2 earlier users in" in printed
    assert f"remembered: this session is #4 in {library}" in printed
    assert len(PreferenceLibrary(library)) == 4

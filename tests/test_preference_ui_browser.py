"""End to end in a real headless browser: the page, the server process, a kill and a restart.

Needs Debian's ``chromium`` (``apt-get install chromium``) and Playwright for Python (the ``dev``
extra); Playwright drives the system browser, so ``playwright install`` is never needed. Without
them the test is skipped locally, but fails under CI (``CI=true``), where ``.ci/run`` installs them.
Set ``CHROMIUM`` to use another Chromium or Chrome binary.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reward_models import PreferenceDataset

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
INSTALL_HINT = "apt-get install -y chromium && pip install -e '.[dev]' (Playwright; no 'playwright install' needed)"


def chromium_path() -> str | None:
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def need_browser():
    """``(sync_playwright, expect, chromium path)``; skip (or fail under CI) when something is missing."""
    missing = []
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing.append("the playwright Python package")
    browser = chromium_path()
    if browser is None:
        missing.append("a chromium binary")
    if missing:
        message = f"browser test needs {' and '.join(missing)}: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright, expect, browser


class Server:
    """``scripts/elicit.py`` in its own process, as a user starts it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "elicit.py"), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url(timeout=60)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def _wait_for_url(self, timeout: float) -> str:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("Serving"):
                return line.split(" on ", 1)[1].strip()
        self.kill()
        raise AssertionError("the server did not start:\n" + "".join(self.output))

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up, as in a crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.mark.slow
def test_judge_undo_fit_kill_restart_in_a_real_browser(tmp_path, tiny_tables):
    sync_playwright, expect, browser_path = need_browser()
    session = tmp_path / "alice.jsonl"
    args = ["--space", "topology", "--dataset", "cifar10", "--session", str(session), "--pairs", "10",
            "--seed", "7", "--data", str(tiny_tables), "--port", "0", "--no-browser"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NATSBENCH_GYM_CACHE": str(tmp_path / "cache")}
    server = Server(args, env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url)
            progress = page.locator("#progress-text")
            expect(progress).to_have_text("0 of 10 judged")
            expect(page.locator("#a-metrics tr")).to_have_count(6)  # the synthetic table has no latency
            expect(page.locator("#a-svg svg > path")).to_have_count(6)  # one per edge

            answers = [("click", "#btn-a"), ("key", "b"), ("click", "#btn-tie"), ("key", "ArrowLeft"), ("key", "t")]
            for n, (how, what) in enumerate(answers, start=1):
                if n == 5:
                    fifth = (page.locator("#a-index").inner_text(), page.locator("#b-index").inner_text())
                page.click(what) if how == "click" else page.keyboard.press(what)
                expect(progress).to_have_text(f"{n} of 10 judged")
            page.keyboard.press("u")
            expect(progress).to_have_text("4 of 10 judged")
            expect(page.locator("#notice")).to_contain_text("Undone")
            shown = (page.locator("#a-index").inner_text(), page.locator("#b-index").inner_text())
            assert shown == fifth, "undo shows the undone pair again"

            page.click("#btn-fit")
            expect(page.locator("#topk tr.top-row")).to_have_count(10, timeout=60_000)
            expect(page.locator("#drivers .row").first).to_be_visible()
            expect(page.locator("#fit-meta")).to_contain_text("RankNet fitted on 4 judgments")
            expect(page.locator("#export-model")).to_be_visible()

            server.kill()
            data = PreferenceDataset.open(session)
            assert [c.outcome.value for c in data] == ["a", "b", "tie", "a"]
            assert len(data.history) == 5, "the undone judgment stays in the file, retracted"

            server = Server(args, env)
            page.goto(server.url)
            expect(progress).to_have_text("4 of 10 judged")
            assert (page.locator("#a-index").inner_text(), page.locator("#b-index").inner_text()) == fifth
            expect(page.locator("#topk tr.top-row")).to_have_count(10)
            page.keyboard.press("b")
            expect(progress).to_have_text("5 of 10 judged")
            browser.close()
        origins = {u.split("/", 3)[2] for u in requests}
        assert all(o.startswith("127.0.0.1:") for o in origins), f"every asset is local; requested: {origins}"
        assert not errors, errors
    finally:
        server.kill()
    assert len(PreferenceDataset.open(session)) == 5


@pytest.mark.slow
def test_a_search_s_rounds_appear_on_the_page_by_themselves(tmp_path, tiny_tables):
    """A search asks two rounds through a SearchJudge; the page shows each round's pairs as they come
    and says it waits for the search in between, without a reload."""
    sync_playwright, expect, browser_path = need_browser()
    import natsbench_gym
    from natsbench_gym.rewards import ScoringContext
    from preference_ui import SearchJudge
    from preference_ui.web import start_server

    ctx = ScoringContext.create(natsbench_gym.load_benchmark("topology", tiny_tables), "cifar10")
    judge = SearchJudge.open(tmp_path / "s.jsonl", ctx, seed=0, timeout=120)
    busy = threading.Event()
    answers = []

    def search():
        answers.append(judge([(1, 2), (3, 4)]))
        busy.wait(60)  # the search evaluates architectures before it asks again
        answers.append(judge([(5, 6)]))

    thread = threading.Thread(target=search, daemon=True)
    server = start_server(judge.session)
    try:
        thread.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url)
            expect(page.locator("#a-index")).to_have_text("#1")
            expect(page.locator("#progress-text")).to_have_text("round 1 · 0 of 2 judged")
            page.keyboard.press("a")
            expect(page.locator("#a-index")).to_have_text("#3")
            page.keyboard.press("b")
            expect(page.locator("#done-title")).to_have_text("Waiting for the search")
            busy.set()
            expect(page.locator("#a-index")).to_have_text("#5")  # polled: no reload
            expect(page.locator("#progress-text")).to_have_text("round 2 · 2 of 3 judged")
            page.keyboard.press("t")
            expect(page.locator("#done-title")).to_have_text("Waiting for the search")
            browser.close()
        thread.join(timeout=30)
        assert not errors, errors
    finally:
        server.stop()
    assert [[c.outcome.value for c in r] for r in answers] == [["a", "b"], ["tie"]]
    assert len(PreferenceDataset.open(tmp_path / "s.jsonl")) == 3


def save_screenshot(page, name: str) -> None:
    """With ``PREFERENCE_UI_SCREENSHOTS=DIR``, save the viewport as ``DIR/name`` (a small palette PNG):
    how ``docs/preference_ui.png`` and ``docs/preference_ui_phone.png`` are made."""
    folder = os.environ.get("PREFERENCE_UI_SCREENSHOTS")
    if not folder:
        return
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(Path(folder) / name, optimize=True)


@pytest.mark.slow
def test_evidence_history_and_fit_progress_on_desktop_and_phone(tmp_path, tiny_tables, monkeypatch):
    """Judge, open the evidence (Grad-CAM of both networks), change an earlier answer, fit with the
    progress state visible while judging on; then the same page at 390x844: no horizontal scroll,
    the choice buttons in view."""
    sync_playwright, expect, browser_path = need_browser()
    import time

    import natsbench_gym
    from preference_ui import ElicitationSession, adapter
    from preference_ui.evidence import EvidenceProvider
    from preference_ui.web import start_server

    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "cache"))
    real_fit = adapter.fit_model
    monkeypatch.setattr(adapter, "fit_model", lambda *a, **k: (time.sleep(1.5), real_fit(*a, **k))[1])  # a fit you can see
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    session = ElicitationSession.open(tmp_path / "alice.jsonl", bench, "cifar10", population=12, pairs=10, seed=7)
    session.evidence = EvidenceProvider(session.context, cache_path=tmp_path / "cache" / "live.sqlite", seed=7)  # digits, 3 epochs
    server = start_server(session)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url)
            progress = page.locator("#progress-text")
            expect(progress).to_have_text("0 of 10 judged")
            for n, key in enumerate("abt", start=1):
                page.keyboard.press(key)
                expect(progress).to_have_text(f"{n} of 10 judged")
                expect(page.locator("#notice")).to_contain_text("Saved")

            # the evidence of the pair on screen: trained here, Grad-CAM for both networks
            page.keyboard.press("e")
            expect(page.locator("#evidence")).to_be_visible()
            expect(page.locator("#ev-status")).to_contain_text(re.compile("queued|training or loading|Asking"))
            expect(page.locator("#ev-body")).to_be_visible(timeout=180_000)
            expect(page.locator("#ev-source")).to_contain_text("Trained here on sklearn digits (10 classes, 16x16), 3 epochs")
            expect(page.locator("#ev-source")).to_contain_text("not the cifar10 networks")
            expect(page.locator("#ev-grid .tile")).to_have_count(20)
            expect(page.locator("#ev-classes tbody tr")).to_have_count(10)
            # one network ready is enough to start showing; the other's Grad-CAM follows when it is trained
            for side in ("a", "b"):
                expect(page.locator(f"#cam-{side}-img")).to_have_attribute(
                    "data-loaded", re.compile(r"^\d+-\d+-predicted$"), timeout=180_000)
            expect(page.locator("#ev-summary")).to_contain_text("they disagree on")
            tile = page.locator("#ev-grid .tile").nth(5)
            image = tile.get_attribute("data-image")
            tile.click()
            for side in ("a", "b"):
                expect(page.locator(f"#cam-{side}-img")).to_have_attribute("data-loaded", re.compile(rf"-{image}-predicted$"))
            page.select_option("#cam-target", "true")
            expect(page.locator("#cam-a-img")).to_have_attribute("data-loaded", re.compile(rf"-{image}-true$"))
            expect(page.locator("#cam-a-cap")).to_contain_text(f"true {tile.locator('.true').inner_text()}")
            page.locator("#evidence").scroll_into_view_if_needed()
            expect(page.locator("#btn-a")).to_be_in_viewport()
            save_screenshot(page, "preference_ui.png")

            # change the first answer from the history (the last entry: newest first)
            first = page.locator("#history-list li").last
            expect(first.locator(".answer-text")).to_have_text("A preferred")
            first.locator("button[data-outcome='tie']").click()
            expect(page.locator("#notice")).to_contain_text("Changed")
            expect(page.locator("#history-list li").last.locator(".answer-text")).to_have_text("a tie (changed from A preferred)")
            expect(progress).to_have_text("3 of 10 judged")
            page.keyboard.press("u")
            expect(page.locator("#notice")).to_contain_text("Undone: your change of")
            expect(page.locator("#history-list li").last.locator(".answer-text")).to_have_text("A preferred")
            page.locator("#history-list li").last.locator("button[data-outcome='b']").click()
            expect(page.locator("#history-list li").last.locator(".answer-text")).to_contain_text("B preferred")

            # fit in the background: the progress state shows, and judging goes on
            page.keyboard.press("f")
            status = page.locator("#fit-status")
            expect(status).to_be_visible()
            expect(status).to_contain_text(re.compile(r"(fitting on 3 judgments|checking).*\d+\.\d s"))
            expect(page.locator("#btn-fit")).to_be_disabled()
            page.keyboard.press("b")
            expect(progress).to_have_text("4 of 10 judged")
            expect(page.locator("#topk tr.top-row")).to_have_count(10, timeout=120_000)
            expect(page.locator("#fit-meta")).to_have_text("RankNet fitted on 3 judgments · since then: 1 new; fit again to include them")
            expect(page.locator("#fit-warning")).to_contain_text("Only 3 judgments")
            expect(page.locator("#confidence-text")).to_contain_text("leave-one-out")
            expect(page.locator("#topk-scope")).to_contain_text("tentative")

            # compare two of the top architectures: one click queues that pair
            top = page.locator("#topk tr.top-row")
            second = top.nth(1).locator("td.arch").inner_text().split()[0]
            top.nth(1).locator(".compare-btn").click()
            expect(page.locator("#b-index")).to_have_text(second)

            # the same page on a phone
            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            phone.on("pageerror", lambda e: errors.append(str(e)))
            phone.goto(server.url)
            expect(phone.locator("#progress-text")).to_have_text("4 of 10 judged")
            phone.click("#btn-evidence")
            expect(phone.locator("#ev-body")).to_be_visible(timeout=180_000)
            for side in ("a", "b"):
                expect(phone.locator(f"#cam-{side}-img")).to_have_attribute("data-loaded", re.compile(r"predicted$"), timeout=180_000)
            for where in ("top", "#evidence", "#fit", "#history"):
                if where != "top":
                    phone.locator(where).scroll_into_view_if_needed()
                width = phone.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"the page is {width} px wide at 390 px (scrolled to {where})"
                for button in ("#btn-a", "#btn-tie", "#btn-b"):
                    expect(phone.locator(button)).to_be_in_viewport()
            phone.locator(".ev-cam").scroll_into_view_if_needed()
            save_screenshot(phone, "preference_ui_phone.png")
            phone.click("#btn-tie")
            expect(phone.locator("#progress-text")).to_have_text("5 of 10 judged")
            expect(phone.locator("#notice")).to_be_in_viewport()
            browser.close()
        origins = {u.split("/", 3)[2] for u in requests if not u.startswith("data:")}
        assert all(o.startswith("127.0.0.1:") for o in origins), f"every asset is local; requested: {origins}"
        assert not errors, errors
    finally:
        server.stop()
    data = PreferenceDataset.open(session.path)
    assert len(data) == 5, "four answers and the compared pair, each saved"
    first = data.comparisons[0].indices
    assert {c.indices: c.outcome.value for c in data}[first] == "b", "the changed first answer is in force"
    assert len(data.history) == 8, "append-only: two changes and an undo left their records"

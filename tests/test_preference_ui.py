"""The preference interface's core loop, drawings and HTTP API (synthetic tables; no browser).

The terminal UI is tested in ``test_preference_ui_tui.py`` and the page in a real browser in
``test_preference_ui_browser.py``.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import natsbench_gym
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from preference_ui import (
    AnswerLockedError,
    ElicitationSession,
    InvalidRequestError,
    NotFittedError,
    NothingToUndoError,
    SessionMismatchError,
    StalePairError,
    UnknownPairError,
)
from preference_ui.catalog import MetricCatalog
from preference_ui.drawing import architecture_lines, architecture_svg
from reward_models import Comparison, PreferenceDataset

pytest.importorskip("flask", reason="the web app needs the 'ui' extra: pip install -e '.[ui]'")
from preference_ui.web import TOKEN_COOKIE, TOKEN_HEADER, create_app  # noqa: E402


@pytest.fixture(scope="module")
def bench(tiny_tables: Path) -> natsbench_gym.Benchmark:
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture(scope="module")
def size_bench_tiny(tiny_tables: Path) -> natsbench_gym.Benchmark:
    return natsbench_gym.load_benchmark("size", tiny_tables)


def open_session(path: Path, bench, **kwargs) -> ElicitationSession:
    kwargs = {"population": 12, "pairs": 6, "seed": 5, **kwargs}
    return ElicitationSession.open(path, bench, "cifar10", **kwargs)


def files_of(path: Path) -> dict[str, bytes]:
    """Every file of a session directory and its bytes (to show that nothing was written)."""
    return {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.is_file()}


# --- the core loop ------------------------------------------------------------------------------
def test_a_new_session_shows_a_pair_of_candidates_with_every_metric(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    state = session.state()
    assert state["progress"] == {"judged": 0, "target": 6, "skipped": 0}
    assert state["context"] | {"benchmark": None} == {
        "space": "topology", "dataset": "cifar10", "budget": 12, "device": None, "benchmark": None,
        "population": 12, "session": "s.jsonl", "active": False,
    }
    pair = state["pair"]
    assert pair["id"] == "1" and pair["a"]["index"] != pair["b"]["index"]
    population = set(json.loads(session.state_path.read_text())["population"])
    assert {pair["a"]["index"], pair["b"]["index"]} <= population
    keys = [m["key"] for m in pair["a"]["metrics"]]
    assert keys == [m.value for m in Metric if session.context.has(m)]
    valid = next(m for m in pair["a"]["metrics"] if m["key"] == "valid_accuracy")
    assert valid["unit"] == "%" and valid["text"].endswith(" %") and 0 < valid["percentile"] <= 100
    assert not state["can_undo"] and not state["can_fit"] and state["fit"] is None
    assert not session.path.exists(), "no judgment yet, so no judgments file"


def test_each_judgment_is_on_disk_before_the_next_pair(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    first = session.state()["pair"]
    state = session.judge(first["id"], "a")
    lines = session.path.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert (record["a"]["index"], record["b"]["index"], record["outcome"]) == (first["a"]["index"], first["b"]["index"], "a")
    assert record["dataset"] == "cifar10" and record["selector"] == "random" and record["judge"] == "human"
    assert state["progress"]["judged"] == 1 and state["pair"]["id"] == "2"
    shown = json.loads(session.state_path.read_text())["pending"]
    assert shown["id"] == "2", "the pending pair is saved before it is shown"


def test_a_resumed_session_shows_the_same_pair_and_the_same_sequence(tmp_path, bench):
    path = tmp_path / "s.jsonl"
    session = open_session(path, bench)
    for outcome in ("a", "b"):
        session.judge(session.state()["pair"]["id"], outcome)
    before = session.state()["pair"]
    resumed = ElicitationSession.open(path, bench)  # dataset and seed come from the session
    assert resumed.state()["pair"] == before
    assert resumed.state()["progress"]["judged"] == 2
    twin = open_session(tmp_path / "twin.jsonl", bench)  # same seed: same candidates, same pairs
    for outcome in ("a", "b"):
        twin.judge(twin.state()["pair"]["id"], outcome)
    assert twin.pending == resumed.pending


def test_undo_retracts_by_appending_and_shows_the_pair_again(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    first = session.pending
    session.judge(first.id, "b")
    second = session.pending
    state = session.undo()
    assert state["progress"]["judged"] == 0
    assert (session.pending.a, session.pending.b) == (first.a, first.b) and session.pending.id == "3"
    records = [json.loads(line) for line in session.path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["comparison", "retract"]
    assert len(PreferenceDataset.open(session.path)) == 0
    session.judge(session.pending.id, "a")
    assert (session.pending.a, session.pending.b) == (second.a, second.b), "the displaced pair comes next"


def test_skip_and_undo_of_a_skip(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    skipped = session.pending
    state = session.skip(skipped.id)
    assert state["progress"] == {"judged": 0, "target": 6, "skipped": 1}
    assert not session.path.exists(), "a skip is not a judgment"
    state = session.undo()
    assert state["progress"]["skipped"] == 0
    assert (session.pending.a, session.pending.b) == (skipped.a, skipped.b)
    with pytest.raises(NothingToUndoError, match="nothing to undo"):
        session.undo()


def test_pairs_are_never_repeated(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench, population=5, pairs=20)
    seen = set()
    while session.pending is not None:
        pair = session.pending
        seen_key = frozenset((pair.a, pair.b))
        assert seen_key not in seen
        seen.add(seen_key)
        (session.skip if len(seen) % 3 == 0 else session.judge)(pair.id, *(() if len(seen) % 3 == 0 else ("tie",)))
    assert len(seen) == 10, "5 candidates make 10 pairs, and then there is none left"
    assert session.state()["pair"] is None


def test_the_goal_ends_the_pairs_and_undo_reopens_them(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench, pairs=2)
    session.judge(session.pending.id, "a")
    state = session.judge(session.pending.id, "b")
    assert state["pair"] is None and state["progress"]["judged"] == 2
    assert session.undo()["pair"] is not None
    assert ElicitationSession.open(session.path, bench, pairs=5).state()["progress"]["target"] == 5


@pytest.mark.parametrize(
    ("pair_id", "outcome", "error", "match"),
    [
        ("1", "A!", InvalidRequestError, "outcome 'A!' is not one of"),
        ("1", None, InvalidRequestError, "outcome None"),
        ("99", "a", UnknownPairError, "unknown pair id '99'"),
        ("x", "a", UnknownPairError, "unknown pair id 'x'"),
        (1, "a", InvalidRequestError, "pair_id must be a string"),
    ],
)
def test_bad_judgments_raise_and_write_nothing(tmp_path, bench, pair_id, outcome, error, match):
    session = open_session(tmp_path / "s.jsonl", bench)
    before = files_of(session.path)
    with pytest.raises(error, match=match):
        session.judge(pair_id, outcome)
    assert files_of(session.path) == before


def test_a_stale_pair_is_refused(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    session.judge("1", "a")
    before = files_of(session.path)
    with pytest.raises(StalePairError, match="pair 1 was already answered.*pending now: pair 2"):
        session.judge("1", "b")
    assert files_of(session.path) == before


def test_a_crash_between_the_judgment_and_the_state_loses_nothing(tmp_path, bench):
    path = tmp_path / "s.jsonl"
    session = open_session(path, bench)
    session.judge(session.pending.id, "a")
    state_before = session.state_path.read_bytes()
    answered = session.pending
    session.judge(answered.id, "b")
    session.state_path.write_bytes(state_before)  # as if killed right after the judgment was written
    resumed = ElicitationSession.open(path, bench)
    assert resumed.state()["progress"]["judged"] == 2
    assert {resumed.pending.a, resumed.pending.b} != {answered.a, answered.b}
    resumed.undo()
    assert (resumed.pending.a, resumed.pending.b) == (answered.a, answered.b)


def test_a_crash_between_an_undo_and_the_state_finishes_the_undo(tmp_path, bench):
    path = tmp_path / "s.jsonl"
    session = open_session(path, bench)
    judged = session.pending
    session.judge(judged.id, "a")
    state_before = session.state_path.read_bytes()
    session.undo()
    session.state_path.write_bytes(state_before)
    resumed = ElicitationSession.open(path, bench)
    assert resumed.state()["progress"]["judged"] == 0
    assert (resumed.pending.a, resumed.pending.b) == (judged.a, judged.b)


def test_a_truncated_last_line_is_tolerated(tmp_path, bench):
    path = tmp_path / "s.jsonl"
    session = open_session(path, bench)
    session.judge(session.pending.id, "a")
    with open(path, "ab") as fh:
        fh.write(b'{"type":"comparison","ver')
    resumed = ElicitationSession.open(path, bench)
    assert resumed.state()["progress"]["judged"] == 1
    resumed.judge(resumed.pending.id, "b")
    assert len(PreferenceDataset.open(path)) == 2


def test_resuming_with_other_settings_is_refused(tmp_path, bench, size_bench_tiny):
    path = tmp_path / "s.jsonl"
    open_session(path, bench).judge("1", "a")
    with pytest.raises(SessionMismatchError, match="started with dataset 'cifar10', not 'cifar100'"):
        ElicitationSession.open(path, bench, "cifar100")
    with pytest.raises(SessionMismatchError, match="started with space 'topology', not 'size'"):
        ElicitationSession.open(path, size_bench_tiny)
    assert ElicitationSession.stored_settings(path)["dataset"] == "cifar10"
    assert ElicitationSession.stored_settings(tmp_path / "new.jsonl") is None


def test_fit_saves_a_model_the_environments_accept(tmp_path, bench):
    import gymnasium as gym

    from reward_models import RankNetRewardModel

    session = open_session(tmp_path / "s.jsonl", bench, pairs=8)
    with pytest.raises(NotFittedError, match="judge at least one pair"):
        session.fit()
    with pytest.raises(NotFittedError, match="fit one first"):
        session.model_path_for_export()
    context = session.context
    while session.pending is not None:  # prefer the more accurate network
        pair = session.pending
        acc = context.query([pair.a, pair.b], [Metric.VALID_ACCURACY])[Metric.VALID_ACCURACY]
        session.judge(pair.id, "a" if acc[0] >= acc[1] else "b")
    state = session.fit(top_k=5)
    fit = state["fit"]
    assert fit["judgments"] == 8 and not fit["stale"] and len(fit["top"]) == 5
    scores = [row["score"] for row in fit["top"]]
    assert scores == sorted(scores, reverse=True)
    assert fit["drivers"][0]["key"] == "valid_accuracy" and fit["drivers"][0]["effect"] > 0
    assert abs(sum(d["share"] for d in fit["drivers"]) - 1) < 1e-9
    # the metric-family prior in words: 8 accuracy judgments read as "accuracy only"
    assert fit["reading"] and fit["reading"][0]["text"].startswith("valid accuracy only")
    assert 0 < fit["reading"][0]["share"] <= 1

    model = RankNetRewardModel.load(session.model_path)
    env = gym.make("NATSBench-Topology-v0", benchmark=bench, reward_model=model)
    env.reset(seed=0)
    for _ in range(6):
        _, reward, terminated, _, _ = env.step(3)
    assert terminated and np.isfinite(reward) and env.unwrapped.reward_model is model

    resumed = ElicitationSession.open(session.path, bench)  # the model comes back with the session
    assert resumed.state()["fit"]["top"][:5] == fit["top"]
    resumed.undo()
    assert resumed.state()["fit"]["stale"]


def test_an_unreadable_model_file_does_not_lock_the_judgments_away(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    session.judge(session.pending.id, "a")
    session.fit()
    session.model_path.write_bytes(b"not a model")
    resumed = ElicitationSession.open(session.path, bench)
    assert resumed.state()["fit"] is None and resumed.state()["progress"]["judged"] == 1
    assert resumed.fit()["fit"]["judgments"] == 1


def test_active_sessions_ask_the_model_after_a_fit(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench, active=True, pairs=6)
    for outcome in ("a", "b", "a"):
        session.judge(session.pending.id, outcome)
    assert session.pending.selector == "random", "no model yet: random pairs"
    session.fit()
    session.judge(session.pending.id, "a")  # the pair drawn before the fit
    assert session.pending.selector == "active:disagreement"  # members: posterior draws of the prior
    session.judge(session.pending.id, "tie")
    assert PreferenceDataset.open(session.path).comparisons[-1].selector == "active:disagreement"


def test_export_writes_judgments_that_load_back(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    for outcome in ("a", "tie", "b"):
        session.judge(session.pending.id, outcome)
    session.undo()
    paths = session.export_to(tmp_path / "export")
    assert [p.name for p in paths] == ["s-judgments.jsonl"]
    exported = PreferenceDataset.open(paths[0])
    assert [c.outcome.value for c in exported] == ["a", "tie"]
    session.fit()
    assert [p.name for p in session.export_to(tmp_path / "export")] == ["s-judgments.jsonl", "s-ranknet.pt"]


# --- metrics and drawings -----------------------------------------------------------------------
def test_percentiles_are_shares_of_the_space(bench):
    catalog = MetricCatalog(ScoringContext.create(bench, "cifar10"))
    flops = catalog.values()[Metric.FLOPS]
    assert catalog.percentile(Metric.FLOPS, flops.max()) == 100.0
    assert catalog.percentile(Metric.FLOPS, flops.min()) == pytest.approx(100 / flops.size)
    assert np.isnan(catalog.percentile(Metric.FLOPS, np.nan))
    no_train_acc = int(np.flatnonzero(np.isnan(catalog.values()[Metric.TRAIN_ACCURACY]))[0])
    view = {v.metric: v for v in catalog.describe(no_train_acc)}[Metric.TRAIN_ACCURACY]
    assert (view.value, view.percentile, view.text) == (None, None, "n/a")


def test_topology_cells_are_drawn_as_a_dag(bench):
    space = bench.space
    enc = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|")
    svg = ET.fromstring(architecture_svg(space, enc))
    ns = "{http://www.w3.org/2000/svg}"
    edges = svg.findall(f"{ns}path")
    assert len(edges) == 6 and len(svg.findall(f"{ns}circle")) == 4
    titles = sorted(e.find(f"{ns}title").text for e in edges)
    assert "input → node 1: conv 3×3" in titles and "node 1 → output: avg pool 3×3" in titles
    assert sum(e.get("stroke-dasharray") is not None for e in edges) == 2, "the two 'none' edges are dashed"
    assert architecture_lines(space, enc)[0] == "node 1: conv 3×3 ← input"


def test_size_configurations_are_drawn_as_channel_bars(size_bench_tiny):
    space = size_bench_tiny.space
    svg = ET.fromstring(architecture_svg(space, space.parse("8:16:32:64:64")))
    bars = svg.findall("{http://www.w3.org/2000/svg}rect")
    heights = [float(b.get("height")) for b in bars]
    assert len(bars) == 5 and heights[0] < heights[1] < heights[2] == pytest.approx(heights[3] / 2)
    assert architecture_lines(space, space.parse("8:16:32:64:64")) == ["channels: 8 → 16 → 32 → 64 → 64"]


# --- the HTTP API -------------------------------------------------------------------------------
@pytest.fixture()
def web(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    return session, create_app(session).test_client()


def post(client, url, body, **kwargs):
    return client.post(url, data=body if isinstance(body, (str, bytes)) else json.dumps(body),
                       content_type=kwargs.pop("content_type", "application/json"), **kwargs)


def test_the_page_and_its_assets_are_served_locally(web):
    _, client = web
    page = client.get("/")
    assert page.status_code == 200 and b'<script src="/static/app.js"' in page.data
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg"):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert b"http://" not in response.data.replace(b"http://www.w3.org/2000/svg", b"") and b"https://" not in response.data
    assert b"https://" not in page.data and b"http://" not in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_api_loop_judge_skip_undo_fit_export(web, tmp_path):
    session, client = web
    state = client.get("/api/state").get_json()
    state = post(client, "/api/judge", {"pair_id": state["pair"]["id"], "outcome": "a"}).get_json()
    state = post(client, "/api/judge", {"pair_id": state["pair"]["id"], "outcome": "tie"}).get_json()
    state = post(client, "/api/skip", {"pair_id": state["pair"]["id"]}).get_json()
    assert state["progress"] == {"judged": 2, "target": 6, "skipped": 1}
    state = post(client, "/api/undo", {}).get_json()
    assert state["progress"]["skipped"] == 0
    response = post(client, "/api/fit", {"top_k": 3})  # in the background: 202, then poll the state
    assert response.status_code == 202 and response.get_json()["fitting"]["running"]
    assert session.wait_for_fit(timeout=120)
    state = client.get("/api/state").get_json()
    assert state["fitting"] is None and len(state["fit"]["top"]) == 3
    judgments = client.get("/api/export/judgments")
    assert judgments.status_code == 200 and "attachment" in judgments.headers["Content-Disposition"]
    assert [json.loads(line)["outcome"] for line in judgments.data.decode().splitlines()] == ["a", "tie"]
    model = client.get("/api/export/model")
    assert model.status_code == 200 and model.data == session.model_path.read_bytes()
    assert model.headers["Content-Disposition"].endswith("s-ranknet.pt")


@pytest.mark.parametrize(
    ("method", "url", "body", "content_type", "status", "message"),
    [
        ("post", "/api/judge", {"pair_id": "1", "outcome": "maybe"}, None, 400, "outcome 'maybe' is not one of"),
        ("post", "/api/judge", {"pair_id": "1", "outcome": "A"}, None, 400, "outcome 'A' is not one of"),
        ("post", "/api/judge", {"pair_id": "1", "outcome": 1}, None, 400, "field 'outcome' must be a str"),
        ("post", "/api/judge", {"pair_id": 1, "outcome": "a"}, None, 400, "field 'pair_id' must be a str"),
        ("post", "/api/judge", {"pair_id": "1"}, None, 400, "missing field(s): outcome"),
        ("post", "/api/judge", {"pair_id": "1", "outcome": "a", "x": 1}, None, 400, "unexpected field(s): x"),
        ("post", "/api/judge", {"pair_id": "424242", "outcome": "a"}, None, 404, "unknown pair id '424242'"),
        ("post", "/api/judge", {"pair_id": "../1", "outcome": "a"}, None, 404, "unknown pair id"),
        ("post", "/api/judge", "{not json", None, 400, "not valid JSON"),
        ("post", "/api/judge", "[1, 2]", None, 400, "must be a JSON object, got list"),
        ("post", "/api/judge", "null", None, 400, "must be a JSON object"),
        ("post", "/api/judge", "pair_id=1&outcome=a", "application/x-www-form-urlencoded", 400, "Content-Type: application/json"),
        ("post", "/api/judge", {"pair_id": "1", "outcome": "a", "pad": "x" * 5000}, None, 413, "larger than 4096 bytes"),
        ("post", "/api/skip", {"pair_id": "7"}, None, 404, "unknown pair id '7'"),
        ("post", "/api/skip", {}, None, 400, "missing field(s): pair_id"),
        ("post", "/api/undo", {}, None, 409, "nothing to undo"),
        ("post", "/api/undo", {"all": True}, None, 400, "unexpected field(s): all"),
        ("post", "/api/fit", {}, None, 409, "judge at least one pair"),
        ("post", "/api/fit", {"top_k": 0}, None, 400, "top_k must be between 1 and 100"),
        ("post", "/api/fit", {"top_k": "5"}, None, 400, "field 'top_k' must be a int"),
        ("get", "/api/export/model", None, None, 409, "no reward model yet"),
        ("get", "/api/judge", None, None, 405, "method is not allowed"),
        ("get", "/api/nothing", None, None, 404, "not found"),
    ],
)
def test_bad_requests_get_a_4xx_and_write_nothing(web, method, url, body, content_type, status, message):
    session, client = web
    before = files_of(session.state_path)
    if method == "post":
        response = post(client, url, body, **({"content_type": content_type} if content_type else {}))
    else:
        response = client.get(url)
    assert response.status_code == status
    assert message.lower() in response.get_json()["error"].lower()
    assert files_of(session.state_path) == before
    assert client.get("/api/state").get_json()["progress"]["judged"] == 0


def test_a_stale_pair_gets_409(web):
    session, client = web
    assert post(client, "/api/judge", {"pair_id": "1", "outcome": "b"}).status_code == 200
    before = files_of(session.path)
    response = post(client, "/api/judge", {"pair_id": "1", "outcome": "b"})
    assert response.status_code == 409 and "already answered" in response.get_json()["error"]
    assert files_of(session.path) == before


def test_loopback_servers_refuse_other_host_names(web):
    _, client = web
    response = client.get("/api/state", headers={"Host": "attacker.example:8765"})
    assert response.status_code == 403 and "only requests to 127.0.0.1" in response.get_json()["error"]
    assert client.get("/api/state", headers={"Host": "127.0.0.1:8765"}).status_code == 200


def test_other_addresses_require_the_token(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    client = create_app(session, token="s3cret-token", bind_host="0.0.0.0").test_client()
    before = files_of(session.state_path)
    for response in (
        client.get("/"),
        client.get("/api/state"),
        client.get("/api/state", headers={TOKEN_HEADER: "wrong"}),
        post(client, "/api/judge", {"pair_id": "1", "outcome": "a"}),
    ):
        assert response.status_code == 401 and "token is required" in response.get_json()["error"]
    assert files_of(session.state_path) == before
    assert client.get("/api/state", headers={TOKEN_HEADER: "s3cret-token"}).status_code == 200
    opened = client.get("/?token=s3cret-token")
    assert opened.status_code == 302 and opened.headers["Location"] == "/"
    assert f"{TOKEN_COOKIE}=s3cret-token" in opened.headers["Set-Cookie"] and "HttpOnly" in opened.headers["Set-Cookie"]
    assert client.get("/").status_code == 200, "the cookie carries the token from then on"
    assert post(client, "/api/judge", {"pair_id": "1", "outcome": "a"}).status_code == 200


def test_the_script_asks_for_a_token_off_loopback(tmp_path, tiny_tables, monkeypatch):
    import importlib

    elicit = importlib.import_module("natsbench_gym_cli.elicit")
    assert elicit.token_for("127.0.0.1") is None and elicit.token_for("localhost") is None
    token = elicit.token_for("0.0.0.0")
    assert token and len(token) >= 32 and token != elicit.token_for("0.0.0.0")
    served = {}
    monkeypatch.setattr(elicit, "serve", lambda session, host, port, open_browser: served.update(
        session=session, host=host, port=port, open_browser=open_browser) or 0)
    code = elicit.main(["--session", str(tmp_path / "s.jsonl"), "--data", str(tiny_tables), "--no-browser",
                        "--dataset", "cifar100", "--pairs", "3", "--seed", "1"])
    assert code == 0 and served["host"] == "127.0.0.1" and served["open_browser"] is False
    assert served["session"].state()["context"]["dataset"] == "cifar100"
    code = elicit.main(["--session", str(tmp_path / "s.jsonl"), "--data", str(tiny_tables), "--dataset", "cifar10"])
    assert code == 2, "a resumed session keeps its dataset"


def test_the_script_starts_the_terminal_ui(tmp_path, tiny_tables, monkeypatch):
    import importlib

    from preference_ui.tui import ElicitationApp

    elicit = importlib.import_module("natsbench_gym_cli.elicit")
    ran = []
    monkeypatch.setattr(ElicitationApp, "run", lambda self: ran.append(self.session))
    assert elicit.main(["--tui", "--space", "size", "--session", str(tmp_path / "s.jsonl"), "--data", str(tiny_tables)]) == 0
    assert ran[0].state()["context"]["space"] == "size"


def test_size_sessions_show_channel_widths(tmp_path, size_bench_tiny):
    session = open_session(tmp_path / "s.jsonl", size_bench_tiny)
    pair = session.state()["pair"]
    assert pair["a"]["lines"][0].startswith("channels: ") and "<rect" in pair["a"]["svg"]
    assert [m["key"] for m in pair["a"]["metrics"]] == ["valid_accuracy", "flops", "params"]
    session.judge(pair["id"], "b")
    assert PreferenceDataset.open(session.path).comparisons[0].space.value == "size"


def test_concurrent_answers_to_one_pair_record_one_judgment(tmp_path, bench):
    from concurrent.futures import ThreadPoolExecutor

    session = open_session(tmp_path / "s.jsonl", bench)

    def answer(outcome):
        try:
            session.judge("1", outcome)
        except StalePairError:
            return "stale"
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(answer, ["a", "b", "tie", "a"]))
    assert sorted(results) == ["ok", "stale", "stale", "stale"]
    assert len(PreferenceDataset.open(session.path)) == 1


def test_sessions_copied_elsewhere_resume(tmp_path, bench):
    session = open_session(tmp_path / "a" / "s.jsonl", bench)
    session.judge(session.pending.id, "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    resumed = ElicitationSession.open(tmp_path / "b" / "s.jsonl", bench)
    assert resumed.state()["progress"]["judged"] == 1 and resumed.pending == session.pending


class _LazyBackend(natsbench_gym.TableBenchmark):
    """A table posing as a backend that must train to answer (like live training): counts what it is asked."""

    name = "lazy"
    capabilities = natsbench_gym.BenchmarkCapabilities(whole_space=False, exact_statistics=False)

    def __init__(self, path) -> None:
        super().__init__(path, "topology")
        self.asked: set[int] = set()

    def _query_indices(self, indices, dataset, budget, metrics, device):
        self.asked.update(int(i) for i in indices)
        return super()._query_indices(indices, dataset, budget, metrics, device)

    def _space_values(self, metric, dataset, budget, device):
        return super()._query_indices(np.arange(50), dataset, budget, (metric,), device)[metric]


def test_a_lazy_backend_is_asked_only_about_the_architectures_shown(tmp_path, tiny_tables):
    lazy = _LazyBackend(tiny_tables)
    session = ElicitationSession.open(tmp_path / "lazy.jsonl", lazy, "cifar10", population=6, seed=3)
    population = set(json.loads(session.state_path.read_text())["population"])
    assert lazy.asked == population
    session.judge(session.pending.id, "a")
    fitted = session.fit()
    assert len(lazy.asked) <= 6  # the fit ranks what is known; it never queries the whole space
    assert fitted is not None
    assert not session.catalog.whole_space


# --- the interface state file ---------------------------------------------------------------------
#: A ``<name>.ui.json`` written by the code before the state became a dataclass (version 1): judge,
#: skip, tie, three undos, judge, on a tiny-table session (population 8, 5 pairs, seed 5).
VERSION_1_STATE = {
 "format": "natsbench-gym-elicitation",
 "version": 1,
 "space": "topology",
 "dataset": "cifar10",
 "budget": 12,
 "device": None,
 "seed": 5,
 "population": [
  3004,
  5778,
  8300,
  15271,
  7574,
  3051,
  5148,
  11159
 ],
 "target": 5,
 "active": False,
 "serial": 8,
 "draws": 4,
 "pending": {
  "id": "8",
  "a": 11159,
  "b": 7574,
  "selector": "random"
 },
 "queue": [
  {
   "a": 11159,
   "b": 8300,
   "selector": "random"
  },
  {
   "a": 5778,
   "b": 11159,
   "selector": "random"
  }
 ],
 "actions": [
  {
   "kind": "judge",
   "a": 8300,
   "b": 3051,
   "selector": "random"
  }
 ],
 "fit": None
}


def test_version_1_state_files_load_and_are_written_back_unchanged(tmp_path, bench):
    from preference_ui.state import Action, FitRecord, Pair, QueuedPair, SessionState

    state = SessionState.from_json(VERSION_1_STATE)
    assert state.pending == Pair("8", 11159, 7574, "random")
    assert state.queue == [QueuedPair(11159, 8300), QueuedPair(5778, 11159)]
    assert state.actions == [Action("judge", 8300, 3051)] and state.fit is None
    assert state.to_json() == VERSION_1_STATE
    fitted = {**VERSION_1_STATE, "fit": {"judgments": 1, "seed": 7}}
    assert SessionState.from_json(fitted).fit == FitRecord(1, 7) and SessionState.from_json(fitted).to_json() == fitted
    # a session resumes from it: the judgment its actions name, the pending pair, then the queue
    path = tmp_path / "s.jsonl"
    PreferenceDataset.open(path).append(Comparison.create(bench, 8300, 3051, "a", "human", selector="random", dataset="cifar10"))
    (tmp_path / "s.ui.json").write_text(json.dumps(VERSION_1_STATE, indent=1) + "\n")
    before = (tmp_path / "s.ui.json").read_text()
    session = ElicitationSession.open(path, bench)
    assert (tmp_path / "s.ui.json").read_text() == before  # nothing to change: written back byte for byte
    assert (session.pending.a, session.pending.b) == (11159, 7574) and session.state()["progress"]["judged"] == 1
    after = session.judge("8", "b")["pair"]
    assert (after["a"]["index"], after["b"]["index"]) == (11159, 8300)
    session.undo()
    session.undo()  # the judgment written before the state became a dataclass
    assert len(PreferenceDataset.open(path)) == 0


@pytest.mark.parametrize("change, match", [
    ({"format": "other"}, "is not an elicitation session state file"),
    ({"version": 2}, "has state version 2; this version reads 1"),
    ({"population": None}, "lacks or mistypes a field"),
    ({"actions": [{"kind": "jump", "a": 1, "b": 2}]}, "lacks or mistypes a field"),
])
def test_bad_state_files_are_refused_clearly(tmp_path, bench, change, match):
    path = tmp_path / "s.jsonl"
    (tmp_path / "s.ui.json").write_text(json.dumps({**VERSION_1_STATE, **change}))
    with pytest.raises(SessionMismatchError, match=match):
        ElicitationSession.open(path, bench)


# --- history: changing an earlier answer; what undo undid -----------------------------------------
def test_an_earlier_answer_is_changed_by_a_retraction_and_a_new_answer(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    first = session.pending
    for outcome in ("a", "b", "tie"):
        session.judge(session.pending.id, outcome)
    history = session.state()["history"]
    assert [(h["n"], h["outcome"], h["changeable"], h["changed_from"]) for h in history] == [
        (1, "a", True, None), (2, "b", True, None), (3, "tie", True, None)]
    assert (history[0]["a"], history[0]["b"]) == (first.a, first.b) and history[0]["text"] == "A preferred"
    pending = session.pending
    state = session.change(history[0]["id"], "b")  # the first answer, three pairs ago
    assert session.pending == pending, "changing an answer leaves the pair on screen alone"
    assert state["progress"]["judged"] == 3
    assert [(h["n"], h["a"], h["outcome"], h["changed_from"]) for h in state["history"]][0] == (1, first.a, "b", "a")
    records = [json.loads(line) for line in session.path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["comparison"] * 3 + ["retract", "comparison"], "append-only"
    assert records[3]["id"] == history[0]["id"] and records[3]["reason"] == "changed"
    assert {c.key: c.outcome.value for c in PreferenceDataset.open(session.path)}[tuple(sorted((first.a, first.b)))] == "b"
    # the same answer again writes nothing; the old id is stale: exactly one write from two tabs
    before = files_of(session.path)
    session.change(state["history"][0]["id"], "b")
    assert files_of(session.path) == before
    with pytest.raises(AnswerLockedError, match="was changed or undone since"):
        session.change(history[0]["id"], "tie")
    with pytest.raises(UnknownPairError, match="no judgment has id 'nope'"):
        session.change("nope", "a")
    with pytest.raises(InvalidRequestError, match="outcome 'x' is not one of"):
        session.change(state["history"][0]["id"], "x")
    assert files_of(session.path) == before
    # undo takes the change back and says so
    state = session.undo()
    assert state["undone"]["kind"] == "change" and "from A preferred to B preferred" in state["undone"]["text"]
    assert state["history"][0]["outcome"] == "a" and session.pending == pending
    resumed = ElicitationSession.open(session.path, bench)
    assert [h["outcome"] for h in resumed.state()["history"]] == ["a", "b", "tie"]


def test_undo_says_what_it_undid(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    judged = session.pending
    session.judge(judged.id, "b")
    skipped = session.pending
    session.skip(skipped.id)
    state = session.undo()
    assert state["undone"] == {"kind": "skip", "a": skipped.a, "b": skipped.b, "outcome": None,
                               "text": f"Undone: the skip of #{skipped.a} vs #{skipped.b}; the pair is shown again."}
    state = session.undo()
    assert state["undone"]["outcome"] == "b"
    assert state["undone"]["text"] == f"Undone: your answer to #{judged.a} vs #{judged.b} (B preferred); the pair is shown again."
    assert state["history"] == []


def test_a_crash_while_changing_an_answer_asks_the_pair_again(tmp_path, bench):
    path = tmp_path / "s.jsonl"
    session = open_session(path, bench)
    judged = session.pending
    session.judge(judged.id, "a")
    session.judge(session.pending.id, "b")
    state_before = session.state_path.read_bytes()
    # killed between the retraction and the new answer: the pair has no answer in force
    session._store.retract_pair(judged.a, judged.b, reason="changed")
    session.state_path.write_bytes(state_before)
    resumed = ElicitationSession.open(path, bench)
    assert resumed.state()["progress"]["judged"] == 1
    assert (resumed.pending.a, resumed.pending.b) == (judged.a, judged.b), "nothing lost: the pair is asked again"


def test_a_state_with_changes_and_fit_ids_round_trips(tmp_path, bench):
    from preference_ui.state import Action, FitRecord, SessionState

    data = {**VERSION_1_STATE, "actions": [*VERSION_1_STATE["actions"],
            {"kind": "change", "a": 8300, "b": 3051, "selector": "random", "before": "a", "after": "tie"}],
            "fit": {"judgments": 1, "seed": 7, "ids": ["x1"], "check": {"agree": 0, "held_out": 0, "ties": 1}}}
    state = SessionState.from_json(data)
    assert state.actions[-1] == Action("change", 8300, 3051, "random", before="a", after="tie")
    assert state.fit == FitRecord(1, 7, ("x1",), {"agree": 0, "held_out": 0, "ties": 1})
    assert state.to_json() == data
    for bad in ({"kind": "change", "a": 1, "b": 2}, {"kind": "judge", "a": 1, "b": 2, "before": "a", "after": "b"},
                {"kind": "change", "a": 1, "b": 2, "before": "a", "after": "maybe"}):
        with pytest.raises(SessionMismatchError, match="lacks or mistypes"):
            SessionState.from_json({**VERSION_1_STATE, "actions": [bad]})


# --- the fit: in the background, how sure it is, what changed since ---------------------------------
def test_the_fit_header_counts_what_changed_since(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    for outcome in ("a", "b", "a"):
        session.judge(session.pending.id, outcome)
    fit = session.fit()["fit"]
    assert (fit["judgments"], fit["stale"], fit["new_since"], fit["gone_since"]) == (3, False, 0, 0)
    fit = session.undo()["fit"]
    assert (fit["stale"], fit["new_since"], fit["gone_since"]) == (True, 0, 1), "not '0 new since' after an undo"
    fit = session.judge(session.pending.id, "b")["fit"]  # the undone pair, answered otherwise
    assert (fit["stale"], fit["new_since"], fit["gone_since"]) == (True, 1, 1)
    fit = session.change(session.state()["history"][0]["id"], "tie")["fit"]
    assert (fit["new_since"], fit["gone_since"]) == (2, 2)


def test_the_fit_says_how_sure_it_is(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench, pairs=12, population=20)
    context = session.context
    while session.pending is not None:  # prefer the more accurate network
        pair = session.pending
        acc = context.query([pair.a, pair.b], [Metric.VALID_ACCURACY])[Metric.VALID_ACCURACY]
        session.judge(pair.id, "a" if acc[0] >= acc[1] else "b")
        if session.state()["progress"]["judged"] == 3:
            early = session.fit()["fit"]
    assert early["tentative"] and early["scope"].startswith("What the model would pick now (tentative)")
    assert early["confidence"]["warning"].startswith("Only 3 judgments: the ranking below is a guess")
    fit = session.fit()["fit"]
    confidence = fit["confidence"]
    assert confidence["warning"] is None and fit["judgments"] == 12
    top = fit["reading"][0]
    assert top["text"].startswith("valid accuracy only") and confidence["level"] in ("leaning", "fairly sure")
    assert f"holds {round(100 * top['share'])} % of the model's belief" in confidence["text"]
    assert fit["check"]["held_out"] + fit["check"]["ties"] == 12 and fit["check"]["agree"] >= 10
    assert f"agrees with {fit['check']['agree']} of {fit['check']['held_out']} judgment(s) it had not seen (leave-one-out" in confidence["text"]
    assert all("%" not in r["text"] for r in fit["reading"]), "no percentage nested in a reading"
    assert json.loads(session.state_path.read_text())["fit"]["check"] == fit["check"], "kept with the session"


def test_readings_are_plain_words_with_units():
    from preference_ui.core import plain_reading

    assert plain_reading("a trade-off: valid accuracy 60%, params 40%") == "a trade-off: 0.60 × valid accuracy + 0.40 × params"
    assert plain_reading("best valid accuracy with flops at most 110.5") == "the best valid accuracy with flops at most 110.5 MFLOPs"
    assert plain_reading("best params with valid accuracy at least 71.2") == "the best params with valid accuracy at least 71.2 %"
    assert plain_reading("best latency with latency at most 3.1") == "the best latency with latency at most 3.1 ms"
    assert plain_reading("valid accuracy only (higher is better)") == "valid accuracy only (higher is better)"


def test_a_fit_runs_in_the_background_while_judging_goes_on(tmp_path, bench, monkeypatch):
    import threading

    from preference_ui import adapter

    release = threading.Event()
    real = adapter.fit_model

    def slow_fit(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(adapter, "fit_model", slow_fit)
    session = open_session(tmp_path / "s.jsonl", bench)
    client = create_app(session).test_client()
    for outcome in ("a", "b"):
        session.judge(session.pending.id, outcome)
    response = post(client, "/api/fit", {})
    assert response.status_code == 202
    fitting = response.get_json()["fitting"]
    assert fitting["running"] and fitting["judgments"] == 2 and fitting["elapsed_s"] >= 0
    again = post(client, "/api/fit", {})
    assert again.status_code == 202 and again.get_json()["fitting"]["running"], "a second click waits for the first fit"
    state = post(client, "/api/judge", {"pair_id": session.pending.id, "outcome": "tie"}).get_json()
    assert state["progress"]["judged"] == 3 and state["fitting"]["running"], "judging goes on while it fits"
    state = post(client, "/api/undo", {}).get_json()
    assert state["undone"]["kind"] == "judge"
    release.set()
    assert session.wait_for_fit(timeout=120)
    state = client.get("/api/state").get_json()
    assert state["fitting"] is None and state["fit"]["judgments"] == 2 and not state["fit"]["stale"]


def test_a_failed_background_fit_is_reported(tmp_path, bench, monkeypatch):
    from preference_ui import adapter

    def broken(*args, **kwargs):
        raise NotFittedError("cannot fit the reward model yet: broken on purpose")

    monkeypatch.setattr(adapter, "fit_model", broken)
    session = open_session(tmp_path / "s.jsonl", bench)
    session.judge(session.pending.id, "a")
    session.start_fit()
    assert session.wait_for_fit(timeout=60)
    assert session.state()["fitting"] == {"running": False, "error": "cannot fit the reward model yet: broken on purpose"}
    assert session.state()["fit"] is None


# --- compare two of the top architectures ---------------------------------------------------------
def test_compare_queues_two_top_architectures_as_the_next_pair(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    session.judge(session.pending.id, "a")
    displaced = session.pending
    top = session.fit()["fit"]["top"]
    state = session.compare(top[0]["index"], top[1]["index"])
    assert (state["pair"]["a"]["index"], state["pair"]["b"]["index"]) == (top[0]["index"], top[1]["index"])
    assert state["pair"]["selector"] == "manual:compare"
    state = session.judge(state["pair"]["id"], "b")
    assert (session.pending.a, session.pending.b) == (displaced.a, displaced.b), "the displaced pair comes next"
    assert PreferenceDataset.open(session.path).comparisons[-1].selector == "manual:compare"
    with pytest.raises(AnswerLockedError, match="judged already"):
        session.compare(top[1]["index"], top[0]["index"])
    with pytest.raises(InvalidRequestError, match="not two different architectures"):
        session.compare(5, 5)
    with pytest.raises(InvalidRequestError, match="must be an architecture index"):
        session.compare("5", 6)


# --- security: the catalogue of refused requests ----------------------------------------------------
CROSS_SITE = [
    ({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, "cross-site"),
    ({"Origin": "http://evil.example"}, "origin 'http://evil.example'"),
    ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
    ({"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:9999"}, "same-site"),
    ({"Origin": "null"}, "origin 'null'"),
]


@pytest.mark.parametrize(("headers", "message"), CROSS_SITE)
@pytest.mark.parametrize(("url", "body"), [
    ("/api/judge", {"pair_id": "1", "outcome": "a"}), ("/api/skip", {"pair_id": "1"}), ("/api/undo", {}),
    ("/api/fit", {}), ("/api/compare", {"a": 1, "b": 2}), ("/api/change", {"id": "x", "outcome": "a"}),
])
def test_cross_site_requests_are_refused_and_write_nothing(tmp_path, bench, headers, message, url, body):
    session = open_session(tmp_path / "s.jsonl", bench)
    session.judge("1", "a")  # something to undo, fit or change
    client = create_app(session).test_client()
    before = files_of(session.path)
    response = post(client, url, body, headers={**headers, "Host": "127.0.0.1:8765"})
    assert response.status_code == 403 and message in response.get_json()["error"]
    assert files_of(session.path) == before
    assert session.state()["progress"]["judged"] == 1 and not session.fitting


def test_the_page_s_own_requests_pass_the_cross_site_check(web):
    session, client = web
    headers = {"Host": "127.0.0.1:8765", "Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"}
    assert post(client, "/api/judge", {"pair_id": "1", "outcome": "a"}, headers=headers).status_code == 200
    assert client.get("/api/state", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403, "no API reads either"
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200, "following a link to the page"
    assert client.get("/api/state", headers={"Sec-Fetch-Site": "none"}).status_code == 200, "typed in the address bar"


def test_the_token_is_never_taken_from_a_post_s_address(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    client = create_app(session, token="s3cret-token-0123456789abcdef01234", bind_host="0.0.0.0").test_client()
    before = files_of(session.state_path)
    response = post(client, "/api/judge?token=s3cret-token-0123456789abcdef01234", {"pair_id": "1", "outcome": "a"})
    assert response.status_code == 400 and "never put the token in a POST's address" in response.get_json()["error"]
    response = post(client, "/api/judge?token=x", {"pair_id": "1", "outcome": "a"},
                    headers={TOKEN_HEADER: "s3cret-token-0123456789abcdef01234"})
    assert response.status_code == 400, "refused even with the right token in the header"
    assert files_of(session.state_path) == before


def test_a_browser_without_the_token_gets_a_page(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    client = create_app(session, token="s3cret-token-0123456789abcdef01234", bind_host="0.0.0.0").test_client()
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 401 and page.mimetype == "text/html"
    assert b"This page needs its access token" in page.data and b"?token=" in page.data
    assert b"s3cret" not in page.data and str(tmp_path).encode() not in page.data
    assert client.get("/static/style.css").status_code == 200, "the page's stylesheet needs no token"
    assert client.get("/static/app.js").status_code == 200
    api = client.get("/api/state", headers={"Accept": "application/json"})
    assert api.status_code == 401 and "token is required" in api.get_json()["error"]


def test_the_token_is_stable_across_restarts_and_kept_0600(tmp_path, bench):
    import stat

    from preference_ui.web import session_token

    session = open_session(tmp_path / "s.jsonl", bench)
    token = session_token(session.token_path)
    assert session.token_path == tmp_path / "s.token" and len(token) >= 32
    assert stat.S_IMODE(session.token_path.stat().st_mode) == 0o600
    first = create_app(session, token=token, bind_host="0.0.0.0").test_client()
    assert first.get(f"/?token={token}").status_code == 302  # the tab gets its cookie
    # the server restarts with the same session: the old tab's cookie still works
    restarted_session = ElicitationSession.open(session.path, bench)
    again = session_token(restarted_session.token_path)
    assert again == token
    restarted = create_app(restarted_session, token=again, bind_host="0.0.0.0").test_client()
    restarted.set_cookie(TOKEN_COOKIE, token)
    assert restarted.get("/api/state").status_code == 200
    assert post(restarted, "/api/judge", {"pair_id": restarted_session.pending.id, "outcome": "a"}).status_code == 200
    # a token file others could read is narrowed to 0600
    session.token_path.chmod(0o644)
    assert session_token(session.token_path) == token and stat.S_IMODE(session.token_path.stat().st_mode) == 0o600
    other = open_session(tmp_path / "other.jsonl", bench)
    assert session_token(other.token_path) != token, "one token per session"


def test_the_script_keeps_the_session_s_token(tmp_path, monkeypatch):
    import importlib

    elicit = importlib.import_module("natsbench_gym_cli.elicit")
    path = tmp_path / "s.jsonl"
    token = elicit.token_for("0.0.0.0", path)
    assert token == elicit.token_for("0.0.0.0", path) and (tmp_path / "s.token").read_text().strip() == token
    assert elicit.token_for("127.0.0.1", path) is None


def test_temporary_files_of_an_interrupted_write_are_removed_at_start(tmp_path, bench):
    session = open_session(tmp_path / "s.jsonl", bench)
    session.judge(session.pending.id, "a")
    leftovers = [tmp_path / ".s.ui.json.0123abcd.tmp", tmp_path / ".s.ranknet.pt.89abcdef.tmp", tmp_path / ".s.token.00ff00ff.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a write")
    unrelated = tmp_path / ".other.ui.json.0123abcd.tmp"
    unrelated.write_bytes(b"another session's")
    ElicitationSession.open(session.path, bench)
    assert not any(p.exists() for p in leftovers) and unrelated.exists()


@pytest.mark.parametrize(
    ("url", "body", "status", "message"),
    [
        ("/api/change", {"id": "nope", "outcome": "a"}, 404, "no judgment has id 'nope'"),
        ("/api/change", {"id": "nope"}, 400, "missing field(s): outcome"),
        ("/api/change", {"id": 1, "outcome": "a"}, 400, "field 'id' must be a str"),
        ("/api/change", {"id": "nope", "outcome": "A"}, 400, "outcome 'A' is not one of"),
        ("/api/compare", {"a": 1}, 400, "missing field(s): b"),
        ("/api/compare", {"a": 1, "b": "2"}, 400, "field 'b' must be a int"),
        ("/api/compare", {"a": 3, "b": 3}, 400, "not two different architectures"),
        ("/api/compare", {"a": 1, "b": 99999}, 400, "not two different architectures"),
        ("/api/compare", {"a": 1, "b": 2, "c": 3}, 400, "unexpected field(s): c"),
    ],
)
def test_bad_requests_to_the_new_routes_get_a_4xx_and_write_nothing(web, url, body, status, message):
    session, client = web
    before = files_of(session.state_path)
    response = post(client, url, body)
    assert response.status_code == status and message.lower() in response.get_json()["error"].lower()
    assert files_of(session.state_path) == before


def test_a_search_session_locks_answers_the_search_has(tmp_path, bench):
    import threading
    import time

    from preference_ui import SearchJudge

    ctx = ScoringContext.create(bench, "cifar10")
    judge = SearchJudge.open(tmp_path / "s.jsonl", ctx, seed=0, timeout=30)
    session = judge.session

    def shown(a):
        deadline = time.monotonic() + 30
        while (session.pending is None or session.pending.a != a) and time.monotonic() < deadline:
            time.sleep(0.01)
        return session.pending

    answers = []
    thread = threading.Thread(target=lambda: answers.append(judge([(1, 2)])))
    thread.start()
    session.judge(shown(1).id, "a")
    thread.join(30)
    round_two = threading.Thread(target=lambda: answers.append(judge([(3, 4), (5, 6)])))
    round_two.start()
    session.judge(shown(3).id, "b")
    history = session.state()["history"]
    assert [(h["a"], h["changeable"]) for h in history] == [(1, False), (3, True)]
    with pytest.raises(AnswerLockedError, match="the search already received this answer"):
        session.change(history[0]["id"], "b")
    with pytest.raises(InvalidRequestError, match="cannot queue pairs of its own"):
        session.compare(5, 6)
    session.change(history[1]["id"], "tie")  # the open round: the search gets the new answer
    session.judge(shown(5).id, "a")
    round_two.join(30)
    assert [[c.outcome.value for c in r] for r in answers] == [["a"], ["tie", "a"]]

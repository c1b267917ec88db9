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

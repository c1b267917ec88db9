"""The main job, ``natsbench-gym search`` (natsbench_gym_cli.search): personalized search end to end
(synthetic and human judges)."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def search():
    return importlib.import_module("natsbench_gym_cli.search")


def _history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_synthetic_user_run_writes_every_output_and_is_reproducible(search, tiny_tables, tmp_path, capsys):
    argv = ["--data", str(tiny_tables), "--evaluations", "30", "--seed", "3", "--preference", "params"]
    assert search.main([*argv, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "recommended architectures" in out and "judge: synthetic:params" in out
    assert "beats" in out  # the table backend also ranks the recommendation in the whole space
    a = tmp_path / "a"
    for name in ("history.jsonl", "judgments.jsonl", "reward_model.pt", "search.png"):
        assert (a / name).is_file(), name
    assert any((a / "tensorboard").rglob("events.out.tfevents.*"))
    history = _history(a / "history.jsonl")
    assert len(history) == 30
    assert len((a / "judgments.jsonl").read_text().splitlines()) == 10
    run = json.loads((a / "run.json").read_text())
    assert run["dataset"] == "cifar10" and run["trained_on"] is None and run["seed"] == 3
    assert "dataset: cifar10  search budget" in out  # a table: NATS-Bench's own training, nothing to add
    assert search.main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert [h["index"] for h in _history(tmp_path / "b" / "history.jsonl")] == [h["index"] for h in history]


def test_live_run_names_the_data_it_trained_on(search, tmp_path, monkeypatch, capsys):
    from natsbench_gym.live import LiveConfig
    from natsbench_gym.live.benchmark import LiveBenchmark

    tiny = LiveConfig(epochs=1, channels=4, batch_size=32, input_size=8, max_train_samples=120, latency_runs=1)
    bench = LiveBenchmark("topology", tiny, cache_path=tmp_path / "live.sqlite", reference_size=2)
    monkeypatch.setattr(search.natsbench_gym, "load_benchmark", lambda space, data=None: bench)
    out = tmp_path / "live"
    argv = ["--evaluations", "8", "--population", "4", "--sample", "2", "--comparisons", "3",
            "--judged-architectures", "3", "--out", str(out)]
    assert search.main(argv) == 0
    printed = capsys.readouterr().out
    assert "dataset: cifar10 (trained here on: sklearn digits (10 classes, 8x8), 1 epochs, C=4, N=1)" in printed
    assert "trained here on sklearn digits" in printed  # the benchmark line says it too
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"] == "cifar10" and run["trained_on"].startswith("sklearn digits")


def test_human_judge_answers_the_search_s_own_pairs_on_the_page(search, tiny_tables, tmp_path, monkeypatch, capsys):
    """--human serves the search's pairs on the real page; a person answers over HTTP as the page's
    script does (the higher validation accuracy shown wins), and the search continues with them."""
    import threading
    import time
    import urllib.request
    import webbrowser

    from reward_models import PreferenceDataset

    seen = []

    def person(url: str) -> None:
        def call(path, body=None):
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as response:
                return json.loads(response.read())

        assert b"Which network do you prefer?" in urllib.request.urlopen(url, timeout=10).read()
        while len(seen) < 10:
            pair = call("/api/state")["pair"]
            if pair is None:
                time.sleep(0.02)
                continue
            acc = {s: next(m["value"] for m in pair[s]["metrics"] if m["key"] == "valid_accuracy") for s in "ab"}
            seen.append((pair["a"]["index"], pair["b"]["index"]))
            call("/api/judge", {"pair_id": pair["id"], "outcome": "a" if acc["a"] > acc["b"] else "b"})

    monkeypatch.setattr(webbrowser, "open", lambda url: threading.Thread(target=person, args=(url,), daemon=True).start())
    out = tmp_path / "human"
    argv = ["--data", str(tiny_tables), "--human", "--evaluations", "20", "--out", str(out)]
    assert search.main(argv) == 0
    printed = capsys.readouterr().out
    assert "judge the search's pairs on http://127.0.0.1:" in printed and "recommended architectures" in printed
    assert [c.indices for c in PreferenceDataset.open(out / "judgments-human.jsonl")] == seen and len(seen) == 10
    assert [c.indices for c in PreferenceDataset.open(out / "judgments.jsonl")] == seen  # this run's judgments
    assert len(_history(out / "history.jsonl")) == 20
    # the same command again: every answer is in the session, nobody is asked, the search is the same
    history = (out / "history.jsonl").read_text()
    monkeypatch.setattr(webbrowser, "open", lambda url: None)
    assert search.main(argv) == 0
    assert (out / "history.jsonl").read_text() == history and len(seen) == 10


def test_bad_arguments_give_a_clear_error(search, tiny_tables, tmp_path, caplog):
    assert search.main(["--data", str(tiny_tables), "--dataset", "cifar-10", "--out", str(tmp_path)]) == 2
    assert "did you mean 'cifar10'" in caplog.text

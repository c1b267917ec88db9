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
    assert search.main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert [h["index"] for h in _history(tmp_path / "b" / "history.jsonl")] == [h["index"] for h in history]


def test_human_judge_goes_through_the_preference_session(search, tiny_tables, tmp_path, monkeypatch, capsys):
    """--human runs the elicit job; here a stand-in answers the pairs as a person would."""
    from natsbench_gym import load_benchmark
    from preference_ui import ElicitationSession

    calls = []

    def fake_elicit_main(argv):
        calls.append(argv)
        session_path = argv[argv.index("--session") + 1]
        session = ElicitationSession.open(session_path, load_benchmark("topology", tiny_tables), "cifar10",
                                          pairs=3, seed=0)
        for _ in range(3):
            session.judge(session.pending.id, "a")
        return 0

    real_loader = importlib.util.module_from_spec

    def loader(spec):
        module = real_loader(spec)
        if spec.name == "elicit":
            spec.loader.exec_module(module)
            module.main = fake_elicit_main
            spec.loader.exec_module = lambda m: None  # keep the stand-in
        return module

    monkeypatch.setattr(importlib.util, "module_from_spec", loader)
    out = tmp_path / "human"
    assert search.main(["--data", str(tiny_tables), "--human", "--evaluations", "20", "--out", str(out)]) == 0
    assert calls and "--session" in calls[0]
    assert (out / "judgments-human.jsonl").is_file()
    assert len(_history(out / "history.jsonl")) == 20
    assert "recommended architectures" in capsys.readouterr().out


def test_bad_arguments_give_a_clear_error(search, tiny_tables, tmp_path, caplog):
    assert search.main(["--data", str(tiny_tables), "--dataset", "cifar-10", "--out", str(tmp_path)]) == 2
    assert "did you mean 'cifar10'" in caplog.text

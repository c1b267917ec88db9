"""reward_models.preferences: records, the append-only JSON Lines store, truncation, undo."""

from __future__ import annotations

import json
import logging
import os

import pytest

from reward_models import bradley_terry
from reward_models.errors import PreferenceDataError
from reward_models.preferences import ArchRef, Comparison, LoadReport, Outcome, PreferenceDataset, pair_key


def make(a: int = 0, b: int = 1, outcome: Outcome | str = Outcome.A, **kw) -> Comparison:
    return Comparison("topology", ArchRef(a, f"arch{a}"), ArchRef(b, f"arch{b}"), outcome, kw.pop("judge", "alice"), **kw)


# --- records -------------------------------------------------------------------------------------
def test_outcome_parsing_targets_and_flips():
    assert Outcome.parse("a") is Outcome.A and Outcome.parse("B") is Outcome.B and Outcome.parse("tie") is Outcome.TIE
    assert [o.target for o in Outcome] == [1.0, 0.0, 0.5]
    assert Outcome.A.flipped() is Outcome.B and Outcome.TIE.flipped() is Outcome.TIE
    with pytest.raises(PreferenceDataError, match="unknown outcome 'left'; expected one of: 'a', 'b', 'tie'"):
        Outcome.parse("left")


def test_comparison_validates_in_post_init():
    with pytest.raises(PreferenceDataError, match="two different architectures; both are index 3"):
        make(3, 3)
    with pytest.raises(PreferenceDataError, match="judge must be a non-empty str"):
        make(judge="")
    with pytest.raises(PreferenceDataError, match="timestamp must be finite"):
        make(timestamp=float("nan"))
    with pytest.raises(PreferenceDataError, match="index must be an int >= 0"):
        ArchRef(-1, "x")
    with pytest.raises(PreferenceDataError, match="arch_a must be an ArchRef"):
        Comparison("topology", (0, "x"), ArchRef(1, "y"), "a", "alice")
    with pytest.raises(Exception, match="unknown"):
        Comparison("tpology", ArchRef(0, "x"), ArchRef(1, "y"), "a", "alice")


def test_comparison_round_trips_through_its_record():
    c = make(5, 2, "b", selector="active:uncertainty", dataset="cifar100", timestamp=1.5)
    record = json.loads(json.dumps(c.to_dict()))
    assert Comparison.from_dict(record) == c
    assert c.indices == (5, 2) and c.key == (2, 5) == pair_key(5, 2)
    assert c.winner == c.arch_b
    assert make(outcome="tie").winner is None
    with pytest.raises(PreferenceDataError, match="lacks or mistypes a field"):
        Comparison.from_dict({"type": "comparison"})


def test_comparison_create_takes_names_from_the_benchmark(random_metrics_bench):
    c = Comparison.create(random_metrics_bench, 11, 284, "a", "bob", selector="random", dataset="cifar10")
    assert c.arch_a == ArchRef(11, random_metrics_bench.arch_str(11))
    assert c.arch_b.arch_str == random_metrics_bench.arch_str(284)
    assert c.space.value == "topology" and c.selector == "random" and c.dataset == "cifar10"


def test_bradley_terry_probability_is_one_function_for_numpy_and_torch():
    import numpy as np

    p = bradley_terry.preference_probability(np.array([1.0, 0.0, -800.0]), np.array([0.0, 0.0, 800.0]))
    np.testing.assert_allclose(p, [1 / (1 + np.exp(-1)), 0.5, 0.0])
    assert bradley_terry.preference_probability(2.0, 0.0, temperature=2.0) == pytest.approx(1 / (1 + np.exp(-1)))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        bradley_terry.preference_probability(1.0, 0.0, temperature=0.0)
    torch = pytest.importorskip("torch")
    s = torch.tensor([1.0], requires_grad=True)
    out = bradley_terry.preference_probability(s, torch.tensor([0.0]))
    out.sum().backward()
    assert out.item() == pytest.approx(p[0]) and s.grad is not None


# --- the store -------------------------------------------------------------------------------------
def test_append_writes_one_fsynced_line_per_judgment(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "sub" / "prefs.jsonl"
    data = PreferenceDataset.open(path)
    assert len(data) == 0 and not path.exists()
    data.append(make(0, 1))
    data.append(make(2, 3, "tie"))
    assert len(synced) == 2
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["type"] == "comparison" for line in lines)


def test_reload_gives_the_same_comparisons(tmp_path):
    path = tmp_path / "prefs.jsonl"
    data = PreferenceDataset.open(path)
    data.extend([make(0, 1), make(4, 2, "b", selector="random"), make(7, 9, "tie", dataset="cifar100")])
    again = PreferenceDataset.open(path)
    assert again.comparisons == data.comparisons
    assert again.load_report == LoadReport(records=3, comparisons=3)
    assert again.judged_pairs() == {(0, 1), (2, 4), (7, 9)}
    a, b, y = again.arrays()
    assert a.tolist() == [0, 4, 7] and b.tolist() == [1, 2, 9] and y.tolist() == [1.0, 0.0, 0.5]


def test_open_without_create_needs_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no preference file"):
        PreferenceDataset.open(tmp_path / "missing.jsonl", create=False)


def test_truncated_last_line_is_dropped_reported_and_repaired(tmp_path, caplog):
    path = tmp_path / "prefs.jsonl"
    data = PreferenceDataset.open(path)
    data.extend([make(0, 1), make(2, 3)])
    full = path.read_bytes()
    partial = json.dumps(make(4, 5).to_dict()).encode()[:37]
    path.write_bytes(full + partial)  # a crash in the middle of the third write
    with caplog.at_level(logging.WARNING, logger="reward_models.preferences"):
        again = PreferenceDataset.open(path)
    assert len(again) == 2
    assert again.load_report.truncated and again.load_report.truncated_bytes == 37
    assert "incomplete last line" in caplog.text
    assert path.read_bytes() == full + partial  # opening never modifies the file
    again.append(make(6, 7))  # the partial bytes are cut before appending
    reread = PreferenceDataset.open(path)
    assert not reread.load_report.truncated and [c.indices for c in reread] == [(0, 1), (2, 3), (6, 7)]


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(make(0, 1).to_dict()))
    data = PreferenceDataset.open(path)
    assert len(data) == 1 and not data.load_report.truncated
    data.append(make(1, 2))
    assert len(PreferenceDataset.open(path)) == 2 and path.read_text().count("\n") == 2


def test_a_corrupt_line_before_the_last_is_an_error(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(make(0, 1).to_dict()) + "\n{oops\n" + json.dumps(make(2, 3).to_dict()) + "\n")
    with pytest.raises(PreferenceDataError, match="line 2 is not a JSON record"):
        PreferenceDataset.open(path)
    path.write_text(json.dumps({"type": "vote"}) + "\n")
    with pytest.raises(PreferenceDataError, match="line 1 is not a comparison or retract record"):
        PreferenceDataset.open(path)


def test_undo_is_an_appended_retraction(tmp_path):
    path = tmp_path / "prefs.jsonl"
    data = PreferenceDataset.open(path)
    first, second = data.append(make(0, 1)), data.append(make(2, 3))
    assert data.undo(judge="alice") == second
    assert data.comparisons == (first,) and data.history == (first, second) and data.is_retracted(second.id)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["comparison", "comparison", "retract"]
    assert records[2]["id"] == second.id and records[2]["reason"] == "undo"
    again = PreferenceDataset.open(path)
    assert again.comparisons == (first,) and again.load_report.retractions == 1
    assert again.undo() == first and again.undo() is None
    assert len(PreferenceDataset.open(path)) == 0


def test_retract_errors(tmp_path):
    data = PreferenceDataset.open(tmp_path / "prefs.jsonl")
    c = data.append(make(0, 1))
    with pytest.raises(PreferenceDataError, match="no comparison has that id"):
        data.retract("nope")
    data.retract(c.id)
    with pytest.raises(PreferenceDataError, match="already retracted"):
        data.retract(c.id)


def test_one_dataset_holds_one_space_and_unique_ids():
    data = PreferenceDataset([make(0, 1)])
    other = Comparison("size", ArchRef(0, "8:8:8:8:8"), ArchRef(1, "8:8:8:8:16"), "a", "alice")
    with pytest.raises(PreferenceDataError, match="of the size space; this dataset holds topology"):
        data.append(other)
    with pytest.raises(PreferenceDataError, match="already in the dataset"):
        data.append(data[0])
    assert repr(data) == "PreferenceDataset(1 comparisons, in memory)"


def test_in_memory_datasets_write_nothing(tmp_path):
    data = PreferenceDataset([make(0, 1), make(1, 2)])
    data.undo()
    assert len(data) == 1 and data.path is None and list(tmp_path.iterdir()) == []

"""natsbench-gym reproduce-natsbench: NATS-Bench's protocol (time budget, interpolation), outputs, argument errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import natsbench_gym
from natsbench_gym import benchmarks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    from natsbench_gym_cli import reproduce_natsbench

    return reproduce_natsbench


def test_interpolation_is_nats_bench_query_performance(script):
    # the two entries closest in time to the budget, linearly
    assert script.interpolate_at([100.0, 19_000.0, 21_000.0], [1.0, 2.0, 3.0], 20_000.0) == pytest.approx(2.5)
    assert script.interpolate_at([100.0, 19_500.0, 21_000.0], [1.0, 2.0, 3.0], 20_000.0) == pytest.approx(2.0 + 1 / 3)
    # both on one side: NATS-Bench's formula extrapolates
    assert script.interpolate_at([10.0, 20.0], [1.0, 2.0], 30.0) == pytest.approx(3.0)
    assert script.interpolate_at([5.0], [7.0], 30.0) == 7.0


@pytest.mark.parametrize("algo", ["rea", "random", "reinforce"])
def test_a_search_stops_at_the_first_evaluation_reaching_the_budget(script, tiny_tables, algo):
    job = script.Job(algo, "cifar100", seed=1, time_budget=600.0, noise=False, data=str(tiny_tables))
    run = script.run_job(job)
    times = np.asarray(run["times"])
    assert run["evaluations"] == times.size > 1
    assert times[-2] < 600.0 <= times[-1]  # the one that crosses the budget counts, as in NATS-Bench's loops
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    assert np.all(np.diff(times) > 0)
    if algo == "rea":
        again = script.run_job(job)
        assert again["best"] == run["best"] and again["times"] == run["times"]  # seeded
    # best-so-far is by the search signal: 12-epoch validation accuracy
    valid = bench.query_many(None, "cifar100", 12, ["valid_accuracy"])[natsbench_gym.Metric.VALID_ACCURACY]
    assert np.all(np.diff(valid[np.asarray(run["best"])]) >= 0)


def test_a_tiny_reproduction_writes_the_table(script, tiny_tables, tmp_path, capsys):
    argv = ["--runs", "2", "--time-scale", "0.02", "--workers", "1", "--data", str(tiny_tables), "--out", str(tmp_path)]
    assert script.main(argv) == 0
    text = (tmp_path / "summary.md").read_text()
    assert text in capsys.readouterr().out
    for label in ("REA", "RANDOM", "REINFORCE"):
        assert f"| {label} |" in text
    assert "noisy search signal: no" in text and "cifar10 (20,000 s)" in text
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert len(rows) == 3 * 3 * 2
    summary = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert len(summary) == 9 and all(r["runs"] == "2" for r in summary)


def test_without_nats_bench_data_the_script_says_what_it_needs(script, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("NATSBENCH_DATA", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(benchmarks, "_LOADED", {})
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--runs", "1", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "needs NATS-Bench's 12- and 200-epoch results" in err and "Get the NATS-Bench data" in err


def test_noise_on_needs_per_seed_values(script, tiny_tables, tmp_path, capsys):
    with pytest.raises(SystemExit):
        script.main(["--runs", "1", "--noise", "on", "--data", str(tiny_tables), "--out", str(tmp_path)])
    assert "no per-seed 12-epoch validation accuracy on cifar10" in capsys.readouterr().err

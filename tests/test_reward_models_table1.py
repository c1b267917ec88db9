"""natsbench_gym_cli/reproduce_table1.py (``natsbench-gym reproduce-table1``) and benchmarks/bench_ranknet.py: outputs, argument handling, a tiny real run."""

from __future__ import annotations

import csv
import importlib

import pytest


@pytest.fixture(scope="module")
def table1():
    return importlib.import_module("natsbench_gym_cli.reproduce_table1")


def test_paper_table_is_complete_and_in_range(table1):
    assert set(table1.PAPER_TABLE1) == {"cifar10", "cifar100", "ImageNet16-120"}
    for rows in table1.PAPER_TABLE1.values():
        assert list(rows) == ["accuracy_constraint", "accuracy", "flop_constraint", "latency", "params", "weighted"]
        assert all(len(v) == len(table1.KS) and all(0 < x < 1 for x in v) for v in rows.values())
    # the summary: the paper reports 0.14-0.78 at 10 comparisons
    at10 = [v[table1.KS.index(10)] for rows in table1.PAPER_TABLE1.values() for v in rows.values()]
    assert min(at10) == 0.144 and max(at10) == 0.783


def test_summary_and_markdown(table1):
    rows = [
        {"dataset": "cifar100", "metric": "accuracy", "selector": s, "k": k, "rep": r, "precision": p, "fit_seconds": 0.1, "epochs": 5}
        for s in ("random", "active") for k in (1, 10) for r, p in enumerate((0.5, 0.7))
    ]
    summary = table1.summarise(rows)
    assert len(summary) == 4
    cell = next(r for r in summary if r["selector"] == "random" and r["k"] == 10)
    assert cell["mean"] == 0.6 and cell["n"] == 2 and cell["paper"] == 0.783
    args = table1.build_parser().parse_args(["--datasets", "cifar100", "--ks", "1,10", "--metrics", "accuracy", "--workers", "1"])
    text = table1.markdown(summary, args, "python scripts/reproduce_table1.py --x", 60.0)
    assert "| accuracy | 0.783 | 0.60 ± 0.14 | 0.60 ± 0.14 |" in text
    assert "| accuracy | paper | 0.417 | 0.783 |" in text
    assert "Command: `python scripts/reproduce_table1.py --x`" in text


def test_plot_writes_a_png(table1, tmp_path):
    summary = [{"dataset": "cifar100", "metric": m, "selector": s, "k": k, "mean": 0.5, "std": 0.1, "n": 3, "paper": ""}
               for m in ("accuracy", "latency") for s in ("random", "active") for k in (1, 2, 10)]
    assert table1.plot(summary, tmp_path / "fig3.png", "cifar100", ["random", "active"], ["accuracy", "latency"])
    assert (tmp_path / "fig3.png").stat().st_size > 1000


def test_bad_arguments_exit_with_2(table1, tmp_path):
    assert table1.main(["--reps", "0", "--out", str(tmp_path)]) == 2
    assert table1.main(["--ks", "5000", "--out", str(tmp_path)]) == 2
    assert table1.main(["--flip-probability", "0.7", "--out", str(tmp_path)]) == 2


@pytest.mark.realdata
def test_unknown_names_exit_with_2(table1, real_data, tmp_path):
    assert table1.main(["--data", str(real_data), "--metrics", "acuracy", "--out", str(tmp_path)]) == 2
    assert table1.main(["--data", str(real_data), "--datasets", "cifar-10", "--out", str(tmp_path)]) == 2


@pytest.mark.realdata
def test_a_tiny_reproduction_writes_every_output(table1, real_data, tmp_path):
    argv = ["--data", str(real_data), "--datasets", "cifar100", "--metrics", "accuracy,flop_constraint", "--reps", "2",
            "--ks", "1,3", "--workers", "1", "--out", str(tmp_path), "--log-level", "WARNING"]
    assert table1.main(argv) == 0
    runs = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert len(runs) == 2 * 2 * 2 * 2  # metrics x selectors x ks x reps
    assert {r["selector"] for r in runs} == {"random", "active"}
    assert all(0 <= float(r["precision"]) <= 1 for r in runs)
    # the prior's agreement with the judgments is recorded; when the prior is the model it met the tolerance
    assert all(0 <= float(r["prior_agreement"]) <= 1 for r in runs)
    assert all(float(r["prior_agreement"]) >= 0.9 - 1e-9 for r in runs if r["mode"] == "prior")
    summary = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert len(summary) == 8 and all(r["n"] == "2" for r in summary)
    assert "### CIFAR-100" in (tmp_path / "table1.md").read_text()
    assert (tmp_path / "fig3.png").is_file()
    again = tmp_path / "again"
    assert table1.main([*argv[:-4], "--out", str(again), "--log-level", "WARNING"]) == 0
    # the same seeds give the same precisions
    assert [r["precision"] for r in csv.DictReader(open(again / "runs.csv"))] == [r["precision"] for r in runs]


@pytest.mark.realdata
def test_careless_users_are_reproducible_and_change_the_judgments(table1, real_data, tmp_path):
    argv = ["--data", str(real_data), "--datasets", "cifar10", "--metrics", "weighted", "--reps", "3", "--ks", "25",
            "--selectors", "random", "--workers", "1", "--log-level", "WARNING"]

    def precisions(out, *extra):
        assert table1.main([*argv, *extra, "--out", str(tmp_path / out)]) == 0
        return [(r["precision"], r["mode"]) for r in csv.DictReader(open(tmp_path / out / "runs.csv"))]

    noisy = precisions("a", "--flip-probability", "0.3")
    assert precisions("b", "--flip-probability", "0.3") == noisy
    assert precisions("c") != noisy  # 30 % reversed answers must show in the fits
    assert "reverse each decided answer with probability 0.3" in (tmp_path / "a" / "table1.md").read_text()


def test_benchmark_script_runs_without_data(tmp_path, capsys, monkeypatch, load_script):
    monkeypatch.delenv("NATSBENCH_DATA", raising=False)
    bench = load_script("benchmarks/bench_ranknet.py", "bench_ranknet")
    # the made-up metrics have no phone latency: the engine comparison with a user they can express
    assert bench.main(["--comparisons", "20", "--repeats", "2", "--user", "worst_of", "--judgments", "12"]) == 0
    out = capsys.readouterr().out
    assert "fit on 20 comparisons" in out and "score space (15625 archs)" in out
    assert "12 judgments, engine numpy" in out and "12 judgments, engine torch" in out and "of 3,000 random pairs alike" in out

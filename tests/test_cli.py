"""The command line: ``natsbench-gym JOB ...`` (natsbench_gym_cli), its entry points, and the
``scripts/*.py`` shims that keep every documented ``python scripts/x.py`` command working."""

from __future__ import annotations

import configparser
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from natsbench_gym_cli import JOBS, main

ROOT = Path(__file__).resolve().parents[1]
SHIMS = {"search": "search", "elicit": "elicit", "train_agent": "train", "reproduce_table1": "reproduce_table1",
         "reproduce_figs45": "reproduce_figs45", "reproduce_natsbench": "reproduce_natsbench"}


def test_help_lists_every_job(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: natsbench-gym")
    for job in ("search", "elicit", "train", "reproduce-table1", "reproduce-figs45", "reproduce-natsbench", "convert"):
        assert re.search(rf"^\s+{job}\b", out, flags=re.M), job
    assert list(JOBS) == ["search", "elicit", "train", "reproduce-table1", "reproduce-figs45", "reproduce-natsbench", "convert"]


def test_a_bad_job_name_gets_a_close_match(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serach", "--seed", "0"])
    assert exit_.value.code == 2
    assert "unknown job 'serach'; did you mean 'search'?" in capsys.readouterr().err
    assert main([]) == 2 and "JOB" in capsys.readouterr().err


@pytest.mark.parametrize("job", list(JOBS))
def test_each_job_parses_its_own_options_under_its_own_name(job, capsys):
    module = importlib.import_module(JOBS[job].module)
    assert callable(module.main)
    with pytest.raises(SystemExit) as exit_:
        main([job, "--help"])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out.splitlines()[0]
    assert usage.startswith(f"usage: natsbench-gym {job} " if JOBS[job].takes_prog else "usage: natsbench-gym-convert ")


def test_a_job_runs_through_the_dispatcher(tiny_tables, tmp_path):
    out = tmp_path / "run"
    assert main(["search", "--data", str(tiny_tables), "--evaluations", "12", "--population", "6", "--sample", "3",
                 "--comparisons", "3", "--seed", "0", "--out", str(out)]) == 0
    assert len((out / "history.jsonl").read_text().splitlines()) == 12


def test_setup_cfg_installs_the_command_its_alias_and_the_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = dict(line.split(" = ") for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines())
    assert scripts == {"natsbench-gym": "natsbench_gym_cli:main",
                       "natsbench-gym-convert": "natsbench_gym.benchmarks.convert:main"}
    for target in scripts.values():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name))
    assert "natsbench_gym_cli" in cfg["options.packages.find"]["include"].split()
    run = re.search(r"^run:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), flags=re.M).group(1)
    assert run == "$(VENV)/bin/natsbench-gym search $(RUN_ARGS)"


@pytest.mark.parametrize("script", list(SHIMS))
def test_scripts_are_shims_of_the_jobs(script):
    """``python scripts/x.py`` runs the job's own ``main`` (the code lives in the package, not here)."""
    text = (ROOT / "scripts" / f"{script}.py").read_text()
    assert f"from natsbench_gym_cli.{SHIMS[script]} import main" in text
    assert len([line for line in text.splitlines() if line.strip()]) == 4


def test_scripts_and_module_run_as_commands():
    for cmd, usage in (([sys.executable, "scripts/reproduce_figs45.py", "--help"], "--evaluations"),
                       ([sys.executable, "-m", "natsbench_gym_cli", "--help"], "usage: python -m natsbench_gym_cli")):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
        assert usage in out, cmd


def test_the_library_never_imports_the_command_line():
    for package in ("natsbench_gym", "agents", "reward_models", "preference_ui"):
        for path in (ROOT / package).rglob("*.py"):
            assert "natsbench_gym_cli" not in path.read_text(), path

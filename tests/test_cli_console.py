"""natsbench_gym_cli.console: INFO detail to the run's log file, a progress bar and warnings on the console."""

from __future__ import annotations

import io
import logging

import gymnasium as gym
import pytest

import natsbench_gym
from agents import RandomSearch
from natsbench_gym import ENV_IDS
from natsbench_gym_cli.console import SearchProgressBar, log_to_file


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_info_goes_to_the_log_file_and_only_warnings_to_the_console(tmp_path, restore_logging):
    console = io.StringIO()
    path = log_to_file(tmp_path / "run" / "search.log", console=console)
    log = logging.getLogger("natsbench_gym.live.benchmark")
    log.info("live: trained one architecture")
    log.debug("a detail")
    log.warning("no NATS-Bench data found")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text()
    assert "INFO natsbench_gym.live.benchmark: live: trained one architecture" in text
    assert "no NATS-Bench data found" in text and "a detail" not in text
    assert console.getvalue() == "WARNING natsbench_gym.live.benchmark: no NATS-Bench data found\n"
    log_to_file(tmp_path / "again.log", verbose=True, console=console)  # a second call moves the log, never doubles it
    log.debug("a detail")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_natsbench_gym_console", False)]
    assert len(ours) == 2 and "a detail" in (tmp_path / "again.log").read_text()


def test_the_progress_bar_counts_every_evaluation(tiny_tables):
    env = gym.make(ENV_IDS["topology"], benchmark=natsbench_gym.load_benchmark("topology", tiny_tables))
    out = io.StringIO()
    bar = SearchProgressBar(total=30, file=out, mininterval=0)
    result = RandomSearch(seed=0).search(env, budget=30, callback=[bar])
    assert bar.bar is None, "closed at the end of the search"
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "architectures: 100%" in last and "30/30" in last
    assert f"best reward {max(ev.reward for ev in result.history):.4f}" in last

"""The README's Python examples run as written: on the real table, and without any data (live training).

A fresh clone has no data, so the second run is what a new user sees first: the same blocks on the
live backend (with a tiny training budget, so that it takes a minute or two instead of several; the
README's code is unchanged; it is a slow test, which ``make test`` and CI run too).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from natsbench_gym import benchmarks

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_python_blocks_are_found():
    blocks = python_blocks("a\n```python\nx = 1\n```\nb\n```bash\nls\n```\n```python\ny = x\n```\n")
    assert blocks == ["x = 1\n", "y = x\n"]


def test_readme_python_examples_run(real_data, monkeypatch, tmp_path):
    """Every block in one namespace, in order (later blocks continue earlier ones, as a reader would)."""
    monkeypatch.setenv("NATSBENCH_DATA", str(real_data))
    monkeypatch.chdir(tmp_path)  # anything an example writes stays out of the checkout
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 2
    namespace: dict = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as exc:  # the block's own error, named
            pytest.fail(f"README python block {i} raises {type(exc).__name__}: {exc}")
    # What the first example's comments promise: the stepped cell is the one queried above it.
    info = namespace["info"]
    assert info["arch"] == "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    assert namespace["result"].info["learned_metric"] is not None


@pytest.mark.slow  # ~100 tiny trainings: a minute or two on a busy 2-core machine
def test_readme_python_examples_run_without_data(monkeypatch, tmp_path):
    """No NATSBENCH_DATA, no official files under $TORCH_HOME: the README's blocks run on live training."""
    from natsbench_gym.live import LiveConfig
    from natsbench_gym.live.benchmark import LiveBenchmark

    monkeypatch.delenv("NATSBENCH_DATA", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # empty: no official files
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(benchmarks, "_LOADED", {})
    tiny = LiveConfig(epochs=1, channels=4, batch_size=64, input_size=8, max_train_samples=150, latency_runs=1)
    monkeypatch.setattr(benchmarks, "_FALLBACKS", [("live", lambda kind: LiveBenchmark(kind, tiny, reference_size=3))])
    namespace: dict = {"__name__": "readme"}
    for i, block in enumerate(python_blocks(README.read_text())):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"README python block {i} raises {type(exc).__name__} without data: {exc}")
    assert namespace["bench"].name == "live" and namespace["budget"] == 1
    info = namespace["info"]
    assert info["arch"] == "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    assert info["index"] == 11472  # the same official index as on the table
    assert info["trained_on"].startswith("sklearn digits") and info["dataset"] == "cifar100"
    assert namespace["result"].info["learned_metric"] is not None


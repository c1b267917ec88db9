"""The README's Python examples run as written (on the real table, so no live training is started)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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

"""Atomic writes (natsbench_gym.fileio): the old file or the new one, never half, no leftovers."""

from __future__ import annotations

import pytest

from natsbench_gym.fileio import atomic_path, atomic_write, remove_stale_temporaries, temporary_name


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    atomic_write(target, "old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "model.pt"
    atomic_write(target, b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the ne")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    target = tmp_path / "session.ui.json"
    atomic_write(target, b"{}")
    leftover = temporary_name(target)
    leftover.write_bytes(b"half")  # what a SIGKILL between write and rename leaves
    other = tmp_path / ".other.json.1234.tmp"
    other.write_bytes(b"not ours")
    assert leftover.name.startswith(".session.ui.json.") and leftover.name.endswith(".tmp")
    assert remove_stale_temporaries(target) == [leftover]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.1234.tmp", "session.ui.json"]


def test_module_doctest():
    import doctest

    import natsbench_gym.fileio as mod

    result = doctest.testmod(mod)
    assert result.attempted > 0 and result.failed == 0

"""Atomic file writes: a crash leaves the old file or the new one, never half of one.

Every file the project replaces (table caches, converted tables, model files, the preference
interface's state) is written through :func:`atomic_path` or :func:`atomic_write`: the new content
goes to a temporary file beside the target, named ``.<name>.<random>.tmp``, which is flushed, fsynced
and then renamed over the target (``os.replace``, atomic on POSIX and Windows); the folder is fsynced
so the rename survives a power cut. A temporary file left by a process killed mid-write is never
read as the target, and :func:`remove_stale_temporaries` deletes such leftovers when their owner
starts again.

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> atomic_write(target, b'{"ok": true}')
    >>> target.read_bytes()
    b'{"ok": true}'
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("new")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('new', ['state.json'])
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "remove_stale_temporaries", "temporary_name"]

logger = logging.getLogger(__name__)

_SUFFIX = ".tmp"


def temporary_name(path: str | os.PathLike) -> Path:
    """A fresh temporary path beside ``path``: ``.<name>.<random>.tmp`` (hidden, never the target's name)."""
    p = Path(path)
    return p.with_name(f".{p.name}.{secrets.token_hex(4)}{_SUFFIX}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success it replaces ``path``.

    For writers that take a path (``torch.save``, ``np.savez``, ``gzip.open``). On any exception the
    temporary file is removed and ``path`` is left as it was.

    Args:
        path: the file to replace (its folder must exist).
        fsync: flush the file and the folder to disk before returning (durability, not atomicity).
    """
    target = Path(path)
    tmp = temporary_name(target)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(target.parent)


def atomic_write(path: str | os.PathLike, data: bytes | str, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` (bytes, or text written as UTF-8) atomically."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(payload)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files an interrupted :func:`atomic_path` left beside ``path``; return them.

    Call it when the owner of ``path`` starts (a session opening its state file, say), never while
    another process may be writing ``path``.
    """
    target = Path(path)
    removed = []
    for tmp in target.parent.glob(f".{target.name}.*{_SUFFIX}"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError as exc:
            logger.debug("cannot remove the stale temporary file %s: %s", tmp, exc)
    if removed:
        logger.info("removed %d temporary file(s) of an interrupted write of %s", len(removed), target)
    return removed

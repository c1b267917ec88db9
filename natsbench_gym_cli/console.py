"""What a long job shows: a progress bar and its summary on the console, the INFO detail in a log file.

Library code only logs (``logging.getLogger(__name__)``); the jobs of this package decide where it
goes. :func:`log_to_file` sends every record at INFO (DEBUG with ``verbose``) to the run's log file
and only warnings and errors to the console, written through tqdm so that they do not tear a bar.
:class:`SearchProgressBar` is a :class:`~agents.base.SearchCallback` that draws one bar over a
search's evaluations, with counts, rate and time left.

Example (what ``natsbench-gym search`` needs)::

    log_to_file(out / "search.log", verbose=args.verbose)
    callbacks.append(SearchProgressBar(total=args.evaluations))
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import IO, Any

from agents.base import SearchCallback

__all__ = ["log_to_file", "SearchProgressBar", "LOG_FORMAT"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Third-party loggers that say nothing a user needs, even in the log file.
QUIET_LOGGERS = ("matplotlib", "PIL")


class _TqdmConsoleHandler(logging.StreamHandler):
    """A console handler that prints above an active tqdm bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001  (logging must never raise; report as logging does)
            self.handleError(record)


def log_to_file(path: str | Path, verbose: bool = False, console: IO[str] | None = None) -> Path:
    """Send the log to ``path`` (INFO, or DEBUG with ``verbose``) and only warnings to the console.

    Replaces the handlers an earlier call installed, so calling it again (a second job in one
    process) moves the log instead of doubling it; handlers installed by others (a test's log
    capture, an application's own) stay.

    Args:
        path: the run's log file (its folder is created; the file is appended to).
        verbose: DEBUG records too, in the file.
        console: where warnings and errors go (default ``sys.stderr``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_natsbench_gym_console", False):
            root.removeHandler(handler)
            handler.close()
    level = logging.DEBUG if verbose else logging.INFO
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setLevel(level)
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    to_console = _TqdmConsoleHandler(console if console is not None else sys.stderr)
    to_console.setLevel(logging.WARNING)
    to_console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for handler in (to_file, to_console):
        handler._natsbench_gym_console = True
        root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return path


class SearchProgressBar(SearchCallback):
    """One tqdm bar over a search's evaluations: count, rate, time left and the best reward so far.

    Args:
        total: evaluations the search will make (``None``: unknown, the bar counts without an end).
        file: where the bar is drawn (default ``sys.stderr``).
        desc: the bar's label.
        **tqdm_kwargs: passed to ``tqdm`` (``disable=True`` for none, ``mininterval`` ...).
    """

    def __init__(self, total: int | None = None, file: IO[str] | None = None, desc: str = "architectures",
                 **tqdm_kwargs: Any) -> None:
        self.total = total
        self.file = file
        self.desc = desc
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None
        self.best: float | None = None

    def on_search_start(self, agent, env) -> None:
        from tqdm import tqdm

        self.best = None
        self.bar = tqdm(total=self.total, desc=self.desc, unit="arch", file=self.file or sys.stderr,
                        dynamic_ncols=True, **self.tqdm_kwargs)

    def _on_evaluation(self, evaluation) -> bool:
        if self.bar is not None:
            if self.best is None or evaluation.reward > self.best:
                self.best = float(evaluation.reward)
                self.bar.set_postfix_str(f"best reward {self.best:.4f}", refresh=False)
            self.bar.update(1)
        return True

    def on_search_end(self, result) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

"""One logger for every agent's search: the same namespaced keys in TensorBoard, CSV or on stdout.

:class:`SearchLogger` records a search's progress into a stable-baselines3 logger
(:class:`stable_baselines3.common.logger.Logger`, which writes TensorBoard, CSV, JSON, text or stdout
as configured), under the keys of :data:`SEARCH_KEYS`. Two users, one set of keys:

* ``agents.base.TensorBoardCallback`` (every :class:`~agents.base.SearchAgent`, the SB3 ones
  included): a logger of its own, dumped after each evaluation (step = the evaluation's number);
* ``agents.sb3.NASCallback`` (an SB3 model trained with ``model.learn``): the model's own logger,
  dumped by SB3 with its rollout and training statistics (step = environment steps).

This module imports nothing heavy; :meth:`SearchLogger.configure` imports SB3's logger (and so torch)
when it is called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.base import Evaluation

__all__ = ["SearchLogger", "SEARCH_KEYS", "PREFIX"]

#: The namespace of every key.
PREFIX = "search"

#: What is logged: ``search/reward`` (mean reward of the evaluations since the last dump),
#: ``search/best_reward``, ``search/best_<metric>`` (each metric of the best architecture so far, at
#: the env's budget), ``search/evaluations`` (evaluations so far), ``search/total_train_time``
#: (simulated training seconds of the env so far) and ``search/best_arch`` (text, when the best
#: changes; TensorBoard only).
SEARCH_KEYS = (
    f"{PREFIX}/reward",
    f"{PREFIX}/best_reward",
    f"{PREFIX}/best_<metric>",
    f"{PREFIX}/evaluations",
    f"{PREFIX}/total_train_time",
    f"{PREFIX}/best_arch",
)

#: Formats that cannot show text (the best architecture goes to TensorBoard only).
_NO_TEXT = ("stdout", "log", "csv", "json")


class SearchLogger:
    """Records each evaluation of a search into an SB3 logger; keeps the best and the count.

    Args:
        logger: an SB3 ``Logger`` (e.g. ``stable_baselines3.common.logger.configure(folder, formats)``
            or a model's ``model.logger``); ``None`` logs nowhere (the best and the count are still kept).
            It may be set later (``search_logger.logger = model.logger``).

    Attributes:
        best: the best evaluation so far under the reward (the first on ties), or ``None``.
        evaluations: evaluations recorded so far.

    Example:
        >>> from agents.search_logger import SearchLogger
        >>> log = SearchLogger()  # nowhere; SearchLogger.configure("runs/re", ["tensorboard", "csv"]) writes
        >>> log.evaluations, log.best
        (0, None)
    """

    def __init__(self, logger: Any | None = None) -> None:
        self.logger = logger
        self.best: Evaluation | None = None
        self.evaluations = 0

    @classmethod
    def configure(cls, folder: str | Path, formats: Sequence[str] = ("tensorboard",)) -> SearchLogger:
        """A search logger writing ``formats`` (SB3's: ``"tensorboard"``, ``"csv"``, ``"stdout"``,
        ``"json"``, ``"log"``) into ``folder``."""
        from stable_baselines3.common.logger import configure

        return cls(configure(str(folder), list(formats)))

    def record(self, evaluation: Evaluation) -> bool:
        """Record one evaluation (written at the next :meth:`dump`); return whether it is a new best."""
        self.evaluations += 1
        improved = self.best is None or evaluation.reward > self.best.reward
        if improved:
            self.best = evaluation
        log = self.logger
        if log is None:
            return improved
        best = self.best
        log.record_mean(f"{PREFIX}/reward", evaluation.reward)
        log.record(f"{PREFIX}/best_reward", best.reward)
        for name, value in best.metrics.items():
            if not math.isnan(value):
                log.record(f"{PREFIX}/best_{name}", value)
        log.record(f"{PREFIX}/evaluations", self.evaluations)
        log.record(f"{PREFIX}/total_train_time", evaluation.total_train_time)
        if improved:
            log.record(f"{PREFIX}/best_arch", best.arch, exclude=_NO_TEXT)
        return improved

    def dump(self, step: int) -> None:
        """Write what was recorded since the last dump at ``step``."""
        if self.logger is not None:
            self.logger.dump(step)

    def close(self) -> None:
        """Flush and close the logger's outputs."""
        if self.logger is not None:
            self.logger.close()

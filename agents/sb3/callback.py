"""An SB3 callback that records every architecture a model builds and logs the search.

:class:`NASCallback` turns each finished episode's ``info`` into an :class:`~agents.base.Evaluation`
with :func:`agents.base.evaluation_from_info` (the conversion every agent uses) and logs it with a
:class:`~agents.search_logger.SearchLogger` on the model's own logger, so training a model directly
(``model.learn``) writes the same ``search/...`` keys as any agent behind
``agents.base.TensorBoardCallback``.

Example:
    >>> import gymnasium as gym, natsbench_gym
    >>> from agents.sb3 import NASCallback, make_sb3_agent
    >>> env = gym.make("NATSBench-Topology-v0", dataset="cifar10")  # doctest: +SKIP
    >>> model = make_sb3_agent("ppo", env, seed=0)  # doctest: +SKIP
    >>> callback = NASCallback()  # doctest: +SKIP
    >>> model.learn(20_000, callback=callback)  # doctest: +SKIP
    >>> callback.best.arch  # doctest: +SKIP
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
"""

from __future__ import annotations

import logging

from stable_baselines3.common.callbacks import BaseCallback

from agents.base import Evaluation, evaluation_from_info
from agents.search_logger import SearchLogger

__all__ = ["NASCallback"]

logger = logging.getLogger(__name__)


class NASCallback(BaseCallback):
    """Record every architecture the agent builds during training and log the search.

    Logged into the model's SB3 logger (TensorBoard, CSV ... as the model is configured, e.g. with
    ``tensorboard_log=``), dumped by SB3 with its own statistics: the keys of
    :data:`agents.search_logger.SEARCH_KEYS` (``search/reward``: mean since the last dump,
    ``search/best_reward``, ``search/best_<metric>`` for every metric of the best architecture so far,
    ``search/evaluations``, ``search/total_train_time``, ``search/best_arch``).

    Attributes:
        history: every evaluated architecture, in order (over every ``learn`` the callback is given to).
        best: the best one under the reward (the first on ties), or ``None``.
        search_logger: the :class:`~agents.search_logger.SearchLogger` that keeps the best and logs.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.history: list[Evaluation] = []
        self.search_logger = SearchLogger()

    @property
    def best(self) -> Evaluation | None:
        return self.search_logger.best

    def _on_training_start(self) -> None:
        self.search_logger.logger = self.logger

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if not done or "arch" not in info:
                continue
            ev = evaluation_from_info(info, len(self.history) + 1)
            self.history.append(ev)
            if self.search_logger.record(ev) and self.verbose:
                logger.info("new best %s reward %.4f after %d evaluations", ev.arch, ev.reward, len(self.history))
        return True

    def top(self, k: int = 5) -> list[Evaluation]:
        """The ``k`` best distinct architectures seen, best first."""
        seen: dict[int, Evaluation] = {}
        for ev in self.history:
            if ev.index not in seen or ev.reward > seen[ev.index].reward:
                seen[ev.index] = ev
        return sorted(seen.values(), key=lambda e: -e.reward)[:k]

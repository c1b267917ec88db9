"""stable-baselines3 on the NATS-Bench environments, in one place (imports torch through SB3).

=============================  ===========================  ==========================================
name                           module                       what it is
=============================  ===========================  ==========================================
``make_sb3_agent``             :mod:`agents.sb3.factory`    PPO / A2C / MaskablePPO tuned for NAS
``default_hyperparameters``    :mod:`agents.sb3.factory`    whole-episode rollouts, ``gamma=1``
``sample_architectures``       :mod:`agents.sb3.factory`    architectures from a trained policy
``NASCallback``                :mod:`agents.sb3.callback`   history + ``search/...`` logs of ``learn``
``SB3Agent``                   :mod:`agents.sb3.agent`      the models behind ``agent.search``
``RecordEvaluations``          :mod:`agents.sb3.agent`      the env wrapper that records episodes
=============================  ===========================  ==========================================

Every finished episode becomes an :class:`~agents.base.Evaluation` through the one
:func:`agents.base.evaluation_from_info`, and is logged by the one
:class:`agents.search_logger.SearchLogger`, as for every other agent.
"""

from __future__ import annotations

from agents.base import evaluation_from_info
from agents.sb3.agent import PrefetchingVecEnv, RecordEvaluations, SB3Agent
from agents.sb3.callback import NASCallback
from agents.sb3.factory import ALGORITHMS, default_hyperparameters, make_sb3_agent, sample_architectures

__all__ = [
    "ALGORITHMS",
    "NASCallback",
    "PrefetchingVecEnv",
    "RecordEvaluations",
    "SB3Agent",
    "default_hyperparameters",
    "evaluation_from_info",
    "make_sb3_agent",
    "sample_architectures",
]

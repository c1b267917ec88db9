"""Search agents on the NATS-Bench environments, all behind one interface: ``agent.search(env, budget)``.

========================  =====================================  ================================
name                      module                                 what it is
========================  =====================================  ================================
``make_agent``            :mod:`agents.registry`                 any agent by name (``"re"`` ...)
``RandomSearch``          :mod:`agents.random_search`            uniform sampling without repeats
``RegularizedEvolution``  :mod:`agents.evolution`                aging evolution (Real et al.)
``PersonalizedEvolution`` :mod:`agents.evolution`                the paper's Alg. 1
``LEMONADE``              :mod:`agents.lemonade`                 Pareto-front evolution, KDE parents
``MONAS``                 :mod:`agents.monas`                    LSTM controller + REINFORCE (torch)
``AsyncRegularizedEvolution`` :mod:`agents.parallel`             RE with children in flight (Ray ...)
``ParallelRandomSearch``  :mod:`agents.parallel`                 random search in concurrent batches
``SB3Agent``              :mod:`agents.sb3`                      PPO / A2C / MaskablePPO (torch)
``Personalization``       :mod:`agents.personalization`          learn the metric from preferences
``RankShaping``           :mod:`agents.shaping`                  rank rewards for MONAS / SB3
``TensorBoardCallback``   :mod:`agents.base`                     log any search (``search/...``)
``SearchLogger``          :mod:`agents.search_logger`            the one logger of every agent
``AgentConfigError`` ...  :mod:`agents.errors`                   typed errors of agent settings
========================  =====================================  ================================

Names are imported on first use (``from agents import RandomSearch`` loads only that module), so a
light agent never pays for torch: ``agents.monas`` and the ``agents.sb3`` package import it, the
others do not (``make_agent`` imports only the class it builds).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SearchAgent": "agents.base",
    "SearchBudget": "agents.base",
    "SearchResult": "agents.base",
    "Evaluation": "agents.base",
    "evaluation_from_info": "agents.base",
    "SearchCallback": "agents.base",
    "TensorBoardCallback": "agents.base",
    "SearchLogger": "agents.search_logger",
    "make_agent": "agents.registry",
    "agent_settings": "agents.registry",
    "AGENTS": "agents.registry",
    "AgentError": "agents.errors",
    "AgentConfigError": "agents.errors",
    "UnknownSettingError": "agents.errors",
    "RandomSearch": "agents.random_search",
    "RegularizedEvolution": "agents.evolution",
    "PersonalizedEvolution": "agents.evolution",
    "LEMONADE": "agents.lemonade",
    "AsyncRegularizedEvolution": "agents.parallel",
    "ParallelRandomSearch": "agents.parallel",
    "MONAS": "agents.monas",
    "MONASReward": "agents.monas",
    "SB3Agent": "agents.sb3.agent",
    "Personalization": "agents.personalization",
    "RankShaping": "agents.shaping",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

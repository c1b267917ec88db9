"""Agents by name: :func:`make_agent`, the one factory of search agents by name.

===================  =============================================  ======================================
name                 class                                          settings the name fixes
===================  =============================================  ======================================
``random``           :class:`agents.random_search.RandomSearch`
``re``               :class:`agents.evolution.RegularizedEvolution`
``re_personalized``  :class:`agents.evolution.PersonalizedEvolution`  (needs ``personalization=``)
``lemonade``         :class:`agents.lemonade.LEMONADE`
``monas``            :class:`agents.monas.MONAS`                     (torch)
``ppo``              :class:`agents.sb3.SB3Agent`                    ``algo="ppo"`` (torch)
``a2c``              :class:`agents.sb3.SB3Agent`                    ``algo="a2c"`` (torch)
``maskable_ppo``     :class:`agents.sb3.SB3Agent`                    ``algo="maskable_ppo"`` (torch)
===================  =============================================  ======================================

Two more keep several evaluations in flight on a parallel live backend (:mod:`agents.parallel`):
``re_async`` (:class:`agents.parallel.AsyncRegularizedEvolution`, batched or asynchronous) and
``random_parallel`` (:class:`agents.parallel.ParallelRandomSearch`).

Each name is the agent's ``name`` (``make_agent("re").name == "re"``). Every other setting is the
class's own keyword with the class's own default; :func:`agent_settings` lists them
(``agent_settings("re")`` -> ``{"population_size": 10, "sample_size": 5, "seed": None,
"personalization": None}``). Classes are imported on first use, so naming a light agent never
imports torch.

Example:
    >>> from agents import make_agent
    >>> make_agent("re", population_size=10, sample_size=5, seed=0).name
    're'
    >>> make_agent("evolution")
    Traceback (most recent call last):
    ...
    natsbench_gym.errors.UnknownNameError: unknown agent 'evolution'; expected one of: random, re, re_personalized, lemonade, monas, ppo, a2c, maskable_ppo, re_async, random_parallel

To add an agent: write its class (a :class:`~agents.base.SearchAgent`) and add one
:class:`AgentSpec` to :data:`AGENTS`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from agents.errors import AgentConfigError, UnknownSettingError
from natsbench_gym.errors import UnknownNameError

if TYPE_CHECKING:
    from agents.base import SearchAgent

__all__ = ["AGENTS", "AgentSpec", "REQUIRED", "agent_settings", "get_agent_spec", "make_agent"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The value :func:`agent_settings` gives a setting that has no default (it must be passed).
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class AgentSpec:
    """One registered agent.

    Args:
        name: the registry name (the agent's ``name``).
        target: ``"module:Class"``, imported on first use.
        summary: what the agent is, in a few words.
        fixed: settings the name fixes (``{"algo": "ppo"}``); passing one of them is an error.
    """

    name: str
    target: str
    summary: str
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> type[SearchAgent]:
        """The agent's class (imports its module)."""
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def settings(self) -> dict[str, Any]:
        """Each keyword setting and its default (:data:`REQUIRED` where there is none), in the class's
        order, without the fixed ones. A class that takes ``**kwargs`` (SB3's hyperparameters) checks
        those itself."""
        out = {}
        for p in inspect.signature(self.load()).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in self.fixed:
                continue
            out[p.name] = REQUIRED if p.default is p.empty else p.default
        return out

    def takes_extra_settings(self) -> bool:
        """Whether the class takes ``**kwargs`` beyond :meth:`settings` (and validates them itself)."""
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(self.load()).parameters.values())

    def make(self, **settings: Any) -> SearchAgent:
        """The agent with ``settings`` (keywords of its class; the others keep their defaults).

        Raises:
            AgentConfigError: a setting the name fixes was passed.
            UnknownSettingError: a keyword the class does not take.
        """
        clash = sorted(set(settings) & set(self.fixed))
        if clash:
            key = clash[0]
            raise AgentConfigError(
                f"agent {self.name!r} fixes {key}={self.fixed[key]!r}, got {key}={settings[key]!r}; "
                f"drop {key}= (or name the other agent: make_agent({settings[key]!r}, ...))"
            )
        known = self.settings()
        if not self.takes_extra_settings():
            for key in settings:
                if key not in known:
                    raise UnknownSettingError(self.name, key, known)
        missing = [key for key, default in known.items() if default is REQUIRED and key not in settings]
        if missing:
            raise AgentConfigError(
                f"agent {self.name!r} needs {', '.join(f'{k}=' for k in missing)}; "
                f"pass it to make_agent({self.name!r}, {missing[0]}=...)"
            )
        return self.load()(**self.fixed, **settings)


def _spec(name: str, target: str, summary: str, **fixed: Any) -> tuple[str, AgentSpec]:
    return name, AgentSpec(name, target, summary, MappingProxyType(fixed))


#: Every agent by name, in the order the docs list them.
AGENTS: Mapping[str, AgentSpec] = MappingProxyType(dict([
    _spec("random", "agents.random_search:RandomSearch", "uniform sampling without repeats"),
    _spec("re", "agents.evolution:RegularizedEvolution", "regularized (aging) evolution, Real et al."),
    _spec("re_personalized", "agents.evolution:PersonalizedEvolution", "the paper's Alg. 1"),
    _spec("lemonade", "agents.lemonade:LEMONADE", "Pareto-front evolution with KDE parents"),
    _spec("monas", "agents.monas:MONAS", "LSTM controller trained by REINFORCE"),
    _spec("ppo", "agents.sb3.agent:SB3Agent", "stable-baselines3 PPO, online", algo="ppo"),
    _spec("a2c", "agents.sb3.agent:SB3Agent", "stable-baselines3 A2C, online", algo="a2c"),
    _spec("maskable_ppo", "agents.sb3.agent:SB3Agent", "sb3-contrib MaskablePPO (constraints as masks)",
          algo="maskable_ppo"),
    _spec("re_async", "agents.parallel:AsyncRegularizedEvolution",
          "regularized evolution with several children in flight (batched or asynchronous)"),
    _spec("random_parallel", "agents.parallel:ParallelRandomSearch", "random search in concurrent batches"),
]))


def get_agent_spec(name: str) -> AgentSpec:
    """The :class:`AgentSpec` of ``name``.

    Raises:
        UnknownNameError: ``name`` is not in :data:`AGENTS` (with a close match when there is one).
    """
    spec = AGENTS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UnknownNameError("agent", name, AGENTS)
    return spec


def make_agent(name: str, **settings: Any) -> SearchAgent:
    """The search agent registered as ``name``, with ``settings`` (its class's keywords).

    Args:
        name: one of :data:`AGENTS` (``"random"``, ``"re"``, ``"lemonade"``, ``"monas"``, ``"ppo"`` ...).
        **settings: keywords of the agent's class (``seed=``, ``population_size=``,
            ``personalization=`` ...); those not given keep the class's defaults (:func:`agent_settings`).

    Raises:
        UnknownNameError: an unknown ``name``.
        UnknownSettingError: a keyword the agent does not take (a ``TypeError`` and an
            :class:`~agents.errors.AgentConfigError`).
        AgentConfigError: a setting the name fixes, a missing required one, or a bad value.
    """
    return get_agent_spec(name).make(**settings)


def agent_settings(name: str) -> dict[str, Any]:
    """The settings of the agent ``name`` with their defaults (imports its class)."""
    return get_agent_spec(name).settings()

"""Errors of :mod:`agents`, in the one hierarchy of :mod:`natsbench_gym.errors`.

Every class derives from :class:`~natsbench_gym.errors.NATSBenchGymError` (catch that to catch them
all) and from the built-in exception a caller would expect (``ValueError``, ``TypeError``,
``RuntimeError``), so code that caught the built-in before still does. Messages name the bad value,
what was expected and, where there is one, the fix. An unknown agent name raises
:class:`~natsbench_gym.errors.UnknownNameError` (with a close match).
"""

from __future__ import annotations

from collections.abc import Iterable

from natsbench_gym.errors import NATSBenchGymError, did_you_mean

__all__ = [
    "AgentError",
    "AgentConfigError",
    "UnknownSettingError",
    "SettingTypeError",
    "UnsupportedEnvError",
    "InfeasibleSearchError",
    "EpisodeError",
    "EmptyResultError",
]


class AgentError(NATSBenchGymError):
    """Base class of the errors raised on purpose by :mod:`agents`."""


class AgentConfigError(AgentError, ValueError):
    """A setting of an agent, of its budget or of its personalization is out of range or inconsistent."""


class UnknownSettingError(AgentConfigError, TypeError):
    """A keyword an agent does not take (``agents.make_agent("re", sample=5)``).

    A ``TypeError`` as Python's own unexpected-keyword error is, and an :class:`AgentConfigError`.
    """

    def __init__(self, agent: str, setting: str, known: Iterable[str]) -> None:
        known_list = sorted(str(k) for k in known)
        super().__init__(
            f"agent {agent!r} takes no setting {setting!r}{did_you_mean(setting, known_list)}; "
            f"its settings are: {', '.join(known_list)}"
        )
        self.agent = agent
        self.setting = setting
        self.known = tuple(known_list)


class SettingTypeError(AgentConfigError, TypeError):
    """A setting of the wrong type (``budget="100"``); a ``TypeError`` and an :class:`AgentConfigError`."""


class UnsupportedEnvError(AgentError, TypeError):
    """The env lacks something the agent's settings need (``training_free_metrics`` for LEMONADE's
    pre-screening, say)."""


class InfeasibleSearchError(AgentError, RuntimeError):
    """No feasible architecture could be proposed under the env's constraints."""


class EpisodeError(AgentError, RuntimeError):
    """An episode did not end as the agent expected (the env did not terminate after a full encoding)."""


class EmptyResultError(AgentError, ValueError):
    """A search result was asked for what it does not hold (the best of no evaluations, scores that do
    not match the history)."""

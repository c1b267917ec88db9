"""One small hierarchy of typed errors.

Every error names the bad value, what was expected and, where there is one, a close match,
so a user can fix the call without reading the source.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "NATSBenchGymError",
    "InvalidArchitectureError",
    "UnknownNameError",
    "MissingMetricError",
    "DataNotFoundError",
    "DataFileError",
    "InvalidActionError",
    "ResetNeededError",
    "InvalidConfigError",
    "did_you_mean",
]


class NATSBenchGymError(Exception):
    """Base class of every error raised on purpose by natsbench-gym."""


class InvalidArchitectureError(NATSBenchGymError, ValueError):
    """An architecture string, encoding or index is not a member of the search space."""


class UnknownNameError(NATSBenchGymError, ValueError):
    """A name (dataset, metric, device, op, space, algorithm ...) is not one of the known names."""

    def __init__(self, kind: str, value: object, known: Iterable[object]) -> None:
        known_list = [str(k) for k in known]
        hint = did_you_mean(str(value), known_list)
        super().__init__(
            f"unknown {kind} {value!r}{hint}; expected one of: {', '.join(known_list)}"
        )
        self.kind = kind
        self.value = value
        self.known = tuple(known_list)


class MissingMetricError(NATSBenchGymError, KeyError):
    """A backend was asked for a metric its data does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataNotFoundError(NATSBenchGymError, FileNotFoundError):
    """No benchmark data could be found where it was looked for."""


class DataFileError(NATSBenchGymError, ValueError):
    """A benchmark data file exists but cannot be used: not gzip, truncated, corrupt, or not in the schema.

    The message names the file, what is wrong with it and how to get a good copy.

    Attributes:
        path: the file.
    """

    def __init__(self, path: object, problem: str, fix: str | None = None) -> None:
        self.path = path
        self.problem = problem
        fix = fix or (
            "re-download the official NATS-Bench files and convert them again (natsbench-gym-convert "
            "OFFICIAL_DIR OUT_DIR; see the README's \"Get the NATS-Bench data\"), or restore the file; "
            "the columns are described in docs/data.md"
        )
        super().__init__(f"{path}: {problem}; {fix}")


class InvalidActionError(NATSBenchGymError, ValueError):
    """An environment got an action outside its action space or forbidden by its mask."""


class ResetNeededError(NATSBenchGymError, RuntimeError):
    """``step`` was called on a finished episode without ``reset``."""


class InvalidConfigError(NATSBenchGymError, ValueError, TypeError):
    """A setting has the wrong type or an invalid value (an env argument, a fallback entry point ...).

    Both a ``ValueError`` (a bad value) and a ``TypeError`` (a bad type, an unknown keyword), so code
    that catches the one Python raises for such arguments keeps working.
    """


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest known name, or ``""``."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    if value.lower() in lowered:
        return f"; did you mean {lowered[value.lower()]!r}?"
    match = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
    if not match:
        match = [
            lowered[m] for m in difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.6)
        ]
    return f"; did you mean {match[0]!r}?" if match else ""

"""Errors of the preference interface, in the project's one hierarchy.

Each names the bad value and what to do instead; the web app turns each into one HTTP status
(:attr:`ElicitationError.status`) and the terminal UI into a notification.
"""

from __future__ import annotations

from natsbench_gym.errors import NATSBenchGymError

__all__ = [
    "ElicitationError",
    "InvalidRequestError",
    "UnknownPairError",
    "StalePairError",
    "NothingToUndoError",
    "NotFittedError",
    "SessionMismatchError",
    "JudgingStoppedError",
    "AnswerLockedError",
    "EvidenceUnavailableError",
]


class ElicitationError(NATSBenchGymError):
    """Base class of the preference interface's errors; ``status`` is the HTTP status it maps to."""

    status = 400


class InvalidRequestError(ElicitationError, ValueError):
    """A judgment or request is malformed: a bad outcome, a missing or unexpected field."""

    status = 400


class UnknownPairError(ElicitationError, LookupError):
    """A pair id this session never showed."""

    status = 404


class StalePairError(ElicitationError):
    """A pair id that was shown but is no longer the pending pair (answered, skipped or undone)."""

    status = 409


class NothingToUndoError(ElicitationError):
    """Undo with no judgment or skip left to take back."""

    status = 409


class NotFittedError(ElicitationError):
    """The reward model was asked for (top-k, export) before it was fitted, or cannot be fitted yet."""

    status = 409


class SessionMismatchError(ElicitationError):
    """A session file was resumed with a different space, dataset, budget or device than it was made with."""

    status = 409


class JudgingStoppedError(ElicitationError):
    """The person stopped judging (closed the terminal UI, stopped the server) while a search
    waited for the answers of a round; the judgments made so far are in the session file, and a
    search restarted with the same seed and session replays them."""

    status = 409

    @classmethod
    def of_session(cls, reason: str, path: object) -> JudgingStoppedError:
        """The error for a session at ``path`` stopped for ``reason``, saying how to resume."""
        return cls(f"{reason}; the judgments so far are saved in {path}, and a search restarted with the same seed and session replays them")


class AnswerLockedError(ElicitationError):
    """An answer that cannot be changed any more: a search already received it (change answers of
    the round on screen only), or the request names a comparison that was changed or undone since."""

    status = 409


class EvidenceUnavailableError(ElicitationError):
    """The evidence panel (predictions, per-class accuracy, Grad-CAM) cannot be had here: an extra is
    not installed, or the networks' training data cannot be used."""

    status = 503

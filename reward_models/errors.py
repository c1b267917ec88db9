"""Errors of :mod:`reward_models`, in the one hierarchy of :mod:`natsbench_gym.errors`.

Every class derives from :class:`~natsbench_gym.errors.NATSBenchGymError` (catch that to catch them
all) and from the built-in exception a caller would expect (``ValueError``, ``RuntimeError``).
"""

from __future__ import annotations

from natsbench_gym.errors import NATSBenchGymError

__all__ = ["PreferenceDataError", "PairSelectionError", "NotFittedError", "ModelFileError"]


class PreferenceDataError(NATSBenchGymError, ValueError):
    """A comparison record or a preference file is malformed or inconsistent."""


class PairSelectionError(NATSBenchGymError, ValueError):
    """A pair selector was asked for pairs it cannot produce (too few architectures, say)."""


class NotFittedError(NATSBenchGymError, RuntimeError):
    """A learned reward model was used before :meth:`fit` (or :meth:`load`)."""


class ModelFileError(NATSBenchGymError, ValueError):
    """A saved reward-model file cannot be read (not a model file, or from an incompatible version)."""

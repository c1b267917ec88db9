"""Which latency device a person's judgments follow: a model that reads several devices' latency.

A person who deploys to a phone judges a network's latency *on the phone*; the env reports one
device's latency (its ``device``, by default an NVIDIA 1080 Ti at batch size 1). When the person
cannot or does not state the device, :class:`DeviceChoiceModel` reads the latency of several
devices and learns from the judgments which one they follow:

1. for each candidate device ``d``, the metric family's posterior
   (:class:`~reward_models.posterior.MetricFamilyPosterior`) is fitted with ``d``'s latency as its
   latency feature, and its marginal likelihood ``Z_d`` (the evidence) is kept: the family is the
   same for every device, so ``Z_d`` compares the devices alone (a uniform prior over them);
2. the model switches from the env's device to the device of the largest evidence only when that
   device explains the judgments at least ``margin`` times better (Bayes factor, default 3): a
   person whose judgments do not tell devices apart (latency plays no part, or devices agree)
   gets exactly the model they would get without the choice;
3. the wrapped model (by default the interactive RankNet with its metric-family prior) is fitted
   with the chosen device's latency, and scores architectures with it.

Every consumer reads it as any reward model: ``score_many(metrics, context)`` with the chosen
device's latency under :class:`~natsbench_gym.types.DeviceLatency` (``"latency@pixel3"``), which
``required_metrics`` names, so that an env scoring with it reports that latency and
``context.query(archs, model.required_metrics(context))`` looks it up.

Example:
    >>> from reward_models import DeviceChoiceModel  # doctest: +SKIP
    >>> model = DeviceChoiceModel(devices="all").fit(comparisons, env.unwrapped.context)  # doctest: +SKIP
    >>> model.device, model.device_posterior["pixel3"]  # doctest: +SKIP
    ('pixel3', 0.41)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from natsbench_gym.errors import InvalidConfigError, MissingMetricError
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import DeviceLatency, Metric, parse_devices
from reward_models.errors import NotFittedError, PreferenceDataError
from reward_models.preferences import Comparison, PreferenceDataset

__all__ = ["DeviceChoiceModel", "resolve_devices"]

logger = logging.getLogger(__name__)


def resolve_devices(devices: Sequence[str] | str, context: ScoringContext) -> tuple[str, ...]:
    """The candidate devices: the context's device first, then ``devices`` (``"all"``: every device
    the benchmark has; a comma-separated string is split), each checked against the benchmark.

    Raises:
        UnknownNameError: a device the benchmark has no latency for (with the devices it has).
        MissingMetricError: the context has no latency device at all.
    """
    if context.device is None:
        raise MissingMetricError(
            f"the {context.benchmark.name} benchmark has no latency here, so there is no device to choose"
        )
    devices = parse_devices(devices)
    if devices == "all":
        devices = context.benchmark.latency_devices
    out = [context.device] + [context.benchmark.check_device(d) for d in devices]
    return tuple(dict.fromkeys(out))


_NORMALISERS: dict[tuple, Any] = {}


def _normaliser(context: ScoringContext, metrics: Sequence[Metric]) -> Any:
    """The metric family's feature normaliser for ``context`` (space-wide statistics: looked up once
    per benchmark, dataset, budget and device)."""
    from reward_models.features import FeatureNormaliser

    key = (id(context.benchmark), context.dataset, context.budget, context.device, tuple(metrics))
    hit = _NORMALISERS.get(key)
    if hit is None or hit[0] is not context.benchmark:
        if len(_NORMALISERS) > 256:
            _NORMALISERS.clear()
        hit = _NORMALISERS[key] = (context.benchmark, FeatureNormaliser.from_context(metrics, context, "both", 2048))
    return hit[1]


class DeviceChoiceModel:
    """A preference model that reads the latency of several devices and learns which one the judge follows.

    Args:
        make_model: builds the unfitted model to fit with the chosen device's latency (default: a
            :class:`~reward_models.ranknet.RankNetRewardModel` with its default settings); it needs
            ``fit(comparisons, context)`` and ``score_many(metrics, context)``.
        devices: the candidate devices besides the context's own (``"all"``: every device of the
            benchmark, 27 on the NATS-Bench table), by name as in
            :data:`natsbench_gym.types.LATENCY_DEVICES`.
        margin: the Bayes factor another device needs over the context's device to be chosen.

    Attributes (after :meth:`fit`):
        device: the device whose latency the model reads.
        device_posterior: ``{device: probability}`` that the judgments follow each device's latency
            (the metric family's evidence under a uniform prior over the candidates).
        model: the fitted wrapped model.
        context: the scoring context with the chosen device.
    """

    name = "device-choice"
    precomputable = False

    def __init__(self, make_model: Callable[[], Any] | None = None, devices: Sequence[str] | str = "all", *, margin: float = 3.0) -> None:
        if make_model is not None and not callable(make_model):
            raise InvalidConfigError(f"make_model must build an unfitted model (a callable), got {make_model!r}")
        devices = parse_devices(devices)
        if not (isinstance(margin, (int, float)) and margin >= 1.0):
            raise InvalidConfigError(f"margin must be a Bayes factor >= 1 (1: the best evidence wins), got {margin!r}")
        self.make_model = make_model
        self.devices = devices
        self.margin = float(margin)
        self.device: str | None = None
        self.base_device: str | None = None
        self.device_posterior: dict[str, float] = {}
        self.log_evidence: dict[str, float] = {}
        self.model: Any = None
        self.context: ScoringContext | None = None

    @property
    def is_fitted(self) -> bool:
        return self.model is not None

    def fit(self, comparisons: PreferenceDataset | Iterable[Comparison], context: ScoringContext) -> DeviceChoiceModel:
        """Choose the device by the metric family's evidence, then fit the wrapped model with its latency."""
        cs = comparisons.comparisons if isinstance(comparisons, PreferenceDataset) else tuple(comparisons)
        if not cs:
            raise PreferenceDataError("the device choice needs at least one comparison to fit")
        candidates = resolve_devices(self.devices, context)
        log_z = self._log_evidence(cs, context, candidates)
        z = np.array(list(log_z.values()))
        p = np.exp(z - z.max())
        p /= p.sum()
        best = max(log_z, key=lambda d: (log_z[d], d == context.device))
        chosen = best if log_z[best] - log_z[context.device] >= math.log(self.margin) else context.device
        self.base_device = context.device
        self.device = chosen
        self.log_evidence = log_z
        self.device_posterior = dict(zip(log_z, p.tolist(), strict=True))
        self.context = context.with_device(chosen)
        model = self.make_model() if self.make_model is not None else None
        if model is None:
            from reward_models.ranknet import RankNetRewardModel

            model = RankNetRewardModel()
        self.model = model.fit(list(cs), self.context)
        logger.debug("device choice: %s (posterior %.2f; %s's %.2f)", chosen, self.device_posterior[chosen],
                     context.device, self.device_posterior[context.device])
        return self

    @staticmethod
    def _log_evidence(cs: Sequence[Comparison], context: ScoringContext, devices: Sequence[str]) -> dict[str, float]:
        """``{device: log Z}``: the metric family's log marginal likelihood of the judgments with each
        device's latency as the latency feature (the same hypotheses and prior for every device)."""
        from reward_models.features import resolve_features
        from reward_models.posterior import MetricFamilyPosterior

        metrics = resolve_features(None, context)
        a = np.array([c.arch_a.index for c in cs], dtype=np.int64)
        b = np.array([c.arch_b.index for c in cs], dtype=np.int64)
        y = np.array([c.outcome.target for c in cs], dtype=np.float64)
        archs, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        keys = [DeviceLatency(d) for d in devices]
        values = context.query(archs, [m for m in metrics if m is not Metric.LATENCY] + keys)
        posterior = MetricFamilyPosterior()  # the paper's family: one hypothesis set for every device
        out = {}
        for d, key in zip(devices, keys, strict=True):
            normaliser = _normaliser(context.with_device(d), metrics)
            x = normaliser.transform({**values, Metric.LATENCY: values[key]})
            if np.isnan(x).any():
                raise MissingMetricError(f"a judged architecture has no latency on {d}")
            out[d] = posterior.log_evidence(x[inverse[: a.size]], x[inverse[a.size :]], y)
        return out

    # --- scoring -----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.model is None:
            raise NotFittedError("this device-choice model is not fitted: call fit(comparisons, context)")

    @property
    def switched(self) -> bool:
        """Whether the model reads another device than the context's."""
        return self.device is not None and self.device != self.base_device

    def _remap(self, metrics: Mapping[Any, np.ndarray]) -> Mapping[Any, np.ndarray]:
        """``metrics`` with the chosen device's latency as :attr:`Metric.LATENCY`."""
        self._check_fitted()
        if not self.switched:
            return metrics
        key = DeviceLatency(self.device)
        if key not in metrics:
            raise MissingMetricError(
                f"this model reads the latency on {self.device} ({key.value}), which the metrics given lack; "
                f"make the env with latency_devices=[{self.device!r}] (or 'all'), or look the metrics up with "
                "context.query(archs, model.required_metrics(context))"
            )
        return {**metrics, Metric.LATENCY: metrics[key]}

    def required_metrics(self, context: ScoringContext | None = None) -> tuple[Any, ...]:
        self._check_fitted()
        inner = tuple(self.model.required_metrics(self.context))
        return inner + ((DeviceLatency(self.device),) if self.switched else ())

    def score_many(self, metrics: Mapping[Any, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        remapped = self._remap(metrics)
        return self.model.score_many(remapped, self.context)

    def member_scores(self, metrics: Mapping[Any, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        remapped = self._remap(metrics)
        if hasattr(self.model, "member_scores"):
            return self.model.member_scores(remapped, self.context)
        return np.atleast_2d(self.model.score_many(remapped, self.context))

    def loss_many(self, metrics: Mapping[Any, np.ndarray], context: ScoringContext | None = None) -> np.ndarray:
        return -np.asarray(self.score_many(metrics, context), dtype=np.float64)

    def score(self, metrics: Mapping[Any, float], context: ScoringContext | None = None) -> float:
        arrays = {m: np.array([v], dtype=np.float64) for m, v in metrics.items()}
        return float(self.score_many(arrays, context)[0])

    def __getattr__(self, name: str) -> Any:
        # the wrapped model's other attributes (mode, posterior, population_share, ...)
        # (not save/load: a saved wrapped model would read the env's latency, not the chosen device's)
        if name.startswith("__") or name in ("model", "make_model", "save", "load"):
            raise AttributeError(name)
        model = self.__dict__.get("model")
        if model is None:
            raise AttributeError(name)
        return getattr(model, name)

    def __repr__(self) -> str:
        if self.model is None:
            return f"DeviceChoiceModel(devices={self.devices!r}, not fitted)"
        return f"DeviceChoiceModel(device={self.device!r}, p={self.device_posterior[self.device]:.2f}, model={self.model!r})"

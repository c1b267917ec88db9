"""The arguments both NATS-Bench environments share, as one frozen, validated config.

``gym.make("NATSBench-Topology-v0", dataset="cifar100", max_params=0.5)`` passes these arguments by
keyword; ``config=EnvConfig(...)`` passes them at once (keywords given beside a config replace its
fields). A space's env declares only its own arguments (``forbidden_ops``, ``allowed_widths``).

What can be checked without the benchmark is checked here, at construction: types, names (dataset,
accuracy metric, fixed-metric name, render mode) and numbers; what depends on the benchmark (is
this budget, device or metric in its data?) is checked when the env is made.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from natsbench_gym.benchmarks.base import Benchmark
from natsbench_gym.errors import InvalidConfigError, did_you_mean
from natsbench_gym.rewards import RewardModel, as_reward_model
from natsbench_gym.types import Dataset, Metric, parse_devices

__all__ = ["EnvConfig", "RewardModelLike", "RENDER_MODES", "UnsupportedRenderModeError"]

#: What ``reward_model=`` accepts: a fixed-metric name, a reward model, or ``f({Metric: value}) -> float``.
RewardModelLike = str | RewardModel | Callable[[Mapping[Metric, float]], float] | None

#: The render modes of the environments: they draw text.
RENDER_MODES: tuple[str, ...] = ("ansi", "human")

_ACCURACIES = tuple(m for m in Metric if m.higher_is_better)


class UnsupportedRenderModeError(InvalidConfigError):
    """A render mode the environments do not have (they draw text: ``"ansi"`` and ``"human"``).

    A ``TypeError`` too (as every :class:`~natsbench_gym.errors.InvalidConfigError`) because SB3's
    ``make_vec_env`` asks for ``render_mode="rgb_array"`` and retries without it on ``TypeError`` only.
    """


@dataclass(frozen=True)
class EnvConfig:
    """The arguments every NATS-Bench environment takes; the documentation of each.

    Every field is also a keyword of ``gym.make`` and of the env classes. Values are normalised on
    construction (names become enums, numbers floats), so two configs that mean the same compare equal.

    Attributes:
        dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"`` (stored as a
            :class:`~natsbench_gym.types.Dataset`).
        reward_model: what scores a finished architecture (higher is better): a fixed-metric name of
            :mod:`natsbench_gym.rewards` (``"accuracy"``, ``"latency"``, ``"params"``, ``"flops"``,
            ``"weighted"``, ``"flop_constraint"``, ``"accuracy_constraint"``), a reward model (an object
            with ``score_many(metrics, context)``, e.g. a trained RankNet), or a function of one
            architecture's ``{Metric: value}``. Kept as given; the env holds
            ``as_reward_model(reward_model)``.
        benchmark: a :class:`~natsbench_gym.benchmarks.Benchmark`, a data path, or ``None`` for
            :func:`~natsbench_gym.benchmarks.load_benchmark`'s default (``$NATSBENCH_DATA``, official
            files under ``$TORCH_HOME``, else live training).
        budget: training epochs of the metrics; ``None``: the benchmark's first (topology: 12, as
            NATS-Bench searches, or 200; size: 90; live: its configured epochs).
        noise: score one randomly drawn seed's accuracy instead of the seed mean (NATS-Bench's
            ``is_random``), drawn with ``env.np_random``; needs per-seed data (the project's table:
            CIFAR-10 at 200 epochs), else ``MissingMetricError``. Other metrics stay means.
        device: the latency device (e.g. ``"1080ti_1"``, ``"pixel3"``) of the latency metric, reward
            and cap; ``None``: the benchmark's default device.
        latency_devices: more latency devices to report, each as ``info["metrics"]["latency@<device>"]``
            (the reward and caps still read ``device``): a sequence of device names, or ``"all"``
            (every device the benchmark has). A reward model that reads several devices (its
            ``latency_devices`` attribute, e.g. ``reward_models.DeviceChoiceModel``) adds its own.
        accuracy_metric: the accuracy the rewards read (default ``"valid_accuracy"``; test accuracy is
            for reporting, as NATS-Bench's authors advise).
        max_params: cap on the parameters (millions); ``None``: no cap.
        max_flops: cap on the FLOPs (millions); ``None``: no cap.
        max_latency: cap on the latency (ms) on ``device``; ``None``: no cap.
        render_mode: ``"ansi"`` (``render()`` returns the architecture as text), ``"human"`` (prints
            it at each step) or ``None``.
        precompute: look every metric of the space up once, at construction, and score the space with
            the reward model then; ``None`` (default): when the benchmark declares
            ``capabilities.whole_space`` (a table), scoring ahead only a reward model that declares
            itself ``precomputable`` (the built-in metrics), so a model that keeps learning is asked
            afresh at each evaluation.

    Raises:
        InvalidConfigError: a value of the wrong type (``max_params="half"``) or out of range (a
            ``nan`` cap, an accuracy metric that is not an accuracy).
        UnknownNameError: an unknown dataset, metric or fixed-metric name (with a close match).
        UnsupportedRenderModeError: a render mode other than ``"ansi"``, ``"human"`` or ``None``.

    Example:
        >>> from natsbench_gym.envs import EnvConfig
        >>> config = EnvConfig(dataset="cifar100", max_params=1)
        >>> config.dataset, config.max_params
        (<Dataset.CIFAR100: 'cifar100'>, 1.0)
        >>> EnvConfig.from_options(config, budget=200).budget
        200
        >>> EnvConfig(max_flops="lots")
        Traceback (most recent call last):
        ...
        natsbench_gym.errors.InvalidConfigError: max_flops must be a number (MFLOPs) or None, got 'lots' (str)
    """

    dataset: Dataset | str = Dataset.CIFAR10
    reward_model: RewardModelLike = "accuracy"
    benchmark: Benchmark | str | os.PathLike | None = None
    budget: int | None = None
    noise: bool = False
    device: str | None = None
    latency_devices: Sequence[str] | str = ()
    accuracy_metric: Metric | str = Metric.VALID_ACCURACY
    max_params: float | None = None
    max_flops: float | None = None
    max_latency: float | None = None
    render_mode: str | None = None
    precompute: bool | None = None

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: normalise the fields in place, once
        set_field(self, "dataset", Dataset.parse(self.dataset))
        accuracy = Metric.parse(self.accuracy_metric)
        if accuracy not in _ACCURACIES:
            raise InvalidConfigError(
                f"accuracy_metric must be an accuracy ({', '.join(m.value for m in _ACCURACIES)}), got {accuracy.value!r}"
            )
        set_field(self, "accuracy_metric", accuracy)
        as_reward_model(self.reward_model)  # a bad name or type fails here, not at the first step
        if self.benchmark is not None and not isinstance(self.benchmark, (Benchmark, str, os.PathLike)):
            raise InvalidConfigError(
                f"benchmark must be a Benchmark, a data path or None, got {_shown(self.benchmark)}"
            )
        set_field(self, "budget", _budget(self.budget))
        for name in ("noise", "precompute"):
            value = getattr(self, name)
            if not (isinstance(value, (bool, np.bool_)) or (value is None and name == "precompute")):
                allowed = "True or False" if name == "noise" else "True, False or None"
                raise InvalidConfigError(f"{name} must be {allowed}, got {_shown(value)}")
            set_field(self, name, None if value is None else bool(value))
        if self.device is not None and not isinstance(self.device, str):
            raise InvalidConfigError(f"device must be a latency device name (e.g. '1080ti_1') or None, got {_shown(self.device)}")
        set_field(self, "latency_devices", parse_devices(self.latency_devices, "latency_devices"))
        for name, unit in (("max_params", "millions"), ("max_flops", "MFLOPs"), ("max_latency", "ms")):
            set_field(self, name, _cap(name, unit, getattr(self, name)))
        if self.render_mode is not None and self.render_mode not in RENDER_MODES:
            raise UnsupportedRenderModeError(
                f"render_mode {self.render_mode!r} is not supported; use one of {list(RENDER_MODES)} or None"
            )

    @classmethod
    def from_options(
        cls, config: EnvConfig | None = None, /, *, owner: str = "the environment", own: Iterable[str] = (), **options: Any
    ) -> EnvConfig:
        """``config`` (default: every default) with the fields named in ``options`` replaced.

        Args:
            config: the base config.
            owner: who takes the options, for the error message (e.g. ``"NATSBenchSizeEnv"``).
            own: the owner's own argument names, listed beside the fields in the error message.
            **options: fields of :class:`EnvConfig` and their values.

        Raises:
            InvalidConfigError: ``config`` is not an :class:`EnvConfig` (a positional argument meant
                as a keyword, say), or an option is not a field (with a close match).
        """
        if config is not None and not isinstance(config, EnvConfig):
            hint = f" (did you mean dataset={config!r}?)" if isinstance(config, str) else ""
            raise InvalidConfigError(
                f"{owner} takes its arguments by keyword, or an EnvConfig as config=; got {_shown(config)}{hint}"
            )
        fields = [f.name for f in dataclasses.fields(cls)]
        for name in options:
            if name not in fields:
                known = [*own, *fields, "config"]
                raise InvalidConfigError(
                    f"{owner} got an unknown argument {name!r}{did_you_mean(name, known)}; expected one of: {', '.join(known)}"
                )
        if config is None:
            return cls(**options)
        return dataclasses.replace(config, **options) if options else config


def _shown(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def _budget(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise InvalidConfigError(
        f"budget must be a whole number of training epochs (e.g. 12 or 200) or None, got {_shown(value)}"
    )


def _cap(name: str, unit: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidConfigError(f"{name} must be a number ({unit}) or None, got {_shown(value)}")
    cap = float(value)
    if math.isnan(cap):
        raise InvalidConfigError(f"{name} is nan; give a number ({unit}) or None for no cap")
    return cap

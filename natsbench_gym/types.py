"""Names used everywhere: datasets, metrics, search-space kinds and space-wide statistics.

Enums rather than strings, so that a typo fails loudly (``Metric.parse("valid-acc")`` raises an
:class:`~natsbench_gym.errors.UnknownNameError` with a close match) instead of silently
querying nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from natsbench_gym.errors import InvalidConfigError, UnknownNameError

__all__ = [
    "Dataset", "Metric", "SpaceKind", "MetricStats", "DeviceLatency", "parse_metric_key", "parse_devices",
    "DEFAULT_LATENCY_DEVICE", "LATENCY_DEVICES",
]

#: Latency device used when none is given: an NVIDIA GTX 1080 Ti at batch size 1 (HW-NAS-Bench /
#: HELP measurements, CIFAR-10 input), the GPU NATS-Bench itself was built on.
DEFAULT_LATENCY_DEVICE = "1080ti_1"

#: The 27 latency devices of the NATS-Bench tables (HW-NAS-Bench / HELP measurements): GPUs at batch
#: sizes 1, 32 and 256, server CPUs, phones (Pixel 2/3, Essential PH-1, Samsung A50/S7), a Raspberry
#: Pi 4, an FPGA and the Eyeriss accelerator. A backend lists those it has in ``latency_devices``.
LATENCY_DEVICES: tuple[str, ...] = (
    "1080ti_1", "1080ti_32", "1080ti_256", "2080ti_1", "2080ti_32", "2080ti_256",
    "titan_rtx_1", "titan_rtx_32", "titan_rtx_256", "titanx_1", "titanx_32", "titanx_256",
    "titanxp_1", "titanxp_32", "titanxp_256", "gold_6226", "gold_6240", "silver_4114", "silver_4210r",
    "pixel2", "pixel3", "essential_ph_1", "samsung_a50", "samsung_s7", "raspi4", "fpga", "eyeriss",
)


class _ParseEnum(enum.Enum):
    @classmethod
    def parse(cls, value: object):
        """Return the member for ``value`` (a member, its value or its name); raise a helpful error."""
        if isinstance(value, cls):
            return value
        for member in cls:
            if value == member.value or (isinstance(value, str) and value.upper() == member.name):
                return member
        raise UnknownNameError(cls._kind(), value, [m.value for m in cls])

    @classmethod
    def _kind(cls) -> str:
        return cls.__name__.lower()

    def __str__(self) -> str:
        return str(self.value)


class Dataset(_ParseEnum):
    """The three NATS-Bench image-classification datasets.

    For CIFAR-10, NATS-Bench keeps two training runs: ``cifar10-valid`` (trained on the train half,
    validated on the held-out half, the run to *search* on) and ``cifar10`` (trained on train+valid,
    tested on the test set, the run to *report*). natsbench-gym merges them under ``CIFAR10``:
    validation accuracy and training time come from ``cifar10-valid``, test and train accuracy from
    ``cifar10``, exactly as NATS-Bench's authors recommend.
    """

    CIFAR10 = "cifar10"
    CIFAR100 = "cifar100"
    IMAGENET16_120 = "ImageNet16-120"

    @property
    def num_classes(self) -> int:
        return {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}[self.value]

    @property
    def image_size(self) -> int:
        """Side of the square input images NATS-Bench trains on."""
        return 16 if self is Dataset.IMAGENET16_120 else 32


class Metric(_ParseEnum):
    """Metrics a benchmark may report for one architecture.

    Accuracies are percentages (0-100); FLOPs in millions; params in millions (NATS-Bench calls the
    unit "MB"); latency in milliseconds on a device; training time in seconds of simulated GPU time.
    """

    TEST_ACCURACY = "test_accuracy"
    VALID_ACCURACY = "valid_accuracy"
    TRAIN_ACCURACY = "train_accuracy"
    FLOPS = "flops"
    PARAMS = "params"
    LATENCY = "latency"
    TRAIN_TIME = "train_time"

    @property
    def higher_is_better(self) -> bool:
        return self in (Metric.TEST_ACCURACY, Metric.VALID_ACCURACY, Metric.TRAIN_ACCURACY)

    @property
    def unit(self) -> str:
        return _UNITS[self]

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


_UNITS = {
    Metric.TEST_ACCURACY: "%",
    Metric.VALID_ACCURACY: "%",
    Metric.TRAIN_ACCURACY: "%",
    Metric.FLOPS: "MFLOPs",
    Metric.PARAMS: "M params",
    Metric.LATENCY: "ms",
    Metric.TRAIN_TIME: "s",
}


class SpaceKind(_ParseEnum):
    """The two NATS-Bench search spaces (``tss`` and ``sss`` in NATS-Bench's own words)."""

    TOPOLOGY = "topology"
    SIZE = "size"

    @classmethod
    def parse(cls, value: object) -> SpaceKind:
        aliases = {"tss": cls.TOPOLOGY, "sss": cls.SIZE}
        if isinstance(value, str) and value.lower() in aliases:
            return aliases[value.lower()]
        return super().parse(value)

    @property
    def short(self) -> str:
        """NATS-Bench's abbreviation: ``tss`` or ``sss``."""
        return "tss" if self is SpaceKind.TOPOLOGY else "sss"

    @property
    def budgets(self) -> tuple[int, ...]:
        """Training budgets (epochs) NATS-Bench reports; the first is the default."""
        return (12, 200) if self is SpaceKind.TOPOLOGY else (90,)

    @classmethod
    def _kind(cls) -> str:
        return "search space"


@dataclass(frozen=True)
class MetricStats:
    """Space-wide statistics of one metric (over every architecture that has a value)."""

    min: float
    max: float
    median: float

    def normalize(self, values):
        """Map values linearly so that the space minimum is 0 and the maximum 1."""
        span = self.max - self.min
        return (values - self.min) / span if span > 0 else values * 0.0


@dataclass(frozen=True)
class DeviceLatency:
    """The latency on one named device, as a metric key beside the context's own ``Metric.LATENCY``.

    An env made with ``latency_devices=`` (or given a reward model that reads several devices, such
    as :class:`reward_models.devices.DeviceChoiceModel`) reports ``info["metrics"]["latency@pixel3"]``
    for each device; ``{key: values}`` mappings hold it under ``DeviceLatency("pixel3")``. It reads
    like a :class:`Metric` where that matters (``value``, ``higher_is_better``, ``unit``, ``label``).
    """

    device: str

    PREFIX: ClassVar[str] = "latency@"

    @property
    def value(self) -> str:
        return f"{self.PREFIX}{self.device}"

    @property
    def higher_is_better(self) -> bool:
        return False

    @property
    def unit(self) -> str:
        return "ms"

    @property
    def label(self) -> str:
        return f"latency on {self.device}"

    def __str__(self) -> str:
        return self.value


def parse_metric_key(name: object) -> Metric | DeviceLatency:
    """A metric key from its name: a :class:`Metric` (``"params"``) or a :class:`DeviceLatency`
    (``"latency@pixel3"``; a benchmark checks the device when it is queried)."""
    if isinstance(name, (Metric, DeviceLatency)):
        return name
    if isinstance(name, str) and name.startswith(DeviceLatency.PREFIX):
        device = name[len(DeviceLatency.PREFIX):]
        if not device:
            raise UnknownNameError("latency device", device, LATENCY_DEVICES)
        return DeviceLatency(device)
    return Metric.parse(name)


def parse_devices(devices: object, what: str = "devices") -> str | tuple[str, ...]:
    """``"all"``, or the device names of a sequence or a comma-separated string, in order, without
    duplicates (a benchmark checks the names against the devices it has).

    Raises:
        InvalidConfigError: anything else (naming ``what``).
    """
    if isinstance(devices, str):
        if devices.strip() == "all":
            return "all"
        devices = [d.strip() for d in devices.split(",") if d.strip()]
    try:
        names = list(devices)  # type: ignore[call-overload]
    except TypeError:
        names = None
    if names is None or not all(isinstance(d, str) and d for d in names):
        raise InvalidConfigError(f"{what} must be latency device names (e.g. ['pixel3', 'raspi4']) or 'all', got {devices!r}")
    return tuple(dict.fromkeys(names))

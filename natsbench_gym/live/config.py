"""The training budget of the live backend: one frozen, validated, hashable record (no torch)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass

from natsbench_gym.errors import NATSBenchGymError

__all__ = ["LiveConfig", "LiveConfigError"]


class LiveConfigError(NATSBenchGymError, ValueError):
    """A :class:`LiveConfig` field (or live training data) has a value that cannot work."""


#: Fields that change how fast or how often something is measured, not what a training run yields;
#: they are left out of :meth:`LiveConfig.config_hash` so that changing them keeps the cache.
_RUNTIME_FIELDS = frozenset({"seed", "num_threads", "latency_runs"})


@dataclass(frozen=True)
class LiveConfig:
    """How the live backend trains and measures one architecture.

    The defaults evaluate one architecture in a few seconds on two CPU cores: a topology network
    with ``C=8, N=1`` (NATS-Bench: 16, 5) on 16x16 inputs for 3 epochs. A size-space network keeps
    its widths (they *are* the architecture) and NATS-Bench's one cell per stage, so ``channels``
    and ``cells_per_stage`` apply to the topology space only.

    The optimiser is NATS-Bench's: SGD with Nesterov momentum 0.9, weight decay 5e-4 and a cosine
    learning-rate schedule (per step, to zero); there is no data augmentation (digits are not
    flip-invariant).

    Attributes:
        epochs: training epochs; also the backend's only budget (``query(..., budget=epochs)``).
        channels: stem width ``C`` of a topology network.
        cells_per_stage: cells per stage ``N`` of a topology network.
        batch_size: training mini-batch size.
        lr: initial learning rate.
        momentum, weight_decay, nesterov: SGD settings.
        input_size: side the images are resized to (a multiple of 4).
        seed: training seed (initial weights, batch order).
        split_seed: seed of the train/valid/test split of data given without splits (fixed across
            training seeds, as NATS-Bench's splits are).
        valid_fraction, test_fraction: split fractions (stratified by class).
        max_train_samples: keep at most this many training images (a seeded, stratified subset);
            ``None`` keeps all.
        num_threads: ``torch.set_num_threads`` while training and measuring (the caller's setting is
            restored afterwards); ``None`` uses torch's current setting. The default, 1, is
            deliberate: these tiny networks gain little from intra-op threads, and on a shared
            machine two OpenMP threads competing with other processes ran 10-100x slower in our
            measurements, while one thread stayed at about a second per topology network.
        latency_runs: timed forward passes per latency measurement (the median is reported).
        device: where a network trains: ``"cpu"`` (default) or ``"cuda"`` / ``"cuda:N"`` (one GPU
            per trial; with :class:`~natsbench_gym.live.executor.RayExecutor` ``gpus_per_trial=1``
            Ray hands each trial its own GPU). A GPU gives slightly different numbers than the CPU,
            so a non-CPU device is part of :meth:`config_hash` (results are cached apart);
            latency is always measured on the CPU.
    """

    epochs: int = 3
    channels: int = 8
    cells_per_stage: int = 1
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    input_size: int = 16
    seed: int = 0
    split_seed: int = 0
    valid_fraction: float = 0.2
    test_fraction: float = 0.2
    max_train_samples: int | None = None
    num_threads: int | None = 1
    latency_runs: int = 7
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise LiveConfigError(
                f"LiveConfig.device={self.device!r}; expected 'cpu', 'cuda' or 'cuda:N' (e.g. 'cuda:0')"
            )
        positive = {
            "epochs": self.epochs,
            "channels": self.channels,
            "cells_per_stage": self.cells_per_stage,
            "batch_size": self.batch_size,
            "latency_runs": self.latency_runs,
        }
        if self.max_train_samples is not None:
            positive["max_train_samples"] = self.max_train_samples
        if self.num_threads is not None:
            positive["num_threads"] = self.num_threads
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LiveConfigError(f"LiveConfig.{name}={value!r}; expected a positive integer")
        for name in ("seed", "split_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LiveConfigError(f"LiveConfig.{name}={value!r}; expected a non-negative integer")
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int) or self.input_size < 4 or self.input_size % 4:
            raise LiveConfigError(
                f"LiveConfig.input_size={self.input_size!r}; expected a positive multiple of 4 "
                "(the networks halve the image twice), e.g. 16 or 32"
            )
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise LiveConfigError(f"LiveConfig.lr={self.lr!r}; expected a positive number")
        for name in ("momentum", "weight_decay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise LiveConfigError(f"LiveConfig.{name}={value!r}; expected a non-negative number")
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < 1):
                raise LiveConfigError(f"LiveConfig.{name}={value!r}; expected a fraction strictly between 0 and 1")
        if self.valid_fraction + self.test_fraction >= 1:
            raise LiveConfigError(
                f"LiveConfig.valid_fraction + test_fraction = {self.valid_fraction + self.test_fraction:g}; "
                "it must stay below 1 to leave training data"
            )

    def replace(self, **changes) -> LiveConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def training_fields(self) -> dict[str, object]:
        """The fields that determine a training run's result, except the seed."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in _RUNTIME_FIELDS}
        if fields["device"] == "cpu":  # CPU results keep the hashes they had before devices existed
            del fields["device"]
        return fields

    def config_hash(self) -> str:
        """Short stable hash of :meth:`training_fields` (a cache key)."""
        blob = json.dumps(self.training_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

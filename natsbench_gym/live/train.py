"""Train one network on :class:`~natsbench_gym.live.data.LiveData` and measure its latency.

Everything here is deterministic under :attr:`LiveConfig.seed <natsbench_gym.live.config.LiveConfig>`
on one machine with one thread count: the global torch RNG is forked (the caller's state is left
untouched), seeded, deterministic algorithms are requested (free on CPU), and batches are drawn
from a seeded generator. Trainings in one process run one at a time (:data:`TRAINING_LOCK`): they
seed torch's global generator, which a second thread would otherwise disturb.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import nn

from natsbench_gym.live.config import LiveConfig
from natsbench_gym.live.data import LiveData
from natsbench_gym.live.models import build_nats_network, build_network
from natsbench_gym.types import Dataset, SpaceKind

__all__ = [
    "TrainingResult", "train_and_evaluate", "measure_latency", "nats_latency_ms", "torch_runtime", "prepare_split",
    "input_normalisation", "TRAINING_LOCK", "run_trial",
]

logger = logging.getLogger(__name__)

#: Held while a network trains: a training seeds torch's global generator (the initial weights), so
#: two at once in one process would draw each other's numbers and lose determinism.
TRAINING_LOCK = threading.RLock()


@dataclass(frozen=True)
class TrainingResult:
    """What one training run yields. Accuracies are percentages (0-100).

    Attributes:
        train_accuracy, valid_accuracy, test_accuracy: accuracy of the final network on each split
            (eval mode, after training).
        train_time: seconds spent in the training loop (wall clock on this machine).
        per_class_valid, per_class_test: accuracy per class (``nan`` for a class absent from the split).
        final_train_loss: mean training loss of the last epoch.
        epochs: epochs trained.
    """

    train_accuracy: float
    valid_accuracy: float
    test_accuracy: float
    train_time: float
    per_class_valid: tuple[float, ...]
    per_class_test: tuple[float, ...]
    final_train_loss: float
    epochs: int

    def to_dict(self) -> dict[str, object]:
        return {
            "train_accuracy": self.train_accuracy,
            "valid_accuracy": self.valid_accuracy,
            "test_accuracy": self.test_accuracy,
            "train_time": self.train_time,
            "per_class_valid": list(self.per_class_valid),
            "per_class_test": list(self.per_class_test),
            "final_train_loss": self.final_train_loss,
            "epochs": self.epochs,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TrainingResult:
        return cls(
            float(d["train_accuracy"]), float(d["valid_accuracy"]), float(d["test_accuracy"]), float(d["train_time"]),
            tuple(float(v) for v in d["per_class_valid"]), tuple(float(v) for v in d["per_class_test"]),
            float(d["final_train_loss"]), int(d["epochs"]),
        )


@contextlib.contextmanager
def torch_runtime(num_threads: int | None, seed: int | None = None) -> Iterator[None]:
    """Fork torch's RNG (seeded if ``seed`` is given), request deterministic algorithms and set the
    thread count for the duration; restore all three afterwards."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        try:
            if num_threads is not None:
                torch.set_num_threads(num_threads)
            torch.use_deterministic_algorithms(True, warn_only=True)
            if seed is not None:
                torch.manual_seed(seed)
            yield
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            if num_threads is not None:
                torch.set_num_threads(prev_threads)


def prepare_split(images: np.ndarray, input_size: int, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """Resize to ``input_size`` (bilinear), grey to RGB, normalise per channel."""
    x = torch.from_numpy(images if images.flags.writeable else images.copy())  # Ray's shared arrays are read-only
    if x.shape[-2:] != (input_size, input_size):
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
    x = (x - torch.from_numpy(mean)[None, :, None, None]) / torch.from_numpy(std)[None, :, None, None]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


def input_normalisation(data: LiveData, config: LiveConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the training images the network of ``config`` is trained on
    (after ``max_train_samples``), the normalisation :func:`prepare_split` applies to every split."""
    if config.max_train_samples is not None:
        data = data.subsample_train(config.max_train_samples, config.split_seed)
    mean = data.train_x.mean(axis=(0, 2, 3)).astype(np.float32)
    std = (data.train_x.std(axis=(0, 2, 3)) + 1e-6).astype(np.float32)
    return mean, std


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, batch: int = 512):
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, x.shape[0], batch)])
    correct = (pred == y).cpu().numpy()
    labels = y.cpu().numpy()
    counts = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels, weights=correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(counts > 0, 100.0 * hits / counts, np.nan)
    return 100.0 * float(correct.mean()), tuple(float(v) for v in per_class)


def train_and_evaluate(
    space: SpaceKind | str,
    encoding: Sequence[int],
    data: LiveData,
    config: LiveConfig,
    *,
    keep: Callable[[nn.Module, tuple[np.ndarray, np.ndarray]], None] | None = None,
) -> TrainingResult:
    """Train the network of ``encoding`` on ``data.train`` under ``config``; evaluate every split.

    Args:
        keep: called with the trained network (eval mode) and its input normalisation
            ``(mean, std)`` before this returns, e.g. to keep its weights
            (:class:`~natsbench_gym.live.weights.WeightStore`).
    """
    mean, std = input_normalisation(data, config)
    if config.max_train_samples is not None:
        data = data.subsample_train(config.max_train_samples, config.split_seed)
    device = torch.device(getattr(config, "device", "cpu"))
    with TRAINING_LOCK, torch_runtime(config.num_threads, config.seed):
        xs = {s: prepare_split(data.split(s)[0], config.input_size, mean, std).to(device) for s in ("train", "valid", "test")}
        ys = {s: torch.from_numpy(data.split(s)[1].copy()).to(device) for s in ("train", "valid", "test")}
        model = build_network(space, encoding, data.num_classes, config.channels, config.cells_per_stage).to(device)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum,
            weight_decay=config.weight_decay, nesterov=config.nesterov and config.momentum > 0,
        )
        n = xs["train"].shape[0]
        steps_per_epoch = max(1, n // config.batch_size + (n % config.batch_size > 1))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
        generator = torch.Generator().manual_seed(config.seed)
        loss_sum, loss_count = 0.0, 0
        start = time.perf_counter()
        for _epoch in range(config.epochs):
            model.train()
            order = torch.randperm(n, generator=generator)
            loss_sum, loss_count = 0.0, 0
            for i in range(0, n, config.batch_size):
                idx = order[i : i + config.batch_size].to(device)
                if idx.numel() < 2 and n > 1:  # batch norm cannot train on a batch of one image
                    continue
                logits = model(xs["train"][idx])
                loss = F.cross_entropy(logits, ys["train"][idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.item() * idx.numel()
                loss_count += idx.numel()
        train_time = time.perf_counter() - start
        train_acc, _ = _evaluate(model, xs["train"], ys["train"], data.num_classes)
        valid_acc, per_valid = _evaluate(model, xs["valid"], ys["valid"], data.num_classes)
        test_acc, per_test = _evaluate(model, xs["test"], ys["test"], data.num_classes)
        if keep is not None:
            keep(model.cpu(), (mean, std))
    return TrainingResult(
        train_acc, valid_acc, test_acc, train_time, per_valid, per_test,
        loss_sum / max(loss_count, 1), config.epochs,
    )


def run_trial(
    space: SpaceKind | str,
    encoding: Sequence[int],
    data: LiveData,
    config: LiveConfig,
    keep_weights: bool = True,
    latency_dataset: Dataset | str | None = None,
) -> dict[str, object]:
    """One trial on an executor's worker: train ``encoding``, keep what the driver stores.

    The driver (:class:`~natsbench_gym.live.benchmark.LiveBenchmark`) writes the cache; a worker
    only computes, so a worker that dies leaves nothing half-written.

    Returns:
        ``{"result": TrainingResult.to_dict(), "weights": {"state_dict", "mean", "std",
        "valid_logits"} or None, "latency_ms": float or None, "pid": int, "host": str}``; the
        latency of the full-size network for ``latency_dataset`` when one is given.
    """
    import os
    import socket

    kept: dict[str, object] = {}

    def keep(model: nn.Module, normalisation: tuple[np.ndarray, np.ndarray]) -> None:
        x = prepare_split(data.valid_x, config.input_size, *normalisation)
        with torch.inference_mode():
            logits = model.eval()(x).numpy()
        kept.update(
            state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            mean=np.asarray(normalisation[0], dtype=np.float32), std=np.asarray(normalisation[1], dtype=np.float32),
            valid_logits=logits,
        )

    result = train_and_evaluate(space, encoding, data, config, keep=keep if keep_weights else None)
    latency = None
    if latency_dataset is not None:
        latency = nats_latency_ms(space, encoding, latency_dataset, config.latency_runs, config.num_threads)
    return {
        "result": result.to_dict(), "weights": kept or None, "latency_ms": latency,
        "pid": os.getpid(), "host": socket.gethostname(),
    }


def measure_latency(model: nn.Module, input_size: int, runs: int = 7, warmup: int = 2) -> float:
    """Median wall-clock milliseconds of one forward pass at batch size 1 (eval mode, no grad)."""
    model.eval()
    x = torch.randn(1, 3, input_size, input_size)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def nats_latency_ms(
    space: SpaceKind | str, encoding: Sequence[int], dataset: Dataset | str, runs: int = 7,
    num_threads: int | None = None,
) -> float:
    """Latency (ms, batch 1, median) of the full-size network NATS-Bench trains for ``dataset``."""
    ds = Dataset.parse(dataset)
    with TRAINING_LOCK, torch_runtime(num_threads, seed=0):  # it seeds the global generator too
        model = build_nats_network(space, encoding, ds)
        return measure_latency(model, ds.image_size, runs)

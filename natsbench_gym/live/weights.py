"""Kept weights of the live backend's networks: a bounded store beside the result cache.

The SQLite cache (:mod:`natsbench_gym.live.cache`) keeps what a training run *measured*; this
module keeps what it *made*: the trained network's ``state_dict``, the input normalisation it
was trained with and its logits on the validation split, so that the network can be had again (:meth:`LiveBenchmark.trained_network
<natsbench_gym.live.benchmark.LiveBenchmark.trained_network>`) to show its predictions and
activations (the preference page's evidence, the paper's Fig. 2).

**Where.** One file per network in a folder (default: ``<cache>-weights/`` beside the SQLite file,
``live-v1-weights/``), named by the training key (space, architecture code, data id, config hash,
seed), the same key as the result it belongs to. With a memory-only result cache the weights stay in
memory, under the same bound.

**Bounded.** ``max_bytes`` (default :data:`DEFAULT_MAX_WEIGHTS_BYTES`, 256 MiB: about 3,000 default
topology networks of ~320 KB each) caps the store; when a write goes past it, the least recently
used networks are deleted first (a read counts as a use: it touches the file's modification time).
A network larger than the whole bound is not kept.

**Atomic.** Each file is written through :func:`natsbench_gym.fileio.atomic_path`, so a crash leaves
the old file or the new one; temporary files older than :data:`STALE_AFTER_S` that an interrupted
write left are deleted when a store opens the folder (a younger one may be another process's write
in progress). A file that cannot be read back (truncated, not a weights file) is deleted with a
warning and counts as missing: the network is trained again.

Several processes may share the folder: writes are atomic renames, and eviction only deletes files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from natsbench_gym.fileio import atomic_path
from natsbench_gym.live.config import LiveConfig, LiveConfigError
from natsbench_gym.live.data import LiveData
from natsbench_gym.live.train import TrainingResult, prepare_split

__all__ = ["WeightStore", "TrainedNetwork", "DEFAULT_MAX_WEIGHTS_BYTES", "STALE_AFTER_S", "WEIGHTS_FORMAT"]

logger = logging.getLogger(__name__)

#: Default bound of a weight store: 256 MiB.
DEFAULT_MAX_WEIGHTS_BYTES = 256 * 2**20
#: A temporary file older than this (seconds) is a leftover of an interrupted write.
STALE_AFTER_S = 600.0
#: Format tag inside every weights file.
WEIGHTS_FORMAT = "natsbench-gym-live-weights-v1"
_SUFFIX = ".pt"

TrainingKey = tuple[str, int, str, str, int]  # space, arch_code, data_id, config_hash, seed


def _file_name(key: TrainingKey) -> str:
    space, code, data_id, config_hash, seed = key
    digest = hashlib.sha1(repr(tuple(key)).encode()).hexdigest()[:16]
    return f"{space}-{int(code)}-s{int(seed)}-{digest}{_SUFFIX}"


def _payload_bytes(payload: dict[str, Any]) -> int:
    tensors = [*payload["state_dict"].values(), *(payload[k] for k in ("valid_logits",) if k in payload)]
    return sum(t.numel() * t.element_size() for t in tensors) + 1024


class WeightStore:
    """Trained networks' weights, by training key, within ``max_bytes`` (least recently used go first).

    Args:
        directory: the folder the files live in (created on the first write); ``None``: in memory.
        max_bytes: the bound on the store's size (files on disk, tensors in memory); ``0`` keeps none.

    Every method is safe to call from several threads.
    """

    def __init__(self, directory: str | os.PathLike | None, max_bytes: int = DEFAULT_MAX_WEIGHTS_BYTES) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
            raise LiveConfigError(f"max_weights_bytes={max_bytes!r}; expected a non-negative number of bytes, e.g. 256 * 2**20")
        self.directory = None if directory is None else Path(directory)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._memory: OrderedDict[TrainingKey, dict[str, Any]] = OrderedDict()
        if self.directory is not None and self.directory.is_dir():
            self._remove_stale_temporaries()
            self._evict(keep=None)  # the bound may have been lowered since the last run

    def __getstate__(self) -> dict[str, Any]:
        # a copy in another process (a vector-env worker) shares the folder, not the lock
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def persistent(self) -> bool:
        return self.directory is not None

    def path_of(self, key: TrainingKey) -> Path | None:
        """The file of ``key`` (``None`` for a store in memory)."""
        return None if self.directory is None else self.directory / _file_name(key)

    def __contains__(self, key: TrainingKey) -> bool:
        if self.directory is None:
            return key in self._memory
        return self.path_of(key).is_file()

    def put(
        self, key: TrainingKey, model: nn.Module, normalisation: tuple[np.ndarray, np.ndarray],
        valid_logits: np.ndarray | None = None, **meta: Any,
    ) -> bool:
        """Keep ``model``'s weights, input normalisation and (optionally) its validation logits
        under ``key``; ``False`` if it exceeds the bound."""
        return self.put_state(key, model.state_dict(), normalisation, valid_logits, **meta)

    def put_state(
        self, key: TrainingKey, state_dict: dict[str, torch.Tensor], normalisation: tuple[np.ndarray, np.ndarray],
        valid_logits: np.ndarray | None = None, **meta: Any,
    ) -> bool:
        """:meth:`put` for a network's ``state_dict`` (what an executor's worker sends back)."""
        payload = {
            "format": WEIGHTS_FORMAT,
            "key": list(key),
            "state_dict": {k: v.detach().clone().cpu() for k, v in state_dict.items()},
            "mean": torch.as_tensor(np.array(normalisation[0], dtype=np.float32)),  # copies: a worker's arrays may be read-only
            "std": torch.as_tensor(np.array(normalisation[1], dtype=np.float32)),
            **({} if valid_logits is None else {"valid_logits": torch.as_tensor(np.array(valid_logits, dtype=np.float32))}),
            # plain types only (torch.__version__ is a str subclass that weights_only loading refuses)
            "meta": {k: str(v) if isinstance(v, str) else v for k, v in meta.items() if isinstance(v, (str, int, float, bool))},
        }
        size = _payload_bytes(payload)
        if size > self.max_bytes:
            if self.max_bytes:
                logger.warning("live weights of %s (%d bytes) exceed max_weights_bytes=%d; not kept", key, size, self.max_bytes)
            return False
        with self._lock:
            if self.directory is None:
                self._memory[key] = payload
                self._memory.move_to_end(key)
                while sum(_payload_bytes(p) for p in self._memory.values()) > self.max_bytes:
                    self._memory.popitem(last=False)
                return True
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                buffer = io.BytesIO()
                torch.save(payload, buffer)
                with atomic_path(self.path_of(key)) as tmp:
                    tmp.write_bytes(buffer.getvalue())
                self._evict(keep=self.path_of(key))
            except OSError as exc:
                logger.warning("cannot keep live weights in %s (%s); the network will be trained again when asked for", self.directory, exc)
                return False
            return True

    def get(self, key: TrainingKey) -> dict[str, Any] | None:
        """``{"state_dict", "mean", "std", "meta"}`` (and ``"valid_logits"`` when kept) under ``key``,
        or ``None`` (marks it used)."""
        with self._lock:
            if self.directory is None:
                payload = self._memory.get(key)
                if payload is not None:
                    self._memory.move_to_end(key)
                return payload
            path = self.path_of(key)
            if not path.is_file():
                return None
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT or list(payload.get("key", ())) != list(key):
                    raise ValueError("not a weights file of this key")
            except Exception as exc:  # noqa: BLE001 - any unreadable file means: train again
                logger.warning("live weights file %s is unreadable (%s); deleted, the network will be trained again", path, exc)
                path.unlink(missing_ok=True)
                return None
            try:
                os.utime(path)  # least recently *used*: a read counts
            except OSError:
                pass
            return payload

    def total_bytes(self) -> int:
        """Bytes the store holds now."""
        with self._lock:
            if self.directory is None:
                return sum(_payload_bytes(p) for p in self._memory.values())
            return sum(size for _, size, _ in self._files())

    def _files(self) -> list[tuple[Path, int, float]]:
        out = []
        if self.directory is None or not self.directory.is_dir():
            return out
        for path in self.directory.glob(f"*{_SUFFIX}"):
            try:
                st = path.stat()
            except OSError:  # deleted by another process meanwhile
                continue
            out.append((path, st.st_size, st.st_mtime))
        return out

    def _evict(self, keep: Path | None) -> None:
        files = sorted(self._files(), key=lambda f: f[2])
        total = sum(size for _, size, _ in files)
        for path, size, _ in files:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            logger.debug("evicted live weights %s (store over %d bytes)", path.name, self.max_bytes)

    def _remove_stale_temporaries(self) -> None:
        now = time.time()
        for tmp in self.directory.glob(f".*{_SUFFIX}.*.tmp"):
            try:
                if now - tmp.stat().st_mtime > STALE_AFTER_S:
                    tmp.unlink()
                    logger.info("removed %s, left by an interrupted write of live weights", tmp)
            except OSError:
                continue

    def __repr__(self) -> str:
        where = self.directory or "memory"
        return f"WeightStore({where}, max_bytes={self.max_bytes})"


@dataclass(frozen=True, eq=False)
class TrainedNetwork:
    """A trained live network and the data split it was evaluated on.

    Attributes:
        module: the network (``eval`` mode), as :func:`~natsbench_gym.live.models.build_network`
            builds it; its input is :meth:`inputs`.
        arch_str: the architecture.
        index: its official index.
        data: the data it was trained and evaluated on.
        split: the split its accuracies (and the preference page's evidence) are on, ``"valid"``.
        mean, std: the per-channel input normalisation it was trained with.
        config: the training budget.
        result: the training record (accuracies, per-class accuracy), ``None`` if not at hand.
        trained_on: the data and budget in words (``"sklearn digits (10 classes, 16x16), 3 epochs, C=8, N=1"``).
        valid_logits: the network's logits on the validation split, kept with its weights (``None``
            when not kept: :meth:`predict_proba` computes them).
    """

    module: nn.Module
    arch_str: str
    index: int
    data: LiveData
    mean: np.ndarray
    std: np.ndarray
    config: LiveConfig
    result: TrainingResult | None
    trained_on: str
    split: str = "valid"
    valid_logits: np.ndarray | None = None

    @property
    def images(self) -> np.ndarray:
        """The split's images as stored ``(n, C, H, W)`` (before resizing and normalisation)."""
        return self.data.split(self.split)[0]

    @property
    def labels(self) -> np.ndarray:
        return self.data.split(self.split)[1]

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def inputs(self, which: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
        """The network's input for the split's images ``which`` (all by default): resized, RGB, normalised."""
        images = self.images if which is None else self.images[np.asarray(which, dtype=np.int64)]
        return prepare_split(images, self.config.input_size, self.mean, self.std)

    def predict_proba(self, batch: int = 512) -> np.ndarray:
        """Class probabilities ``(n, classes)`` of every image of the split (from the kept logits
        when there are, else by a forward pass)."""
        if self.valid_logits is not None and self.split == "valid" and self.valid_logits.shape[0] == self.labels.size:
            logits = torch.from_numpy(np.asarray(self.valid_logits, dtype=np.float32))
        else:
            x = self.inputs()
            self.module.eval()
            with torch.inference_mode():
                logits = torch.cat([self.module(x[i : i + batch]) for i in range(0, x.shape[0], batch)])
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

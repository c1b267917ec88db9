"""Training data for the live backend: a small labelled image set split into train/valid/test.

The default is scikit-learn's handwritten digits (1,797 8x8 grayscale images, 10 classes; shipped
with scikit-learn, so it works offline). Any labelled images work: numpy arrays, explicit splits,
or a torch-style dataset (anything with ``len`` and ``[i] -> (image, label)``). Images may be
``(n, H, W)``, ``(n, C, H, W)`` or ``(n, H, W, C)`` with ``C`` 1 or 3; the trainer resizes them to
:attr:`LiveConfig.input_size <natsbench_gym.live.config.LiveConfig>` and repeats grey to RGB.

A :class:`LiveData` is identified by a hash of its contents (:attr:`LiveData.data_id`), which is part
of the cache key: the same arrays give the same cached results in every session.

This module does not import torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from natsbench_gym.live.config import LiveConfig, LiveConfigError

__all__ = ["LiveData", "as_live_data", "stratified_split", "stratified_subset"]


def _as_images(x, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4:
        if arr.shape[1] not in (1, 3) and arr.shape[3] in (1, 3):
            arr = np.moveaxis(arr, 3, 1)
        if arr.shape[1] not in (1, 3):
            raise LiveConfigError(
                f"{what} has shape {arr.shape}; expected (n, H, W), (n, C, H, W) or (n, H, W, C) with C = 1 or 3"
            )
    else:
        raise LiveConfigError(f"{what} has shape {arr.shape}; expected images (n, H, W) or (n, C, H, W)")
    if arr.shape[0] == 0:
        raise LiveConfigError(f"{what} holds no images")
    if not np.all(np.isfinite(arr)):
        raise LiveConfigError(f"{what} holds nan or infinite pixel values")
    return np.ascontiguousarray(arr)


def _as_labels(y, n: int, what: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise LiveConfigError(f"{what} labels have shape {arr.shape}; expected ({n},), one label per image")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise LiveConfigError(f"{what} labels are not whole numbers; expected class ids 0..K-1")
    elif arr.dtype.kind not in "iu":
        raise LiveConfigError(f"{what} labels have dtype {arr.dtype}; expected integer class ids 0..K-1")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise LiveConfigError(f"{what} labels include {int(arr.min())}; expected class ids 0..K-1")
    return arr


def stratified_split(
    y: np.ndarray, seed: int, valid_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a seeded train/valid/test split that keeps each class's proportions.

    Every class keeps at least one training example; the split depends only on ``y`` and ``seed``.
    """
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n = idx.size
        n_test = min(int(round(n * test_fraction)), max(n - 1, 0))
        n_valid = min(int(round(n * valid_fraction)), max(n - 1 - n_test, 0))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_valid])
        parts[0].append(idx[n_test + n_valid :])
    train, valid, test = (np.sort(np.concatenate(p)).astype(np.int64) for p in parts)
    return train, valid, test


def stratified_subset(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` labels drawn with each class's share (floor), the rest at random."""
    rng = np.random.default_rng(seed)
    chosen, rest = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        quota = n * idx.size // y.size
        chosen.append(idx[:quota])
        rest.append(idx[quota:])
    chosen_idx = np.concatenate(chosen)
    extra = rng.permutation(np.concatenate(rest))[: n - chosen_idx.size]
    return np.sort(np.concatenate([chosen_idx, extra])).astype(np.int64)


@dataclass(frozen=True, eq=False)
class LiveData:
    """Train, validation and test images with integer labels.

    Build one with :meth:`digits`, :meth:`from_arrays` (split here), :meth:`from_splits` or
    :meth:`from_dataset`; :func:`as_live_data` accepts any of their inputs.

    Attributes:
        train_x, valid_x, test_x: float32 images ``(n, C, H, W)``, ``C`` 1 or 3.
        train_y, valid_y, test_y: int64 labels in ``0..num_classes-1``.
        name: shown in logs and ``describe()``.
        num_classes: number of classes (largest label + 1 unless given).
        data_id: hash of the contents, part of every cache key.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    name: str = "custom"
    num_classes: int = 0
    data_id: str = field(init=False, default="")

    def __post_init__(self) -> None:
        arrays = {}
        for split in ("train", "valid", "test"):
            x = _as_images(getattr(self, f"{split}_x"), f"{self.name} {split} images")
            y = _as_labels(getattr(self, f"{split}_y"), x.shape[0], f"{self.name} {split}")
            arrays[split] = (x, y)
        shapes = {x.shape[1:] for x, _ in arrays.values()}
        if len(shapes) != 1:
            raise LiveConfigError(f"{self.name} splits have different image shapes {sorted(shapes)}; expected one shape")
        largest = max(int(y.max()) for _, y in arrays.values()) + 1
        num_classes = int(self.num_classes) or largest
        if num_classes < largest:
            raise LiveConfigError(f"{self.name} has label {largest - 1} but num_classes={num_classes}")
        if num_classes < 2:
            raise LiveConfigError(f"{self.name} has {num_classes} class; expected at least 2")
        h = hashlib.sha1(f"{num_classes}".encode())
        for split, (x, y) in arrays.items():
            object.__setattr__(self, f"{split}_x", x)
            object.__setattr__(self, f"{split}_y", y)
            for arr in (x, y):
                h.update(f"{split}{arr.shape}{arr.dtype}".encode())
                h.update(arr.tobytes())
        object.__setattr__(self, "num_classes", num_classes)
        object.__setattr__(self, "data_id", f"{self.name}-{h.hexdigest()[:16]}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the stored images (before resizing)."""
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of ``"train"``, ``"valid"`` or ``"test"``."""
        if name not in ("train", "valid", "test"):
            raise LiveConfigError(f"unknown split {name!r}; expected 'train', 'valid' or 'test'")
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")

    def subsample_train(self, n: int, seed: int) -> LiveData:
        """A copy with at most ``n`` training images (a seeded, stratified subset)."""
        if n >= self.train_y.size:
            return self
        keep = stratified_subset(self.train_y, n, seed)
        return LiveData(
            self.train_x[keep], self.train_y[keep], self.valid_x, self.valid_y, self.test_x, self.test_y,
            name=self.name, num_classes=self.num_classes,
        )

    # --- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_splits(
        cls, train: Sequence, valid: Sequence, test: Sequence, name: str = "custom", num_classes: int = 0
    ) -> LiveData:
        """Data already split: each of ``train``, ``valid``, ``test`` is an ``(images, labels)`` pair."""
        pairs = []
        for split, pair in (("train", train), ("valid", valid), ("test", test)):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise LiveConfigError(f"{split} must be an (images, labels) pair, got {type(pair).__name__}")
            pairs.append(pair)
        (tx, ty), (vx, vy), (sx, sy) = pairs
        return cls(tx, ty, vx, vy, sx, sy, name=name, num_classes=num_classes)

    @classmethod
    def from_arrays(
        cls,
        x,
        y,
        *,
        split_seed: int = 0,
        valid_fraction: float = 0.2,
        test_fraction: float = 0.2,
        name: str = "custom",
        num_classes: int = 0,
    ) -> LiveData:
        """Split labelled images into train/valid/test, stratified by class, seeded."""
        images = _as_images(x, f"{name} images")
        labels = _as_labels(y, images.shape[0], name)
        train, valid, test = stratified_split(labels, split_seed, valid_fraction, test_fraction)
        if not valid.size or not test.size:
            raise LiveConfigError(
                f"{name} has {labels.size} images: too few for a validation and a test split "
                f"(fractions {valid_fraction:g} and {test_fraction:g})"
            )
        return cls(
            images[train], labels[train], images[valid], labels[valid], images[test], labels[test],
            name=name, num_classes=num_classes,
        )

    @classmethod
    def from_dataset(cls, dataset, **kwargs) -> LiveData:
        """Read a torch-style dataset (``len`` and ``[i] -> (image, label)``) once, then :meth:`from_arrays`."""
        try:
            n = len(dataset)
            items = [dataset[i] for i in range(n)]
        except TypeError as exc:
            raise LiveConfigError(
                f"{type(dataset).__name__} is not a map-style dataset (len() and [i] -> (image, label))"
            ) from exc
        if n == 0:
            raise LiveConfigError("the dataset is empty")
        try:
            xs = np.stack([np.asarray(item[0], dtype=np.float32) for item in items])
            ys = np.asarray([int(item[1]) for item in items])
        except (TypeError, ValueError, IndexError) as exc:
            raise LiveConfigError(f"dataset items must be (image, label) pairs of equal-shaped images: {exc}") from exc
        kwargs.setdefault("name", type(dataset).__name__)
        return cls.from_arrays(xs, ys, **kwargs)

    @classmethod
    def digits(cls, split_seed: int = 0, valid_fraction: float = 0.2, test_fraction: float = 0.2) -> LiveData:
        """scikit-learn's handwritten digits (8x8 grey, 10 classes), pixel values scaled to [0, 1]."""
        from sklearn.datasets import load_digits  # deferred: only the live default needs scikit-learn

        bunch = load_digits()
        images = bunch.images.astype(np.float32) / 16.0
        return cls.from_arrays(
            images, bunch.target, split_seed=split_seed, valid_fraction=valid_fraction,
            test_fraction=test_fraction, name="digits",
        )


def as_live_data(data, config: LiveConfig) -> LiveData:
    """Turn what a user passes as ``data=`` into :class:`LiveData`.

    Accepted: ``None`` (the digits), a :class:`LiveData`, an ``(images, labels)`` pair (split with the
    config's ``split_seed`` and fractions), a ``(train, valid, test)`` triple of pairs, or a
    map-style dataset.
    """
    split = {"split_seed": config.split_seed, "valid_fraction": config.valid_fraction, "test_fraction": config.test_fraction}
    if data is None:
        return LiveData.digits(**split)
    if isinstance(data, LiveData):
        return data
    if isinstance(data, Mapping):
        raise LiveConfigError("a mapping of data is per dataset; pass it to LiveBenchmark(data=...) instead")
    if isinstance(data, (tuple, list)):
        if len(data) == 2 and not isinstance(data[0], (tuple, list)):
            return LiveData.from_arrays(data[0], data[1], **split)
        if len(data) == 3:
            return LiveData.from_splits(*data)
        raise LiveConfigError(
            f"data is a {type(data).__name__} of {len(data)} items; expected (images, labels) or "
            "((train_x, train_y), (valid_x, valid_y), (test_x, test_y))"
        )
    if hasattr(data, "__len__") and hasattr(data, "__getitem__") and not isinstance(data, np.ndarray):
        return LiveData.from_dataset(data, **split)
    raise LiveConfigError(
        f"cannot use {type(data).__name__} as training data; pass None (digits), LiveData, (images, labels), "
        "three (images, labels) splits, or a map-style dataset"
    )

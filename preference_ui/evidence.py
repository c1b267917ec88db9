"""What each network does: its predictions on validation images, per-class accuracy and Grad-CAM.

The paper's Human Preference Interface (Sec. III-C, Fig. 2) shows, beside the metrics, each
network's predictions on ``D_valid`` and its Grad-CAM activations, so that a person may prefer the
network that looks at the right part of an image. :class:`EvidenceProvider` computes that evidence
for the page and the terminal UI.

**Which networks.** On a backend that keeps its trained networks (``capabilities.keeps_weights``:
the live backend), the evidence is about *those* networks, the ones behind the accuracies shown.
A table backend has no weights, so the provider trains the two architectures itself, on the live
backend's data (the digits by default, or images given as ``data=``) with the live budget
(:class:`~natsbench_gym.live.config.LiveConfig`), and says so: "trained here on sklearn digits
(10 classes, 16x16), 3 epochs, C=8, N=1" -- never as the table's CIFAR networks. Their weights are
kept in the live backend's bounded weight store (:mod:`natsbench_gym.live.weights`), so a pair is
trained once.

**In the background.** Networks are trained (or loaded) by one worker thread, newest request first,
while the person keeps judging; :meth:`EvidenceProvider.pair` answers at once with what is ready
and the state of the rest (``queued``, ``preparing`` with the seconds so far, ``ready``, ``error``).

**Grad-CAM** (Selvaraju et al., the paper's [34]) comes from Captum's
:class:`captum.attr.LayerGradCam` (the ``evidence`` extra), at the network's ``lastact`` layer: the
batch norm and ReLU after the last cell, the feature map the global average pooling reads. There
the classifier is linear in the pooled map, so Grad-CAM's channel weights are exactly the
classifier's weights for the class (Grad-CAM equals CAM), the most class-specific spatial map the
network has; an earlier cell would show finer but less class-specific detail. With the live budget's
16x16 inputs that map is 4x4 cells, upsampled bilinearly to the image.

**Determinism.** The image grid is a seeded, class-stratified sample of the validation split (the
same images for every pair, so pairs can be compared with each other), and the live backend's
training is deterministic under its seed.

Nothing here imports torch until evidence is asked for.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from natsbench_gym.rewards import ScoringContext
from preference_ui.errors import EvidenceUnavailableError, InvalidRequestError

__all__ = ["EvidenceProvider", "GRADCAM_LAYER", "GRADCAM_TARGETS", "target_layer"]

logger = logging.getLogger(__name__)

#: The layer Grad-CAM reads (see the module docs for why).
GRADCAM_LAYER = "lastact"
#: Whose class Grad-CAM explains: the network's own prediction, or the true label.
GRADCAM_TARGETS = ("predicted", "true")
#: Images of the fixed grid, and at most how many images where the two networks differ.
GRID_IMAGES = 20
DIFFERENT_IMAGES = 12
#: Side in pixels of a Grad-CAM picture.
CAM_PIXELS = 112


def target_layer(module: Any) -> Any:
    """The module Grad-CAM is computed at: ``module.lastact`` of a NATS-Bench network."""
    layer = getattr(module, GRADCAM_LAYER, None)
    if layer is None:
        raise EvidenceUnavailableError(f"{type(module).__name__} has no {GRADCAM_LAYER!r} layer to compute Grad-CAM at")
    return layer


@dataclass
class _Ready:
    """One network's evidence: the network and its predictions on the whole split."""

    network: Any  # natsbench_gym.live.weights.TrainedNetwork
    proba: np.ndarray
    pred: np.ndarray
    correct: np.ndarray
    per_class: list[dict[str, Any]]
    accuracy: float
    how: str  # "kept" (loaded) or "trained" (here, now)
    seconds: float


class EvidenceProvider:
    """Networks and what they do, for the preference interfaces (see the module docs).

    Args:
        context: the session's scoring context (its benchmark and dataset).
        trainer: what gives a trained network back: an object with ``trained_network(index,
            dataset)`` and ``trained_on(dataset)`` (a :class:`~natsbench_gym.live.LiveBenchmark`).
            Default: the context's benchmark when it keeps weights, else a live backend over the
            same space and index order, trained on ``data`` under ``config``.
        data: training data for that live backend (anything ``LiveBenchmark(data=...)`` takes;
            default: scikit-learn's digits).
        config: its :class:`~natsbench_gym.live.config.LiveConfig` (default ``LiveConfig()``).
        cache_path: its result cache (default: the live backend's; the weights are kept beside it).
        seed: seeds the image grid.
        max_networks: networks held in memory for Grad-CAM (least recently used dropped).

    Every method is safe to call from several threads.
    """

    def __init__(
        self,
        context: ScoringContext,
        *,
        trainer: Any = None,
        data: Any = None,
        config: Any = None,
        cache_path: Any = None,
        seed: int = 0,
        max_networks: int = 32,
    ) -> None:
        self.context = context
        self.seed = int(seed)
        self.max_networks = int(max_networks)
        self._given_trainer = trainer
        self._data = data
        self._config = config
        self._cache_path = cache_path
        bench = context.benchmark
        self.kept = trainer is None and bench.capabilities.keeps_weights and callable(getattr(bench, "trained_network", None))
        self._trainer: Any = None
        self._trainer_error: str | None = None
        self._cond = threading.Condition()
        self._jobs: list[int] = []
        self._status: dict[int, dict[str, Any]] = {}
        self._ready: OrderedDict[int, _Ready] = OrderedDict()
        self._cams: OrderedDict[tuple[int, int, str], dict[str, Any]] = OrderedDict()
        self._cam_lock = threading.Lock()
        self._grid: list[int] | None = None
        self._thumbs: dict[int, str] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Networks trained by this provider (loaded ones do not count).
        self.trained = 0

    # --- the source of the networks ------------------------------------------------------------------
    def source(self) -> dict[str, Any]:
        """Where the networks come from, in words: ``{"kind": "kept" | "trained_here", "text", "trained_on"}``."""
        dataset = self.context.dataset.value
        trained_on = None
        if self._trainer is not None:
            trained_on = self._trainer.trained_on(self._dataset_of(self._trainer))
        if self.kept:
            text = "The networks behind the metrics above, as the live backend trained them"
            text += f" ({trained_on})." if trained_on else "."
            return {"kind": "kept", "text": text, "trained_on": trained_on}
        if trained_on is None:
            return {"kind": "trained_here", "trained_on": None,
                    "text": f"The {self.context.benchmark.name} backend keeps no trained networks, so these two are "
                            "trained here on the live backend's data (preparing…)."}
        return {"kind": "trained_here", "trained_on": trained_on,
                "text": f"Trained here on {trained_on}. The {self.context.benchmark.name} backend keeps no weights, so these "
                        f"are the same two cells trained on that data, not the {dataset} networks behind the metrics above."}

    def _dataset_of(self, trainer: Any) -> Any:
        datasets = getattr(trainer, "datasets", None)
        ds = self.context.dataset
        return ds if not datasets or ds in datasets else datasets[0]

    def _ensure_trainer(self) -> Any:
        if self._trainer is not None:
            return self._trainer
        if self._given_trainer is not None:
            trainer = self._given_trainer
        elif self.kept:
            trainer = self.context.benchmark
        else:
            if importlib.util.find_spec("torch") is None:
                raise EvidenceUnavailableError("training the networks for the evidence panel needs torch")
            from natsbench_gym.live.benchmark import LiveBenchmark
            from natsbench_gym.live.config import LiveConfig

            bench = self.context.benchmark
            trainer = LiveBenchmark(bench.space, self._config or LiveConfig(), self._data, cache_path=self._cache_path,
                                    index_to_code=bench, reference_size=0, progress=False)
            trainer.data(self._dataset_of(trainer))  # load (and check) the data now, in this thread
        if importlib.util.find_spec("captum") is not None:
            import captum.attr  # noqa: F401 - a second's import (it loads matplotlib): here, not on a request
        self._trainer = trainer
        return trainer

    # --- background work -------------------------------------------------------------------------------
    def request(self, index: int) -> dict[str, Any]:
        """Queue network ``index`` (newest request first) unless it is ready or on its way; its status."""
        index = int(index)
        with self._cond:
            if index in self._ready:
                self._ready.move_to_end(index)
                return self.status(index)
            status = self._status.get(index)
            if status is None:  # an error is final: the same training would fail again
                self._status[index] = {"state": "queued"}
                self._jobs.append(index)
            elif status["state"] == "queued":  # asked again: it moves to the front
                self._jobs.remove(index)
                self._jobs.append(index)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="evidence", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return self.status(index)

    def status(self, index: int) -> dict[str, Any]:
        """``{"state": "idle" | "queued" | "preparing" | "ready" | "error", ...}`` of network ``index``."""
        with self._cond:
            status = dict(self._status.get(int(index), {"state": "idle"}))
        if status["state"] == "preparing":
            status["elapsed_s"] = round(time.monotonic() - status.pop("since"), 1)
        return status

    def wait(self, indices, timeout: float | None = None) -> bool:
        """Block until every network of ``indices`` is ready or failed; ``False`` on timeout."""
        wanted = [int(i) for i in indices]
        for i in wanted:
            self.request(i)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while any(self._status.get(i, {}).get("state") not in ("ready", "error") for i in wanted):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(0.5, left))
        return True

    def close(self) -> None:
        """Stop the worker after the network it is preparing."""
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                index = self._jobs.pop()
                self._status[index] = {"state": "preparing", "since": time.monotonic()}
            start = time.perf_counter()
            try:
                ready = self._prepare(index, start)
            except Exception as exc:  # noqa: BLE001 - reported on the page; the session goes on
                logger.warning("evidence for architecture #%d failed: %s", index, exc)
                with self._cond:
                    self._status[index] = {"state": "error", "message": str(exc)}
                    self._cond.notify_all()
                continue
            with self._cond:
                self._ready[index] = ready
                self._status[index] = {"state": "ready", "how": ready.how, "seconds": round(ready.seconds, 2)}
                while len(self._ready) > self.max_networks:
                    dropped, _ = self._ready.popitem(last=False)
                    self._status.pop(dropped, None)
                self._cond.notify_all()

    def _prepare(self, index: int, start: float) -> _Ready:
        trainer = self._ensure_trainer()
        before = getattr(trainer, "trainings_run", 0)
        network = trainer.trained_network(index, self._dataset_of(trainer))
        how = "trained" if getattr(trainer, "trainings_run", 0) > before else "kept"
        self.trained += how == "trained"
        proba = network.predict_proba()
        labels = network.labels
        pred = proba.argmax(axis=1)
        correct = pred == labels
        per_class = []
        for label in range(network.num_classes):
            mask = labels == label
            n = int(mask.sum())
            per_class.append({"label": str(label), "n": n, "correct": int(correct[mask].sum()),
                              "accuracy": None if n == 0 else 100.0 * float(correct[mask].mean())})
        with self._cond:
            if self._grid is None:
                self._grid = _stratified_grid(labels, GRID_IMAGES, self.seed)
        return _Ready(network, proba, pred, correct, per_class, 100.0 * float(correct.mean()), how, time.perf_counter() - start)

    # --- what the interfaces show ----------------------------------------------------------------------
    def pair(self, a: int, b: int) -> dict[str, Any]:
        """The evidence of a pair, as far as it is ready (queues what is not).

        Returns ``{"source", "a", "b", "ready", "partial", ...}``: ``a``/``b`` are each network's
        status (plus ``accuracy``, ``correct``, ``total`` once ready). As soon as one network is
        ready (``partial``), ``grid`` (the fixed image sample), ``images`` (for each: a thumbnail
        ``src``, a PNG data URI, its true label, and each ready network's prediction with its
        probability; ``None`` for the other) and ``per_class`` (per-class accuracies, ``None`` for a
        network not ready) are there; once both are (``ready``), also ``different`` (images where
        they disagree, then where both are wrong) and the counts ``disagree`` and ``both_wrong``.
        """
        a, b = int(a), int(b)
        self.request(b)
        self.request(a)  # the newest first: A, then B
        out: dict[str, Any] = {"source": self.source(), "ready": False, "partial": False}
        with self._cond:
            ready = {side: self._ready.get(i) for side, i in (("a", a), ("b", b))}
        for side, index in (("a", a), ("b", b)):
            view = {"index": index, **self.status(index)}
            r = ready[side]
            if r is not None:
                view |= {"accuracy": r.accuracy, "correct": int(r.correct.sum()), "total": int(r.correct.size)}
            out[side] = view
        ra, rb = ready["a"], ready["b"]
        some = ra or rb
        if some is None:
            return out
        labels = some.network.labels
        different: list[int] = []
        if ra is not None and rb is not None:
            disagree = np.flatnonzero(ra.pred != rb.pred)
            both_wrong = np.setdiff1d(np.flatnonzero(~ra.correct & ~rb.correct), disagree)
            different = [int(i) for i in np.concatenate([disagree, both_wrong])[:DIFFERENT_IMAGES]]
            out |= {"ready": True, "disagree": int(disagree.size), "both_wrong": int(both_wrong.size)}
        else:
            out["partial"] = True

        def said(r: _Ready | None, i: int) -> dict[str, Any] | None:
            if r is None:
                return None
            return {"pred": str(int(r.pred[i])), "p": float(r.proba[i, r.pred[i]]), "correct": bool(r.correct[i])}

        grid = list(self._grid or [])
        images = {str(i): {"id": i, "src": self._thumbnail(some.network, i), "label": str(int(labels[i])),
                           "a": said(ra, i), "b": said(rb, i)}
                  for i in dict.fromkeys(grid + different)}
        per_class = [{"label": row["label"], "n": row["n"],
                      "a": None if ra is None else ra.per_class[k]["accuracy"],
                      "b": None if rb is None else rb.per_class[k]["accuracy"]}
                     for k, row in enumerate(some.per_class)]
        return out | {
            "classes": some.network.num_classes, "per_class": per_class, "grid": grid, "different": different,
            "split": some.network.split, "split_size": int(labels.size), "images": images, "layer": GRADCAM_LAYER,
        }

    def gradcam(self, index: int, image: int, target: str = "predicted") -> dict[str, Any]:
        """Grad-CAM of network ``index`` for validation image ``image``, explaining its ``target``
        class (``"predicted"``: its own prediction; ``"true"``: the true label).

        Returns ``{"state": "ready", "src" (PNG data URI: the image with the heat map over it),
        "explains", "class", "probability", "predicted", "true", "flat"}``, or the network's status
        while it is not ready (it is queued).

        Raises:
            InvalidRequestError: ``target`` or ``image`` is not one there is.
            EvidenceUnavailableError: Captum is not installed.
        """
        if target not in GRADCAM_TARGETS:
            raise InvalidRequestError(f"target {target!r} is not one of {', '.join(map(repr, GRADCAM_TARGETS))}")
        index = int(index)
        with self._cond:
            ready = self._ready.get(index)
        if ready is None:
            return {"index": index, **self.request(index)}
        n = int(ready.network.labels.size)
        if isinstance(image, bool) or not isinstance(image, (int, np.integer)) or not 0 <= image < n:
            raise InvalidRequestError(f"image {image!r} is not one of the {n} {ready.network.split} images (0..{n - 1})")
        key = (index, int(image), target)
        with self._cond:
            cached = self._cams.get(key)
            if cached is not None:
                self._cams.move_to_end(key)
                return cached
        if importlib.util.find_spec("captum") is None:
            raise EvidenceUnavailableError("Grad-CAM needs Captum, in the 'evidence' extra: pip install -e '.[evidence]'")
        out = {"index": index, "state": "ready", "image": int(image), **self._compute_cam(ready, int(image), target)}
        with self._cond:
            self._cams[key] = out
            while len(self._cams) > 256:
                self._cams.popitem(last=False)
        return out

    def _compute_cam(self, ready: _Ready, image: int, target: str) -> dict[str, Any]:
        import torch
        from captum.attr import LayerAttribution, LayerGradCam

        network = ready.network
        true = int(network.labels[image])
        predicted = int(ready.pred[image])
        cls = predicted if target == "predicted" else true
        size = network.config.input_size
        with self._cam_lock:  # Captum hooks the module: one attribution at a time
            module = network.module.eval()
            x = network.inputs([image])
            with torch.enable_grad():
                attribution = LayerGradCam(module, target_layer(module)).attribute(x, target=cls, relu_attributions=True)
            cam = LayerAttribution.interpolate(attribution, (size, size), interpolate_mode="bilinear")[0, 0].detach().numpy()
        peak = float(cam.max())
        flat = not np.isfinite(peak) or peak <= 1e-12
        cam = np.zeros_like(cam) if flat else np.clip(cam / peak, 0.0, 1.0)
        return {
            "src": _overlay_png(network.images[image], cam),
            "explains": target, "class": str(cls), "probability": float(ready.proba[image, cls]),
            "predicted": str(predicted), "true": str(true), "flat": flat,
        }

    def _thumbnail(self, network: Any, image: int) -> str:
        uri = self._thumbs.get(image)
        if uri is None:
            uri = self._thumbs[image] = _png_uri(_to_uint8_rgb(network.images[image]))
        return uri

    def network_text(self, index: int) -> dict[str, Any] | None:
        """One ready network's per-class accuracy and overall accuracy (``None`` while not ready)."""
        with self._cond:
            r = self._ready.get(int(index))
        if r is None:
            return None
        return {"accuracy": r.accuracy, "per_class": r.per_class, "how": r.how}


def _stratified_grid(labels: np.ndarray, size: int, seed: int) -> list[int]:
    """``size`` image ids drawn round-robin over the classes (seeded), sorted by class then id."""
    rng = np.random.default_rng([seed, 0xE7])
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < min(size, labels.size):
        for pool in pools:
            if pool and len(chosen) < size:
                chosen.append(int(pool.pop(0)))
    return sorted(chosen, key=lambda i: (int(labels[i]), i))


def _to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """A stored image ``(C, H, W)`` as ``(H, W, 3)`` uint8, scaled to its own range."""
    x = np.asarray(image, dtype=np.float64)
    x = np.repeat(x, 3, axis=0) if x.shape[0] == 1 else x[:3]
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return (255 * np.moveaxis(x, 0, -1)).round().astype(np.uint8)


def _jet(values: np.ndarray) -> np.ndarray:
    """The classic jet colour map of values in [0, 1] (blue: no attention, red: most), ``(..., 3)``."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # red, green, blue peaks
    return np.clip(1.5 - np.abs(4.0 * (v - centres)), 0.0, 1.0)


def _overlay_png(image: np.ndarray, cam: np.ndarray, pixels: int = CAM_PIXELS, alpha: float = 0.5) -> str:
    """The image (grey or colour) with the Grad-CAM heat map over it, ``pixels`` square, as a data URI."""
    from PIL import Image

    base = Image.fromarray(_to_uint8_rgb(image)).resize((pixels, pixels), Image.Resampling.BILINEAR)
    heat = Image.fromarray((255 * cam).round().astype(np.uint8)).resize((pixels, pixels), Image.Resampling.BILINEAR)
    heat_rgb = _jet(np.asarray(heat, dtype=np.float64) / 255.0)
    blended = (1 - alpha) * np.asarray(base, dtype=np.float64) / 255.0 + alpha * heat_rgb
    return _png_uri((255 * blended).round().astype(np.uint8))


def _png_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

"""The evidence panel's data: predictions, per-class accuracy and Grad-CAM of the two networks of a pair.

Networks are trained with a tiny live budget (seconds); the browser test shows them on the page.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum", reason="Grad-CAM needs the 'evidence' extra: pip install -e '.[evidence]'")
pytest.importorskip("flask", reason="the web app needs the 'ui' extra")

import natsbench_gym  # noqa: E402
from natsbench_gym.live import LiveConfig  # noqa: E402
from natsbench_gym.live.benchmark import LiveBenchmark  # noqa: E402
from natsbench_gym.rewards import ScoringContext  # noqa: E402
from preference_ui import ElicitationSession, InvalidRequestError, UnknownPairError  # noqa: E402
from preference_ui.evidence import CAM_PIXELS, GRID_IMAGES, EvidenceProvider, target_layer  # noqa: E402
from preference_ui.web import create_app  # noqa: E402

TINY = LiveConfig(epochs=1, channels=4, cells_per_stage=1, batch_size=32, input_size=8, max_train_samples=120, latency_runs=1)


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NATSBENCH_GYM_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture()
def table_session(tmp_path: Path, tiny_tables: Path) -> ElicitationSession:
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    session = ElicitationSession.open(tmp_path / "s.jsonl", bench, "cifar10", population=8, pairs=6, seed=3)
    session.evidence = EvidenceProvider(session.context, config=TINY, cache_path=tmp_path / "live.sqlite", seed=3)
    return session


def png_size(uri: str) -> tuple[int, int]:
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size


def test_a_table_backend_s_pair_is_trained_here_and_says_so(table_session):
    pair = table_session.pending
    first = table_session.evidence_for_pair(pair.a, pair.b)
    assert not first["ready"] and first["a"]["state"] in ("queued", "preparing")
    assert table_session.evidence.wait([pair.a, pair.b], timeout=300)
    view = table_session.evidence_for_pair(pair.a, pair.b)
    assert view["ready"] and view["a"]["state"] == view["b"]["state"] == "ready"
    source = view["source"]
    assert source["kind"] == "trained_here"
    assert source["text"].startswith("Trained here on sklearn digits (10 classes, 8x8), 1 epochs")
    assert "not the cifar10 networks" in source["text"], "never presented as the table's CIFAR networks"
    assert view["classes"] == 10 and len(view["per_class"]) == 10
    assert len(view["grid"]) == GRID_IMAGES and view["grid"] == sorted(view["grid"], key=lambda i: (int(view["images"][str(i)]["label"]), i))
    assert len({view["images"][str(i)]["label"] for i in view["grid"]}) == 10, "the grid covers every class"
    for image in view["images"].values():
        assert png_size(image["src"]) == (8, 8)  # the digits' own pixels
        for side in ("a", "b"):
            p = image[side]
            assert p["correct"] == (p["pred"] == image["label"]) and 0 < p["p"] <= 1
    differ = [i for i in view["different"]]
    assert all(not (view["images"][str(i)]["a"]["correct"] and view["images"][str(i)]["b"]["correct"]
                    and view["images"][str(i)]["a"]["pred"] == view["images"][str(i)]["b"]["pred"]) for i in differ)
    # per class, as the networks predict the split
    total = sum(row["n"] for row in view["per_class"])
    assert total == view["split_size"] == view["a"]["total"]
    assert sum(row["n"] * row["a"] / 100 for row in view["per_class"]) == pytest.approx(view["a"]["correct"])


def test_the_grid_is_the_same_for_every_pair_and_the_weights_are_kept(table_session, tmp_path):
    population = json.loads(table_session.state_path.read_text())["population"]
    a, b, c = population[:3]
    ev = table_session.evidence
    assert ev.wait([a, b, c], timeout=300)
    assert ev.pair(a, b)["grid"] == ev.pair(a, c)["grid"]
    assert ev.trained == 3 and len(list((tmp_path / "live-weights").glob("*.pt"))) == 3
    again = EvidenceProvider(table_session.context, config=TINY, cache_path=tmp_path / "live.sqlite", seed=3)
    assert again.wait([a, b], timeout=300)
    assert again.trained == 0 and again.pair(a, b)["a"]["how"] == "kept", "trained once: cached for the next session"
    assert again.pair(a, b)["images"] == ev.pair(a, b)["images"]


def test_gradcam_of_both_networks_for_one_image(table_session):
    pair = table_session.pending
    assert table_session.evidence.wait([pair.a, pair.b], timeout=300)
    view = table_session.evidence_for_pair(pair.a, pair.b)
    image = view["grid"][3]
    cams = {side: table_session.gradcam(index, image) for side, index in (("a", pair.a), ("b", pair.b))}
    for side, cam in cams.items():
        assert cam["state"] == "ready" and cam["image"] == image and cam["explains"] == "predicted"
        assert png_size(cam["src"]) == (CAM_PIXELS, CAM_PIXELS)
        assert cam["predicted"] == view["images"][str(image)][side]["pred"] and cam["class"] == cam["predicted"]
        assert cam["true"] == view["images"][str(image)]["label"]
    true = table_session.gradcam(pair.a, image, "true")
    assert true["explains"] == "true" and true["class"] == true["true"]
    assert table_session.gradcam(pair.a, image) is cams["a"] or table_session.gradcam(pair.a, image) == cams["a"]
    with pytest.raises(InvalidRequestError, match="target 'mine' is not one of"):
        table_session.gradcam(pair.a, image, "mine")
    with pytest.raises(InvalidRequestError, match="image 99999 is not one of the"):
        table_session.gradcam(pair.a, 99999)
    with pytest.raises(UnknownPairError, match="not one this session shows"):
        table_session.gradcam(next(i for i in range(15625) if not table_session._shown(i)), image)


def test_gradcam_at_lastact_is_the_class_activation_map(tmp_path):
    """Why ``lastact``: the classifier is linear in its global average, so Grad-CAM's channel weights
    are the classifier's weights of the class (divided by the map's area): Grad-CAM equals CAM there."""
    from captum.attr import LayerGradCam

    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite")
    network = bench.trained_network("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    module, x = network.module, network.inputs([0, 1, 2])
    layer = target_layer(module)
    assert layer is module.lastact
    features = {}
    handle = layer.register_forward_hook(lambda m, i, o: features.setdefault("map", o.detach().clone()))
    with torch.no_grad():
        module(x)
    handle.remove()
    cls = 4
    cam = torch.relu(torch.einsum("k,nkhw->nhw", module.classifier.weight[cls].detach(), features["map"]))
    cam = cam / (features["map"].shape[2] * features["map"].shape[3])
    grad_cam = LayerGradCam(module, layer).attribute(x, target=cls, relu_attributions=True)[:, 0]
    assert torch.allclose(grad_cam, cam, atol=1e-5)


def test_a_live_backend_shows_the_networks_it_trained(tmp_path):
    bench = LiveBenchmark("topology", TINY, cache_path=tmp_path / "live.sqlite", reference_size=2)
    context = ScoringContext.create(bench, "cifar10")
    session = ElicitationSession.open(tmp_path / "s.jsonl", bench, "cifar10", population=3, pairs=2, seed=1)
    pair = session.pending
    trained = bench.trainings_run
    ev = session.evidence
    assert ev.kept and ev.source()["kind"] == "kept"
    assert ev.wait([pair.a, pair.b], timeout=300)
    assert bench.trainings_run == trained and ev.trained == 0, "the metrics' own networks, loaded"
    view = session.evidence_for_pair(pair.a, pair.b)
    assert "as the live backend trained them" in view["source"]["text"]
    for side, index in (("a", pair.a), ("b", pair.b)):
        result = bench.training_result(index, "cifar10")
        assert view[side]["accuracy"] == pytest.approx(result.valid_accuracy)
        assert [row[side] for row in view["per_class"]] == pytest.approx(list(result.per_class_valid))
    assert context.benchmark is bench


def test_the_evidence_api(table_session):
    client = create_app(table_session).test_client()
    pair = table_session.pending
    state = client.get("/api/state").get_json()
    assert state["evidence"] == {"available": True, "why": None}
    response = client.get(f"/api/evidence?a={pair.a}&b={pair.b}")
    assert response.status_code == 202 and response.get_json()["ready"] is False
    assert table_session.evidence.wait([pair.a, pair.b], timeout=300)
    response = client.get(f"/api/evidence?a={pair.a}&b={pair.b}")
    assert response.status_code == 200 and response.get_json()["ready"]
    image = response.get_json()["grid"][0]
    cam = client.get(f"/api/gradcam?arch={pair.b}&image={image}&target=true")
    assert cam.status_code == 200 and cam.get_json()["explains"] == "true"
    assert cam.headers["Cache-Control"] == "no-store"
    for url, status, message in [
        (f"/api/evidence?a={pair.a}", 400, "missing query argument(s): b"),
        (f"/api/evidence?a={pair.a}&b=x", 400, "must be a non-negative integer, got 'x'"),
        (f"/api/evidence?a={pair.a}&b=-1", 400, "must be a non-negative integer"),
        (f"/api/evidence?a={pair.a}&b={pair.b}&c=1", 400, "unexpected query argument(s): c"),
        (f"/api/evidence?a={pair.a}&b=15624", 404, "not one this session shows"),
        (f"/api/gradcam?arch={pair.a}&image={image}&target=who", 400, "target 'who' is not one of"),
        (f"/api/gradcam?arch={pair.a}&image=100000", 400, "is not one of the"),
        (f"/api/gradcam?arch={pair.a}", 400, "missing query argument(s): image"),
    ]:
        response = client.get(url)
        assert response.status_code == status, url
        assert message in response.get_json()["error"], url


def test_a_failing_training_is_reported_not_raised(tmp_path, tiny_tables):
    class Broken:
        def trained_network(self, index, dataset):
            raise RuntimeError(f"no network {index}")

        def trained_on(self, dataset):
            return "nothing"

    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    ev = EvidenceProvider(ScoringContext.create(bench, "cifar10"), trainer=Broken())
    assert ev.wait([1, 2], timeout=60)
    view = ev.pair(1, 2)
    assert not view["ready"] and view["a"]["state"] == "error" and "no network 1" in view["a"]["message"]


def test_user_image_data_trains_the_evidence_networks(tmp_path, tiny_tables):
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    x = rng.normal(size=(120, 12, 12)).astype(np.float32) + y[:, None, None]
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    ev = EvidenceProvider(ScoringContext.create(bench, "cifar10"), data=(x, y), config=TINY, cache_path=tmp_path / "l.sqlite")
    assert ev.wait([5, 6], timeout=300)
    view = ev.pair(5, 6)
    assert view["classes"] == 3 and "custom (3 classes, 8x8), 1 epochs" in view["source"]["text"]
    assert png_size(view["images"][str(view["grid"][0])]["src"]) == (12, 12)

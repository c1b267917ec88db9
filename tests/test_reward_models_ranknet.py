"""reward_models.ranknet: learning, determinism, persistence, ensembles, the reward-model protocol."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from natsbench_gym.errors import MissingMetricError  # noqa: E402
from natsbench_gym.rewards import RewardModel, ScoringContext, as_reward_model  # noqa: E402
from natsbench_gym.types import Metric  # noqa: E402
from reward_models import fixed  # noqa: E402
from reward_models.errors import ModelFileError, NotFittedError, PreferenceDataError  # noqa: E402
from reward_models.evaluation import pairwise_accuracy, top_k_precision  # noqa: E402
from reward_models.human_preference import SyntheticUser  # noqa: E402
from reward_models.preferences import ArchRef, Comparison, PreferenceDataset  # noqa: E402
from reward_models.ranknet import RankNetConfig, RankNetModule, RankNetRewardModel  # noqa: E402
from reward_models.selection import RandomPairSelector  # noqa: E402


@pytest.fixture(scope="module")
def ctx(random_metrics_bench) -> ScoringContext:
    return ScoringContext.create(random_metrics_bench, "cifar10", 200, accuracy_metric="test_accuracy")


def judged(ctx, preference, n_pairs=60, population=range(300), seed=0):
    rng = np.random.default_rng(seed)
    pairs = RandomPairSelector().select(population, n_pairs, rng)
    return PreferenceDataset(SyntheticUser(preference, ctx).judge_many(pairs, rng, selector=pairs.strategy))


@pytest.fixture(scope="module")
def linear_user():
    return fixed.weighted_sum({"accuracy": 2.0, "latency": 1.0, "params": 0.5}, name="known_linear")


@pytest.fixture(scope="module")
def fitted(ctx, linear_user) -> RankNetRewardModel:
    return RankNetRewardModel(seed=0).fit(judged(ctx, linear_user, 200), ctx)


def test_learns_a_known_linear_preference(ctx, linear_user, fitted):
    test = np.arange(1000, 1400)  # architectures never judged
    truth = linear_user.score_many(ctx.query(test), ctx)
    scores = fitted.score_many(ctx.query(test, fitted.required_metrics(ctx)), ctx)
    assert pairwise_accuracy(scores, truth) > 0.9
    assert top_k_precision(scores, truth, 10) >= 0.6


def test_is_a_reward_model_for_envs_and_agents(ctx, fitted):
    assert isinstance(fitted, RewardModel)
    assert as_reward_model(fitted) is fitted
    assert fitted.required_metrics(ctx) == (Metric.TEST_ACCURACY, Metric.LATENCY, Metric.PARAMS, Metric.FLOPS)
    metrics = ctx.query([3, 4, 5])
    scores = fitted.score_many(metrics, ctx)
    assert scores.shape == (3,) and scores.dtype == np.float64
    np.testing.assert_allclose(fitted.loss_many(metrics, ctx), -scores)
    np.testing.assert_allclose(fixed.loss_many(fitted, metrics, ctx), -scores)
    assert fitted.score({m: v[0] for m, v in metrics.items()}, ctx) == pytest.approx(scores[0])
    p = fitted.preference_probability({m: v[:1] for m, v in metrics.items()}, {m: v[1:2] for m, v in metrics.items()})
    assert 0 < p[0] < 1


def test_the_same_seed_gives_the_same_scores(ctx, linear_user):
    data = judged(ctx, linear_user, 30)
    metrics = ctx.query(np.arange(500))
    first = RankNetRewardModel(seed=3).fit(data, ctx).score_many(metrics, ctx)
    again = RankNetRewardModel(seed=3).fit(data, ctx).score_many(metrics, ctx)
    other = RankNetRewardModel(seed=4).fit(data, ctx).score_many(metrics, ctx)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("prior", [None, "metric-family"])
def test_save_load_round_trip_gives_identical_scores(tmp_path, ctx, linear_user, prior):
    fitted = RankNetRewardModel(seed=0, prior=prior).fit(judged(ctx, linear_user, 200), ctx)
    assert fitted.mode == ("network" if prior is None else "prior")
    path = tmp_path / "user.pt"
    fitted.save(path)
    loaded = RankNetRewardModel.load(path)
    metrics = ctx.query(None, fitted.required_metrics(ctx))
    np.testing.assert_array_equal(loaded.score_many(metrics, ctx), fitted.score_many(metrics, ctx))
    assert loaded.config == fitted.config
    assert loaded.metadata["comparisons"] == 200 and loaded.metadata["judges"] == ["synthetic:known_linear"]
    assert loaded.metadata["dataset"] == "cifar10" and loaded.metadata["accuracy_metric"] == "test_accuracy"
    np.testing.assert_array_equal(loaded.member_scores(metrics, ctx), fitted.member_scores(metrics, ctx))
    assert loaded.mode == fitted.mode
    payload = torch.load(path, weights_only=True)  # plain tensors and containers: safe loading works
    assert payload["format"] == "natsbench-gym/ranknet"


def test_loading_something_else_fails_clearly(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a readable RankNet model file"):
        RankNetRewardModel.load(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ModelFileError, match="not a RankNet model file"):
        RankNetRewardModel.load(other)
    with pytest.raises(FileNotFoundError):
        RankNetRewardModel.load(tmp_path / "missing.pt")


def test_ensembles_average_their_members(ctx, linear_user):
    model = RankNetRewardModel(ensemble=4, bootstrap=True, seed=0, prior=None).fit(judged(ctx, linear_user, 40), ctx)
    metrics = ctx.query(np.arange(50))
    members = model.member_scores(metrics, ctx)
    assert members.shape == (4, 50)
    np.testing.assert_allclose(model.score_many(metrics, ctx), members.mean(axis=0))
    assert not np.allclose(members[0], members[1])


@pytest.mark.parametrize("prior", [None, "metric-family"])
def test_monotone_scores_never_fall_when_a_utility_rises(ctx, prior):
    # a non-monotone user, so that the prior cannot explain the judgments and the network is trained
    lat = ctx.stats(Metric.LATENCY)
    user = lambda m: m[Metric.TEST_ACCURACY] / 100 - abs(m[Metric.LATENCY] - (lat.min + lat.max) / 2) / (lat.max - lat.min)  # noqa: E731
    model = RankNetRewardModel(seed=0, prior=prior).fit(judged(ctx, user, 80), ctx)
    assert model.mode == ("network" if prior is None else "prior+network")
    x = np.random.default_rng(0).uniform(0, 1, size=(200, len(model.input_names)))
    base = model.predict(x)
    for j in range(x.shape[1]):
        up = x.copy()
        up[:, j] = np.minimum(up[:, j] + 0.1, 1.0)
        assert np.all(model.predict(up) >= base - 1e-12)


def test_non_monotone_networks_can_learn_a_peak(ctx):
    """A user who wants latency near the space middle: only monotone=False can express it."""
    lat = ctx.stats(Metric.LATENCY)
    middle = (lat.min + lat.max) / 2
    user = lambda m: -abs(m[Metric.LATENCY] - middle)  # noqa: E731
    data = judged(ctx, user, 300)
    test = np.arange(2000, 2400)
    truth = np.array([user({Metric.LATENCY: v}) for v in ctx.query(test, [Metric.LATENCY])[Metric.LATENCY]])
    free = RankNetRewardModel(monotone=False, features=("latency",), seed=0, max_epochs=600).fit(data, ctx)
    mono = RankNetRewardModel(features=("latency",), seed=0).fit(data, ctx)
    metrics = ctx.query(test, [Metric.LATENCY])
    assert pairwise_accuracy(free.score_many(metrics, ctx), truth) > 0.85
    assert pairwise_accuracy(mono.score_many(metrics, ctx), truth) < 0.7


def test_ties_and_early_stopping_on_a_validation_split(ctx, linear_user):
    data = judged(ctx, "flop_constraint", 80)  # many ties between violating architectures
    model = RankNetRewardModel(seed=0, min_validation_pairs=10, prior=None).fit(data, ctx)
    assert model.metadata["monitored_loss"] == "validation" and model.metadata["validation_pairs"] == 16
    assert RankNetRewardModel(seed=0, prior=None).fit(data, ctx).metadata["monitored_loss"] == "training"  # default: >= 250 pairs
    few = RankNetRewardModel(seed=0, prior=None).fit(judged(ctx, linear_user, 5), ctx)
    assert few.metadata["monitored_loss"] == "training" and few.metadata["validation_pairs"] == 0
    assert few.metadata["epochs"] <= few.config.max_epochs


def test_fit_errors(ctx):
    with pytest.raises(PreferenceDataError, match="at least one comparison"):
        RankNetRewardModel().fit([], ctx)
    size = Comparison("size", ArchRef(0, "8:8:8:8:8"), ArchRef(1, "8:8:8:8:16"), "a", "alice")
    with pytest.raises(PreferenceDataError, match="size space; the context's benchmark is topology"):
        RankNetRewardModel().fit([size], ctx)
    with pytest.raises(PreferenceDataError, match="probabilities in"):
        RankNetRewardModel().fit_arrays(np.array([0]), np.array([1]), np.array([2.0]), ctx)
    with pytest.raises(MissingMetricError, match="train_time is not available"):
        RankNetRewardModel(features=("train_time",)).fit_arrays(np.array([0]), np.array([1]), np.array([1.0]), ctx)


def test_unfitted_models_say_how_to_fit():
    model = RankNetRewardModel()
    assert not model.is_fitted
    with pytest.raises(NotFittedError, match=r"call fit\(comparisons, context\)"):
        model.score_many({Metric.FLOPS: np.zeros(2)})
    with pytest.raises(NotFittedError):
        model.save("never.pt")


def test_config_validates():
    with pytest.raises(ValueError, match="ensemble must be an int >= 1"):
        RankNetConfig(ensemble=0)
    with pytest.raises(Exception, match="unknown feature representation 'ranks'; did you mean 'rank'"):
        RankNetConfig(representation="ranks")
    with pytest.raises(Exception, match="did you mean 'latency'"):
        RankNetConfig(features=("latnecy",))
    with pytest.raises(ValueError, match="learning_rate"):
        RankNetRewardModel(learning_rate=0.0)
    assert RankNetRewardModel(hidden=0, seed=2).config.hidden == 0


def test_linear_and_representation_variants_fit(ctx, linear_user):
    data = judged(ctx, linear_user, 50)
    for overrides in ({"hidden": 0}, {"representation": "utility"}, {"representation": "rank"}):
        model = RankNetRewardModel(seed=0, **overrides).fit(data, ctx)
        assert model.normaliser.num_inputs == (8 if "hidden" in overrides else 4)
        assert np.isfinite(model.score_many(ctx.query(np.arange(10), model.required_metrics(ctx)), ctx)).all()


def test_module_shapes():
    module = RankNetModule(inputs=3, hidden=5, members=2, generator=torch.Generator().manual_seed(0))
    assert module(torch.zeros(7, 3, dtype=torch.float64)).shape == (2, 7)


def test_importing_reward_models_does_not_import_torch():
    code = "import sys, reward_models, reward_models.fixed, reward_models.selection, reward_models.human_preference; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.realdata
@pytest.mark.parametrize("prior", [None, "metric-family"])
def test_scores_the_whole_topology_space(topology_bench, prior):
    """Whole-space scoring works in both modes (its speed is measured by benchmarks/bench_ranknet.py)."""
    ctx = ScoringContext.create(topology_bench, "cifar100", 200, accuracy_metric="test_accuracy")
    model = RankNetRewardModel(seed=0, prior=prior).fit(judged(ctx, "weighted", 100, range(15625)), ctx)
    metrics = ctx.query(None, model.required_metrics(ctx))
    scores = model.score_many(metrics, ctx)
    assert scores.shape == (15625,) and np.isfinite(scores).all()
    chunks = np.concatenate([model.score_many({m: v[i : i + 5000] for m, v in metrics.items()}, ctx) for i in range(0, 15625, 5000)])
    np.testing.assert_allclose(chunks, scores)  # an architecture's score does not depend on its batch


@pytest.mark.realdata
@pytest.mark.slow
def test_ten_comparisons_find_the_most_accurate_architectures(topology_bench):
    """A small version of Table I: accuracy user, CIFAR-100, 10 random pairs, 5 repetitions."""
    ctx = ScoringContext.create(topology_bench, "cifar100", 200, accuracy_metric="test_accuracy")
    user = SyntheticUser("accuracy", ctx)
    precisions = []
    for rep in range(5):
        rng = np.random.default_rng(rep)
        archs = rng.choice(15625, 200, replace=False)
        pairs = RandomPairSelector().select(archs[:100], 10, rng)
        model = RankNetRewardModel(seed=rep).fit(user.judge_many(pairs, rng), ctx)
        scores = model.score_many(ctx.query(archs[100:], model.required_metrics(ctx)), ctx)
        precisions.append(top_k_precision(scores, user.utilities(archs[100:]), 10))
    assert np.mean(precisions) >= 0.7


def test_version_1_model_files_still_load_as_plain_ranknets(tmp_path, ctx, linear_user):
    model = RankNetRewardModel(seed=0, prior=None).fit(judged(ctx, linear_user, 40), ctx)
    path = tmp_path / "v2.pt"
    model.save(path)
    payload = torch.load(path, weights_only=True)
    payload["version"] = 1  # what 0.1.0 wrote: no prior, no input count, no prior fields in the config
    for key in ("prior", "inputs"):
        payload.pop(key)
    for key in ("prior", "prior_tolerance"):
        payload["config"].pop(key)
    old = tmp_path / "v1.pt"
    torch.save(payload, old)
    loaded = RankNetRewardModel.load(old)
    assert loaded.mode == "network" and loaded.config.prior is None
    metrics = ctx.query(np.arange(100), loaded.required_metrics(ctx))
    np.testing.assert_array_equal(loaded.score_many(metrics, ctx), model.score_many(metrics, ctx))


# --- pinned scores: the fit's parts must reproduce the one-piece fit bit for bit ------------------
def _peak_user(ctx):
    lat = ctx.stats(Metric.LATENCY)
    return lambda m: m[Metric.TEST_ACCURACY] / 100 - abs(m[Metric.LATENCY] - (lat.min + lat.max) / 2) / (lat.max - lat.min)


#: Computed with the one-piece ``fit_arrays`` (before it was split into features, prior, loss and
#: trainer): mode, epochs, best epoch, best monitored loss and the scores of architectures
#: 1000, 1500, 2000, 2500 and 2999, for each path through the fit.
PINNED_FITS = {
    "prior": (dict(seed=0), "accuracy", 10, ("prior", 0, 0, None, [0.012901101693534194, 0.047914746657208344, 0.9772817723203566, 0.7337426935131631, 0.30045404616723875])),
    "prior+network": (dict(seed=1, max_epochs=200), "peak", 60, ("prior+network", 200, 190, 0.32607313318863973, [1.631922989248799, 1.4189205240546383, 7.959048165086649, 6.093521030628191, 3.309157394269788])),
    "network": (dict(seed=2, prior=None), "linear", 40, ("network", 379, 329, 0.025097005552247975, [1.9412729220875171, -11.763746540570976, 20.940942257872674, 16.366088478934007, 4.8035605639170065])),
    "ensemble": (dict(seed=3, prior=None, ensemble=3, bootstrap=True, max_epochs=150), "linear", 40, ("network", 150, 150, 0.026868890502213888, [0.07418911325138937, -11.17646892116521, 17.748331210225206, 14.242590352243802, 3.4635664782348186])),
    "validation": (dict(seed=4, prior=None, min_validation_pairs=10), "flop_constraint", 80, ("network", 305, 255, 0.1570630705438173, [-1.6289041841834457, 0.19713166690836192, -0.8861956467374613, -3.529685002983742, -2.0047002915049807])),
    "rank-linear": (dict(seed=5, representation="rank", hidden=0, max_epochs=200), "peak", 50, ("prior+network", 200, 200, 0.39208707692499645, [1.0672991460113905, 0.5280507054033371, 4.649540144303562, 3.0464749727826184, 1.5555659341664925])),
    "free": (dict(seed=6, monotone=False, prior=None, max_epochs=120), "peak", 50, ("network", 120, 120, 0.07210246952309571, [1.0045096806595748, 5.290322400372174, 10.5217332620719, 10.773215949917052, 8.453585587634244])),
}


@pytest.mark.parametrize("case", sorted(PINNED_FITS))
def test_fits_reproduce_the_pinned_scores(ctx, linear_user, case):
    """The torch engine (autograd) reproduces the pinned fits bit for bit."""
    overrides, preference, n, (mode, epochs, best_epoch, best_loss, scores) = PINNED_FITS[case]
    preference = {"peak": _peak_user(ctx), "linear": linear_user}.get(preference, preference)
    rng = np.random.default_rng(0)
    pairs = RandomPairSelector().select(range(300), n, rng)
    data = PreferenceDataset(SyntheticUser(preference, ctx).judge_many(pairs, rng, selector=pairs.strategy))
    model = RankNetRewardModel(**overrides, engine="torch").fit(data, ctx)
    got = model.score_many(ctx.query([1000, 1500, 2000, 2500, 2999], model.required_metrics(ctx)), ctx)
    meta = model.metadata
    assert (model.mode, meta["epochs"], meta["best_epoch"]) == (mode, epochs, best_epoch)
    # Same machine, same torch: the same bits; the tolerance only absorbs other CPUs' float rounding.
    np.testing.assert_allclose(got, scores, rtol=1e-9, atol=1e-12)
    if best_loss is None:
        assert meta["best_loss"] is None
    else:
        assert meta["best_loss"] == pytest.approx(best_loss, rel=1e-9)


@pytest.mark.parametrize("case", sorted(PINNED_FITS))
def test_numpy_engine_matches_the_pinned_fits(ctx, linear_user, case):
    """The default engine (closed-form numpy gradients) runs the same algorithm: on these fits the
    same steps and stopping epoch, scores equal to rounding (measured: at most 8e-9 apart)."""
    overrides, preference, n, (mode, epochs, best_epoch, best_loss, scores) = PINNED_FITS[case]
    preference = {"peak": _peak_user(ctx), "linear": linear_user}.get(preference, preference)
    rng = np.random.default_rng(0)
    pairs = RandomPairSelector().select(range(300), n, rng)
    data = PreferenceDataset(SyntheticUser(preference, ctx).judge_many(pairs, rng, selector=pairs.strategy))
    model = RankNetRewardModel(**overrides).fit(data, ctx)
    got = model.score_many(ctx.query([1000, 1500, 2000, 2500, 2999], model.required_metrics(ctx)), ctx)
    meta = model.metadata
    assert (model.mode, meta["epochs"], meta["best_epoch"]) == (mode, epochs, best_epoch)
    np.testing.assert_allclose(got, scores, rtol=1e-6, atol=1e-9)
    if best_loss is not None:
        assert meta["best_loss"] == pytest.approx(best_loss, rel=1e-6)


# --- the fit's parts, each on its own ----------------------------------------------------------------
def test_preference_loss_is_the_bradley_terry_cross_entropy():
    from reward_models.ranknet import PreferenceLoss

    scores = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype=torch.float64)  # 2 members, 3 archs
    a, b = torch.tensor([0, 2]), torch.tensor([1, 1])
    y = torch.tensor([1.0, 0.5], dtype=torch.float64)
    p = torch.sigmoid(scores[:, a] - scores[:, b])
    by_hand = -(y * p.log() + (1 - y) * (1 - p).log())  # (members, pairs)
    loss = PreferenceLoss()
    assert float(loss(scores, a, b, y)) == pytest.approx(float(by_hand.mean(dim=1).sum()))
    weights = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)  # bootstrap weights per member
    assert float(loss(scores, a, b, y, weights)) == pytest.approx(float((by_hand * weights).mean(dim=1).sum()))
    # a tie is best explained by equal scores: member 1 scores archs 2 and 1 alike
    assert float(by_hand[1, 1]) == pytest.approx(np.log(2))


def test_the_trainer_splits_stops_early_and_keeps_the_best_step():
    from reward_models.ranknet import RankNetTrainer

    trainer = RankNetTrainer(min_validation_pairs=10, patience=5)
    rng = np.random.default_rng(0)
    train, val = trainer.split(100, rng)
    assert val.size == 20 and sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    train, val = trainer.split(40, rng)  # 8 would be held out: fewer than 10
    assert val.size == 0 and train.size == 40
    # a learnable toy problem: the first input decides
    x = rng.uniform(size=(30, 2))
    a, b = np.arange(0, 30, 2), np.arange(1, 30, 2)
    y = (x[a, 0] > x[b, 0]).astype(np.float64)
    module = RankNetModule(2, 4, members=2, generator=torch.Generator().manual_seed(0))
    report = trainer.train(module, x, a, b, y, seed=0)
    assert report.monitored == "training" and report.validation_pairs == 0 and not module.training
    assert len(report.history) == report.epochs < trainer.max_epochs  # patience 5 stopped it
    assert min(report.history) <= report.best_loss <= min(report.history) + trainer.tolerance  # smaller gains do not count
    assert report.history[report.best_epoch - 1] == report.best_loss < report.history[0]
    assert report.epochs - report.best_epoch <= trainer.patience
    held_out = RankNetTrainer(min_validation_pairs=3, patience=5)
    module = RankNetModule(2, 4, members=2, generator=torch.Generator().manual_seed(0))
    report = held_out.train(module, x, a, b, y, seed=0)
    _, val = held_out.split(a.size, np.random.default_rng(0))  # the seed's first draw is the split
    assert report.monitored == "validation" and report.validation_pairs == val.size == 3
    with torch.no_grad():  # the weights kept are those of the best step
        kept = held_out.loss(module(torch.from_numpy(x)), torch.from_numpy(a[val]), torch.from_numpy(b[val]), torch.from_numpy(y[val]))
    assert float(kept) / 2 == pytest.approx(report.best_loss, rel=1e-12)
    module = RankNetModule(2, 4, members=2, generator=torch.Generator().manual_seed(0))
    report = trainer.train(module, x, a, b, y, seed=0)
    again = RankNetModule(2, 4, members=2, generator=torch.Generator().manual_seed(0))
    assert trainer.train(again, x, a, b, y, seed=0) == report  # seeded
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        RankNetTrainer(patience=0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        RankNetTrainer(learning_rate=-1.0)


@pytest.mark.parametrize("monotone", [True, False])
@pytest.mark.parametrize("hidden", [0, 4])
@pytest.mark.parametrize("form", ["plain", "per-member inputs", "offset", "weights", "validation", "custom weights per member"])
def test_numpy_engine_takes_the_autograd_steps(form, hidden, monotone):
    """Each step of the numpy engine (closed-form gradient, Adam) is the torch engine's step: a
    wrong sign, a missing |w| chain factor or weight decay in the gradient fails here."""
    from reward_models.ranknet import RankNetTrainer

    rng = np.random.default_rng(7)
    members, rows = 3, 12
    x = rng.normal(size=(members, rows, 3) if form == "per-member inputs" else (rows, 3))
    a, b = rng.integers(0, rows, 40), rng.integers(0, rows, 40)
    y = rng.choice([0.0, 0.5, 1.0], size=40)
    kwargs = {}
    if form == "offset":
        kwargs["offset"] = rng.normal(size=rows)
    if form in ("weights", "custom weights per member"):
        kwargs["weights"] = rng.integers(0, 3, size=(members, 40)).astype(np.float64)
        kwargs["per_member"] = form != "weights"
    settings = dict(max_epochs=6, bootstrap=True, weight_decay=0.01, hidden_weight_decay=0.05, learning_rate=0.05)
    if form == "validation":
        settings["min_validation_pairs"] = 5
    out = {}
    for engine in ("torch", "numpy"):
        module = RankNetModule(3, hidden, members, monotone, torch.Generator().manual_seed(3))
        report = RankNetTrainer(**settings, engine=engine).train(module, x, a, b, y, seed=1, **kwargs)
        out[engine] = (report, {k: v.detach().numpy().copy() for k, v in module.state_dict().items()})
    (rt, wt), (rn, wn) = out["torch"], out["numpy"]
    assert (rn.epochs, rn.best_epoch, rn.monitored, rn.validation_pairs) == (rt.epochs, rt.best_epoch, rt.monitored, rt.validation_pairs)
    np.testing.assert_allclose(rn.history, rt.history, rtol=1e-10)
    for name in wt:
        np.testing.assert_allclose(wn[name], wt[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_engine_settings_are_checked():
    from natsbench_gym.errors import UnknownNameError
    from reward_models.ranknet import PreferenceLoss, RankNetTrainer

    with pytest.raises(UnknownNameError, match="training engine 'jax'"):
        RankNetTrainer(engine="jax")
    with pytest.raises(UnknownNameError, match="training engine"):
        RankNetConfig(engine="tf")

    class Hinge(PreferenceLoss):
        """A loss the numpy engine has no gradient for."""

    with pytest.raises(ValueError, match="engine='torch'"):
        RankNetTrainer(loss=Hinge())
    assert RankNetTrainer(loss=Hinge(), engine="torch").engine == "torch"
    assert RankNetTrainer.from_config(RankNetConfig(engine="torch")).engine == "torch"


def test_the_trainer_is_swappable(ctx, linear_user):
    from reward_models.ranknet import RankNetTrainer

    config = RankNetConfig(learning_rate=0.05, patience=7, prior=None, bootstrap=True)
    default = RankNetTrainer.from_config(config)
    assert (default.learning_rate, default.patience, default.bootstrap) == (0.05, 7, True)
    assert RankNetRewardModel(config).trainer == default

    class Recording:
        """A trainer of its own: a short run of the default one, recording what it was given."""

        def __init__(self):
            self.calls = []

        def train(self, module, inputs, a, b, targets, seed):
            self.calls.append((inputs.shape, a.size, seed))
            return RankNetTrainer(max_epochs=3).train(module, inputs, a, b, targets, seed)

    trainer = Recording()
    model = RankNetRewardModel(trainer=trainer, seed=4, prior=None).fit(judged(ctx, linear_user, 20), ctx)
    assert trainer.calls[0][1:] == (20, 4) and trainer.calls[0][0][1] == 8  # 4 metrics, min-max and rank
    assert model.metadata["epochs"] == model.training.epochs == 3 and model.mode == "network"


def test_judged_pairs_index_distinct_architectures(ctx):
    from reward_models.ranknet import JudgedPairs

    pairs = JudgedPairs.build(np.array([7, 3, 7]), np.array([3, 9, 9]), np.array([1.0, 0.5, 0.0]), ctx, RankNetConfig())
    assert pairs.archs.tolist() == [3, 7, 9] and len(pairs) == 3
    assert pairs.archs[pairs.a].tolist() == [7, 3, 7] and pairs.archs[pairs.b].tolist() == [3, 9, 9]
    assert pairs.features.shape == (3, 8)
    np.testing.assert_array_equal(pairs.features, pairs.normaliser.transform(ctx.query([3, 7, 9], pairs.normaliser.metrics)))
    with pytest.raises(PreferenceDataError, match="equal-length 1-D"):
        JudgedPairs.build(np.array([1, 2]), np.array([3]), np.array([1.0]), ctx, RankNetConfig())


def test_the_prior_step_and_its_acceptance_rule(ctx):
    import dataclasses

    from reward_models.ranknet import JudgedPairs, PriorFit, fit_prior

    data = judged(ctx, "accuracy", 20)
    a, b, y = data.arrays()
    pairs = JudgedPairs.build(a, b, y, ctx, RankNetConfig())
    prior = fit_prior(pairs, ctx, rank_grid=2048, seed=0)
    assert prior.agreement == 1.0 and prior.explains(0.0)
    assert prior.utility.shape == pairs.archs.shape
    assert prior.posterior.top_hypotheses(1)[0][1] == "selective: test_accuracy"
    flipped = JudgedPairs.build(a, b, np.where(np.arange(y.size) < 4, 1.0 - y, y), ctx, RankNetConfig())  # 4 of 20 reversed
    worse = fit_prior(flipped, ctx, rank_grid=2048, seed=0)
    assert worse.agreement == pytest.approx(0.8) and not worse.explains(0.1) and worse.explains(0.2)
    # the same rule the model applies: 90 % ordered is accepted with the default tolerance, 89 % is not
    assert PriorFit(prior.posterior, prior.utility, 0.9).explains(0.1)
    assert not dataclasses.replace(prior, agreement=0.89).explains(0.1)
    # the rank-only representation refits the prior on both normalisations: the same posterior
    rank_only = JudgedPairs.build(a, b, y, ctx, RankNetConfig(representation="rank"))
    np.testing.assert_array_equal(fit_prior(rank_only, ctx, 2048, 0).utility, prior.utility)


def test_parameter_groups_separate_the_skip_weights():
    linear = RankNetModule(inputs=3, hidden=0)
    assert [len(g["params"]) for g in linear.parameter_groups(0.1, 0.2)] == [1]
    deep = RankNetModule(inputs=3, hidden=4)
    groups = deep.parameter_groups(0.1, 0.2)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.2] and groups[0]["params"][0] is deep.skip
    assert len(groups[1]["params"]) == 3

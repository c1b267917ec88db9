"""Several latency devices: the env reports them, the context looks them up, and
:class:`reward_models.DeviceChoiceModel` learns from the judgments which one a person follows."""

from __future__ import annotations

import numpy as np
import pytest

import natsbench_gym
from agents import RandomSearch, RegularizedEvolution
from agents.errors import AgentConfigError
from agents.personalization import Personalization, metrics_of
from natsbench_gym.envs import NATSBenchTopologyEnv
from natsbench_gym.errors import InvalidConfigError, MissingMetricError, UnknownNameError
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import DeviceLatency, Metric, parse_metric_key
from reward_models import DeviceChoiceModel, MetricFamilyPosterior, NotFittedError, RandomPairSelector, SyntheticUser
from tests.conftest import RandomMetricsBenchmark

DEVICES = ("fake_gpu", "fake_phone", "fake_fpga")


class DevicesBenchmark(RandomMetricsBenchmark):
    """Independent random metrics, with an independent random latency on each of three devices."""

    name = "random-metrics-devices"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        rng = np.random.default_rng([seed, 7])
        self._latency = {d: rng.uniform(1.0, 20.0, self.space.size) for d in DEVICES}

    @property
    def latency_devices(self) -> tuple[str, ...]:
        return DEVICES

    def _query_indices(self, indices, dataset, budget, metrics, device):
        out = {}
        for m in metrics:
            out[m] = self._latency[device or DEVICES[0]][indices] if m is Metric.LATENCY else self._values[m][indices]
        return out


@pytest.fixture(scope="module")
def bench() -> DevicesBenchmark:
    return DevicesBenchmark(seed=0)


@pytest.fixture()
def context(bench) -> ScoringContext:
    return ScoringContext.create(bench, "cifar10", device="fake_gpu")


def _judgments(user, n: int, seed: int):
    rng = np.random.default_rng(seed)
    pairs = RandomPairSelector().select(rng.choice(15625, size=60, replace=False), n, rng)
    return list(user(pairs, rng=rng))


def _held_out_accuracy(model, user, context, seed: int = 99, n: int = 2000) -> float:
    """Share of random held-out pairs that ``model`` orders as ``user`` does."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 15625, n), rng.integers(0, 15625, n)
    truth = user.utilities(a) - user.utilities(b)
    metrics_a = context.query(a, model.required_metrics(context))
    metrics_b = context.query(b, model.required_metrics(context))
    guess = model.score_many(metrics_a, context) - model.score_many(metrics_b, context)
    keep = truth != 0
    return float(np.mean(np.sign(guess[keep]) == np.sign(truth[keep])))


# --- the metric key ---------------------------------------------------------------------------------
def test_parse_metric_key():
    assert parse_metric_key("latency@pixel3") == DeviceLatency("pixel3")
    assert parse_metric_key("params") is Metric.PARAMS
    key = DeviceLatency("raspi4")
    assert (key.value, key.unit, key.higher_is_better, key.label) == ("latency@raspi4", "ms", False, "latency on raspi4")
    with pytest.raises(UnknownNameError):
        parse_metric_key("latency@")
    with pytest.raises(UnknownNameError):
        parse_metric_key("latencyy")


# --- the env and the context --------------------------------------------------------------------------
def test_env_reports_the_latency_of_the_devices_asked(bench):
    env = NATSBenchTopologyEnv(benchmark=bench, device="fake_gpu", latency_devices=["fake_phone"])
    env.reset(seed=0)
    done, info = False, {}
    while not done:
        _, _, done, _, info = env.step(env.action_space.sample())
    index = info["index"]
    assert info["metrics"]["latency"] == pytest.approx(bench._latency["fake_gpu"][index])
    assert info["metrics"]["latency@fake_phone"] == pytest.approx(bench._latency["fake_phone"][index])
    assert "latency@fake_fpga" not in info["metrics"]
    env.set_latency_devices("all")
    env.reset(seed=1)
    done = False
    while not done:
        _, _, done, _, info = env.step(env.action_space.sample())
    assert {k for k in info["metrics"] if k.startswith("latency@")} == {f"latency@{d}" for d in DEVICES}


def test_env_rejects_unknown_devices(bench):
    with pytest.raises(UnknownNameError, match="fake_phon"):
        NATSBenchTopologyEnv(benchmark=bench, latency_devices=["fake_phon"])
    with pytest.raises(InvalidConfigError, match="latency_devices"):
        NATSBenchTopologyEnv(benchmark=bench, latency_devices=[3])


def test_context_looks_up_a_device_latency(context, bench):
    idx = np.array([0, 5, 77])
    out = context.query(idx, [Metric.PARAMS, DeviceLatency("fake_fpga")])
    np.testing.assert_allclose(out[DeviceLatency("fake_fpga")], bench._latency["fake_fpga"][idx])
    np.testing.assert_allclose(out[Metric.PARAMS], bench._values[Metric.PARAMS][idx])
    assert context.has(DeviceLatency("fake_phone")) and not context.has(DeviceLatency("pixel3"))
    assert context.stats(DeviceLatency("fake_phone")).max == pytest.approx(bench._latency["fake_phone"].max())
    assert context.with_device("fake_phone").device == "fake_phone"
    with pytest.raises(UnknownNameError):
        context.with_device("nope")


# --- the model -----------------------------------------------------------------------------------------
def test_device_choice_follows_the_device_the_judgments_follow(context):
    """A person who judges by the phone's latency (the env reads the GPU's): the model reads the
    phone, and orders held-out pairs far better than the same family on the env's device."""
    user = SyntheticUser("latency", context.with_device("fake_phone"))
    cs = _judgments(user, 25, seed=0)
    model = DeviceChoiceModel(MetricFamilyPosterior, devices="all").fit(cs, context)
    assert model.device == "fake_phone" and model.switched
    assert model.device_posterior["fake_phone"] > 0.9
    assert DeviceLatency("fake_phone") in model.required_metrics(context)
    plain = MetricFamilyPosterior().fit(cs, context)
    chosen, cold = _held_out_accuracy(model, user, context), _held_out_accuracy(plain, user, context)
    assert chosen > 0.9 and cold < 0.6, (chosen, cold)


def test_device_choice_keeps_the_env_device_when_latency_plays_no_part(context):
    user = SyntheticUser("params", context)
    cs = _judgments(user, 15, seed=1)
    model = DeviceChoiceModel(MetricFamilyPosterior, devices=["fake_phone", "fake_fpga"]).fit(cs, context)
    assert model.device == "fake_gpu" and not model.switched
    plain = MetricFamilyPosterior().fit(cs, context)
    metrics = context.query(np.arange(500), plain.required_metrics(context))
    np.testing.assert_array_equal(model.score_many(metrics, context), plain.score_many(metrics, context))


def test_device_choice_errors(context):
    model = DeviceChoiceModel(MetricFamilyPosterior, devices="fake_phone")
    with pytest.raises(NotFittedError):
        model.score_many({}, context)
    with pytest.raises(InvalidConfigError, match="margin"):
        DeviceChoiceModel(devices="all", margin=0.5)
    with pytest.raises(InvalidConfigError, match="devices"):
        DeviceChoiceModel(devices=[1, 2])
    with pytest.raises(UnknownNameError):
        DeviceChoiceModel(MetricFamilyPosterior, devices="pixel9").fit(_judgments(SyntheticUser("params", context), 3, 0), context)
    user = SyntheticUser("latency", context.with_device("fake_phone"))
    model.fit(_judgments(user, 25, seed=0), context)
    metrics = context.query(np.arange(5), [Metric.VALID_ACCURACY, Metric.LATENCY, Metric.PARAMS, Metric.FLOPS])
    with pytest.raises(MissingMetricError, match="latency_devices"):
        model.score_many(metrics, context)  # the phone's latency is not among them
    assert not hasattr(model, "save")  # a saved inner model would read the env's device


def test_metrics_of_fills_a_device_latency_by_index(context, bench):
    user = SyntheticUser("latency", context.with_device("fake_phone"))
    model = DeviceChoiceModel(MetricFamilyPosterior, devices="all").fit(_judgments(user, 25, 0), context)

    class Ev:
        def __init__(self, index):
            self.index = index
            self.metrics = {"latency": float(bench._latency["fake_gpu"][index]), "params": 1.0}

    evs = [Ev(3), Ev(9)]
    out = metrics_of(evs, model, context)
    np.testing.assert_allclose(out[DeviceLatency("fake_phone")], bench._latency["fake_phone"][[3, 9]])
    assert set(metrics_of(evs)) == {Metric.LATENCY, Metric.PARAMS}


# --- in the search ---------------------------------------------------------------------------------------
def _search(bench, user_context_device: str, devices, agent="re", seed=0, preference="latency"):
    env = NATSBenchTopologyEnv(benchmark=bench, device="fake_gpu")
    user = SyntheticUser(preference, env.context.with_device(user_context_device))
    p = Personalization(user, 12, devices=devices, make_reward_model=lambda s: MetricFamilyPosterior())
    if agent == "re":
        result = RegularizedEvolution(10, 5, seed=seed, personalization=p).search(env, 60)
    else:
        result = RandomSearch(seed=seed, personalization=p).search(env, 60)
    return result, user


@pytest.mark.parametrize("agent", ["re", "random"])
def test_personalized_search_reads_the_device_the_person_follows(bench, agent):
    result, user = _search(bench, "fake_phone", "all", agent)
    model = result.info["learned_metric"]
    assert model.device == "fake_phone"
    last = result.history[-1]
    assert "latency@fake_phone" in last.metrics  # the env reports the chosen device from then on
    u = user.utilities(np.arange(15625))
    cold, _ = _search(bench, "fake_phone", None, agent)
    pct = lambda r: 100 * np.mean(u <= u[r.best.index])  # noqa: E731
    best_evaluated = max(u[ev.index] for ev in result.history)
    assert u[result.best.index] == best_evaluated  # the recommendation is the best it evaluated, on the phone
    assert pct(result) > pct(cold) + 5, (pct(result), pct(cold))


def test_personalized_search_is_unchanged_when_the_judgments_follow_the_env_device(bench):
    with_devices, _ = _search(bench, "fake_gpu", "all", preference="weighted")
    without, _ = _search(bench, "fake_gpu", None, preference="weighted")
    assert with_devices.info["learned_metric"].device == "fake_gpu"
    assert [ev.index for ev in with_devices.history] == [ev.index for ev in without.history]
    assert with_devices.best.index == without.best.index


def test_personalization_checks_devices(bench):
    judge = SyntheticUser.__new__(SyntheticUser)  # never asked
    env = NATSBenchTopologyEnv(benchmark=bench, device="fake_gpu")
    agent = RegularizedEvolution(10, 5, seed=0, personalization=Personalization(judge, 10, devices=["pixel9"]))
    with pytest.raises(UnknownNameError, match="pixel9"):  # the env's benchmark has no such device: before any judgment
        agent.search(env, 20)
    assert env.num_evaluations == 0
    with pytest.raises(AgentConfigError, match="devices"):
        Personalization(judge, 10, devices=[3])
    with pytest.raises(AgentConfigError, match="devices"):
        Personalization(judge, 10, devices="")
    assert Personalization(judge, 10, devices="pixel3,raspi4").devices == ("pixel3", "raspi4")
    assert Personalization(judge, 10, devices="all").devices == "all"


@pytest.mark.usefixtures("real_data")
def test_real_table_device_latency_matches_the_device_column(topology_bench):
    env = natsbench_gym.envs.NATSBenchTopologyEnv(benchmark=topology_bench, latency_devices=["pixel3"])
    env.reset(seed=0)
    done, info = False, {}
    while not done:
        _, _, done, _, info = env.step(env.action_space.sample())
    direct = topology_bench.query_many([info["index"]], "cifar10", None, [Metric.LATENCY], "pixel3")[Metric.LATENCY][0]
    assert info["metrics"]["latency@pixel3"] == pytest.approx(direct)
    assert info["metrics"]["latency"] != pytest.approx(direct)


# --- what a person sees ------------------------------------------------------------------------------------
def test_search_session_shows_the_latency_on_the_devices_named(context, bench, tmp_path):
    from preference_ui.core import ElicitationSession

    session = ElicitationSession.open_for_search(tmp_path / "j.jsonl", context, seed=0, devices=["fake_phone", "fake_gpu"])
    shown = {m["key"]: m for m in session.describe(42)["metrics"]}
    assert shown["latency@fake_phone"]["value"] == pytest.approx(bench._latency["fake_phone"][42])
    assert shown["latency@fake_phone"]["label"] == "latency on fake_phone"
    assert "latency@fake_gpu" not in shown  # the session's own device is "latency"
    assert shown["latency"]["value"] == pytest.approx(bench._latency["fake_gpu"][42])
    with pytest.raises(UnknownNameError):
        session.show_devices(["pixel9"])


def test_search_cli_devices_option():
    from natsbench_gym_cli.search import build_parser

    args = build_parser().parse_args(["--devices", "pixel3,raspi4"])
    assert args.devices == "pixel3,raspi4"
    assert build_parser().parse_args([]).devices is None


@pytest.mark.slow
@pytest.mark.usefixtures("real_data")
def test_search_cli_follows_the_device_of_a_pixel3_user(tmp_path, capsys, real_data):
    from natsbench_gym_cli.search import main

    rc = main(["--preference", "pixel3_threshold", "--devices", "all", "--comparisons", "10", "--evaluations", "40",
               "--data", str(real_data), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "latency device your judgments follow:" in out
    assert not (tmp_path / "out" / "reward_model.pt").exists()  # a device-choice model is not saved as a plain RankNet


# --- monotone="auto": the dominance count (no data files needed) ----------------------------------------------
def test_dominance_violations_counts_preferred_dominated_sides(context):
    pytest.importorskip("torch")
    from reward_models.ranknet import JudgedPairs, RankNetConfig, dominance_violations

    m = context.query(np.arange(2000), [Metric.VALID_ACCURACY, Metric.LATENCY, Metric.PARAMS, Metric.FLOPS])
    u = np.stack([m[Metric.VALID_ACCURACY], -m[Metric.LATENCY], -m[Metric.PARAMS], -m[Metric.FLOPS]], axis=1)
    dominated = [(i, j) for i in range(200) for j in range(200) if i != j and np.all(u[i] >= u[j]) and np.any(u[i] > u[j])][:5]
    free = [(i, j) for i in range(200) for j in range(i + 1, 200)
            if not (np.all(u[i] >= u[j]) or np.all(u[j] >= u[i]))][:5]
    a = np.array([p[0] for p in dominated + free])
    b = np.array([p[1] for p in dominated + free])
    targets = np.array([0.0, 0.0, 1.0, 1.0, 0.5] + [0.0] * 5)  # two dominated sides preferred, one tie
    pairs = JudgedPairs.build(a, b, targets, context, RankNetConfig())
    assert dominance_violations(pairs) == (2, 4)
    with pytest.raises(ValueError, match="monotone"):
        RankNetConfig(monotone="sometimes")

"""The Gymnasium environments: API checks, observation encoding, rewards, info, constraints, noise, errors.

Most tests run on the synthetic tables of ``conftest.make_tiny_table`` (no real data needed): there the
validation accuracy grows linearly with the architecture's code, so the ``accuracy`` reward of code ``k``
is ``k / (size - 1)`` and params are ``k / 1e5``. Tests marked ``realdata`` repeat the key checks on the
real NATS-Bench numbers and the official files.
"""

from __future__ import annotations

import csv
import doctest
import gzip
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import natsbench_gym
from natsbench_gym import ENV_IDS, Metric
from natsbench_gym.benchmarks.base import Benchmark
from natsbench_gym.envs import (
    InfeasibleConstraintsError,
    NATSBenchSizeEnv,
    NATSBenchTopologyEnv,
    UnsupportedRenderModeError,
)
from natsbench_gym.errors import (
    InvalidActionError,
    InvalidArchitectureError,
    MissingMetricError,
    ResetNeededError,
    UnknownNameError,
)
from natsbench_gym.rewards import ScoringContext, make_fixed_metric

EXPECTED_OBS = {"topology": 6 * 6 + 6, "size": 5 * 9 + 5}


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tiny_tables: Path) -> dict[str, Benchmark]:
    return {kind: natsbench_gym.load_benchmark(kind, tiny_tables) for kind in ENV_IDS}


@pytest.fixture(scope="module")
def seeded_tiny(tiny_tables: Path, tmp_path_factory: pytest.TempPathFactory) -> Benchmark:
    """The tiny topology table plus per-seed 200-epoch CIFAR-10 validation accuracies (mean -1, mean +1)."""
    directory = tmp_path_factory.mktemp("seeded_tiny")
    shutil.copy(tiny_tables / "tss.csv.gz", directory / "tss.csv.gz")
    base = natsbench_gym.load_benchmark("topology", tiny_tables)
    valid = base.query_many(None, "cifar10", 200, ["valid_accuracy"])[Metric.VALID_ACCURACY]
    with gzip.open(directory / "tss_seeds_200.csv.gz", "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch_index", "dataset", "seed", "split", "acc_200"])
        for index, value in enumerate(valid.tolist()):
            writer.writerow([index, "cifar10-valid", 777, "x-valid", value - 1.0])
            writer.writerow([index, "cifar10-valid", 888, "x-valid", value + 1.0])
    return natsbench_gym.TableBenchmark(directory, "topology", cache_dir=False)


class CountingBenchmark(Benchmark):
    """A non-table backend (so the env queries it lazily) that counts its single-architecture queries
    (whole-space queries, for the normalisation statistics, are not counted); data from a table."""

    name = "counting"

    def __init__(self, table: Benchmark) -> None:
        super().__init__(table.space, table._index_to_code)
        self.table = table
        self.queries = 0

    @property
    def datasets(self):
        return self.table.datasets

    @property
    def budgets(self):
        return self.table.budgets

    @property
    def latency_devices(self):
        return self.table.latency_devices

    def available_metrics(self, dataset, budget=None):
        return self.table.available_metrics(dataset, budget)

    def _query_indices(self, indices, dataset, budget, metrics, device):
        if len(indices) == 1:
            self.queries += 1
        return self.table._query_indices(indices, dataset, budget, metrics, device)

    def _seed_values(self, index, metric, dataset, budget):
        return self.table._seed_values(index, metric, dataset, budget)


def build(env, encoding, seed=None):
    """Reset, take ``encoding``'s actions; return (observations, rewards, terminated flags, last info)."""
    obs, info = env.reset(seed=seed)
    observations, rewards, flags = [obs], [], []
    for action in encoding:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        flags.append(terminated)
        assert truncated is False
    return observations, rewards, flags, info


def expected_obs(kind: str, partial: tuple[int, ...]) -> np.ndarray:
    space = natsbench_gym.make_space(kind)
    d, c = space.num_decisions, space.num_choices
    obs = np.zeros(d * (c + 1) + d, dtype=np.float32)
    for pos in range(d):
        obs[pos * (c + 1) + (partial[pos] if pos < len(partial) else c)] = 1.0
    if len(partial) < d:
        obs[d * (c + 1) + len(partial)] = 1.0
    return obs


# --- registration and API checkers -------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(ENV_IDS))
def test_ids_are_registered_with_string_entry_points(kind):
    spec = gym.spec(ENV_IDS[kind])
    assert isinstance(spec.entry_point, str) and spec.entry_point.startswith("natsbench_gym.envs.")


def test_importing_and_making_an_env_does_not_import_torch(tiny_tables):
    code = (
        "import sys, gymnasium as gym, natsbench_gym\n"
        f"env = gym.make('NATSBench-Topology-v0', benchmark={str(tiny_tables)!r})\n"
        "env.reset(seed=0)\n"
        "for a in range(6): env.step(a % 5)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("kind", list(ENV_IDS))
def test_gymnasium_and_sb3_env_checkers_pass(kind, tiny):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(ENV_IDS[kind], benchmark=tiny[kind])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("kind", list(ENV_IDS))
def test_env_checkers_pass_on_real_data(kind, real_data):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for env in (gym.make(ENV_IDS[kind]), gym.make(ENV_IDS[kind], dataset="cifar100", budget=None)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gym_check_env(env.unwrapped)
            sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("kind", list(ENV_IDS))
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec(kind, mode, tiny):
    space = tiny[kind].space
    envs = gym.make_vec(ENV_IDS[kind], num_envs=3, vectorization_mode=mode, benchmark=tiny[kind])
    try:
        obs, _ = envs.reset(seed=1)
        assert obs.shape == (3, EXPECTED_OBS[kind])
        actions = np.array([[0, 1, space.num_choices - 1]] * space.num_decisions)
        for t in range(space.num_decisions):
            obs, rewards, terminated, truncated, infos = envs.step(actions[t])
        assert terminated.all() and not truncated.any()
        codes = [space.code(actions[:, i]) for i in range(3)]
        assert rewards == pytest.approx([c / (space.size - 1) for c in codes], abs=1e-9)
        assert infos["_arch"].all() and list(infos["arch"]) == [space.format(actions[:, i]) for i in range(3)]
    finally:
        envs.close()


# --- episodes, observations, rewards, info ----------------------------------------------------------
@pytest.mark.parametrize("kind", list(ENV_IDS))
def test_episode_observations_rewards_and_info(kind, tiny):
    bench = tiny[kind]
    space = bench.space
    env = gym.make(ENV_IDS[kind], benchmark=bench)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (EXPECTED_OBS[kind],), np.float32)
    assert env.action_space == gym.spaces.Discrete(space.num_choices)
    encoding = tuple(int(x) for x in np.random.default_rng(3).integers(0, space.num_choices, space.num_decisions))
    observations, rewards, flags, info = build(env, encoding, seed=0)
    for t, obs in enumerate(observations):
        np.testing.assert_array_equal(obs, expected_obs(kind, encoding[:t]))
        assert obs.dtype == np.float32
    assert flags == [False] * (space.num_decisions - 1) + [True]
    assert rewards[:-1] == [0.0] * (space.num_decisions - 1)
    code = space.code(encoding)
    assert rewards[-1] == pytest.approx(code / (space.size - 1), abs=1e-9)
    metrics = bench.query(encoding, "cifar10")
    assert info["arch"] == space.format(encoding)
    assert info["index"] == bench.index(encoding)
    assert info["encoding"] == encoding
    assert info["metrics"].keys() == {m.value for m in metrics}
    for m, v in metrics.items():
        np.testing.assert_equal(info["metrics"][m.value], v)
    assert info["reward"] == rewards[-1]
    assert info["dataset"] == "cifar10" and info["budget"] == bench.default_budget
    assert info["benchmark"] == bench.describe()
    assert info["trained_on"] is None  # a table: NATS-Bench's own training on the dataset asked for
    if Metric.TRAIN_TIME in metrics:  # training plus one validation pass, as NATS-Bench counts it
        valid_time = bench.validation_times([info["index"]], "cifar10")[0]
        assert info["valid_time"] == valid_time > 0
        assert info["train_time"] == info["total_train_time"] == metrics[Metric.TRAIN_TIME] + valid_time
    else:
        assert np.isnan(info["train_time"]) and info["total_train_time"] == 0.0


def test_returned_observations_are_not_aliased(tiny):
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"])
    first, _ = env.reset(seed=0)
    second, *_ = env.step(2)
    assert not np.shares_memory(first, second)
    second[:] = 7.0
    third, *_ = env.step(2)
    np.testing.assert_array_equal(third, expected_obs("topology", (2, 2)))


@pytest.mark.parametrize("action", [np.int64(3), np.array(3), np.array([3]), 3])
def test_integer_like_actions_are_accepted(action, tiny):
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"])
    env.reset(seed=0)
    env.step(action)
    assert env.unwrapped.encoding == (3,)


def test_total_train_time_accumulates_across_resets_until_reset_time(tiny):
    bench = tiny["topology"]
    env = gym.make("NATSBench-Topology-v0", benchmark=bench, budget=200)
    archs = [(0, 1, 2, 3, 4, 0), (3, 3, 3, 3, 3, 3), (0, 1, 2, 3, 4, 0)]  # a repeat costs again
    times = (bench.query_many(np.array(archs), "cifar10", 200, ["train_time"])[Metric.TRAIN_TIME]
             + bench.validation_times(np.array(archs), "cifar10", 200))
    total = 0.0
    for arch, t in zip(archs, times, strict=True):
        *_, info = build(env, arch)
        total += t
        assert info["train_time"] == pytest.approx(t)
        assert info["total_train_time"] == pytest.approx(total)
    assert env.unwrapped.total_train_time == pytest.approx(total)
    assert env.unwrapped.num_evaluations == 3
    _, info = env.reset()
    assert info["total_train_time"] == pytest.approx(total)
    env.unwrapped.reset_time()
    assert env.unwrapped.total_train_time == 0.0 and env.unwrapped.num_evaluations == 0
    *_, info = build(env, archs[0])
    assert info["total_train_time"] == pytest.approx(times[0])


def test_budget_and_dataset_select_the_metrics(tiny, tiny_value):
    bench = tiny["topology"]
    code = bench.space.code((4, 3, 2, 1, 0, 1))
    *_, info = build(gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar100", budget=200), (4, 3, 2, 1, 0, 1))
    assert info["metrics"]["test_accuracy"] == pytest.approx(tiny_value("topology", code, "cifar100", "test_acc_200"))
    assert info["metrics"]["valid_accuracy"] == pytest.approx(tiny_value("topology", code, "cifar100", "valid_acc_200"))


# --- reward models ---------------------------------------------------------------------------------
def test_reward_models_names_objects_and_functions(tiny):
    bench = tiny["topology"]
    arch = (1, 2, 3, 4, 0, 1)
    context = ScoringContext.create(bench, "cifar10")
    metrics = {m: np.atleast_1d(v) for m, v in bench.query(arch, "cifar10").items()}

    class HalfParams:  # any object with score_many is a reward model
        def score_many(self, metrics, context):
            return 0.5 * metrics[Metric.PARAMS]

    for model, expected in (
        ("params", make_fixed_metric("params").score_many(metrics, context)[0]),
        ("h_flops", make_fixed_metric("flops").score_many(metrics, context)[0]),
        (HalfParams(), 0.5 * metrics[Metric.PARAMS][0]),
        (lambda m: m[Metric.TEST_ACCURACY] - 10.0, metrics[Metric.TEST_ACCURACY][0] - 10.0),
    ):
        for precompute in (None, True, False):
            env = gym.make("NATSBench-Topology-v0", benchmark=bench, reward_model=model, precompute=precompute)
            _, rewards, _, info = build(env, arch)
            assert rewards[-1] == pytest.approx(expected), (model, precompute)


def test_custom_reward_models_are_asked_at_each_evaluation_unless_precomputed(tiny):
    class Drifting:  # a model that changes between evaluations, as one trained online would
        calls = 0

        def score_many(self, metrics, context):
            self.calls += 1
            return np.full(len(metrics[Metric.PARAMS]), float(self.calls))

    arch = (1, 1, 1, 1, 1, 1)
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"], reward_model=Drifting())
    assert [build(env, arch)[1][-1] for _ in range(3)] == [1.0, 2.0, 3.0]
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"], reward_model=Drifting(), precompute=True)
    assert [build(env, arch)[1][-1] for _ in range(3)] == [1.0, 1.0, 1.0]


def test_set_reward_model_takes_effect_immediately(tiny):
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"])
    arch = (4, 4, 4, 4, 4, 4)
    assert build(env, arch)[1][-1] == pytest.approx(1.0)
    env.unwrapped.set_reward_model("params")
    assert build(env, arch)[1][-1] == pytest.approx(0.0)


def test_lazy_backend_is_queried_once_per_architecture_and_matches_the_table(tiny):
    table = tiny["topology"]
    lazy = CountingBenchmark(table)
    env_lazy = gym.make("NATSBench-Topology-v0", benchmark=lazy)
    env_table = gym.make("NATSBench-Topology-v0", benchmark=table)
    rng = np.random.default_rng(0)
    archs = [tuple(int(x) for x in a) for a in table.space.sample_many(rng, 20)] * 2
    lazy.queries = 0
    for arch in archs:
        _, r_lazy, _, i_lazy = build(env_lazy, arch)
        _, r_table, _, i_table = build(env_table, arch)
        assert r_lazy == r_table
        np.testing.assert_equal(i_lazy["metrics"], i_table["metrics"])
    assert lazy.queries == len(set(archs))
    env_lazy.unwrapped.clear_cache()
    build(env_lazy, archs[0])
    assert lazy.queries == len(set(archs)) + 1


# --- noisy evaluation ------------------------------------------------------------------------------
def test_noisy_evaluation_is_seeded_through_np_random(seeded_tiny):
    arch = (3, 3, 3, 1, 3, 2)
    seeds = seeded_tiny.seed_values(arch, "valid_accuracy", "cifar10", 200)
    mean = seeded_tiny.query(arch, "cifar10", 200)[Metric.VALID_ACCURACY]

    def run(seed):
        env = gym.make("NATSBench-Topology-v0", benchmark=seeded_tiny, budget=200, noise=True)
        env.reset(seed=seed)
        out = []
        for _ in range(30):
            *_, info = build(env, arch)
            out.append(info["metrics"]["valid_accuracy"])
        return out

    a, b, c = run(0), run(0), run(1)
    assert a == b and a != c
    assert set(a) == set(seeds.tolist()) and mean not in a
    quiet = gym.make("NATSBench-Topology-v0", benchmark=seeded_tiny, budget=200)
    assert build(quiet, arch)[3]["metrics"]["valid_accuracy"] == mean


def test_noisy_evaluation_changes_the_reward(seeded_tiny):
    env = gym.make("NATSBench-Topology-v0", benchmark=seeded_tiny, budget=200, noise=True)
    env.reset(seed=0)
    rewards = {build(env, (2, 2, 2, 2, 2, 2))[1][-1] for _ in range(20)}
    assert len(rewards) == 2


def test_noise_without_per_seed_data_is_a_clear_error(tiny, seeded_tiny):
    with pytest.raises(MissingMetricError, match="no per-seed valid_accuracy on cifar10 after 12 epochs.*cifar10 after 200"):
        NATSBenchTopologyEnv(benchmark=seeded_tiny, noise=True)
    with pytest.raises(MissingMetricError, match="use noise=False"):
        NATSBenchSizeEnv(benchmark=tiny["size"], noise=True)


def test_noisy_evaluation_on_real_data(topology_bench):
    env = gym.make("NATSBench-Topology-v0", benchmark=topology_bench, budget=200, noise=True)
    env.reset(seed=0)
    arch = topology_bench.encoding(6111)
    seeds = topology_bench.seed_values(6111, "valid_accuracy", "cifar10", 200)
    values = {build(env, arch)[3]["metrics"]["valid_accuracy"] for _ in range(40)}
    assert values == set(seeds.tolist())


# --- constraints and action masks ----------------------------------------------------------------------
def brute_force_mask(feasible_codes: np.ndarray, space, prefix: tuple[int, ...]) -> np.ndarray:
    encs = space.all_encodings()[feasible_codes]
    match = np.all(encs[:, : len(prefix)] == np.array(prefix, dtype=encs.dtype), axis=1) if prefix else np.ones(len(encs), bool)
    mask = np.zeros(space.num_choices, dtype=bool)
    mask[np.unique(encs[match, len(prefix)])] = True
    return mask


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("topology", {"max_params": 0.05}),
        ("topology", {"forbidden_ops": ("none", "avg_pool_3x3"), "max_flops": 80.0}),
        ("size", {"max_params": 0.2, "allowed_widths": (8, 24, 48, 64)}),
    ],
)
def test_action_masks_allow_exactly_the_choices_with_a_feasible_completion(kind, kwargs, tiny):
    bench = tiny[kind]
    space = bench.space
    env = gym.make(ENV_IDS[kind], benchmark=bench, **kwargs)
    base = env.unwrapped
    params = bench.query_many(bench.indices_of_encodings(space.all_encodings()), "cifar10", None, ["params", "flops"])
    ok = np.ones(space.size, dtype=bool)
    encs = space.all_encodings()
    if "max_params" in kwargs:
        ok &= params[Metric.PARAMS] <= kwargs["max_params"]
    if "max_flops" in kwargs:
        ok &= params[Metric.FLOPS] <= kwargs["max_flops"]
    for op in kwargs.get("forbidden_ops", ()):
        ok &= ~np.any(encs == space.choice_names.index(op), axis=1)
    if "allowed_widths" in kwargs:
        ok &= np.isin(encs, [space.choice_names.index(str(w)) for w in kwargs["allowed_widths"]]).all(axis=1)
    np.testing.assert_array_equal(base.feasible, ok)
    feasible_codes = np.flatnonzero(ok)
    rng = np.random.default_rng(0)
    for _ in range(40):
        env.reset()
        prefix: tuple[int, ...] = ()
        for _t in range(space.num_decisions):
            mask = base.action_masks()
            np.testing.assert_array_equal(mask, brute_force_mask(feasible_codes, space, prefix))
            action = int(rng.choice(np.flatnonzero(mask)))
            *_, info = env.step(action)
            prefix += (action,)
        assert base.is_feasible(info["encoding"]) and ok[space.code(info["encoding"])]


def test_masked_action_raises_and_unconstrained_masks_are_all_true(tiny):
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"], forbidden_ops="none")
    env.reset(seed=0)
    assert env.unwrapped.action_masks().tolist() == [False, True, True, True, True]
    with pytest.raises(InvalidActionError, match=r"action 0 \(none\) at edge 0->1 is masked.*MaskablePPO"):
        env.step(0)
    plain = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"])
    plain.reset(seed=0)
    assert plain.unwrapped.action_masks().all()
    assert plain.unwrapped.feasible.all()


def test_constraints_that_exclude_everything_are_an_error(tiny):
    with pytest.raises(InfeasibleConstraintsError, match="no topology architecture satisfies.*max_params -1"):
        NATSBenchTopologyEnv(benchmark=tiny["topology"], max_params=-1.0)
    with pytest.raises(InfeasibleConstraintsError, match="choices in"):
        NATSBenchTopologyEnv(benchmark=tiny["topology"], forbidden_ops=natsbench_gym.spaces.TOPOLOGY_OPS)


def test_maskable_ppo_respects_the_masks(tiny):
    from sb3_contrib import MaskablePPO

    from agents.sb3 import NASCallback

    env = gym.make("NATSBench-Size-v0", benchmark=tiny["size"], max_params=0.1, allowed_widths=(8, 16, 64))
    model = MaskablePPO("MlpPolicy", env, n_steps=60, batch_size=30, n_epochs=1, seed=0, device="cpu")
    callback = NASCallback()
    model.learn(300, callback=callback)
    assert len(callback.history) == 60
    assert all(env.unwrapped.is_feasible(ev.encoding) for ev in callback.history)


# --- errors ---------------------------------------------------------------------------------------------
def test_invalid_actions_are_typed_errors(tiny):
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"])
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"action 5 is outside the action space Discrete\(5\)"):
        env.step(5)
    with pytest.raises(InvalidActionError, match="action -1 is outside"):
        env.step(-1)
    with pytest.raises(InvalidActionError, match="not an integer"):
        env.step(1.5)
    with pytest.raises(InvalidActionError, match="not an integer"):
        env.step("skip_connect")
    assert env.unwrapped.encoding == ()  # a rejected action changes nothing


def test_step_after_termination_needs_reset(tiny):
    env = gym.make("NATSBench-Size-v0", benchmark=tiny["size"])
    build(env, (0, 1, 2, 3, 4))
    with pytest.raises(ResetNeededError, match="call reset"):
        env.step(0)
    env.reset()
    env.step(0)
    raw = NATSBenchSizeEnv(benchmark=tiny["size"])
    with pytest.raises(ResetNeededError, match="before the first reset"):
        raw.step(0)


def test_unknown_names_are_typed_errors_with_close_matches(tiny):
    bench = tiny["topology"]
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar-10'; did you mean 'cifar10'"):
        gym.make("NATSBench-Topology-v0", benchmark=bench, dataset="cifar-10")
    with pytest.raises(UnknownNameError, match="unknown fixed metric 'acuracy'; did you mean 'accuracy'"):
        gym.make("NATSBench-Topology-v0", benchmark=bench, reward_model="acuracy")
    with pytest.raises(UnknownNameError, match="unknown op 'conv_3x3'; did you mean 'nor_conv_3x3'"):
        gym.make("NATSBench-Topology-v0", benchmark=bench, forbidden_ops=("conv_3x3",))
    with pytest.raises(UnknownNameError, match="training budget"):
        gym.make("NATSBench-Topology-v0", benchmark=bench, budget=90)
    with pytest.raises(UnknownNameError, match="unknown metric 'valid_acc'"):
        gym.make("NATSBench-Topology-v0", benchmark=bench, accuracy_metric="valid_acc")
    with pytest.raises(InvalidArchitectureError, match="allowed width 10 is not"):
        gym.make("NATSBench-Size-v0", benchmark=tiny["size"], allowed_widths=(8, 10))
    with pytest.raises(MissingMetricError, match="no latency"):  # the tiny tables have no latency
        gym.make("NATSBench-Topology-v0", benchmark=bench, reward_model="latency")
    with pytest.raises(UnsupportedRenderModeError, match="render_mode 'rgb_array' is not supported"):
        NATSBenchTopologyEnv(benchmark=bench, render_mode="rgb_array")


def test_unknown_latency_device_on_real_data(topology_bench):
    with pytest.raises(UnknownNameError, match="unknown latency device 'pixel'; did you mean 'pixel.'"):
        gym.make("NATSBench-Topology-v0", benchmark=topology_bench, device="pixel")
    env = gym.make("NATSBench-Topology-v0", benchmark=topology_bench, device="pixel3", reward_model="latency")
    *_, info = build(env, (3, 3, 3, 3, 3, 3))
    assert info["metrics"]["latency"] == topology_bench.query((3, 3, 3, 3, 3, 3), "cifar10", device="pixel3")[Metric.LATENCY]


# --- rendering ----------------------------------------------------------------------------------------
def test_ansi_render_draws_the_cell(tiny):
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny["topology"], render_mode="ansi")
    env.reset(seed=0)
    env.step(3)
    text = env.render()
    assert "node 0 -> node 1: nor_conv_3x3" in text and "node 0 -> node 2: ?  <- next" in text
    *_, info = build(env, (3, 0, 1, 2, 4, 3))
    text = env.render()
    assert info["arch"] in text and "node 2 -> node 3: nor_conv_3x3" in text and "reward" in text


def test_human_render_prints_the_widths(tiny, capsys):
    env = gym.make("NATSBench-Size-v0", benchmark=tiny["size"], render_mode="human")
    build(env, (7, 0, 3, 3, 1))
    out = capsys.readouterr().out
    assert "layer 0  ########  64" in out and "layer 1  #          8" in out and "64:8:32:32:16" in out
    assert env.render() is None


def test_render_without_mode_warns(tiny):
    env = NATSBenchTopologyEnv(benchmark=tiny["topology"])
    env.reset()
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


# --- real data and official files -----------------------------------------------------------------------
def test_best_cifar10_cell_on_real_data(topology_bench):
    env = gym.make("NATSBench-Topology-v0", benchmark=topology_bench, budget=200)
    _, rewards, _, info = build(env, topology_bench.encoding(6111))
    assert info["index"] == 6111 and rewards[-1] == pytest.approx(1.0)
    assert info["metrics"]["test_accuracy"] == pytest.approx(94.3733)


@pytest.mark.parametrize("kind", list(ENV_IDS))
def test_env_on_the_official_nats_bench_files(kind, official_dir, tmp_path, real_data):
    official = natsbench_gym.NATSBenchAPIBenchmark(official_dir, kind, cache_dir=tmp_path)
    table = natsbench_gym.load_benchmark(kind, real_data)
    env = gym.make(ENV_IDS[kind], benchmark=official)
    assert env.unwrapped.benchmark is official
    for index in (0, 11, 284):
        *_, info = build(env, official.encoding(index))
        assert info["index"] == index and info["arch"] == table.arch_str(index)
        assert info["benchmark"].startswith("nats_bench")
        for name in ("valid_accuracy", "params", "flops"):
            assert info["metrics"][name] == pytest.approx(table.query(index, "cifar10")[Metric(name)], rel=1e-3, abs=1e-2)


@pytest.mark.parametrize("module", ["natsbench_gym.envs.topology", "natsbench_gym.envs.size"])
def test_docstring_examples(module, real_data):
    mod = __import__(module, fromlist=["_"])
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("kind", list(ENV_IDS))
@pytest.mark.parametrize("precompute", [None, False])
def test_training_free_metrics_are_no_evaluation(kind, precompute, tiny):
    from natsbench_gym.envs.base import TRAINING_FREE_METRICS

    env = gym.make(ENV_IDS[kind], benchmark=tiny[kind], budget=tiny[kind].budgets[-1], precompute=precompute)
    base = env.unwrapped
    rng = np.random.default_rng(0)
    archs = [base.space.sample(rng) for _ in range(4)]
    env.reset(seed=0)
    env.step(1)  # an episode in progress is left alone
    before = (base.num_evaluations, base.total_train_time, base.encoding)
    cheap = base.training_free_metrics([*archs[:3], base.space.format(archs[3])])  # encodings or strings
    assert (base.num_evaluations, base.total_train_time, base.encoding) == before
    assert set(cheap) == {m for m in TRAINING_FREE_METRICS if m in base._metrics} and Metric.PARAMS in cheap
    assert not any(m.higher_is_better for m in cheap)  # costs only: never an accuracy
    for i, enc in enumerate(archs):  # the values an evaluation would report
        *_, info = build(env, enc)
        for m, values in cheap.items():
            np.testing.assert_equal(values[i], info["metrics"][m.value])
    assert all(v.shape == (0,) for v in base.training_free_metrics([]).values())


@pytest.mark.realdata
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
@pytest.mark.parametrize("budget", [12, 200])
def test_simulated_time_is_what_nats_bench_simulate_train_eval_counts(official_dir, dataset, budget):
    """Over the genuine official records, one evaluation costs exactly ``simulate_train_eval``'s time."""
    import nats_bench

    bench = natsbench_gym.NATSBenchAPIBenchmark(official_dir, "topology")
    api = nats_bench.create(str(official_dir / "NATS-tss-v1_0-3ffb9-simple"), "tss", fast_mode=True, verbose=False)
    env = gym.make("NATSBench-Topology-v0", benchmark=bench, dataset=dataset, budget=budget,
                   reward_model=lambda metrics: 0.0)
    total = 0.0
    for index in (0, 11, 284, 11):
        *_, info = build(env, bench.encoding(index))
        _, _, time_cost, _ = api.simulate_train_eval(index, dataset, hp=str(budget))
        total += time_cost
        assert info["train_time"] == pytest.approx(time_cost, rel=1e-12)
        assert info["total_train_time"] == pytest.approx(total, rel=1e-12)


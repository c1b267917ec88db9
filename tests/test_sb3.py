"""stable-baselines3 on the NATS-Bench environments: the factory, the callback, the sampler, the train job.

The slow test trains PPO on the real topology table and checks that it beats uniform random sampling
by at least 3 points of 200-epoch CIFAR-10 test accuracy (measured margin: about 6-7.5 points over
seeds 0-5, in 10-25 s on one core).
"""

from __future__ import annotations

import importlib

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.env_util import make_vec_env

import natsbench_gym
from agents.sb3 import NASCallback, default_hyperparameters, make_sb3_agent, sample_architectures
from natsbench_gym import Metric
from natsbench_gym.errors import UnknownNameError


@pytest.fixture(scope="module")
def tiny_topology(tiny_tables):
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_job(name: str):
    return importlib.import_module(f"natsbench_gym_cli.{name}")


# --- factory -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["ppo", "a2c", "maskable_ppo"])
@pytest.mark.parametrize("n_envs", [1, 4])
@pytest.mark.parametrize("episode_length", [5, 6])
def test_default_hyperparameters_collect_whole_episodes(algo, n_envs, episode_length):
    params = default_hyperparameters(algo, episode_length, n_envs)
    assert params["gamma"] == 1.0
    assert params["n_steps"] % episode_length == 0 and params["n_steps"] >= episode_length
    if algo != "a2c":
        assert params["n_steps"] * n_envs == 64 * episode_length


@pytest.mark.parametrize(("algo", "cls"), [("ppo", PPO), ("a2c", A2C), ("maskable_ppo", MaskablePPO), ("MaskablePPO", MaskablePPO)])
def test_make_sb3_agent_builds_each_algorithm(algo, cls, tiny_topology):
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny_topology)
    model = make_sb3_agent(algo, env, seed=0, learning_rate=1e-3)
    assert type(model) is cls
    assert model.gamma == 1.0 and model.learning_rate == 1e-3
    assert model.n_steps % 6 == 0
    assert model.policy.net_arch == [64, 64] or model.policy.net_arch == {"pi": [64, 64], "vf": [64, 64]}


def test_make_sb3_agent_from_an_id_and_errors(tiny_topology):
    model = make_sb3_agent("ppo", "NATSBench-Size-v0", env_kwargs={"benchmark": natsbench_gym.load_benchmark("size", tiny_topology.path)})
    assert model.n_steps == 64 * 5
    with pytest.raises(UnknownNameError, match="unknown algorithm 'ppo2'; did you mean 'ppo'"):
        make_sb3_agent("ppo2", gym.make("NATSBench-Topology-v0", benchmark=tiny_topology))
    with pytest.raises(ValueError, match="env_kwargs is only used when env is an id"):
        make_sb3_agent("ppo", gym.make("NATSBench-Topology-v0", benchmark=tiny_topology), env_kwargs={"dataset": "cifar100"})


# --- callback and sampler ------------------------------------------------------------------------------
def test_callback_keeps_history_and_logs_to_tensorboard(tiny_topology, tmp_path, one_thread):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = gym.make("NATSBench-Topology-v0", benchmark=tiny_topology)
    model = make_sb3_agent("ppo", env, seed=0, tensorboard_log=str(tmp_path), n_epochs=1)
    callback = NASCallback()
    model.learn(2 * 384, callback=callback, tb_log_name="run")
    assert len(callback.history) == 128
    assert [ev.step for ev in callback.history] == list(range(1, 129))
    rewards = [ev.reward for ev in callback.history]
    assert callback.best.reward == max(rewards)
    assert callback.history[-1].total_train_time == pytest.approx(env.unwrapped.total_train_time)
    top = callback.top(5)
    assert top[0] == callback.best or top[0].reward == callback.best.reward
    assert len({ev.index for ev in top}) == len(top) and [ev.reward for ev in top] == sorted((ev.reward for ev in top), reverse=True)
    events = EventAccumulator(str(next((tmp_path).glob("run_*")))).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"search/reward", "search/best_reward", "search/best_test_accuracy", "search/best_valid_accuracy",
            "search/evaluations", "search/total_train_time"} <= scalars
    assert "search/best_arch/text_summary" in events.Tags()["tensors"]
    logged = events.Scalars("search/best_reward")[-1].value
    assert logged == pytest.approx(callback.best.reward, abs=1e-6)


@pytest.mark.filterwarnings("ignore:.*render_mode='rgb_array':UserWarning")  # make_vec_env asks for it first
def test_a2c_on_a_vec_env_records_every_episode(tiny_topology, one_thread):
    venv = make_vec_env("NATSBench-Size-v0", n_envs=2, seed=0, env_kwargs={"benchmark": natsbench_gym.load_benchmark("size", tiny_topology.path)})
    model = make_sb3_agent("a2c", venv, seed=0)
    callback = NASCallback()
    model.learn(400, callback=callback)
    assert model.n_steps == 20
    assert len(callback.history) == 400 // 5


def test_sample_architectures_is_reproducible_and_respects_masks(tiny_tables, one_thread):
    size = natsbench_gym.load_benchmark("size", tiny_tables)
    env = gym.make("NATSBench-Size-v0", benchmark=size, max_params=0.1)
    model = make_sb3_agent("maskable_ppo", env, seed=0)
    first = sample_architectures(model, gym.make("NATSBench-Size-v0", benchmark=size, max_params=0.1), 30, np.random.default_rng(1))
    again = sample_architectures(model, gym.make("NATSBench-Size-v0", benchmark=size, max_params=0.1), 30, np.random.default_rng(1))
    assert [i["index"] for i in first] == [i["index"] for i in again]
    assert all(i["metrics"]["params"] <= 0.1 for i in first)
    greedy = sample_architectures(model, env, 3, deterministic=True)
    assert len({i["index"] for i in greedy}) == 1


# --- the train job -------------------------------------------------------------------------------------
def test_train_agent_script(tiny_tables, tmp_path, capsys, one_thread):
    train_agent = load_job("train")
    argv = ["--env", "NATSBench-Topology-v0", "--algo", "ppo", "--reward", "accuracy", "--dataset", "cifar10",
            "--timesteps", "400", "--tensorboard", str(tmp_path), "--seed", "0", "--data", str(tiny_tables),
            "--samples", "10", "--top", "3"]
    assert train_agent.main(argv) == 0
    out = capsys.readouterr().out
    assert "test@200" in out and "final policy: mean test@200" in out
    assert len([line for line in out.splitlines() if "|~" not in line and line.strip().startswith(("1 ", "2 ", "3 "))]) == 3
    assert list(tmp_path.glob("ppo_topology_cifar10_accuracy_s0_*"))


def test_train_agent_script_saves_and_reloads_the_policy(tiny_tables, tmp_path, capsys, one_thread):
    train_agent = load_job("train")
    common = ["--algo", "ppo", "--data", str(tiny_tables), "--seed", "0", "--samples", "10", "--no-progress-bar"]
    assert train_agent.main(common + ["--timesteps", "400", "--save", str(tmp_path / "policy")]) == 0
    trained = capsys.readouterr().out
    assert (tmp_path / "policy.zip").is_file() and "saved the policy to" in trained
    assert train_agent.main(common + ["--load", str(tmp_path / "policy.zip")]) == 0
    reloaded = capsys.readouterr().out
    assert "loaded the ppo policy" in reloaded and "architectures evaluated" not in reloaded  # no training
    final = [line for line in trained.splitlines() if line.startswith("final policy")]
    assert final and final == [line for line in reloaded.splitlines() if line.startswith("final policy")]
    assert train_agent.main(common + ["--load", str(tmp_path / "missing.zip")]) == 2
    assert "cannot load" in capsys.readouterr().err


@pytest.mark.parametrize("steps", ["0", "-5"])
def test_train_agent_script_refuses_non_positive_timesteps(steps, capsys):
    with pytest.raises(SystemExit) as exited:
        load_job("train").main(["--timesteps", steps])
    assert exited.value.code == 2
    assert f"must be a positive number of environment steps, got {steps}" in capsys.readouterr().err


def test_train_agent_script_constraints_need_masking(tiny_tables, capsys, one_thread):
    train_agent = load_job("train")
    base = ["--env", "NATSBench-Size-v0", "--data", str(tiny_tables), "--timesteps", "100", "--samples", "5", "--max-params", "0.1"]
    assert train_agent.main(base + ["--algo", "ppo"]) == 2
    assert "use --algo maskable_ppo" in capsys.readouterr().err
    assert train_agent.main(base + ["--algo", "maskable_ppo", "--allowed-widths", "8", "16"]) == 0
    assert train_agent.main(base + ["--forbid-ops", "none"]) == 2
    assert "--forbid-ops applies to NATSBench-Topology-v0" in capsys.readouterr().err
    assert train_agent.main(["--data", str(tiny_tables), "--dataset", "cifar-10"]) == 2
    assert "did you mean 'cifar10'" in capsys.readouterr().err


# --- the claim -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ppo_beats_uniform_random_sampling_on_real_data(topology_bench, one_thread):
    """PPO (20k steps, default reward: 12-epoch validation accuracy) vs. uniform random sampling,
    both judged by 200-epoch CIFAR-10 test accuracy of 500 architectures each."""
    seed, n = 0, 500
    env = gym.make("NATSBench-Topology-v0", benchmark=topology_bench, dataset="cifar10")
    model = make_sb3_agent("ppo", env, seed=seed)
    model.learn(20_000)
    rng = np.random.default_rng(seed)
    eval_env = gym.make("NATSBench-Topology-v0", benchmark=topology_bench, dataset="cifar10")
    eval_env.reset(seed=seed)
    policy_idx = np.array([info["index"] for info in sample_architectures(model, eval_env, n, rng)])
    random_idx = topology_bench.indices_of_encodings(topology_bench.space.sample_many(rng, n))

    def mean_test(indices):
        return float(topology_bench.query_many(indices, "cifar10", 200, ["test_accuracy"])[Metric.TEST_ACCURACY].mean())

    policy, uniform = mean_test(policy_idx), mean_test(random_idx)
    assert policy >= uniform + 3.0, f"PPO {policy:.2f} vs uniform random {uniform:.2f} (margin {policy - uniform:.2f})"

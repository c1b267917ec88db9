"""natsbench_gym.envs.config: the shared env arguments as one frozen, validated EnvConfig."""

from __future__ import annotations

import dataclasses
import doctest
import inspect
import math

import gymnasium as gym
import numpy as np
import pytest

import natsbench_gym
from natsbench_gym import ENV_IDS, Dataset, Metric
from natsbench_gym.benchmarks import Benchmark
from natsbench_gym.envs import EnvConfig, NATSBenchSizeEnv, NATSBenchTopologyEnv, UnsupportedRenderModeError
from natsbench_gym.envs import config as config_module
from natsbench_gym.errors import InvalidConfigError, NATSBenchGymError, UnknownNameError


@pytest.fixture(scope="module")
def tiny(tiny_tables) -> dict[str, Benchmark]:
    return {kind: natsbench_gym.load_benchmark(kind, tiny_tables) for kind in ENV_IDS}


def test_defaults_and_normalised_values():
    default = EnvConfig()
    assert (default.dataset, default.reward_model, default.budget, default.accuracy_metric) == (
        Dataset.CIFAR10, "accuracy", None, Metric.VALID_ACCURACY)
    assert default.noise is False and default.precompute is None and default.render_mode is None
    config = EnvConfig(dataset="cifar100", accuracy_metric="test_accuracy", budget="200", max_params=1,
                       max_flops=np.float32(2.5), noise=np.bool_(True))
    assert config.dataset is Dataset.CIFAR100 and config.accuracy_metric is Metric.TEST_ACCURACY
    assert config.budget == 200 and isinstance(config.budget, int)
    assert config.max_params == 1.0 and isinstance(config.max_params, float) and config.max_flops == 2.5
    assert config.noise is True
    assert config == EnvConfig(dataset=Dataset.CIFAR100, accuracy_metric=Metric.TEST_ACCURACY, budget=200,
                               max_params=1.0, max_flops=2.5, noise=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.budget = 12


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_params": "half"}, InvalidConfigError, r"max_params must be a number \(millions\) or None, got 'half' \(str\)"),
        ({"max_flops": math.nan}, InvalidConfigError, r"max_flops is nan; give a number \(MFLOPs\) or None"),
        ({"max_latency": True}, InvalidConfigError, r"max_latency must be a number \(ms\) or None, got True \(bool\)"),
        ({"budget": 12.5}, InvalidConfigError, r"budget must be a whole number of training epochs .* got 12.5 \(float\)"),
        ({"budget": True}, InvalidConfigError, r"budget must be a whole number .* got True \(bool\)"),
        ({"noise": "yes"}, InvalidConfigError, r"noise must be True or False, got 'yes' \(str\)"),
        ({"precompute": 1}, InvalidConfigError, r"precompute must be True, False or None, got 1 \(int\)"),
        ({"device": 3}, InvalidConfigError, r"device must be a latency device name .* got 3 \(int\)"),
        ({"benchmark": 42}, InvalidConfigError, r"benchmark must be a Benchmark, a data path or None, got 42 \(int\)"),
        ({"accuracy_metric": "flops"}, InvalidConfigError, r"accuracy_metric must be an accuracy .*got 'flops'"),
        ({"accuracy_metric": "valid_acc"}, UnknownNameError, r"unknown metric 'valid_acc'"),
        ({"dataset": "cifar-10"}, UnknownNameError, r"unknown dataset 'cifar-10'; did you mean 'cifar10'"),
        ({"reward_model": "acuracy"}, UnknownNameError, r"unknown fixed metric 'acuracy'; did you mean 'accuracy'"),
        ({"reward_model": 42}, InvalidConfigError, r"reward_model must be a fixed-metric name .* got int"),
        ({"render_mode": "rgb_array"}, UnsupportedRenderModeError, r"render_mode 'rgb_array' is not supported; use one of \['ansi', 'human'\]"),
    ],
)
def test_bad_values_are_typed_errors_naming_the_value(options, error, message):
    with pytest.raises(error, match=message) as caught:
        EnvConfig(**options)
    assert isinstance(caught.value, NATSBenchGymError) and isinstance(caught.value, ValueError)
    if error is not UnknownNameError:
        assert isinstance(caught.value, InvalidConfigError) and isinstance(caught.value, TypeError)


def test_gym_make_checks_the_arguments_before_looking_for_data(monkeypatch, tmp_path):
    from natsbench_gym import benchmarks

    monkeypatch.delenv("NATSBENCH_DATA", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(benchmarks, "_FALLBACKS", [])
    with pytest.raises(InvalidConfigError, match="max_params must be a number"):
        gym.make(ENV_IDS["topology"], max_params="small")
    with pytest.raises(natsbench_gym.DataNotFoundError):  # the same call with good arguments looks for data
        gym.make(ENV_IDS["topology"], max_params=0.5)


def test_unknown_keywords_name_the_closest_argument(tiny):
    with pytest.raises(InvalidConfigError, match="NATSBenchTopologyEnv got an unknown argument 'max_param'; did you mean 'max_params'"):
        gym.make(ENV_IDS["topology"], benchmark=tiny["topology"], max_param=0.5)
    with pytest.raises(TypeError, match=r"NATSBenchSizeEnv got an unknown argument 'forbidden_ops'.*allowed_widths, dataset"):
        gym.make(ENV_IDS["size"], benchmark=tiny["size"], forbidden_ops=("none",))
    with pytest.raises(InvalidConfigError, match=r"takes its arguments by keyword.*'cifar10' \(str\) \(did you mean dataset='cifar10'\?\)"):
        NATSBenchTopologyEnv("cifar10", benchmark=tiny["topology"])


def test_a_config_and_keywords_make_the_same_env(tiny):
    config = EnvConfig(benchmark=tiny["topology"], budget=200, max_params=0.1, reward_model="params")
    by_config = gym.make(ENV_IDS["topology"], config=config).unwrapped
    by_keywords = gym.make(ENV_IDS["topology"], benchmark=tiny["topology"], budget=200, max_params=0.1, reward_model="params").unwrapped
    assert by_config.config == by_keywords.config == config
    assert by_config.budget == 200 and by_config.constraints == by_keywords.constraints == {"max_params": 0.1}
    np.testing.assert_array_equal(by_config.feasible, by_keywords.feasible)
    replaced = gym.make(ENV_IDS["topology"], config=config, budget=12, forbidden_ops=("none",)).unwrapped
    assert replaced.budget == 12 and replaced.config == dataclasses.replace(config, budget=12)
    assert replaced.forbidden_ops == ("none",) and config.budget == 200  # the given config is unchanged
    assert EnvConfig.from_options(config) is config


def test_each_env_declares_only_its_own_arguments():
    shared = {f.name for f in dataclasses.fields(EnvConfig)}
    for env_class, own in ((NATSBenchTopologyEnv, "forbidden_ops"), (NATSBenchSizeEnv, "allowed_widths")):
        params = inspect.signature(env_class.__init__).parameters
        assert set(params) == {"self", "config", own, "options"}
        assert params["options"].kind is inspect.Parameter.VAR_KEYWORD
        assert env_class.own_arguments == (own,) and own not in shared


def test_config_docstring_examples():
    result = doctest.testmod(config_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

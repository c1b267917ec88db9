"""benchmarks/bench_personalization.py and benchmarks/bench_warm_start.py: the parts that decide what
their tables mean (careless users, the likelihood method, the warm start's cluster oracle)."""

from __future__ import annotations

import numpy as np
import pytest

FEATURES = ("test_accuracy", "latency", "params", "flops")


@pytest.fixture(scope="module")
def warm(load_script):
    return load_script("benchmarks/bench_warm_start.py", "bench_warm_start")


@pytest.fixture(scope="module")
def hyp():
    from reward_models.posterior import MetricFamilyConfig, _Hypotheses

    return _Hypotheses.build(len(FEATURES), MetricFamilyConfig())


def test_the_oracle_of_a_weighted_cluster_is_its_dirichlet(warm, hyp):
    oracle = warm.ClusterOracle("accurate")
    p = oracle.population_distribution(hyp, FEATURES, ())
    f, h_lin = len(FEATURES), hyp.weights.shape[0]
    assert p.sum() == pytest.approx(1.0) and p[f:h_lin].sum() == pytest.approx(1.0)
    mean = p[f:h_lin] @ hyp.weights[f:h_lin]
    np.testing.assert_allclose(mean, [0.8, 0.1, 0.05, 0.05], atol=0.05)  # the cluster's Dirichlet mean
    assert oracle.effective_draws > 20
    # the features' order is read from their names
    swapped = warm.ClusterOracle("accurate").population_distribution(hyp, ("latency", "test_accuracy", "params", "flops"), ())
    np.testing.assert_allclose(swapped[f:h_lin] @ hyp.weights[f:h_lin], [0.1, 0.8, 0.05, 0.05], atol=0.05)


def test_the_oracle_of_a_budget_cluster_is_its_constraints(warm, hyp):
    p = warm.ClusterOracle("mobile").population_distribution(hyp, FEATURES, ())
    h_lin = hyp.weights.shape[0]
    rows = np.flatnonzero(p > 0)
    assert rows.min() >= h_lin and p.sum() == pytest.approx(1.0)
    c = rows - h_lin
    assert set(hyp.objective[c]) == {0} and set(hyp.constrained[c]) == {1}  # accuracy where latency
    np.testing.assert_allclose(sorted(set(np.round(hyp.level[c], 2))), [0.55, 0.6, 0.65, 0.7, 0.75])


def test_careless_users_and_the_likelihood_method_run(real_data, monkeypatch, load_script):
    import reward_models.human_preference as hp

    monkeypatch.setenv("NATSBENCH_DATA", str(real_data))
    bench = load_script("benchmarks/bench_personalization.py", "bench_personalization")
    made = []
    original = hp.make_user
    monkeypatch.setattr(hp, "make_user", lambda *a, **k: made.append(k.get("noise")) or original(*a, **k))
    rows = bench.run_one("weighted", "cifar10", 0, (6,), ("interactive", "likelihood"), 30, flip=0.3)
    assert [r["method"] for r in rows] == ["interactive", "likelihood"]
    assert all(0 < r["percentile"] <= 100 and r["judgments"] == 6 for r in rows)
    assert made[-1].flip_probability == 0.3  # the user answers carelessly
    bench.run_one("weighted", "cifar10", 0, (6,), ("interactive",), 30)
    assert made[-1] is None  # and by default never


def test_own_device_states_the_users_devices(real_data, monkeypatch, load_script):
    """``own-device``: a one-device user searches an env that reports its device's latency, a
    two-device user names both; a user of the env's device is skipped (it would be interactive)."""
    import agents.personalization as ap

    monkeypatch.setenv("NATSBENCH_DATA", str(real_data))
    bench = load_script("benchmarks/bench_personalization.py", "bench_personalization")
    seen = []
    original = ap.Personalization.__init__

    def spy(self, *a, **k):
        seen.append(k.get("devices"))
        original(self, *a, **k)

    monkeypatch.setattr(ap.Personalization, "__init__", spy)
    envs = []
    make_env = bench._env
    monkeypatch.setattr(bench, "_env", lambda ds, device=None: envs.append(device) or make_env(ds, device))
    rows = bench.run_one("pixel3_threshold", "cifar10", 0, (4,), ("own-device",), 20)
    assert [r["method"] for r in rows] == ["own-device"] and seen[-1] is None
    assert envs[-1] == "pixel3" and bench._env("cifar10", "pixel3").unwrapped.context.device == "pixel3"
    rows = bench.run_one("two_devices", "cifar10", 0, (4,), ("own-device",), 20)
    assert [r["method"] for r in rows] == ["own-device"] and seen[-1] == ["raspi4", "samsung_a50"]
    assert bench.run_one("weighted", "cifar10", 0, (4,), ("own-device",), 20) == []

"""Warm start from earlier users (issue 17): the opt-in preference library, the population prior
with its learned weight, and the first architectures seeded from earlier recommendations."""

from __future__ import annotations

import os
import re
import sqlite3

import gymnasium as gym
import numpy as np
import pytest

import natsbench_gym
from agents.errors import AgentConfigError
from agents.evolution import RegularizedEvolution
from agents.personalization import Personalization
from agents.random_search import RandomSearch
from natsbench_gym.rewards import utility
from natsbench_gym.types import Metric
from reward_models import SyntheticUser
from reward_models.evaluation import top_k_precision
from reward_models.library import (
    PopulationPrior,
    PosteriorSummary,
    PreferenceLibrary,
    PreferenceLibraryError,
    default_library_path,
)
from reward_models.posterior import MetricFamilyPosterior


@pytest.fixture(scope="module")
def tiny_topology(tiny_tables):
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture
def env(tiny_topology):
    return gym.make("NATSBench-Topology-v0", benchmark=tiny_topology, dataset="cifar10", budget=200)


class Weighted:
    """A weighted sum of the accuracy, params and FLOPs utilities (the tiny table has no latency)."""

    def __init__(self, w, name="w"):
        self.w, self.name = tuple(float(x) for x in w), name

    def required_metrics(self, context):
        return (context.accuracy_metric, Metric.PARAMS, Metric.FLOPS)

    def score_many(self, metrics, context):
        return sum(w * utility(m, np.asarray(metrics[m]), context) for w, m in zip(self.w, self.required_metrics(context), strict=True))


def weighted_user(env, w, name="w"):
    return SyntheticUser(Weighted(w, name), env.unwrapped.context, name=f"synthetic:{name}")


def snapshot(path):
    st = os.stat(path)
    return path.read_bytes(), st.st_mtime_ns, st.st_size


@pytest.fixture
def library_of_accurate_users(env, tmp_path):
    """Six earlier users who all wanted accuracy first (90 %), each remembered."""
    lib = PreferenceLibrary(tmp_path / "lib" / "prefs.sqlite")
    for i in range(6):
        user = weighted_user(env, (0.9, 0.05, 0.05), name=f"accurate{i}")
        RegularizedEvolution(10, 5, seed=100 + i, personalization=Personalization(user, 12, remember=lib)).search(env, 40)
    return lib


# --- nothing is stored without opt-in --------------------------------------------------------------------
def test_a_search_without_remember_writes_no_library(env, tmp_path, monkeypatch):
    monkeypatch.delenv("NATSBENCH_GYM_LIBRARY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    before = sorted(p for p in tmp_path.rglob("*"))
    result = RegularizedEvolution(10, 5, seed=0, personalization=Personalization(weighted_user(env, (1, 0, 0)), 6)).search(env, 30)
    assert "remembered" not in result.info
    assert not default_library_path().exists()
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_opening_or_reading_a_missing_library_creates_nothing(tmp_path):
    path = tmp_path / "sub" / "prefs.sqlite"
    lib = PreferenceLibrary(path)
    assert len(lib) == 0 and lib.count("topology") == 0
    assert lib.population_prior().users == 0
    assert not path.exists() and not path.parent.exists()


def test_a_library_that_reads_nothing_is_a_cold_start(env, tmp_path):
    user = weighted_user(env, (1, 0, 0))
    cold = RegularizedEvolution(10, 5, seed=3, personalization=Personalization(user, 6)).search(env, 30)
    empty = RegularizedEvolution(10, 5, seed=3, personalization=Personalization(user, 6, warm_start=PreferenceLibrary(tmp_path / "none.sqlite"))).search(env, 30)
    assert [e.index for e in empty.history] == [e.index for e in cold.history]
    assert "warm_start" not in empty.info and not (tmp_path / "none.sqlite").exists()


def test_remember_adds_the_session_and_nothing_else(env, tmp_path):
    path = tmp_path / "prefs.sqlite"
    user = weighted_user(env, (1, 0, 0))
    result = RegularizedEvolution(10, 5, seed=0, personalization=Personalization(user, 6, remember=str(path), remember_label="ada")).search(env, 30)
    lib = PreferenceLibrary(path)
    assert result.info["remembered"] == {"library": str(path), "session": 1}
    [session] = lib.sessions(comparisons=True)
    assert (session.label, session.space, session.dataset, session.judgments) == ("ada", "topology", "cifar10", 6)
    assert len(session.comparisons) == 6 and session.recommended[0] == result.best.arch
    assert session.summary.features == ("valid_accuracy", "params", "flops")


# --- a corrupt library: a typed error, the file left as it was ----------------------------------------------
@pytest.mark.parametrize(
    "content",
    [b"not a database at all\n", b"", b"SQLite format 3\x00" + b"\xff" * 200],
    ids=["text", "empty", "truncated-sqlite"],
)
def test_a_corrupt_library_is_a_typed_error_and_is_not_overwritten(env, tmp_path, content):
    path = tmp_path / "prefs.sqlite"
    path.write_bytes(content)
    before = snapshot(path)
    with pytest.raises(PreferenceLibraryError, match="prefs.sqlite.*left as it is"):
        PreferenceLibrary(path)
    with pytest.raises(PreferenceLibraryError):
        Personalization(weighted_user(env, (1, 0, 0)), 6, remember=path)
    assert snapshot(path) == before


def test_another_programs_sqlite_file_is_not_a_library_and_is_not_touched(env, tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (x TEXT)")
    con.commit()
    con.close()
    before = snapshot(path)
    with pytest.raises(PreferenceLibraryError, match="without its tables"):
        PreferenceLibrary(path)
    assert snapshot(path) == before


def test_a_library_corrupted_during_the_search_loses_nothing_and_is_not_overwritten(env, tmp_path, library_of_accurate_users):
    lib = library_of_accurate_users
    user = weighted_user(env, (1, 0, 0))
    agent = RegularizedEvolution(10, 5, seed=0, personalization=Personalization(user, 4, remember=lib))
    lib.path.write_bytes(b"garbage" * 10)  # after the Personalization opened it, before the search ends
    before = snapshot(lib.path)
    result = agent.search(env, 20)
    assert len(result.history) == 20 and len(result.info["comparisons"]) == 4
    assert result.info["remembered"]["session"] is None
    assert "prefs.sqlite is not a natsbench-gym preference library" in result.info["remembered"]["error"]
    assert snapshot(lib.path) == before
    with pytest.raises(PreferenceLibraryError):
        lib.add_result(result, env.unwrapped.context)


def test_a_remembered_session_keeps_its_model_s_family(env, tmp_path):
    """The interactive loop's model has the target structures (a sweet spot), the one-shot
    protocol's has not: the library's summary of each session is fitted in that session's family."""
    lib = PreferenceLibrary(tmp_path / "prefs.sqlite")
    user = weighted_user(env, (1, 0, 0))
    for schedule in ("interactive", "one-shot"):
        p = Personalization(user, 4, schedule=schedule, num_architectures=5, remember=lib)
        RegularizedEvolution(10, 5, seed=0, personalization=p).search(env, 20)
    interactive, one_shot = (s.summary for s in lib.sessions())
    assert interactive.target.size > 0 and one_shot.target.size == 0
    assert interactive.constraint.size == one_shot.constraint.size
    # the population reads both into a family with the target structures
    prior = lib.population_prior()
    ctx = env.unwrapped.context
    post = MetricFamilyPosterior(family_prior=(1, 1, 1, 1), population=prior).fit(interactive_judgments(env), ctx)
    assert post.population_weight is not None and np.isfinite(post.log_posterior).any()


def interactive_judgments(env):
    user = weighted_user(env, (1, 0, 0))
    return RegularizedEvolution(10, 5, seed=1, personalization=Personalization(user, 4)).search(env, 20).info["comparisons"]


# --- the population prior ----------------------------------------------------------------------------------
def test_posterior_summary_round_trips(env):
    user = weighted_user(env, (0.2, 0.8, 0))
    result = RegularizedEvolution(10, 5, seed=0, personalization=Personalization(user, 8)).search(env, 30)
    post = MetricFamilyPosterior().fit(result.info["comparisons"], env.unwrapped.context)
    s = PosteriorSummary.of(post)
    t = PosteriorSummary.from_bytes(s.to_bytes())
    assert t.features == s.features and t.thresholds == s.thresholds
    np.testing.assert_allclose(t.selective, s.selective)
    np.testing.assert_allclose(t.constraint, s.constraint, rtol=1e-6, atol=1e-12)
    total = s.selective.sum() + s.constraint.sum() + s.point_mass.sum()
    assert total == pytest.approx(1.0)


def test_the_population_prior_ranks_like_earlier_users_before_any_judgment(env, library_of_accurate_users):
    ctx = env.unwrapped.context
    prior = library_of_accurate_users.population_prior(space="topology")
    assert prior.users == 6
    idx = np.arange(ctx.benchmark.space.size)
    accurate = weighted_user(env, (0.9, 0.05, 0.05)).utilities(idx)
    flat = MetricFamilyPosterior.prior(ctx)
    warm = MetricFamilyPosterior.prior(ctx, population=prior)
    metrics = ctx.query(idx, flat.required_metrics(ctx))
    assert warm.population_share == pytest.approx(0.5) and warm.population_weight == 0.5
    p_warm = top_k_precision(warm.score_many(metrics, ctx), accurate, 10)
    p_flat = top_k_precision(flat.score_many(metrics, ctx), accurate, 10)
    assert p_warm >= 0.7 > p_flat


def test_a_user_unlike_the_library_gets_exactly_the_cold_posterior(env, library_of_accurate_users):
    """The outlier guard: judgments the population explains worse than the flat prior set its weight to 0."""
    ctx = env.unwrapped.context
    prior = library_of_accurate_users.population_prior()
    slow_and_big = weighted_user(env, (0.0, 1.0, 0.0))  # the fewest params whatever the accuracy: nobody in the library
    result = RegularizedEvolution(10, 5, seed=7, personalization=Personalization(slow_and_big, 10)).search(env, 40)
    comparisons = result.info["comparisons"]
    cold = MetricFamilyPosterior().fit(comparisons, ctx)
    warm = MetricFamilyPosterior(population=prior).fit(comparisons, ctx)
    assert warm.population_evidence < -np.log(3.0)
    assert warm.population_weight == 0.0 and warm.population_share == 0.0
    np.testing.assert_array_equal(warm.log_posterior, cold.log_posterior)


def test_a_user_like_the_library_keeps_it(env, library_of_accurate_users):
    ctx = env.unwrapped.context
    prior = library_of_accurate_users.population_prior()
    user = weighted_user(env, (0.85, 0.1, 0.05))
    result = RegularizedEvolution(10, 5, seed=8, personalization=Personalization(user, 6)).search(env, 30)
    warm = MetricFamilyPosterior(population=prior).fit(result.info["comparisons"], ctx)
    assert warm.population_evidence > 0 and warm.population_weight == 0.5
    assert warm.population_share > 0.5


def test_exclude_leaves_a_user_out(library_of_accurate_users):
    assert library_of_accurate_users.population_prior(exclude=[1, 2]).users == 4
    assert library_of_accurate_users.population_prior(space="size").users == 0


def test_population_prior_settings_are_checked():
    with pytest.raises(ValueError, match="weight"):
        PopulationPrior([], weight=1.5)
    with pytest.raises(ValueError, match="bandwidth"):
        PopulationPrior([], bandwidth=0)
    with pytest.raises(ValueError, match="em_steps"):
        PopulationPrior([], em_steps=0)


def test_em_steps_sharpen_the_population_toward_what_its_users_share(env, tmp_path):
    """Four earlier users wanted accuracy first, one the fewest FLOPs: the mean of their summaries
    (em_steps=1) keeps the minority's mass, EM (the default: 20 steps) moves it to what most of them hold."""
    from reward_models.posterior import _Hypotheses

    ctx = env.unwrapped.context
    lib = PreferenceLibrary(tmp_path / "prefs.sqlite")
    for i, w in enumerate([(0.9, 0.05, 0.05)] * 4 + [(0.0, 0.0, 1.0)]):
        user = weighted_user(env, w, name=f"u{i}")
        RegularizedEvolution(10, 5, seed=200 + i, personalization=Personalization(user, 12, remember=lib)).search(env, 40)
    post = MetricFamilyPosterior.prior(ctx)
    hyp = _Hypotheses.build(len(post.normaliser.metrics), post.config)
    features = [m.value for m in post.normaliser.metrics]
    mean = lib.population_prior(em_steps=1).population_distribution(hyp, features, post.config.thresholds)
    users = lib.population_prior().user_distributions(hyp, features, post.config.thresholds)
    assert users.shape == (5, hyp.size)
    np.testing.assert_allclose(users.sum(axis=1), 1.0)
    np.testing.assert_allclose(users.mean(axis=0)[: len(features)], mean[: len(features)], rtol=0.05)  # about the mean's selective masses
    assert lib.population_prior().em_steps == 20
    sharp = lib.population_prior().population_distribution(hyp, features, post.config.thresholds)
    assert sharp.sum() == pytest.approx(1.0)
    idx = np.arange(ctx.benchmark.space.size)
    x = post.normaliser.transform(ctx.query(idx, post.required_metrics(ctx)))
    u = hyp.utilities(x[:, : len(features)], x[:, len(features) :])  # (h, archs)
    accurate = weighted_user(env, (0.9, 0.05, 0.05)).utilities(idx)
    frugal = weighted_user(env, (0.0, 0.0, 1.0)).utilities(idx)

    def agreement(p, truth):  # the prior's expected rank correlation with a user
        ranks = np.argsort(np.argsort(u, axis=1), axis=1)
        corr = np.array([np.corrcoef(r, truth)[0, 1] for r in ranks[p > 1e-4]])
        return float(p[p > 1e-4] @ corr / p[p > 1e-4].sum())

    assert agreement(sharp, accurate) > agreement(mean, accurate)
    assert agreement(sharp, frugal) < agreement(mean, frugal)


# --- the search ---------------------------------------------------------------------------------------
def test_warm_start_seeds_the_first_architectures_from_earlier_recommendations(env, library_of_accurate_users):
    user = weighted_user(env, (0.9, 0.05, 0.05))
    p = Personalization(user, 6, warm_start=library_of_accurate_users)
    result = RegularizedEvolution(10, 5, seed=1, personalization=p).search(env, 30)
    earlier = {a for s in library_of_accurate_users.sessions() for a in s.recommended}
    info = result.info["warm_start"]
    assert info["users"] == 6 and info["seeded"] == 5  # half of the initial population of 10
    assert all(ev.arch in earlier for ev in result.history[:5])
    assert info["share"] > 0.5 and info["disagrees"] is False


def test_warm_start_is_deterministic_and_works_for_other_agents(env, library_of_accurate_users):
    user = weighted_user(env, (0.9, 0.05, 0.05))

    def run(agent_cls):
        p = Personalization(user, 6, warm_start=library_of_accurate_users)
        return [ev.index for ev in agent_cls(seed=4, personalization=p).search(env, 25).history]

    assert run(RandomSearch) == run(RandomSearch)
    first = RandomSearch(seed=4, personalization=Personalization(user, 6, warm_start=library_of_accurate_users)).search(env, 25)
    assert first.info["warm_start"]["seeded"] >= 2


def test_warm_start_helps_a_user_like_the_library(env, library_of_accurate_users):
    """At two judgments, a user like the earlier ones is recommended a better architecture warm than
    cold, over a few seeds (the prior knows what the two judgments cannot tell)."""
    ctx = env.unwrapped.context
    user = weighted_user(env, (0.88, 0.05, 0.07))
    u = user.utilities(np.arange(ctx.benchmark.space.size))

    def mean_utility(warm):
        out = []
        for seed in range(4):
            p = Personalization(user, 2, warm_start=library_of_accurate_users if warm else None)
            out.append(u[RegularizedEvolution(10, 5, seed=seed, personalization=p).search(env, 30).best.index])
        return float(np.mean(out))

    assert mean_utility(True) > mean_utility(False)


def test_bad_warm_start_arguments_are_typed_errors(env):
    user = weighted_user(env, (1, 0, 0))
    with pytest.raises(AgentConfigError, match="warm_start"):
        Personalization(user, 6, warm_start="a path?")
    with pytest.raises(AgentConfigError, match="remember"):
        Personalization(user, 6, remember=3)


def test_a_library_that_cannot_be_written_is_a_typed_error_and_the_search_kept(env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    user = weighted_user(env, (1, 0, 0))
    agent = RegularizedEvolution(10, 5, seed=0, personalization=Personalization(user, 4, remember=blocker / "prefs.sqlite"))
    result = agent.search(env, 20)
    assert len(result.history) == 20
    assert re.search("cannot remember the session.*--library PATH", result.info["remembered"]["error"])
    with pytest.raises(PreferenceLibraryError, match="cannot remember the session.*--library PATH"):
        PreferenceLibrary(blocker / "prefs.sqlite").add_result(result, env.unwrapped.context)
    assert blocker.read_text() == "not a folder"


def test_the_population_can_be_limited_to_one_dataset(library_of_accurate_users):
    assert library_of_accurate_users.population_prior(dataset="cifar10").users == 6
    assert library_of_accurate_users.population_prior(dataset="cifar100").users == 0

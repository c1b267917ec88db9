"""Which parent and which child the agents propose: the tournament's tie-break in regularized
evolution, and the one-decision mutation under constraints (agents.proposals)."""

from __future__ import annotations

from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

import agents.evolution as evolution
import natsbench_gym
from agents.evolution import RegularizedEvolution
from agents.proposals import mutate_architecture
from natsbench_gym.spaces import SIZE_WIDTHS, TOPOLOGY_OPS
from natsbench_gym.types import Metric


class RecordingRng:
    """A numpy generator that remembers the tournament samples it draws (and changes nothing)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self.samples: list[list[int]] = []

    def choice(self, *args, **kwargs):
        out = self._rng.choice(*args, **kwargs)
        if kwargs.get("replace") is False:  # the tournament: s members without replacement
            self.samples.append(np.asarray(out).tolist())
        return out

    def __getattr__(self, name):
        return getattr(self._rng, name)


# --- the tournament ----------------------------------------------------------------------------------
@pytest.mark.parametrize("score", ["constant", "two_levels"])
@pytest.mark.parametrize(("population", "sample"), [(8, 8), (8, 4)])
def test_the_oldest_of_the_fittest_in_the_sample_wins_the_tournament(score, population, sample, tiny_tables, monkeypatch):
    """Among sampled members tied at the best fitness, the parent is the one evaluated first (the oldest),
    whatever order the sample was drawn in: a youngest-wins or a random tie-break fails here."""
    fitness = {"constant": lambda ev: 0.0, "two_levels": lambda ev: float(ev.index % 2)}[score]

    class Watched(RegularizedEvolution):
        def _search(self):
            self.rng = RecordingRng(self.rng)
            super()._search()

        def search_score(self, evaluation):
            return fitness(evaluation)

    agent = Watched(population_size=population, sample_size=sample, seed=3)
    cycles = []
    real_mutate = evolution.mutate_architecture

    def spy(env, encoding, rng):
        cycles.append((list(agent.population), agent.rng.samples[-1], tuple(encoding)))
        return real_mutate(env, encoding, rng)

    monkeypatch.setattr(evolution, "mutate_architecture", spy)
    env = gym.make("NATSBench-Topology-v0", benchmark=natsbench_gym.load_benchmark("topology", tiny_tables))
    agent.search(env, budget=population + 60)
    assert len(cycles) >= 60  # the last child is proposed, then the spent budget stops its evaluation
    decisive = 0
    for members, picks, parent in cycles:
        assert len(picks) == sample and len(members) == population
        best = max(fitness(members[i]) for i in picks)
        tied = [i for i in sorted(picks) if fitness(members[i]) == best]
        oldest = members[tied[0]]
        assert parent == oldest.encoding, f"parent {parent} is not the oldest of the tied {[members[i].encoding for i in tied]}"
        decisive += any(members[i].encoding != oldest.encoding for i in tied)
    assert decisive >= 30, "too few tournaments where the tie-break decides: the test would not see a change"


# --- the constrained mutation ----------------------------------------------------------------------------
def _one_decision_changes(encoding: tuple[int, ...], num_choices: int) -> list[tuple[int, ...]]:
    return [encoding[:i] + (c,) + encoding[i + 1:] for i in range(len(encoding)) for c in range(num_choices)
            if c != encoding[i]]


@pytest.mark.parametrize("kind", ["topology", "size"])
def test_the_constrained_mutation_reaches_every_feasible_neighbour_and_no_other(kind, tiny_tables):
    """Many mutations of one architecture under constraints give exactly its feasible neighbours (one
    decision changed, every constraint met), each about equally often; feasibility is checked here from
    the constraint's definition and the benchmark's own numbers, not with the env's ``is_feasible``."""
    bench = natsbench_gym.load_benchmark(kind, tiny_tables)
    space = bench.space
    if kind == "topology":
        parent = (3, 2, 4, 1, 3, 2)  # no "none" op
        banned = TOPOLOGY_OPS.index("none")
        choice_ok = lambda enc: banned not in enc  # noqa: E731
        constraint, cap_metric, dataset = {"forbidden_ops": ("none",)}, Metric.PARAMS, "cifar10"
    else:
        parent = (3, 4, 2, 5, 3)
        allowed = (16, 24, 32, 40, 48, 56)
        choice_ok = lambda enc: all(SIZE_WIDTHS[i] in allowed for i in enc)  # noqa: E731
        constraint, cap_metric, dataset = {"allowed_widths": allowed}, Metric.FLOPS, "cifar10"
    neighbours = _one_decision_changes(parent, space.num_choices)
    env_budget = gym.make(f"NATSBench-{kind.capitalize()}-v0", benchmark=bench).unwrapped.budget

    def cost(encs):
        idx = bench.indices_of_encodings(np.array(encs))
        return bench.query_many(idx, dataset, env_budget, [cap_metric])[cap_metric]

    # A cap between the parent's cost and the costliest allowed neighbour's: some neighbours exceed it.
    allowed_costs = np.sort(cost([n for n in neighbours if choice_ok(n)]))
    cap = float(max(cost([parent])[0], np.median(allowed_costs)))
    feasible = {n for n, c in zip(neighbours, cost(neighbours), strict=True) if choice_ok(n) and c <= cap}
    by_choice = sum(not choice_ok(n) for n in neighbours)
    by_cap = sum(choice_ok(n) and c > cap for n, c in zip(neighbours, cost(neighbours), strict=True))
    assert by_choice > 0 and by_cap > 0 and len(feasible) >= 4, "the constraints must cut both ways"

    env = gym.make(f"NATSBench-{kind.capitalize()}-v0", benchmark=bench, dataset=dataset,
                   **constraint, **{f"max_{cap_metric.value}": cap})
    rng = np.random.default_rng(0)
    draws = Counter(mutate_architecture(env, parent, rng) for _ in range(200 * len(feasible)))
    assert set(draws) == feasible, (f"missed {sorted(feasible - set(draws))}, "
                                    f"infeasible or not a neighbour {sorted(set(draws) - feasible)}")
    # Uniform over the feasible neighbours (Real et al.'s mutation, redrawn until feasible).
    assert min(draws.values()) > 100 and max(draws.values()) < 300

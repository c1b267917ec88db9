"""Searches that keep several evaluations in flight: batched and asynchronous regularized evolution,
batched random search.

They drive the env as every agent does (``reset``/``step``; :meth:`SearchAgent.evaluate`) and add
one thing: before building architectures in episodes they hand them to the env at once
(:meth:`SearchAgent.prefetch`, or ``env.unwrapped.submit`` one at a time), so a live benchmark on a
parallel executor (:mod:`natsbench_gym.live.executor`: local processes or Ray) trains them
concurrently. On a table, or with the in-process executor, nothing changes but the order in which
proposals are drawn.

**Synchronous (batched) mode** is deterministic: proposals of a batch are drawn from the agent's
seeded generator before any of them is evaluated, and they enter the history in the order they were
drawn, whichever worker finished first. With a fixed batch size and seed the history is the same on
every executor and with any number of workers. With ``batch_size=1`` :class:`AsyncRegularizedEvolution`
is :class:`~agents.evolution.RegularizedEvolution` and :class:`ParallelRandomSearch` is
:class:`~agents.random_search.RandomSearch` (same seed, same history), batched or not.

**Asynchronous mode** (Real et al.'s: each free worker takes the next child) keeps ``workers``
children in flight; when one finishes, it joins the population (the oldest member leaves) and a new
child is bred from the population *as it is then*. What it reproduces: the initial population, every
architecture's metrics (trainings are deterministic per architecture) and, with one worker or the
in-process executor, the whole history (it is then the batched search with ``batch_size=workers``).
What it does not: with several real workers, which child finishes first depends on timing (machine
load, architecture size, the network), so the population each child is bred from, and with it the
history after the initial population, can differ from run to run. Seeds still make each run's
*proposal stream given that order* fixed.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections import deque
from typing import Any

from agents.base import BudgetExhausted, Evaluation, SearchAgent
from agents.errors import AgentConfigError
from agents.proposals import mutate_architecture, sample_architecture

__all__ = ["AsyncRegularizedEvolution", "ParallelRandomSearch"]


def _check_count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AgentConfigError(f"{name} must be a positive integer or None (the benchmark's workers), got {value!r}")
    return value


class AsyncRegularizedEvolution(SearchAgent):
    """Regularized evolution with several children in flight (Real et al. 2019, asynchronous).

    Args:
        population_size: ``p`` (the paper: 10).
        sample_size: ``s``, the tournament sample, ``1 <= s <= p`` (the paper: 5).
        seed: seeds sampling and mutation.
        workers: children in flight (asynchronous) or per batch (synchronous); ``None``: the env's
            :attr:`~natsbench_gym.envs.base.NATSBenchEnv.parallelism` (the executor's workers).
        asynchronous: ``True``: each finished child is replaced at once by a new one bred from the
            current population (not reproducible run to run with several workers, see the module
            docstring); ``False``: batches of ``workers`` children bred from the same population,
            evaluated together, entered in the order drawn (reproducible on every executor).

    The initial population is evaluated as one batch in both modes.

    Example:
        >>> import gymnasium as gym, natsbench_gym
        >>> from natsbench_gym.live import LiveBenchmark
        >>> bench = LiveBenchmark("topology", executor="ray")  # doctest: +SKIP
        >>> env = gym.make("NATSBench-Topology-v0", benchmark=bench)  # doctest: +SKIP
        >>> AsyncRegularizedEvolution(seed=0).search(env, budget=100)  # doctest: +SKIP
    """

    name = "re_async"

    def __init__(
        self,
        population_size: int = 10,
        sample_size: int = 5,
        seed: int | None = None,
        workers: int | None = None,
        asynchronous: bool = True,
    ) -> None:
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 1:
            raise AgentConfigError(f"population_size must be an integer >= 1, got {population_size!r}; the paper uses 10")
        if isinstance(sample_size, bool) or not isinstance(sample_size, int) or not 1 <= sample_size <= population_size:
            raise AgentConfigError(
                f"sample_size must be in 1..population_size={population_size}, got {sample_size!r}; "
                "the tournament samples that many members of the population (the paper: 5 of 10)"
            )
        if not isinstance(asynchronous, bool):
            raise AgentConfigError(f"asynchronous must be True or False, got {asynchronous!r}")
        super().__init__(seed=seed)
        self.population_size = population_size
        self.sample_size = sample_size
        self.workers = _check_count("workers", workers)
        self.asynchronous = asynchronous
        self.population: deque[Evaluation] = deque()

    def _child(self) -> tuple[int, ...]:
        """A tournament on the current population and a mutation of its winner (as RegularizedEvolution)."""
        members = list(self.population)
        picks = self.rng.choice(len(members), size=self.sample_size, replace=False)
        parent = max((members[i] for i in sorted(picks.tolist())), key=lambda ev: ev.reward)
        return mutate_architecture(self.env, parent.encoding, self.rng)

    def _enter(self, child: Evaluation) -> None:
        self.population.append(child)
        self.population.popleft()  # aging: the oldest goes, whatever its fitness

    def _search(self) -> None:
        self.population = deque()
        width = self.workers or max(self.parallelism, 1)
        initial = [sample_architecture(self.env, self.rng) for _ in range(self.population_size)]
        self.prefetch(initial)
        for encoding in initial:
            self.population.append(self.evaluate(encoding))
        if self.asynchronous:
            self._run_asynchronously(width)
        while True:  # synchronous batches (and what an asynchronous search ends with: nothing)
            children = [self._child() for _ in range(width)]
            self.prefetch(children)
            for encoding in children:
                self._enter(self.evaluate(encoding))

    def _run_asynchronously(self, width: int) -> None:
        submit = self.env.unwrapped.submit
        in_flight: dict[cf.Future, tuple[int, ...]] = {}  # insertion order = submission order

        def fill() -> None:
            while len(in_flight) < width and not self.exhausted:
                remaining = self.remaining_evaluations
                if remaining is not None and self._budget.count_repeats and len(in_flight) >= remaining:
                    return
                encoding = self._child()
                in_flight[submit(encoding)] = encoding

        fill()
        while in_flight:
            done, _ = cf.wait(list(in_flight), return_when=cf.FIRST_COMPLETED)
            for future in [f for f in in_flight if f in done]:  # finished together: submission order
                encoding = in_flight.pop(future)
                future.result()  # a trial that failed for good fails the search here
                self._enter(self.evaluate(encoding))
            fill()
        raise BudgetExhausted  # nothing left in flight: the budget is spent

    def _result_info(self) -> dict[str, Any]:
        return {"population": list(self.population), "asynchronous": self.asynchronous}


class ParallelRandomSearch(SearchAgent):
    """Random search in batches: uniform architectures without repeats, a batch evaluated at once.

    Draws exactly the architectures :class:`~agents.random_search.RandomSearch` draws with the same
    seed, in the same order, so the history is the same; only the trainings overlap.

    Args:
        seed: seeds the draws.
        batch_size: architectures per batch; ``None``: the env's parallelism (executor workers).
    """

    name = "random_parallel"

    def __init__(self, seed: int | None = None, batch_size: int | None = None) -> None:
        super().__init__(seed=seed)
        self.batch_size = _check_count("batch_size", batch_size)

    def _search(self) -> None:
        seen: set[tuple[int, ...]] = set()
        space_size = self.space.size
        batch_size = self.batch_size or max(self.parallelism, 1)
        while len(seen) < space_size:
            batch: list[tuple[int, ...]] = []
            while len(batch) < batch_size and len(seen) < space_size:
                encoding = sample_architecture(self.env, self.rng)
                if encoding not in seen:
                    seen.add(encoding)
                    batch.append(encoding)
            self.evaluate_many(batch)

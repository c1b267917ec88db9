"""Environment steps per second through ``gym.make``: table backend vs. the official ``nats_bench`` API.

Usage::

    NATSBENCH_DATA=../shared/natsbench .venv/bin/python benchmarks/bench_env.py [--episodes 50000]

1. ``NATSBench-Topology-v0`` and ``NATSBench-Size-v0`` on the table backend, random valid actions
   drawn up front (the RNG is not timed), ``reset`` + one ``step`` per decision (goal: 50,000 steps/s
   on one core).
2. The same loop with the env backed by :class:`~natsbench_gym.NATSBenchAPIBenchmark` on the official
   files under ``$NATSBENCH_DATA/official``. They hold records for architectures 0, 11 and 284 only, so
   the episodes replay those three; the env's query cache is cleared before each episode so that every
   evaluation asks ``nats_bench`` (an env keeps answers it has had; "cached" shows that case too). The
   table env replays the same architectures for the ratio.

Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import natsbench_gym
from natsbench_gym import ENV_IDS
from natsbench_gym.benchmarks.official import find_official_dir

OFFICIAL_ARCHS = (0, 11, 284)


def run_episodes(env: gym.Env, actions: list[list[int]], clear_cache: bool = False) -> float:
    """Steps per second of ``reset`` + ``step(a)`` for each action list in ``actions``."""
    env.reset(seed=0)
    for a in actions[0]:  # the first step runs gym.make's passive checker; keep it out of the timing
        env.step(a)
    base = env.unwrapped
    start = time.perf_counter()
    for episode in actions:
        if clear_cache:
            base.clear_cache()
        env.reset()
        for a in episode:
            env.step(a)
    elapsed = time.perf_counter() - start
    return sum(len(e) for e in actions) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("NATSBENCH_DATA"), help="table directory (default $NATSBENCH_DATA)")
    parser.add_argument("--episodes", type=int, default=50_000, help="episodes of the table loops")
    parser.add_argument("--official-episodes", type=int, default=3_000, help="episodes of the nats_bench loops")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.data:
        print("set NATSBENCH_DATA or pass --data (e.g. ../shared/natsbench)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    print(f"{'space':<9} {'backend':<22} {'steps/s':>12}")
    for kind, env_id in ENV_IDS.items():
        table = natsbench_gym.load_benchmark(kind, args.data)
        env = gym.make(env_id, benchmark=table)
        space = table.space
        random_actions = rng.integers(0, space.num_choices, size=(args.episodes, space.num_decisions)).tolist()
        table_sps = run_episodes(env, random_actions)
        print(f"{kind:<9} {'table (random archs)':<22} {table_sps:>12,.0f}")

        official_root = find_official_dir(Path(args.data), kind)
        if official_root is None:
            print(f"{kind:<9} {'nats_bench':<22} {'(no official files)':>12}")
            continue
        with tempfile.TemporaryDirectory() as cache:
            official = natsbench_gym.NATSBenchAPIBenchmark(official_root, kind, cache_dir=cache)
            replay = [list(official.encoding(i)) for i in OFFICIAL_ARCHS]
            replay_actions = [replay[i % len(replay)] for i in range(args.official_episodes)]
            table_replay = run_episodes(gym.make(env_id, benchmark=table), replay_actions)
            api_env = gym.make(env_id, benchmark=official)
            api_sps = run_episodes(api_env, replay_actions, clear_cache=True)
            api_cached = run_episodes(api_env, replay_actions)
        print(f"{kind:<9} {'table (3 archs)':<22} {table_replay:>12,.0f}")
        print(f"{kind:<9} {'nats_bench (3 archs)':<22} {api_sps:>12,.0f}   table / nats_bench = {table_replay / api_sps:,.1f}x")
        print(f"{kind:<9} {'nats_bench, cached':<22} {api_cached:>12,.0f}   table / cached = {table_replay / api_cached:,.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

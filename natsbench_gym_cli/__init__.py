"""natsbench-gym's command line: one command, one subcommand per job.

=====================================  ===================================  ==========================================
command                                module                               job
=====================================  ===================================  ==========================================
``natsbench-gym search``               :mod:`natsbench_gym_cli.search`      the main job: personalized NAS (Alg. 1)
``natsbench-gym elicit``               :mod:`natsbench_gym_cli.elicit`      judge pairs in a browser or a terminal
``natsbench-gym train``                :mod:`natsbench_gym_cli.train`       train an SB3 agent (PPO, A2C, MaskablePPO)
``natsbench-gym reproduce-table1``     :mod:`natsbench_gym_cli.reproduce_table1`  the paper's Table I and Fig. 3
``natsbench-gym reproduce-figs45``     :mod:`natsbench_gym_cli.reproduce_figs45`  the paper's Figs. 4 and 5
``natsbench-gym reproduce-natsbench``  :mod:`natsbench_gym_cli.reproduce_natsbench`  NATS-Bench's own protocol
``natsbench-gym convert``              :mod:`natsbench_gym.benchmarks.convert`    official files -> the fast table
=====================================  ===================================  ==========================================

``natsbench-gym JOB --help`` shows a job's options; ``python -m natsbench_gym_cli JOB ...`` is the same
command, and ``python scripts/<module>.py ...`` (``train_agent.py`` for ``train``) still works.
``natsbench-gym-convert`` stays an alias of ``natsbench-gym convert``.

This package sits above the library: it imports ``natsbench_gym``, ``agents``, ``reward_models`` and
``preference_ui``; none of them imports it. Each job's module is imported only when that job runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["JOBS", "Job", "build_parser", "main"]


@dataclass(frozen=True)
class Job:
    """One subcommand: its ``module`` has ``main(argv, prog=...) -> int`` (``takes_prog``) or ``main(argv)``."""

    module: str
    summary: str
    takes_prog: bool = True


#: Every job, in the order ``natsbench-gym --help`` lists them.
JOBS: dict[str, Job] = {
    "search": Job("natsbench_gym_cli.search", "the main job: learn your reward from pairwise judgments, then search (Alg. 1)"),
    "elicit": Job("natsbench_gym_cli.elicit", "judge pairs of architectures in a browser (or --tui) and fit RankNet"),
    "train": Job("natsbench_gym_cli.train", "train a stable-baselines3 agent (PPO, A2C, MaskablePPO) on an env"),
    "reproduce-table1": Job("natsbench_gym_cli.reproduce_table1", "the paper's Table I and Fig. 3: RankNet precision"),
    "reproduce-figs45": Job("natsbench_gym_cli.reproduce_figs45", "the paper's Figs. 4 and 5: agents with fixed and learned metrics"),
    "reproduce-natsbench": Job("natsbench_gym_cli.reproduce_natsbench", "NATS-Bench's REA / random / REINFORCE comparison under its protocol"),
    "convert": Job("natsbench_gym.benchmarks.convert", "convert official NATS-Bench files into the fast table", takes_prog=False),
}


def build_parser(prog: str = "natsbench-gym") -> argparse.ArgumentParser:
    """The top-level parser (lists the jobs; each job parses its own options)."""
    from natsbench_gym import __version__

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Personalized neural architecture search on NATS-Bench: the main jobs.",
        epilog=f"'{prog} JOB --help' shows a job's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    jobs = parser.add_subparsers(title="jobs", metavar="JOB", dest="job")
    for name, job in JOBS.items():
        jobs.add_parser(name, help=job.summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "natsbench-gym") -> int:
    """Run ``natsbench-gym JOB [options]``; return the job's exit status (2 for a bad job name)."""
    from natsbench_gym.errors import did_you_mean

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    if argv and argv[0] in JOBS:
        job = JOBS[argv[0]]
        job_main = importlib.import_module(job.module).main
        if job.takes_prog:
            return job_main(argv[1:], prog=f"{prog} {argv[0]}")
        return job_main(argv[1:])
    if argv and not argv[0].startswith("-"):
        parser.error(f"unknown job {argv[0]!r}{did_you_mean(argv[0], JOBS)}; expected one of: {', '.join(JOBS)}")
    parser.parse_args(argv)  # --help, --version or an error: all exit
    parser.print_help(sys.stderr)
    return 2

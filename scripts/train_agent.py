"""``python scripts/train_agent.py ...`` is ``natsbench-gym train ...``: the code is natsbench_gym_cli/train.py."""

from natsbench_gym_cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())

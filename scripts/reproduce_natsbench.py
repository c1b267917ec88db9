"""``python scripts/reproduce_natsbench.py ...`` is ``natsbench-gym reproduce-natsbench ...``: the code is natsbench_gym_cli/reproduce_natsbench.py."""

from natsbench_gym_cli.reproduce_natsbench import main

if __name__ == "__main__":
    raise SystemExit(main())

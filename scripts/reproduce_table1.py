"""``python scripts/reproduce_table1.py ...`` is ``natsbench-gym reproduce-table1 ...``: the code is natsbench_gym_cli/reproduce_table1.py."""

from natsbench_gym_cli.reproduce_table1 import main

if __name__ == "__main__":
    raise SystemExit(main())

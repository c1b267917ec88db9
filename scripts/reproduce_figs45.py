"""``python scripts/reproduce_figs45.py ...`` is ``natsbench-gym reproduce-figs45 ...``: the code is natsbench_gym_cli/reproduce_figs45.py."""

from natsbench_gym_cli.reproduce_figs45 import main

if __name__ == "__main__":
    raise SystemExit(main())

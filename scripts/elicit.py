"""``python scripts/elicit.py ...`` is ``natsbench-gym elicit ...``: the code is natsbench_gym_cli/elicit.py."""

from natsbench_gym_cli.elicit import main

if __name__ == "__main__":
    raise SystemExit(main())

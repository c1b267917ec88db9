"""``python scripts/search.py ...`` is ``natsbench-gym search ...``: the code is natsbench_gym_cli/search.py."""

from natsbench_gym_cli.search import main

if __name__ == "__main__":
    raise SystemExit(main())

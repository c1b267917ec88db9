"""``python -m natsbench_gym_cli JOB ...``: the same as ``natsbench-gym JOB ...``."""

import sys

from natsbench_gym_cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m natsbench_gym_cli"))

"""How long the command line takes to answer (not a test).

Runs `infrawatch --help`, `--version` and `users list` (on a fresh SQLite
installation) a few times each, beside the baseline of a bare
`python -c pass`, and prints wall and CPU time (user + system of the child)
as medians. Ratios to the baseline hold on a noisy machine.

    python bench/cli.py --rounds 7
    python bench/cli.py --compare /tmp/old/src   # also an older checkout's src/
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infrawatch.core.config import Settings
from infrawatch.core.datadir import prepare_data_dir


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--compare", type=Path, help="another checkout's src/ folder, timed the same way"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
        env["INFRAWATCH_DATA_DIR"] = str(Path(tmp) / "data")
        settings = prepare_data_dir(Settings(data_dir=Path(tmp) / "data"))
        assert settings.sqlite_path is not None
        import sqlite3

        sqlite3.connect(settings.sqlite_path).close()
        python = [sys.executable]
        cases = {
            "python -c pass (baseline)": [*python, "-c", "pass"],
            "infrawatch --help": [*python, "-m", "infrawatch", "--help"],
            "infrawatch --version": [*python, "-m", "infrawatch", "--version"],
            "infrawatch users list": [*python, "-m", "infrawatch", "users", "list"],
        }
        timed(cases["infrawatch users list"], env)  # migrates the new database once
        runs_of = [(name, command, env) for name, command in cases.items()]
        if args.compare is not None:
            older = dict(env, PYTHONPATH=str(args.compare.resolve()))
            runs_of += [
                (f"{name} [{args.compare.parent.name}]", command, older)
                for name, command in list(cases.items())[
                    1:2
                ]  # --help: older ones have no --version
            ]
        rows = []
        for name, command, run_env in runs_of:
            runs = [timed(command, run_env) for _ in range(args.rounds)]
            rows.append(
                (
                    name,
                    statistics.median(w for w, _ in runs),
                    statistics.median(c for _, c in runs),
                )
            )
    base_cpu = rows[0][2]
    print(
        f"{'command':40} {'wall':>8} {'cpu':>8} {'cpu / baseline':>15}  (medians of {args.rounds})"
    )
    for name, wall, cpu in rows:
        print(f"{name:40} {wall:7.3f}s {cpu:7.3f}s {cpu / base_cpu:14.1f}x")


if __name__ == "__main__":
    main()

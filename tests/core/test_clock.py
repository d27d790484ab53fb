"""The process's age, which the engine counts its first interval from."""

from __future__ import annotations

import subprocess
import sys


def test_process_age_counts_from_the_process_start_not_from_the_import() -> None:
    script = (
        "import time; time.sleep(1.0); "
        "from infrawatch.core.clock import process_age; print(process_age())"
    )
    age = float(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
    )
    # At least the second slept before the import; the upper bound only
    # catches a wrong clock (seconds since boot, say), not a slow machine.
    assert 1.0 <= age < 60

"""Whether this machine lets a process raise its own CPU priority (root, or
CAP_SYS_NICE): intake's API does where it may (shared/priority.py lead_the_cpu)."""

from __future__ import annotations

import subprocess
import sys

MAY_RAISE = (
    subprocess.run(
        [sys.executable, "-c", "import os; os.setpriority(os.PRIO_PROCESS, 0, -1)"],
        capture_output=True,
    ).returncode
    == 0
)

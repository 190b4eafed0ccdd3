"""Routine processes lower their own CPU priority, never raise it (shared/priority.py).
Each case runs in a child process: a lowered priority cannot be taken back."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import os, sys
from shared.priority import yield_to_safety
os.setpriority(os.PRIO_PROCESS, 0, int(sys.argv[1]))
got = yield_to_safety(int(sys.argv[2]), "test")
print(got, os.getpriority(os.PRIO_PROCESS, 0))
"""


def _child(start: int, asked: int) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(start), str(asked)],
        capture_output=True,
        text=True,
        check=True,
    )
    returned, actual = out.stdout.splitlines()[-1].split()
    return int(returned), int(actual)


@pytest.mark.parametrize(
    ("start", "asked", "expected"),
    [
        (0, 10, 10),  # a routine process at the default: lowered
        (0, 0, 0),  # ROUTINE_NICE=0: left alone
        (12, 10, 12),  # started nicer already (e.g. by an operator): never raised back
        (3, 10, 10),
    ],
)
def test_priority_is_only_ever_lowered(start: int, asked: int, expected: int) -> None:
    assert _child(start, asked) == (expected, expected)


LEAD = """
import os, sys
from shared.priority import lead_the_cpu
os.setpriority(os.PRIO_PROCESS, 0, int(sys.argv[1]))
got = lead_the_cpu(int(sys.argv[2]), "test")
print(got, os.getpriority(os.PRIO_PROCESS, 0))
"""

# whether this machine lets a process raise its own priority (root, or CAP_SYS_NICE)
MAY_RAISE = (
    subprocess.run(
        [sys.executable, "-c", "import os; os.setpriority(os.PRIO_PROCESS, 0, -1)"],
        capture_output=True,
    ).returncode
    == 0
)


def _lead(start: int, asked: int) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", LEAD, str(start), str(asked)],
        capture_output=True,
        text=True,
        check=True,
    )
    returned, actual = out.stdout.splitlines()[-1].split()
    return int(returned), int(actual)


@pytest.mark.parametrize(
    ("start", "asked", "raised"),
    [
        (0, -5, -5),  # the intake API at the default: raised where allowed
        (5, -5, -5),
        (0, 0, 0),  # SAFETY_ENTRY_NICE=0: left alone
        (-10, -5, -10),  # started higher already (e.g. by an operator): never lowered
        (3, 0, 3),
    ],
)
def test_the_safety_entry_only_ever_raises_its_priority(
    start: int, asked: int, raised: int
) -> None:
    if start < 0 and not MAY_RAISE:
        pytest.skip("this machine lets no process raise its priority")
    expected = raised if MAY_RAISE or raised >= start else start
    assert _lead(start, asked) == (expected, expected)

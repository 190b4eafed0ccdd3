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

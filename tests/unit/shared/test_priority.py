"""Routine processes lower their own CPU priority, never raise it; intake's API raises
its own where allowed, never lowers it (shared/priority.py). Each case runs in a child
process: a lowered priority cannot be taken back."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.priority import MAY_RAISE

CHILD = """
import os, sys
from shared import priority
os.setpriority(os.PRIO_PROCESS, 0, int(sys.argv[2]))
got = getattr(priority, sys.argv[1])(int(sys.argv[3]), "test")
print(got, os.getpriority(os.PRIO_PROCESS, 0))
"""


def _child(function: str, start: int, asked: int) -> tuple[int, int]:
    """(what ``function`` returned, the niceness the child then ran at)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, function, str(start), str(asked)],
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
    assert _child("yield_to_safety", start, asked) == (expected, expected)


@pytest.mark.parametrize(
    ("start", "asked", "raised"),
    [
        (0, -5, -5),  # the intake API at the default: raised where allowed
        (5, -5, -5),
        (0, 0, 0),  # SAFETY_ENTRY_NICE=0: left alone
        (3, 0, 3),
        (-10, -5, -10),  # started higher already (e.g. by an operator): never lowered
    ],
)
def test_the_safety_entry_only_ever_raises_its_priority(
    start: int, asked: int, raised: int
) -> None:
    if start < 0 and not MAY_RAISE:
        pytest.skip("this machine lets no process raise its priority")
    expected = raised if MAY_RAISE else start
    assert _child("lead_the_cpu", start, asked) == (expected, expected)

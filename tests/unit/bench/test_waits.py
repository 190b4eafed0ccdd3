"""bench/waits.py: what the intake API waited for under load, from the kernel's run-queue
accounting and PostgreSQL's session states."""

from __future__ import annotations

import os
import time
from collections import Counter

from bench.waits import Waits, schedstat


def test_schedstat_counts_the_time_a_process_ran() -> None:
    before = schedstat(os.getpid())
    assert before is not None
    end = time.process_time() + 0.05
    while time.process_time() < end:  # 50 ms on the CPU
        pass
    after = schedstat(os.getpid())
    assert after is not None
    ran = (after[0] - before[0]) / 1e9
    assert 0.04 <= ran < 5
    assert after[1] >= before[1]  # the run-queue wait never goes back


def test_a_process_that_has_gone_has_no_figures() -> None:
    assert schedstat(2**22 + 1) is None  # above any pid Linux hands out


def test_the_lines_say_the_share_of_a_core_and_the_sessions_states() -> None:
    waits = Waits(
        start=(0, 0),
        end=(int(3e9), int(1.5e9)),
        elapsed_s=10,
        samples=100,
        sessions=Counter({"flushing WAL": 20, "waiting for the NOTIFY lock": 18, "running": 8}),
    )
    assert waits.lines() == [
        "  intake API during the load: ran 30% of a core, and was ready but waited for a "
        "CPU 15% of the time",
        "  its database sessions at any moment, on average: 0.20 flushing WAL, "
        "0.18 waiting for the NOTIFY lock, 0.08 running",
    ]


def test_nothing_seen_says_nothing() -> None:
    assert Waits().lines() == []
    assert Waits(samples=5).lines() == [
        "  its database sessions at any moment, on average: none active"
    ]

"""CPU priority: routine processes yield the CPU to the safety path.

docs/domain.md ("Safety signals first"): a suicide-risk signal must not queue behind
routine work at any stage, and on a loaded machine the CPU is a stage too. The processes
that carry only routine work (the scheduling worker and relay, the alerts worker and
relay, the dashboard) lower their own scheduling priority at start to ``ROUTINE_NICE``
(10; 0 leaves it alone). The processes on the safety path (intake's API and relay, the
alerts safety lane, timers, watchdog and API, the broker and PostgreSQL) keep theirs, so
under overload the kernel runs them first and the routine backlog waits instead. Lowering
one's own priority needs no privilege. It is per thread on Linux and inherited by the
threads created afterwards, so it is called first thing in ``main``.

One process goes the other way: intake's API, where every suicide-risk signal enters,
raises its own priority to ``SAFETY_ENTRY_NICE`` (-5) where the system allows it
(``lead_the_cpu``; root, or CAP_SYS_NICE). On a saturated machine a process at the
default priority gets one share among PostgreSQL's many backends and the broker's
threads, each at the same priority; the API, one thread for every request, then fell
behind, and check-ins on new connections waited seconds to be read
(docs/performance.md, "Two minutes at 100%"). Where it is not allowed (a container
without the capability) the API runs on as started and says so; give it a CPU weight
of its own there (a cgroup's ``cpu.weight``).
"""

from __future__ import annotations

import os

from shared.logging import get_logger

log = get_logger(__name__)


def yield_to_safety(nice: int, process: str) -> int:
    """Lower this process's CPU priority to niceness ``nice`` (never raise it); returns
    the niceness it runs at."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice <= current:
        return current
    # refused only by a sandbox that forbids it
    return _renice(current, nice, process, "priority_lowered", "priority_unchanged")


def lead_the_cpu(nice: int, process: str) -> int:
    """Raise this process's CPU priority to niceness ``nice`` where allowed (never lower
    it; 0 leaves it as started); returns the niceness it runs at."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice == 0 or nice >= current:
        return current
    # refused without the privilege (root, CAP_SYS_NICE)
    return _renice(current, nice, process, "priority_raised", "priority_not_raised")


def _renice(current: int, nice: int, process: str, done: str, refused: str) -> int:
    """Set this process's niceness; where the system refuses, run on at ``current``."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as exc:
        log.warning(refused, process=process, nice=nice, error=repr(exc))
        return current
    log.info(done, process=process, nice=nice)
    return nice

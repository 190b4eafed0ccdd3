"""Under overload the kernel runs the safety path first (docs/domain.md, "Safety signals
first"): the routine-only processes run at ROUTINE_NICE, the safety path's at the
priority they were started with, and intake's API, where the signals enter, at
SAFETY_ENTRY_NICE where the machine allows it."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from tests.support.eventually import eventually
from tests.support.priority import MAY_RAISE
from tests.support.stack import AlertsStack, IntakeStack, SchedulingStack
from tools.stack import ServiceProcess


def _nice(proc: ServiceProcess) -> int | None:
    assert proc.proc is not None
    try:
        stat = Path(f"/proc/{proc.proc.pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[16])  # field 19: nice


async def test_routine_processes_yield_the_cpu_to_the_safety_path(
    intake: IntakeStack, scheduling: SchedulingStack, alerts: AlertsStack
) -> None:
    started = os.getpriority(os.PRIO_PROCESS, 0)  # what the processes are started with
    routine = [scheduling.relay, *scheduling.workers, alerts.relay, *alerts.workers]
    for proc in routine:
        await eventually(
            partial(_nice, proc), lambda n: n == max(10, started), what=f"{proc.name} nice"
        )
    assert alerts.watchdog is not None
    safety_path = [intake.relay, *alerts.safety, *alerts.timers, alerts.watchdog]
    assert {p.name: _nice(p) for p in safety_path} == {p.name: started for p in safety_path}
    # the API, where the signals enter, goes ahead of the rest where the system allows
    # it (SAFETY_ENTRY_NICE, -5: shared/priority.py lead_the_cpu)
    assert _nice(intake.api) == (min(started, -5) if MAY_RAISE else started)

"""What scheduling's commands, reactions and queries need: built by services/scheduling/app.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.maintenance import DosingVitalsPolicy, MaintenancePolicy
from shared.db import Conn


class Calendars(Protocol):
    """The site's calendar as the planner plans on it: a per-process cache
    (services/scheduling/repository/calendars.py, ``CalendarCache``)."""

    async def calendar(self, conn: Conn, site_id: str, now: datetime) -> Calendar: ...

    def invalidate(self, site_id: str) -> None:
        """Forget the site's entry (a lost race: the next plan reloads it)."""


@dataclass(frozen=True, slots=True)
class Planning:
    """How far and how hard the planner searches (services/scheduling/settings.py)."""

    horizon: timedelta  # how far ahead a series may be placed before the patient waits
    pref_patience: timedelta  # how long a preference is honoured at the cost of a later start
    replan_attempts: int  # re-plans after losing a race for a slot
    waitlist_retry_batch: int  # waiting patients retried per site when capacity frees up


@dataclass(frozen=True)
class Deps:
    pool: asyncpg.Pool
    clock: Callable[[], datetime]
    calendars: Calendars  # one per process, shared by every Deps it builds
    planning: Planning
    maintenance: MaintenancePolicy
    vitals: DosingVitalsPolicy

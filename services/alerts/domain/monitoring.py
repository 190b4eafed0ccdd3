"""Between-session monitoring: expected check-ins and missed ones (docs/domain.md,
"Monitoring between sessions").

A patient is monitored from their first completed dosing or maintenance session until
discharged.
A check-in is expected every ``interval``; it is *missed* when none arrived by its due
time + ``grace``. Each miss moves the next due time one interval on and counts one more
consecutive miss; a check-in ends the run (misses back to 0, next due one interval after
it). Events can arrive out of order across topics, so "monitored" is decided by times:
the latest start after the latest discharge.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class MonitoringRule:
    interval: timedelta
    grace: timedelta
    threshold: int  # consecutive misses that raise missed_checkins

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or self.grace < timedelta(0) or self.threshold < 1:
            raise ValueError("interval > 0, grace >= 0 and threshold >= 1 required")


@dataclass(frozen=True)
class Monitor:
    started_at: datetime | None = None
    discharged_at: datetime | None = None
    next_due_at: datetime | None = None
    consecutive_misses: int = 0
    last_checkin_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.started_at is not None and (
            self.discharged_at is None or self.started_at > self.discharged_at
        )

    def deadline(self, rule: MonitoringRule) -> datetime | None:
        """When the current expected check-in counts as missed (the timer's due time)."""
        if not self.active or self.next_due_at is None:
            return None
        return self.next_due_at + rule.grace


@dataclass(frozen=True)
class Miss:
    due_at: datetime
    deadline_at: datetime
    consecutive: int


def on_dosing_completed(m: Monitor, at: datetime, rule: MonitoringRule) -> Monitor:
    """The first completed dosing session (or the first after a discharge) starts monitoring;
    later ones change nothing."""
    if m.active:
        return m
    if m.discharged_at is not None and at <= m.discharged_at:
        return m  # completed before the discharge we already know of
    anchor = at
    if m.last_checkin_at is not None and m.last_checkin_at > at:
        anchor = m.last_checkin_at  # a check-in already arrived after the dose
    return replace(m, started_at=at, next_due_at=anchor + rule.interval, consecutive_misses=0)


def on_discharge(m: Monitor, at: datetime) -> Monitor:
    """Discharge ends monitoring (unless a newer start is already known)."""
    if m.discharged_at is not None and m.discharged_at >= at:
        return m
    return replace(m, discharged_at=at)


def on_checkin(m: Monitor, at: datetime, rule: MonitoringRule) -> Monitor:
    """A check-in ends the run of misses; the next one is due an interval later (never
    earlier than already planned). A check-in older than one already seen changes nothing."""
    if m.last_checkin_at is not None and at <= m.last_checkin_at:
        return m
    m = replace(m, last_checkin_at=at)
    if not m.active or (m.started_at is not None and at < m.started_at):
        return m
    due = at + rule.interval
    if m.next_due_at is not None and m.next_due_at > due:
        # a check-in that arrives late (submitted before misses already counted) ends the
        # run but never moves the next due time back over periods already judged
        due = m.next_due_at
    return replace(m, consecutive_misses=0, next_due_at=due)


def on_deadline(
    m: Monitor, now: datetime, rule: MonitoringRule, *, limit: int = 1000
) -> tuple[Monitor, list[Miss]]:
    """Every deadline at or before ``now`` is a miss (several after an outage, at most
    ``limit``; the next due time then skips to the present)."""
    misses: list[Miss] = []
    deadline = m.deadline(rule)
    if deadline is None or deadline > now:
        return m, misses
    # the timers call this for every due row of a burst (services/alerts/timers.py):
    # the loop moves two locals and builds the monitor once, not once per miss
    assert m.next_due_at is not None
    due, n = m.next_due_at, m.consecutive_misses
    while deadline <= now and len(misses) < limit:
        n += 1
        misses.append(Miss(due_at=due, deadline_at=deadline, consecutive=n))
        due += rule.interval
        deadline = due + rule.grace
    if deadline <= now:  # hit the limit: skip to the present
        due += ((now - deadline) // rule.interval + 1) * rule.interval
    return (
        Monitor(
            started_at=m.started_at,
            discharged_at=m.discharged_at,
            next_due_at=due,
            consecutive_misses=n,
            last_checkin_at=m.last_checkin_at,
        ),
        misses,
    )

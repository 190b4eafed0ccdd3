"""When to propose maintenance sessions, and when vitals defer a dose.

Source: docs/domain.md ("Maintenance": the first session a protocol interval, by
default 28 days, after the end of the last induction dose, then the same interval
after each completed maintenance session until discharge, and early, within 7 days,
when a patient worsens; "Vitals": on the day of a dosing session the intake limits,
>= 160 systolic or >= 100 diastolic, defer the dose).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class MaintenancePolicy:
    """Maintenance windows, each with its default (docs/domain.md, "Maintenance").

    The interval itself (28 days by default) is a protocol number of the site
    (``Protocol.maintenance_interval``); these are the network-wide spans around it:

    - ``slack`` 7 days: how long after its due date a maintenance session may still
      be placed (a scheduling choice: the rule gives a date, not a range).
    - ``worsening_within`` 7 days: a worsening patient is seen within a week.
    """

    worsening_within: timedelta = timedelta(days=7)
    slack: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class DosingVitalsPolicy:
    """Day-of-dosing blood pressure limits (mmHg, inclusive), the same numbers as the
    intake limits (docs/domain.md, "Vitals")."""

    defer_systolic: int = 160
    defer_diastolic: int = 100


def maintenance_window(
    anchor: datetime, interval: timedelta, now: datetime, policy: MaintenancePolicy
) -> tuple[datetime, datetime]:
    """(not_before, not_after) for the next scheduled maintenance session.

    ``anchor`` is the end of the dose it follows: the last induction dose (the first
    maintenance) or the last completed maintenance session (every later one), so the
    interval counts from the session, not from when its completion was recorded. A
    due date already past (completion recorded late) is placed from ``now`` on.
    """
    due = max(anchor + interval, now)
    return due, due + policy.slack


def worsening_window(now: datetime, policy: MaintenancePolicy) -> tuple[datetime, datetime]:
    """(not_before, not_after) for an early maintenance session when a patient worsens."""
    return now, now + policy.worsening_within


class OnWorsening(StrEnum):
    """What a worsening check-in does to the patient's maintenance."""

    keep = "keep"  # a pending session already falls within the window
    move_forward = "move_forward"  # the pending one is later: bring it within the window
    propose = "propose"  # none pending: propose one within the window
    answered = "answered"  # a dose has taken place since the check-in: nothing to do


def on_worsening(
    now: datetime,
    pending_start: datetime | None,
    policy: MaintenancePolicy,
    *,
    submitted_at: datetime | None = None,
    last_dose_start: datetime | None = None,
) -> OnWorsening:
    """Never two pending maintenance sessions; a worsening patient is seen within
    ``worsening_within``: the pending one is kept if it starts in time, else moved.

    A check-in handled late (after a dose that began at or after its submission, e.g.
    the early maintenance it would have kept) was answered by that dose: the outcome
    does not depend on how quickly the event was consumed."""
    if submitted_at is not None and last_dose_start is not None and last_dose_start >= submitted_at:
        return OnWorsening.answered
    if pending_start is None:
        return OnWorsening.propose
    if pending_start <= now + policy.worsening_within:
        return OnWorsening.keep
    return OnWorsening.move_forward


def vitals_defer(
    systolic: int, diastolic: int, policy: DosingVitalsPolicy = DosingVitalsPolicy()
) -> bool:
    """True when either reading is at or above its limit: the dose is deferred."""
    return systolic >= policy.defer_systolic or diastolic >= policy.defer_diastolic

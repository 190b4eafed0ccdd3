"""When to propose maintenance sessions, and when vitals defer a dose.

Source: DOMAIN.md ("Maintenance": proposed automatically after the induction,
by default 4 weeks after the last induction dose completed, and early, within 7
days, when a patient worsens; "Blood pressure": on the day of a dosing session
the intake limits, >= 160 systolic or >= 100 diastolic, defer the dose).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class MaintenancePolicy:
    """Maintenance windows, each with DOMAIN.md's default.

    - ``after_induction`` 28 days: the first maintenance session is due 4 weeks
      after the last induction dose was completed.
    - ``after_induction_slack`` 7 days: how long after that due date it may still
      be placed (a scheduling choice: DOMAIN.md gives a date, not a range).
    - ``worsening_within`` 7 days: a worsening patient is seen within a week.
    """

    after_induction: timedelta = timedelta(days=28)
    worsening_within: timedelta = timedelta(days=7)
    after_induction_slack: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class DosingVitalsPolicy:
    """Day-of-dosing blood pressure limits (mmHg, inclusive): DOMAIN.md's intake limits."""

    defer_systolic: int = 160
    defer_diastolic: int = 100


def after_induction_window(
    last_dose_completed_at: datetime, policy: MaintenancePolicy = MaintenancePolicy()
) -> tuple[datetime, datetime]:
    """(not_before, not_after) for the first maintenance session after the induction."""
    due = last_dose_completed_at + policy.after_induction
    return due, due + policy.after_induction_slack


def worsening_window(
    now: datetime, policy: MaintenancePolicy = MaintenancePolicy()
) -> tuple[datetime, datetime]:
    """(not_before, not_after) for an early maintenance session when a patient worsens."""
    return now, now + policy.worsening_within


def should_propose_for_worsening(pending_maintenance_exists: bool) -> bool:
    """Worsening proposes a maintenance session unless one is already pending."""
    return not pending_maintenance_exists


def vitals_defer(
    systolic: int, diastolic: int, policy: DosingVitalsPolicy = DosingVitalsPolicy()
) -> bool:
    """True when either reading is at or above its limit: the dose is deferred."""
    return systolic >= policy.defer_systolic or diastolic >= policy.defer_diastolic

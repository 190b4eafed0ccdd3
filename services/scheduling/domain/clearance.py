"""Who may be scheduled automatically, and what happens to a proposal that may not be made.

docs/domain.md ("Who is scheduled, and when"): only a cleared patient is scheduled
automatically, one whose latest intake is ``eligible``, or ``needs_review`` and approved
by a clinician; a discharged patient gets nothing new until a new cleared intake starts
a new course; while a ``suicide_risk`` alert is unresolved nothing new is proposed (the
proposal waits, and is tried again when the hold lifts). This gates every automatic
proposal: an induction series, a rebooking, a maintenance session, a waitlist retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Withheld(StrEnum):
    """Why an automatic proposal was not made."""

    unknown_patient = "unknown_patient"  # no intake of the patient is known here
    not_cleared = "not_cleared"  # ineligible, declined, or needs_review not yet approved
    discharged = "discharged"  # the course ended; a new cleared intake starts another
    on_hold = "on_hold"  # an unresolved suicide_risk alert


@dataclass(frozen=True)
class Standing:
    """What scheduling knows of a patient that decides whether it may propose."""

    decision: str | None  # the latest intake's decision
    review: str | None  # "approved" | "declined" | None for that intake
    discharged_at: datetime | None
    held: bool


def cleared(decision: str | None, review: str | None) -> bool:
    """Eligible, or needs_review and approved: the only decisions that schedule."""
    return decision == "eligible" or (decision == "needs_review" and review == "approved")


def withheld(standing: Standing | None) -> Withheld | None:
    """None when an automatic proposal may be made, else why not.

    The order matters only for the reason given: a patient who is not cleared gets
    nothing whatever else holds; a hold is the one reason that waits (the proposal
    is retried when it lifts) rather than being dropped.
    """
    if standing is None:
        return Withheld.unknown_patient
    if not cleared(standing.decision, standing.review):
        return Withheld.not_cleared
    if standing.discharged_at is not None:
        return Withheld.discharged
    if standing.held:
        return Withheld.on_hold
    return None


def waits(reason: Withheld) -> bool:
    """A withheld proposal that is kept (waitlisted) to be tried again, not dropped."""
    return reason is Withheld.on_hold


def is_newer_intake(
    submitted_at: datetime, intake_id: str, current_at: datetime | None, current_id: str | None
) -> bool:
    """An intake replaces the patient's latest one when submitted later (ties: by id, so
    every worker agrees whatever the order the events arrive in)."""
    if current_at is None or current_id is None:
        return True
    return (submitted_at, intake_id) >= (current_at, current_id)


def starts_new_course(discharged_at: datetime | None, has_induction: bool) -> bool:
    """A cleared intake starts an induction series when the patient has none yet, or
    when their last course ended in a discharge (the new intake is the new baseline)."""
    return discharged_at is not None or not has_induction


def discharge_applies(discharged_at: datetime, course_started_at: datetime | None) -> bool:
    """A discharge ends the current course only if it is not older than that course's
    start (an old discharge arriving late must not cancel a new course)."""
    return course_started_at is None or discharged_at >= course_started_at

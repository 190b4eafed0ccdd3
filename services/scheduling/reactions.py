"""Scheduling's reactions to intake's and alerts' events, and their wiring (``REACTIONS``).

The worker runs each inside the inbox transaction that records the event's id
(shared/processing.py): one transaction per event, a redelivered event skipped, events
only through the outbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.scheduling.deps import Deps
from services.scheduling.domain.clearance import (
    cleared,
    discharge_applies,
    is_newer_intake,
    starts_new_course,
)
from services.scheduling.domain.lifecycle import Status
from services.scheduling.planner.booking import Proposal
from services.scheduling.planner.followups import change_status, propose_worsening, retry
from services.scheduling.planner.proposals import propose_series
from services.scheduling.repository import appointments, patients, waitlist
from services.scheduling.rows import CourseStanding
from shared import events
from shared.db import Conn
from shared.logging import get_logger
from shared.processing import Reaction

log = get_logger(__name__)


def _prefs(p: events.IntakeScreened | events.IntakeReviewed) -> dict[str, Any] | None:
    return p.preferences.model_dump(exclude_none=True) if p.preferences else None


async def on_intake_screened(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.IntakeScreened
) -> None:
    """The patient's latest intake decides whether they may be scheduled; an older one
    arriving late changes nothing. A cleared one starts a course if none is running."""
    patient = await patients.serialized_locked_patient(conn, p.patient_id, p.site_id)
    if not is_newer_intake(
        p.submitted_at, p.intake_id, patient.intake_submitted_at, patient.intake_id
    ):
        log.info("older_intake_ignored", patient_id=p.patient_id, intake_id=p.intake_id)
        return
    course = await patients.take_intake(
        conn, p.patient_id, p.site_id, _prefs(p), p.intake_id, p.submitted_at, p.decision
    )
    await _start_course(conn, deps, course, p.site_id, p.intake_id, p.submitted_at)


async def on_intake_reviewed(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.IntakeReviewed
) -> None:
    """A clinician's review, kept per intake; an approval of the patient's latest intake
    schedules as an eligible one would (a review of an older intake changes nothing)."""
    await patients.serialize_patient(conn, p.patient_id)
    await patients.record_review(conn, p.intake_id, p.patient_id, p.outcome, p.reviewed_at)
    patient = await patients.lock_patient(conn, p.patient_id)
    if patient is None or patient.intake_id != p.intake_id:
        log.info("review_not_of_latest_intake", patient_id=p.patient_id, intake_id=p.intake_id)
        return
    course = await patients.course_standing(conn, p.patient_id)
    assert course is not None, "the patient's row is locked"
    await _start_course(conn, deps, course, p.site_id, p.intake_id, p.reviewed_at)


async def _start_course(
    conn: Conn,
    deps: Deps,
    course: CourseStanding,
    site_id: str,
    intake_id: str,
    started_at: datetime,
) -> None:
    """A cleared patient with no course running (none yet, or the last one discharged)
    starts one: a new induction series, the new intake its baseline. ``course``: the
    patient's standing as just read under their lock."""
    standing, patient_id = course.standing, course.standing.patient_id
    if not cleared(standing.decision, standing.review):
        log.info("not_cleared", patient_id=patient_id, decision=standing.decision)
        return
    if not starts_new_course(standing.discharged_at, course.has_induction):
        log.info("induction_exists", patient_id=patient_id)
        return
    standing = await patients.start_course(conn, patient_id, started_at)
    proposal = Proposal(patient_id, site_id, standing.preferences, "induction", deps.clock())
    await propose_series(conn, deps, proposal, intake_id=intake_id, standing=standing)


async def on_checkin_recorded(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.CheckinRecorded
) -> None:
    """A worsening verdict brings a maintenance session within 7 days. A check-in that
    signals suicide risk holds the patient at once (its alert's event confirms the hold
    moments later; docs/domain.md, "Hold while at risk"), so nothing is proposed on it."""
    await patients.serialize_patient(conn, p.patient_id)
    if p.suicidal_ideation or p.phq9_item9_positive:
        await patients.record_checkin_hold(
            conn, p.checkin_id, p.patient_id, p.site_id, p.submitted_at
        )
    if not p.assessment.worsening:
        return
    patient = await patients.get_patient(conn, p.patient_id)
    if patient is None:
        return
    await propose_worsening(
        conn,
        deps,
        p.patient_id,
        patient.site_id,
        patient.preferences,
        deps.clock(),
        submitted_at=p.submitted_at,
    )


def quiet_checkin(p: events.CheckinRecorded) -> bool:
    """A check-in that changes nothing here (no risk, not worsening). The worker reads
    ``checkin.flagged``, which carries only the others, so this is a guard: such an event
    is only counted (shared/processing.py Route.ignore), without a statement or the
    patient's lock. The flagged go one at a time: every other reaction here may lock its
    site's calendar."""
    return not p.flagged()


async def on_patient_discharged(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.PatientDischarged
) -> None:
    """The course ends: future live sessions are cancelled and nothing new is proposed
    until a new cleared intake starts another course. A discharge older than the current
    course's start (arriving late) belongs to the previous course and changes nothing."""
    await patients.serialize_patient(conn, p.patient_id)
    patient = await patients.lock_patient(conn, p.patient_id)
    if patient is not None and not discharge_applies(p.discharged_at, patient.course_started_at):
        log.info("old_discharge_ignored", patient_id=p.patient_id)
        return
    now = deps.clock()
    await patients.discharge(conn, p.patient_id, now)
    await waitlist.remove_patient(conn, p.patient_id)
    for row in await appointments.future_live(conn, p.patient_id, now):
        await change_status(conn, row, Status.cancelled, now, cause="discharged")


async def on_alert(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.AlertRaised | events.AlertChanged
) -> None:
    """A suicide_risk alert holds the patient while it is unresolved; when it is resolved
    (and no other holds them) the proposals that waited are tried again."""
    if p.kind != "suicide_risk":
        return
    await patients.serialize_patient(conn, p.patient_id)
    resolved_at = (
        p.changed_at if isinstance(p, events.AlertChanged) and p.status == "resolved" else None
    )
    await patients.record_hold(conn, p.alert_id, p.patient_id, p.site_id, p.raised_at, resolved_at)
    if resolved_at is None:
        return
    await patients.resolve_checkin_holds(conn, p.patient_id, resolved_at)
    if await patients.hold(conn, p.patient_id) is not None:
        return
    log.info("hold_lifted", patient_id=p.patient_id)
    for entry in await waitlist.for_patient(conn, p.patient_id):
        await retry(conn, deps, entry)


# A tuple, not annotated: mypy then checks each handler against its payload type (a
# list, or an annotation such as Sequence[Reaction[Any]], would let it infer Any).
REACTIONS = (
    Reaction(events.IntakeScreened, on_intake_screened),
    Reaction(events.IntakeReviewed, on_intake_reviewed),
    # only the check-ins that ask something of scheduling (shared/events.py
    # CheckinFlagged): the rest, most of them, never reach this worker
    Reaction(events.CheckinFlagged, on_checkin_recorded, ignore=quiet_checkin),
    Reaction(events.PatientDischarged, on_patient_discharged),
    # the hold while at risk (docs/domain.md, "Who is scheduled, and when")
    Reaction(events.AlertRaised, on_alert),
    Reaction(events.AlertChanged, on_alert),
)

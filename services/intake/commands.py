"""Intake's commands: one short async function per state-changing call, one transaction
each.

Each turns validated input into domain values, asks the pure rules for a verdict,
stores the result and enqueues its event in the same transaction (outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from prometheus_client import Counter

from services.intake import repository as repo
from services.intake.deps import Deps
from services.intake.domain.eligibility import decide
from services.intake.domain.mbc import assess_checkin
from services.intake.domain.model import (
    AntidepressantTrial,
    Cssrs,
    Screen,
    TrialOutcome,
    Verdict,
    Vitals,
)
from services.intake.domain.safety import checkin_safety_reasons, intake_safety_reasons
from services.intake.domain.scoring import Phq9Score, score_phq9
from services.intake.rows import CheckinContext, NewCheckin, NewIntake, PatientPhi
from services.intake.schemas import (
    CheckinIn,
    CheckinOut,
    DischargeIn,
    DischargeOut,
    IntakeIn,
    IntakeOut,
    Review,
)
from services.intake.settings import SOURCE
from shared import events, outbox
from shared.db import Conn
from shared.errors import Conflict, NotFound

INTAKES = Counter("intakes_total", "New intakes stored (replays not counted)", ["decision"])
CHECKINS = Counter("checkins_total", "New check-ins stored (replays not counted)")


def to_screen(body: IntakeIn) -> Screen:
    return Screen(
        birth_date=body.patient.date_of_birth,
        submitted_on=body.submitted_at.date(),
        phq9=tuple(body.phq9),
        cssrs=Cssrs(**body.cssrs.model_dump()),
        trials=tuple(
            AntidepressantTrial(
                medication=t.medication,
                adequate=t.adequate,
                weeks=t.weeks,
                outcome=TrialOutcome(t.outcome),
            )
            for t in body.antidepressant_trials
        ),
        conditions=tuple(dict.fromkeys(body.conditions)),
        vitals=Vitals(**body.vitals.model_dump()),
    )


def _new_intake(body: IntakeIn, digest: bytes, score: Phq9Score, verdict: Verdict) -> NewIntake:
    p = body.patient
    return NewIntake(
        intake_id=body.intake_id,
        patient_id=p.patient_id,
        site_id=body.site_id,
        submitted_at=body.submitted_at,
        digest=digest,
        phq9=tuple(body.phq9),
        conditions=tuple(body.conditions),
        preferences=body.preferences.model_dump(exclude_none=True) if body.preferences else None,
        phi=PatientPhi(p.name, p.date_of_birth, p.phone, p.email),
        score=score,
        verdict=verdict,
    )


def _preferences(raw: dict[str, object] | None) -> events.Preferences | None:
    return events.Preferences.model_validate(raw) if raw else None


async def submit_intake(deps: Deps, body: IntakeIn) -> tuple[IntakeOut, bool]:
    """Score, decide, store and announce an intake; (result, created). Replays change nothing.

    One statement stores the intake, the patient and the events and commits on its own;
    an intake id already stored (a replay, or a race lost to one) stores nothing, and
    the stored intake answers instead."""
    verdict = decide(to_screen(body), deps.eligibility)
    score = score_phq9(body.phq9)
    digest = body.digest()
    pid = body.patient.patient_id
    reasons = intake_safety_reasons(verdict.suicide_risk.value, score.item9_positive)
    now = deps.clock()
    announce = _intake_events(body, score, verdict, reasons, now)
    async with deps.pool_for(bool(reasons)).acquire() as conn:
        if await repo.create_intake(
            conn, _new_intake(body, digest, score, verdict), announce, deps.cipher
        ):
            INTAKES.labels(verdict.decision.value).inc()  # one statement: committed
            return IntakeOut(
                intake_id=body.intake_id,
                patient_id=pid,
                site_id=body.site_id,
                decision=verdict.decision.value,
                reasons=list(verdict.reasons),
                phq9_total=score.total,
                phq9_severity=score.severity.value,
                suicide_risk=verdict.suicide_risk.value,
                phq9_item9_positive=score.item9_positive,
                submitted_at=body.submitted_at.astimezone(UTC),
            ), True
        existing = await repo.find_intake(conn, body.intake_id)
    assert existing is not None  # the statement found it: intakes are never deleted
    if existing.digest != digest:
        raise Conflict(f"intake {body.intake_id} exists with a different body")
    return IntakeOut.from_row(existing), False


def _intake_events(
    body: IntakeIn,
    score: Phq9Score,
    verdict: Verdict,
    reasons: tuple[str, ...],
    now: datetime,
) -> list[tuple[events.CloudEvent, int]]:
    """An intake's events with their outbox priorities: its decision, and the safety
    lane's signal (relayed in a lane of its own) when it signals suicide risk."""
    pid = body.patient.patient_id
    payload = events.IntakeScreened(
        intake_id=body.intake_id,
        patient_id=pid,
        site_id=body.site_id,
        submitted_at=body.submitted_at,
        decision=verdict.decision.value,
        reasons=verdict.reasons,
        phq9_total=score.total,
        phq9_severity=score.severity.value,
        phq9_item9_positive=score.item9_positive,
        suicide_risk=verdict.suicide_risk.value,
        preferences=_preferences(
            body.preferences.model_dump(exclude_none=True) if body.preferences else None
        ),
    )
    announce = [(events.new_event(payload, source=SOURCE, subject=pid, time=now), outbox.ROUTINE)]
    if reasons:
        signal = _signal_event(
            body.intake_id, "intake", pid, body.site_id, body.submitted_at, reasons, now
        )
        announce.append((signal, outbox.SAFETY))
    return announce


async def review_intake(
    deps: Deps, intake_id: str, outcome: Literal["approved", "declined"], body: Review
) -> IntakeOut:
    """A clinician's review of a ``needs_review`` intake; repeating the same review is a no-op."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repo.find_intake(conn, intake_id, for_update=True)
        if row is None:
            raise NotFound(f"no intake {intake_id}")
        if row.decision != "needs_review":
            raise Conflict(
                f"intake {intake_id} is {row.decision}: only needs_review intakes are reviewed"
            )
        if row.review_outcome is not None:
            if row.review_outcome == outcome and row.reviewed_by == body.by:
                return IntakeOut.from_row(row)
            raise Conflict(
                f"intake {intake_id} was already {row.review_outcome} by {row.reviewed_by}"
            )
        now = deps.clock()
        await repo.record_review(conn, intake_id, outcome, body.by, body.note, now, deps.cipher)
        payload = events.IntakeReviewed(
            intake_id=intake_id,
            patient_id=row.patient_id,
            site_id=row.site_id,
            outcome=outcome,
            reviewed_at=now,
            reasons=row.reasons,
            preferences=_preferences(row.preferences),
        )
        await outbox.enqueue(
            conn, events.new_event(payload, source=SOURCE, subject=row.patient_id, time=now)
        )
        updated = await repo.find_intake(conn, intake_id)
        assert updated is not None
        return IntakeOut.from_row(updated)


def _signal_event(
    signal_id: str,
    source: Literal["checkin", "intake"],
    patient_id: str,
    site_id: str,
    at: datetime,
    reasons: tuple[str, ...],
    now: datetime,
) -> events.CloudEvent:
    """The safety lane's event for a check-in or intake that signals suicide risk."""
    payload = events.SafetySignal(
        signal_id=signal_id,
        source=source,
        patient_id=patient_id,
        site_id=site_id,
        at=at,
        reasons=reasons,
    )
    return events.new_event(payload, source=SOURCE, subject=patient_id, time=now)


def _checkin_events(
    checkin: NewCheckin, site_id: str, reasons: tuple[str, ...], now: datetime
) -> list[tuple[events.CloudEvent, int]]:
    """A check-in's events with their outbox priorities: the safety lane's first (relayed
    in a lane of its own) when it signals suicide risk, then the check-in itself, then,
    when it asks something of scheduling, its ``checkin.flagged`` twin (shared/events.py
    CheckinFlagged)."""
    verdict = checkin.assessment
    payload = events.CheckinRecorded(
        checkin_id=checkin.checkin_id,
        patient_id=checkin.patient_id,
        site_id=site_id,
        submitted_at=checkin.submitted_at,
        phq9_total=checkin.phq9_total,
        phq9_item9_positive=checkin.item9_positive,
        suicidal_ideation=checkin.suicidal_ideation,
        assessment=events.CheckinAssessment(
            response=verdict.response,
            remission=verdict.remission,
            worsening=verdict.worsening,
            worsening_reasons=verdict.worsening_reasons,
            baseline_total=verdict.baseline_total,
            lowest_total=verdict.lowest_total,
        ),
    )
    pid = checkin.patient_id
    announce = [(events.new_event(payload, source=SOURCE, subject=pid, time=now), outbox.ROUTINE)]
    if payload.flagged():
        twin = events.CheckinFlagged(**dict(payload))
        announce.append(
            (events.new_event(twin, source=SOURCE, subject=pid, time=now), outbox.ROUTINE)
        )
    if reasons:
        signal = _signal_event(
            checkin.checkin_id, "checkin", pid, site_id, checkin.submitted_at, reasons, now
        )
        announce.insert(0, (signal, outbox.SAFETY))
    return announce


async def record_checkin(deps: Deps, body: CheckinIn) -> tuple[CheckinOut, bool]:
    """Store a check-in with its measurement-based-care verdict and announce both.

    First without a lock, in two round trips: one consistent read of what the verdict
    depends on, then one statement that stores the check-in and its events only if the
    patient is unchanged since (services/intake/repository.py, migration 0004). When
    another check-in of the patient landed in between, it is decided again under the
    patient's row lock, where nothing can overtake it (so even a flood of one patient's
    check-ins all get stored, in turn); a repeat of this one then finds it stored."""
    score = score_phq9(body.phq9) if body.phq9 is not None else None
    item9 = bool(score and score.item9_positive)
    reasons = checkin_safety_reasons(body.suicidal_ideation, item9)
    attempt = _CheckinAttempt(deps, body, score, item9, reasons, body.digest())
    async with deps.pool_for(bool(reasons)).acquire() as conn:
        done = await attempt.store(conn, locked=False)
        if done is None:
            async with conn.transaction():
                await repo.lock_patient(conn, body.patient_id)
                done = await attempt.store(conn, locked=True)
    assert done is not None  # under the lock nothing overtakes it
    if done[1]:
        CHECKINS.inc()  # committed
    return done


@dataclass(frozen=True)
class _CheckinAttempt:
    deps: Deps
    body: CheckinIn
    score: Phq9Score | None
    item9: bool
    reasons: tuple[str, ...]
    digest: bytes

    async def store(self, conn: Conn, *, locked: bool) -> tuple[CheckinOut, bool] | None:
        """Decide and store the check-in on a fresh read: (answer, created), or None
        when another check-in of the patient overtook this one (never when ``locked``)."""
        body = self.body
        context = await repo.checkin_context(
            conn, body.checkin_id, body.patient_id, body.submitted_at
        )
        if context is None:
            raise NotFound(f"no patient {body.patient_id}")
        if context.existing is not None:
            if context.existing != self.digest:
                raise Conflict(f"check-in {body.checkin_id} exists with a different body")
            stored = await repo.find_checkin(conn, body.checkin_id)
            assert stored is not None
            return CheckinOut.from_row(stored), False
        checkin = _new_checkin(self.deps, body, context, self.score, self.item9, self.digest)
        now = self.deps.clock()
        announce = _checkin_events(checkin, context.patient.site_id, self.reasons, now)
        try:
            row = await repo.insert_checkin(
                conn, checkin, context.version, self.deps.cipher, announce
            )
        except repo.CheckinTaken:
            if locked:  # stored meanwhile for another patient: not this body
                raise Conflict(f"check-in {body.checkin_id} exists with a different body") from None
            return None  # the locked read tells a replay from a conflict
        return (CheckinOut.from_row(row), True) if row is not None else None


def _new_checkin(
    deps: Deps,
    body: CheckinIn,
    context: CheckinContext,
    score: Phq9Score | None,
    item9: bool,
    digest: bytes,
) -> NewCheckin:
    verdict = assess_checkin(
        context.patient.baseline_total, context.prior, score.total if score else None, deps.mbc
    )
    return NewCheckin(
        checkin_id=body.checkin_id,
        patient_id=body.patient_id,
        submitted_at=body.submitted_at,
        digest=digest,
        phq9=tuple(body.phq9) if body.phq9 is not None else None,
        phq9_total=score.total if score else None,
        item9_positive=item9,
        suicidal_ideation=body.suicidal_ideation,
        note=body.note,
        assessment=verdict,
    )


async def discharge_patient(deps: Deps, patient_id: str, body: DischargeIn) -> DischargeOut:
    """End monitoring; discharging twice is a no-op that returns the first discharge."""
    async with deps.pool.acquire() as conn, conn.transaction():
        patient = await repo.find_patient(conn, patient_id, for_update=True)
        if patient is None:
            raise NotFound(f"no patient {patient_id}")
        if patient.discharged_at is not None:
            return DischargeOut(
                patient_id=patient_id, status="discharged", discharged_at=patient.discharged_at
            )
        now = deps.clock()
        await repo.discharge(conn, patient_id, now, body.by, body.note, deps.cipher)
        payload = events.PatientDischarged(
            patient_id=patient_id, site_id=patient.site_id, discharged_at=now
        )
        await outbox.enqueue(
            conn, events.new_event(payload, source=SOURCE, subject=patient_id, time=now)
        )
        return DischargeOut(patient_id=patient_id, status="discharged", discharged_at=now)

"""Event reactions: the worker's (``REACTIONS``) and the safety lane's
(``SAFETY_REACTIONS``, services/alerts/safety.py). One transaction each (the inbox makes
them idempotent by event id: shared/processing.py), events via the outbox. The rules
live in ``services.alerts.domain``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.alerts import repository as repo
from services.alerts.alerting.raising import raise_all
from services.alerts.deps import Deps
from services.alerts.domain import policy
from services.alerts.domain.model import Kind
from services.alerts.domain.monitoring import (
    Monitor,
    on_checkin,
    on_discharge,
    on_dosing_completed,
)
from shared import events
from shared.db import Conn
from shared.logging import get_logger
from shared.processing import Reaction

log = get_logger(__name__)


async def _save(
    conn: Conn, deps: Deps, patient_id: str, site_id: str, m: Monitor, now: datetime
) -> None:
    rule = deps.monitoring
    await repo.save_monitor(conn, repo.monitor_args(patient_id, site_id, m, rule, now))
    deadline = m.deadline(rule)
    if deadline is not None and deadline - now < timedelta(seconds=deps.timer_idle_poll_s):
        await repo.wake_timers(conn)


async def _unclaimed(
    conn: Conn, signal_id: str, via: str, signals: list[policy.Signal]
) -> list[policy.Signal]:
    """The signals to raise: a suicide-risk signal only if the safety lane has not raised
    it already (its claim is taken here otherwise, so the lane then finds it taken)."""
    kept = []
    for signal in signals:
        if signal.kind is Kind.suicide_risk and not await repo.claim_signal(
            conn, signal_id, signal.kind.value, via
        ):
            continue
        kept.append(signal)
    return kept


async def on_safety_signal(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.SafetySignal
) -> None:
    """The safety lane (services/alerts/safety.py): the check-in's or intake's suicide-risk
    alert, raised (and its pages queued) ahead of every routine event."""
    now = deps.clock()
    await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    signals = await _unclaimed(
        conn, p.signal_id, event.type, policy.from_safety_signal(p.reasons, p.at)
    )
    await raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_heartbeat(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.PipelineHeartbeat
) -> None:
    """The pipeline heartbeat came through the safety lane (services/alerts/safety.py):
    when it was emitted and seen, for the watchdog (services/alerts/watchdog.py). No
    patient, no alert, no page (the watchdog prunes old beats)."""
    await repo.record_heartbeat(conn, p.beat_id, p.emitter, p.emitted_at, datetime.now(UTC))


async def on_intake_screened(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.IntakeScreened
) -> None:
    now = deps.clock()
    await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    signals = await _unclaimed(conn, p.intake_id, event.type, _screen_signals(p))
    await raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_checkin_recorded(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.CheckinRecorded
) -> None:
    now = deps.clock()
    row = await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    m = on_checkin(row.monitor(), p.submitted_at, deps.monitoring)
    await _save(conn, deps, p.patient_id, p.site_id, m, now)
    signals = await _unclaimed(conn, p.checkin_id, event.type, _checkin_signals(p))
    await raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_appointment_changed(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.AppointmentChanged
) -> None:
    starts = policy.starts_monitoring(status=p.status, kind=p.kind)
    signals = policy.from_appointment_change(status=p.status, kind=p.kind, at=p.changed_at)
    if not starts and not signals:
        return
    now = deps.clock()
    row = await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    if starts:
        before = row.monitor()
        m = on_dosing_completed(before, p.changed_at, deps.monitoring)
        if m != before:
            await _save(conn, deps, p.patient_id, p.site_id, m, now)
            log.info("monitoring_started", patient_id=p.patient_id, site_id=p.site_id)
    await raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_dose_deferred(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.DoseDeferred
) -> None:
    now = deps.clock()
    await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    signals = policy.from_deferral(p.reasons, p.deferred_at)
    await raise_all(conn, deps, p.patient_id, p.site_id, signals, event.id, now)


async def on_patient_discharged(
    conn: Conn, deps: Deps, event: events.CloudEvent, p: events.PatientDischarged
) -> None:
    now = deps.clock()
    row = await repo.lock_patient(conn, p.patient_id, p.site_id, now)
    m = on_discharge(row.monitor(), p.discharged_at)
    await _save(conn, deps, p.patient_id, row.site_id, m, now)
    log.info("monitoring_ended", patient_id=p.patient_id, site_id=p.site_id)


def _screen_signals(p: events.IntakeScreened) -> list[policy.Signal]:
    return policy.from_screen(
        suicide_risk=p.suicide_risk, phq9_item9_positive=p.phq9_item9_positive, at=p.submitted_at
    )


def _checkin_signals(p: events.CheckinRecorded) -> list[policy.Signal]:
    return policy.from_checkin(
        suicidal_ideation=p.suicidal_ideation,
        phq9_item9_positive=p.phq9_item9_positive,
        worsening=p.assessment.worsening,
        worsening_reasons=p.assessment.worsening_reasons,
        at=p.submitted_at,
    )


# Which events may share a transaction with their partition's neighbours under load
# (shared/processing.py Route.batch): those that raise nothing, whose handler then locks
# its own patient's row (and monitoring) only. One that raises an alert also locks its
# site's on-call clinicians (reply codes) and goes alone, so a batch never holds a
# clinician's row while it waits for a patient the safety lane holds.
def quiet_screen(p: events.IntakeScreened) -> bool:
    return not _screen_signals(p)


def quiet_checkin(p: events.CheckinRecorded) -> bool:
    return not _checkin_signals(p)


def quiet_appointment(p: events.AppointmentChanged) -> bool:
    return not policy.from_appointment_change(status=p.status, kind=p.kind, at=p.changed_at)


def always(_: object) -> bool:
    return True


# the worker's (services/alerts/app.py create_processor)
REACTIONS: list[Reaction[Any]] = [
    Reaction(events.IntakeScreened, on_intake_screened, batch=quiet_screen),
    Reaction(events.CheckinRecorded, on_checkin_recorded, batch=quiet_checkin),
    Reaction(events.AppointmentChanged, on_appointment_changed, batch=quiet_appointment),
    Reaction(events.DoseDeferred, on_dose_deferred),  # always raises
    Reaction(events.PatientDischarged, on_patient_discharged, batch=always),
]

# the safety lane's (services/alerts/safety.py create_safety_processor)
SAFETY_REACTIONS: list[Reaction[Any]] = [
    Reaction(events.SafetySignal, on_safety_signal),
    # the pipeline heartbeat through this lane (services/intake/heartbeat.py): its
    # emission and arrival recorded for the watchdog (services/alerts/watchdog.py)
    Reaction(events.PipelineHeartbeat, on_heartbeat),
]

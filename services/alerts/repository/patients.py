"""Patients: check-in monitoring, and the per-patient lock every transaction takes first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, NamedTuple

from services.alerts.domain.monitoring import Monitor, MonitoringRule
from services.alerts.rows import PatientRow, SiteMonitoringRow
from shared.db import Conn

_LOCK_PATIENT = "SELECT * FROM patients WHERE patient_id = $1 FOR UPDATE"
_CREATE_PATIENT = (
    "INSERT INTO patients (patient_id, site_id, updated_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (patient_id) DO NOTHING RETURNING *"
)


async def lock_patient(conn: Conn, patient_id: str, site_id: str, now: datetime) -> PatientRow:
    """The patient's row, locked for this transaction (created on first sight). One
    round trip when the patient is known, as nearly always (every reaction starts here);
    two on first sight: the row this transaction inserts is its own until it commits
    (another transaction's insert of the patient waits on it), so it needs no lock of
    its own. Only when another transaction created the patient meanwhile is it read
    again, locked."""
    row = await conn.fetchrow(_LOCK_PATIENT, patient_id)
    if row is None:
        row = await conn.fetchrow(_CREATE_PATIENT, patient_id, site_id, now)
    if row is None:
        row = await conn.fetchrow(_LOCK_PATIENT, patient_id)
    assert row is not None
    return PatientRow.of(row)


_SAVE_MONITOR = """
    UPDATE patients
    SET site_id = $2, started_at = $3, discharged_at = $4, next_due_at = $5, deadline_at = $6,
        consecutive_misses = $7, last_checkin_at = $8, updated_at = $9
    WHERE patient_id = $1
"""


def monitor_args(
    patient_id: str, site_id: str, m: Monitor, rule: MonitoringRule, now: datetime
) -> tuple[Any, ...]:
    """The parameters of ``save_monitor``: a reaction's change of the monitor (a check-in,
    a dose, a discharge; the timers' misses go through ``save_deadlines``)."""
    return (
        patient_id,
        site_id,
        m.started_at,
        m.discharged_at,
        m.next_due_at,
        m.deadline(rule),
        m.consecutive_misses,
        m.last_checkin_at,
        now,
    )


async def save_monitor(conn: Conn, args: tuple[Any, ...]) -> None:
    await conn.execute(_SAVE_MONITOR, *args)


# The timers' change for a whole batch of due deadlines in one statement: a deadline
# moves only the next due time, its deadline and the run of misses (the rows are locked
# by ``due_patients`` in the same transaction), so five arrays carry it, not every
# column of the row; ``$7`` is the time of the pass. A due row with no miss (monitoring
# ended since its deadline was set) only has its deadline cleared. Each row is found by
# the ctid ``due_patients`` read (a locked row keeps it until this transaction ends), not
# by the primary key: a 9:00 burst is 100,000 rows, and the index lookup was a third of
# this statement's time (docs/performance.md); the patient id is checked on the row.
_SAVE_DEADLINES = """
    UPDATE patients p
    SET next_due_at = u.next_due_at, deadline_at = u.deadline_at,
        consecutive_misses = u.consecutive_misses,
        total_misses = p.total_misses + u.missed,
        last_missed_at = CASE WHEN u.missed > 0 THEN $7 ELSE p.last_missed_at END,
        updated_at = $7
    FROM unnest($1::tid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[],
                $6::int[])
         AS u(tid, patient_id, next_due_at, deadline_at, consecutive_misses, missed)
    WHERE p.ctid = u.tid AND p.patient_id = u.patient_id
"""


class DuePatient(NamedTuple):
    """A due row as ``due_patients`` locked it: its ctid (where ``save_deadlines`` finds
    it again in the same transaction), the patient, the site and the monitor (only the
    columns the timers read: a burst builds 100,000, and a whole ``PatientRow`` each
    was 2.5 us more)."""

    tid: tuple[int, int]
    patient_id: str
    site_id: str
    monitor: Monitor


async def save_deadlines(
    conn: Conn,
    now: datetime,
    fired: Sequence[tuple[DuePatient, Monitor, int]],
    rule: MonitoringRule,
) -> None:
    """The timers' pass at ``now`` over locked due rows, in one round trip: for each
    (the due row, the monitor after its deadlines, misses counted), its next due time
    and deadline, its run of misses, and ``missed`` more in its total."""
    if fired:
        await conn.execute(
            _SAVE_DEADLINES,
            [d.tid for d, _, _ in fired],
            [d.patient_id for d, _, _ in fired],
            [m.next_due_at for _, m, _ in fired],
            [m.deadline(rule) for _, m, _ in fired],
            [m.consecutive_misses for _, m, _ in fired],
            [missed for _, _, missed in fired],
            now,
        )


_DUE = (
    f"SELECT ctid, patient_id, site_id, {', '.join(f.name for f in fields(Monitor))} "  # noqa: S608
    "FROM patients WHERE deadline_at <= $1 ORDER BY deadline_at LIMIT $2 "
    "FOR UPDATE SKIP LOCKED"
)


async def due_patients(conn: Conn, now: datetime, limit: int) -> list[DuePatient]:
    """The due rows (deadline at or before ``now``), earliest first, at most ``limit``,
    locked for this transaction; rows another transaction holds are skipped. The
    monitor's columns are named in ``Monitor``'s order, so it is built by position."""
    rows = await conn.fetch(_DUE, now, limit)
    return [DuePatient(r[0], r[1], r[2], Monitor(*r[3:])) for r in rows]


async def get_patient(conn: Conn, patient_id: str) -> PatientRow | None:
    row = await conn.fetchrow("SELECT * FROM patients WHERE patient_id = $1", patient_id)
    return None if row is None else PatientRow.of(row)


async def monitoring_counts(conn: Conn) -> list[SiteMonitoringRow]:
    """Per site: patients monitored, and those with at least one miss in a row."""
    rows = await conn.fetch(
        "SELECT site_id, count(*) AS monitored, "
        "count(*) FILTER (WHERE consecutive_misses > 0) AS missing_checkins "
        "FROM patients WHERE deadline_at IS NOT NULL GROUP BY site_id ORDER BY site_id"
    )
    return [SiteMonitoringRow.of(r) for r in rows]

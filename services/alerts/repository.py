"""The alerts service's SQL. Lock order, everywhere: patient row, then alerts, then pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.alerts.domain.dedup import OpenAlert
from services.alerts.domain.escalation import EscalationState
from services.alerts.domain.model import Kind, OncallPolicy, Recipient, Severity, Status, Tier
from services.alerts.domain.monitoring import Monitor, MonitoringRule
from shared.db import Conn

WAKE_CHANNEL = "alerts_timers"

# --- on-call ---------------------------------------------------------------------


async def put_oncall(conn: Conn, site_id: str, tiers: list[dict[str, Any]], now: datetime) -> Any:
    return await conn.fetchrow(
        """
        INSERT INTO oncall (site_id, tiers, updated_at) VALUES ($1, $2, $3)
        ON CONFLICT (site_id) DO UPDATE
            SET tiers = excluded.tiers, updated_at = excluded.updated_at,
                version = oncall.version + 1
        RETURNING site_id, tiers, version, updated_at
        """,
        site_id,
        tiers,
        now,
    )


async def orphan_alerts(conn: Conn, site_id: str) -> list[asyncpg.Record]:
    """The site's paging alerts opened while nobody was on call (still open), locked."""
    return await conn.fetch(
        "SELECT * FROM alerts WHERE site_id = $1 AND policy IS NULL "
        "AND status = 'open' AND severity IN ('critical', 'high') FOR UPDATE",
        site_id,
    )


async def get_oncall(conn: Conn, site_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT site_id, tiers, version, updated_at FROM oncall WHERE site_id = $1", site_id
    )


def policy_of(tiers: list[dict[str, Any]] | None) -> OncallPolicy:
    if not tiers:
        return OncallPolicy()
    return OncallPolicy(
        tuple(
            Tier(
                recipients=tuple(
                    Recipient(name=r["name"], webhook_url=r["webhook_url"]) for r in t["recipients"]
                ),
                escalate_after_s=int(t["escalate_after_s"]),
            )
            for t in tiers
        )
    )


# --- patients (monitoring, and the per-patient lock) ------------------------------


async def lock_patient(conn: Conn, patient_id: str, site_id: str, now: datetime) -> asyncpg.Record:
    """The patient's row, locked for this transaction (created on first sight)."""
    await conn.execute(
        "INSERT INTO patients (patient_id, site_id, updated_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (patient_id) DO NOTHING",
        patient_id,
        site_id,
        now,
    )
    row = await conn.fetchrow("SELECT * FROM patients WHERE patient_id = $1 FOR UPDATE", patient_id)
    assert row is not None
    return row


def monitor_of(row: asyncpg.Record) -> Monitor:
    return Monitor(
        started_at=row["started_at"],
        discharged_at=row["discharged_at"],
        next_due_at=row["next_due_at"],
        consecutive_misses=row["consecutive_misses"],
        last_checkin_at=row["last_checkin_at"],
    )


_SAVE_MONITOR = """
    UPDATE patients
    SET site_id = $2, started_at = $3, discharged_at = $4, next_due_at = $5, deadline_at = $6,
        consecutive_misses = $7, last_checkin_at = $8,
        total_misses = total_misses + $9, last_missed_at = coalesce($10, last_missed_at),
        updated_at = $11
    WHERE patient_id = $1
"""


def monitor_args(
    patient_id: str,
    site_id: str,
    m: Monitor,
    rule: MonitoringRule,
    now: datetime,
    missed: int = 0,
    last_missed_at: datetime | None = None,
) -> tuple[Any, ...]:
    return (
        patient_id,
        site_id,
        m.started_at,
        m.discharged_at,
        m.next_due_at,
        m.deadline(rule),
        m.consecutive_misses,
        m.last_checkin_at,
        missed,
        last_missed_at,
        now,
    )


async def save_monitor(conn: Conn, args: tuple[Any, ...]) -> None:
    await conn.execute(_SAVE_MONITOR, *args)


async def save_monitors(conn: Conn, args: Sequence[tuple[Any, ...]]) -> None:
    await conn.executemany(_SAVE_MONITOR, args)


async def due_patients(conn: Conn, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM patients WHERE deadline_at <= $1 ORDER BY deadline_at LIMIT $2 "
        "FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


async def get_patient(conn: Conn, patient_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM patients WHERE patient_id = $1", patient_id)


# --- alerts ----------------------------------------------------------------------------


async def unresolved_alerts(conn: Conn, patient_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM alerts WHERE patient_id = $1 AND status <> 'resolved' FOR UPDATE",
        patient_id,
    )


def open_alert_of(row: asyncpg.Record) -> OpenAlert:
    return OpenAlert(
        alert_id=str(row["alert_id"]),
        kind=Kind(row["kind"]),
        severity=Severity(row["severity"]),
        status=Status(row["status"]),
        inhibited_by=str(row["inhibited_by"]) if row["inhibited_by"] else None,
    )


def escalation_of(row: asyncpg.Record) -> EscalationState:
    return EscalationState(
        severity=Severity(row["severity"]),
        status=Status(row["status"]),
        inhibited=row["inhibited_by"] is not None,
        tiers_paged=row["tiers_paged"],
        last_escalated_at=row["last_escalated_at"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_tier=row["acknowledged_tier"],
        repages=row["repages"],
        last_repaged_at=row["last_repaged_at"],
    )


async def insert_alert(conn: Conn, values: dict[str, Any]) -> asyncpg.Record:
    cols = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO alerts ({cols}) VALUES ({params}) RETURNING *",  # noqa: S608 (our names)
        *values.values(),
    )
    assert row is not None
    return row


async def update_alert(conn: Conn, alert_id: Any, values: dict[str, Any]) -> asyncpg.Record:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, start=2))
    row = await conn.fetchrow(
        f"UPDATE alerts SET {sets} WHERE alert_id = $1 RETURNING *",  # noqa: S608 (our names)
        alert_id,
        *values.values(),
    )
    assert row is not None
    return row


async def repeat_alert(
    conn: Conn, alert_id: str, reasons: Sequence[str], seen_at: datetime, now: datetime
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        UPDATE alerts
        SET occurrences = occurrences + 1,
            last_seen_at = greatest(last_seen_at, $3),
            reasons = ARRAY(SELECT DISTINCT unnest(reasons || $2::text[]) ORDER BY 1),
            updated_at = $4
        WHERE alert_id = $1 RETURNING *
        """,
        alert_id,
        list(reasons),
        seen_at,
        now,
    )
    assert row is not None
    return row


async def lock_alert(conn: Conn, alert_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = $1 FOR UPDATE", alert_id)


async def get_alert(conn: Conn, alert_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = $1", alert_id)


async def due_alerts(conn: Conn, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM alerts WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2 "
        "FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


async def list_alerts(
    conn: Conn,
    *,
    site_id: str | None,
    patient_id: str | None,
    status: str | None,
    severity: str | None,
    kind: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT * FROM alerts
        WHERE ($1::text IS NULL OR site_id = $1)
          AND ($2::text IS NULL OR patient_id = $2)
          AND ($3::text IS NULL OR status = $3)
          AND ($4::text IS NULL OR severity = $4)
          AND ($5::text IS NULL OR kind = $5)
        ORDER BY raised_at DESC, alert_id
        LIMIT $6
        """,
        site_id,
        patient_id,
        status,
        severity,
        kind,
        limit,
    )


async def counts(conn: Conn, site_id: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT site_id, status, severity, count(*) AS n FROM alerts "
        "WHERE ($1::text IS NULL OR site_id = $1) GROUP BY site_id, status, severity "
        "ORDER BY site_id",
        site_id,
    )


async def monitoring_counts(conn: Conn) -> list[asyncpg.Record]:
    """Per site: patients monitored, and those with at least one miss in a row."""
    return await conn.fetch(
        "SELECT site_id, count(*) AS monitored, "
        "count(*) FILTER (WHERE consecutive_misses > 0) AS missing_checkins "
        "FROM patients WHERE deadline_at IS NOT NULL GROUP BY site_id ORDER BY site_id"
    )


async def ack_times(conn: Conn, severity: str, since: datetime) -> list[asyncpg.Record]:
    """Per site and for the whole network (``site_id`` null), alerts of ``severity``
    raised since ``since``: how many, how many acknowledged, median and p90 seconds."""
    return await conn.fetch(
        """
        SELECT site_id, count(*) AS raised, count(acknowledged_at) AS acknowledged,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
                   acknowledged_at - raised_at)) AS p50_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM
                   acknowledged_at - raised_at)) AS p90_s
        FROM alerts WHERE severity = $1 AND raised_at >= $2
        GROUP BY GROUPING SETS ((site_id), ())
        ORDER BY site_id NULLS FIRST
        """,
        severity,
        since,
    )


# --- pages -------------------------------------------------------------------------------


async def insert_pages(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    await conn.executemany(
        """
        INSERT INTO pages (page_id, alert_id, idempotency_key, tier, round, reason,
                           recipient_index, recipient_name, webhook_url, body, status,
                           next_attempt_at, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $11)
        ON CONFLICT (idempotency_key) DO NOTHING
        """,
        rows,
    )


async def cancel_pending_pages(conn: Conn, alert_id: Any, now: datetime) -> None:
    await conn.execute(
        "UPDATE pages SET status = 'cancelled', cancelled_at = $2, next_attempt_at = NULL "
        "WHERE alert_id = $1 AND status = 'pending'",
        alert_id,
        now,
    )


async def claim_signal(conn: Conn, signal_id: str, kind: str, via: str) -> bool:
    """True for the first path (safety lane or ordinary event) to see this signal."""
    return bool(
        await conn.fetchval(
            "INSERT INTO signal_claims (signal_id, kind, via) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true",
            signal_id,
            kind,
            via,
        )
    )


async def claim_patient_pages(
    conn: Conn, patient_id: str, now: datetime, lease_until: datetime
) -> list[Any]:
    """The patient's due deliveries, leased as ``claim_pages`` does: the safety lane makes
    a signal's first delivery attempt itself, straight after its alert committed."""
    return await conn.fetch(
        """
        UPDATE pages p SET attempts = p.attempts + 1, next_attempt_at = $3
        FROM (SELECT pg.page_id FROM pages pg JOIN alerts a ON a.alert_id = pg.alert_id
              WHERE a.patient_id = $1 AND pg.status = 'pending' AND pg.next_attempt_at <= $2
              FOR UPDATE OF pg SKIP LOCKED) due
        WHERE p.page_id = due.page_id
        RETURNING p.page_id, p.alert_id, p.webhook_url, p.body, p.attempts,
                  p.idempotency_key, p.created_at, p.tier
        """,
        patient_id,
        now,
        lease_until,
    )


async def claim_pages(conn: Conn, now: datetime, lease_until: datetime, limit: int) -> list[Any]:
    """Due deliveries, leased to this process until ``lease_until`` (if it dies mid-POST,
    another takes the page over then; the idempotency key lets the receiver drop a repeat)."""
    return await conn.fetch(
        """
        UPDATE pages p SET attempts = p.attempts + 1, next_attempt_at = $2
        FROM (SELECT page_id FROM pages
              WHERE status = 'pending' AND next_attempt_at <= $1
              ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
        WHERE p.page_id = due.page_id
        RETURNING p.page_id, p.alert_id, p.webhook_url, p.body, p.attempts,
                  p.idempotency_key, p.created_at, p.tier
        """,
        now,
        lease_until,
        limit,
    )


async def record_attempt(
    conn: Conn,
    *,
    page_id: Any,
    attempt: int,
    started_at: datetime,
    duration_ms: float,
    http_status: int | None,
    error: str | None,
    delivered_at: datetime | None,
    retry_at: datetime | None,
) -> None:
    await conn.execute(
        "INSERT INTO page_attempts (page_id, attempt, started_at, duration_ms, http_status, error) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        page_id,
        attempt,
        started_at,
        duration_ms,
        http_status,
        error,
    )
    if delivered_at is not None:
        await conn.execute(
            # delivered is a fact, even for a page cancelled while its POST was in flight
            "UPDATE pages SET status = 'delivered', delivered_at = $2, next_attempt_at = NULL, "
            "cancelled_at = NULL, last_error = NULL WHERE page_id = $1 AND status <> 'delivered'",
            page_id,
            delivered_at,
        )
    else:
        await conn.execute(
            "UPDATE pages SET next_attempt_at = $2, last_error = $3 "
            "WHERE page_id = $1 AND status = 'pending'",
            page_id,
            retry_at,
            error,
        )


async def refuse_page(conn: Conn, page_id: Any, reason: str, now: datetime) -> None:
    """A page that must never be sent (its host is not allowed): cancelled, with why."""
    await conn.execute(
        "UPDATE pages SET status = 'cancelled', cancelled_at = $2, next_attempt_at = NULL, "
        "last_error = $3 WHERE page_id = $1 AND status = 'pending'",
        page_id,
        now,
        reason,
    )


async def pages_of(conn: Conn, alert_id: Any) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM pages WHERE alert_id = $1 ORDER BY created_at, tier, recipient_index",
        alert_id,
    )


async def attempts_of(conn: Conn, alert_id: Any) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT a.* FROM page_attempts a JOIN pages p USING (page_id) "
        "WHERE p.alert_id = $1 ORDER BY a.started_at, a.attempt",
        alert_id,
    )


# --- timers ------------------------------------------------------------------------------


async def next_due(conn: Conn, include_pages: bool) -> datetime | None:
    """The earliest due time of any timer (three index lookups)."""
    due: datetime | None = await conn.fetchval(
        """
        SELECT least((SELECT min(deadline_at) FROM patients),
                     (SELECT min(next_check_at) FROM alerts),
                     CASE WHEN $1 THEN (SELECT min(next_attempt_at) FROM pages
                                        WHERE status = 'pending') END)
        """,
        include_pages,
    )
    return due


async def wake_timers(conn: Conn) -> None:
    """Wake every timers process when this transaction commits (something is due soon)."""
    await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)


# --- the pipeline watchdog (services/alerts/watchdog.py) ------------------------------


async def record_heartbeat(
    conn: Conn, beat_id: str, emitter: str, emitted_at: datetime, seen_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO pipeline_heartbeats (beat_id, emitter, emitted_at, seen_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (beat_id) DO NOTHING",
        beat_id,
        emitter,
        emitted_at,
        seen_at,
    )


async def prune_heartbeats(conn: Conn, topic: str, older_than: timedelta) -> None:
    """Beats (and their inbox rows: every beat is one) past ``older_than`` (the watchdog,
    every few minutes)."""
    await conn.execute(
        "DELETE FROM pipeline_heartbeats WHERE seen_at < clock_timestamp() - $1::interval",
        older_than,
    )
    await conn.execute(
        "DELETE FROM inbox WHERE topic = $1 AND processed_at < clock_timestamp() - $2::interval",
        topic,
        older_than,
    )


async def touch_progress(conn: Conn, stage: str) -> None:
    """A stage's progress mark, on the database's wall clock (never moves back)."""
    await conn.execute(
        "INSERT INTO pipeline_progress (stage, at) VALUES ($1, clock_timestamp()) "
        "ON CONFLICT (stage) DO UPDATE SET at = greatest(pipeline_progress.at, excluded.at)",
        stage,
    )


async def stage_ages(conn: Conn) -> dict[str, float]:
    """Seconds since the newest heartbeat was emitted and since each progress mark, on the
    database's wall clock (one clock for every process)."""
    rows = await conn.fetch(
        "SELECT 'heartbeat' AS stage, extract(epoch FROM clock_timestamp() - "
        "max(emitted_at))::float8 AS age FROM pipeline_heartbeats "
        "UNION ALL SELECT stage, extract(epoch FROM clock_timestamp() - at)::float8 "
        "FROM pipeline_progress"
    )
    return {r["stage"]: max(r["age"], 0.0) for r in rows if r["age"] is not None}


async def outbox_age(conn: Conn, schema: str) -> float | None:
    """Seconds since the oldest unpublished row of ``schema``'s outbox (shared/outbox.py)
    was written; None when it is empty. ``schema`` comes from settings, never a client;
    raises UndefinedTableError where that service never ran."""
    query = (
        "SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8 "  # noqa: S608
        f'FROM "{schema}".outbox WHERE published_at IS NULL'
    )
    age = await conn.fetchval(query)
    return None if age is None else max(float(age), 0.0)


async def unresolved_alert(conn: Conn, patient_id: str, kind: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM alerts WHERE patient_id = $1 AND kind = $2 AND status <> 'resolved'",
        patient_id,
        kind,
    )


async def lock_due_alert(conn: Conn, alert_id: Any, now: datetime) -> asyncpg.Record | None:
    """The alert, locked, when its next escalation decision is due (else None)."""
    return await conn.fetchrow(
        "SELECT * FROM alerts WHERE alert_id = $1 AND next_check_at <= $2 FOR UPDATE SKIP LOCKED",
        alert_id,
        now,
    )


async def insert_attempted_pages(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """Pages made (and perhaps delivered) before their alert was recorded (the watchdog
    pages from memory while PostgreSQL is away), with their outcome."""
    await conn.executemany(
        """
        INSERT INTO pages (page_id, alert_id, idempotency_key, tier, round, reason,
            recipient_index, recipient_name, webhook_url, body, status, attempts,
            next_attempt_at, created_at, delivered_at, last_error)
        VALUES ($1, $2, $3, $4, 0, 'initial', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (idempotency_key) DO NOTHING
        """,
        rows,
    )


# --- notes at rest (services/alerts/alerting/notes.py) ---------------------------------


async def has_legacy_notes(conn: Conn) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM legacy_notes)"))


async def count_legacy_notes(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM legacy_notes"))


async def advisory_lock(conn: Conn, name: str) -> None:
    """A session-level advisory lock (held until ``advisory_unlock`` on ``conn``)."""
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", name)


async def advisory_unlock(conn: Conn, name: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", name)


async def lock_legacy_notes(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """The next ``limit`` plaintext notes of migration 0002, locked: alert_id, step, note."""
    return await conn.fetch(
        "SELECT alert_id, step, note FROM legacy_notes ORDER BY alert_id, step LIMIT $1 FOR UPDATE",
        limit,
    )


async def fill_notes(conn: Conn, step: str, notes: Sequence[tuple[Any, bytes | None]]) -> None:
    """(alert_id, token) pairs: each alert's ``<step>_note``, unless one was written since.
    ``step`` is ``acknowledged`` or ``resolved`` (our names, never a client's)."""
    await conn.executemany(
        f"UPDATE alerts SET {step}_note = $2 "  # noqa: S608
        f"WHERE alert_id = $1 AND {step}_note IS NULL",
        notes,
    )


async def delete_legacy_notes(conn: Conn, keys: Sequence[tuple[Any, str]]) -> None:
    await conn.executemany("DELETE FROM legacy_notes WHERE alert_id = $1 AND step = $2", keys)


async def newest_note(conn: Conn) -> bytes | None:
    """The most recently written note token, if any (to check the keys read them)."""
    note: bytes | None = await conn.fetchval(
        "SELECT coalesce(acknowledged_note, resolved_note) FROM alerts "
        "WHERE acknowledged_note IS NOT NULL OR resolved_note IS NOT NULL "
        "ORDER BY updated_at DESC LIMIT 1"
    )
    return note

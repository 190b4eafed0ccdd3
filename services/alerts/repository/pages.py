"""Pages: each recipient's delivery of an alert's page (the exact bytes POSTed), leased
for one attempt at a time, and every attempt's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.alerts.rows import AttemptRow, ClaimedPage, NewPage, PageRow
from shared.db import Conn


async def insert_pages(
    conn: Conn, rows: Sequence[NewPage], lease_until: datetime | None = None
) -> list[ClaimedPage]:
    """New pages, each due at its ``due`` (one statement, whatever their number). With
    ``lease_until``, those due at once are already leased to this process for their first
    attempt (as ``claim_patient_pages`` would lease them, without that second
    transaction), and only they are returned: the safety lane POSTs them straight after
    the commit. A page whose key exists already is left to whoever made it."""
    cols = [[getattr(r, f) for r in rows] for f in _NEW_PAGE]
    found = await conn.fetch(
        """
        INSERT INTO pages AS p (page_id, alert_id, idempotency_key, tier, round, reason,
                           recipient_index, recipient_name, body, created_at,
                           channel, webhook_url, address, clinician_id, contact_method,
                           ack_token, reply_code, status, attempts, next_attempt_at)
        SELECT pid, a, k, t, r, why, i, n, b, c, ch, u, addr, cl, cm, tok, rc, 'pending',
               CASE WHEN $19::timestamptz IS NOT NULL AND d <= c THEN 1 ELSE 0 END,
               CASE WHEN $19::timestamptz IS NOT NULL AND d <= c THEN $19 ELSE d END
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::int[], $6::text[],
                    $7::int[], $8::text[], $9::bytea[], $10::timestamptz[],
                    $11::timestamptz[], $12::text[], $13::text[], $14::text[], $15::text[],
                    $16::text[], $17::text[], $18::int[])
             AS x (pid, a, k, t, r, why, i, n, b, c, d, ch, u, addr, cl, cm, tok, rc)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING p.page_id, p.alert_id, p.webhook_url, p.body, p.attempts,
                  p.idempotency_key, p.created_at, p.tier, p.channel, p.address
        """,
        *cols,
        lease_until,
    )
    claimed = [ClaimedPage.of(r) for r in found]
    return [c for c in claimed if c.attempts > 0] if lease_until is not None else claimed


# NewPage's fields in insert_pages' parameter order ($1..$18)
_NEW_PAGE = (
    "page_id",
    "alert_id",
    "idempotency_key",
    "tier",
    "round",
    "reason",
    "recipient_index",
    "recipient_name",
    "body",
    "created_at",
    "due",
    "channel",
    "webhook_url",
    "address",
    "clinician_id",
    "contact_method",
    "ack_token",
    "reply_code",
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


async def cancel_pending_pages(conn: Conn, alert_id: Any, now: datetime) -> None:
    await conn.execute(
        # an acknowledgement's notices go out whatever happens next (a resolve at once)
        "UPDATE pages SET status = 'cancelled', cancelled_at = $2, next_attempt_at = NULL "
        "WHERE alert_id = $1 AND status = 'pending' AND reason <> 'ack_notice'",
        alert_id,
        now,
    )


async def claim_patient_pages(
    conn: Conn, patient_id: str, now: datetime, lease_until: datetime
) -> list[ClaimedPage]:
    """The patient's due deliveries, leased as ``claim_pages`` does: the watchdog makes
    its ``pipeline_stalled`` pages' first attempt itself, straight after they committed,
    and the safety lane those of a signal the routine path raised first."""
    rows = await conn.fetch(
        """
        UPDATE pages p SET attempts = p.attempts + 1, next_attempt_at = $3
        FROM (SELECT pg.page_id FROM pages pg JOIN alerts a ON a.alert_id = pg.alert_id
              WHERE a.patient_id = $1 AND pg.status = 'pending' AND pg.next_attempt_at <= $2
              FOR UPDATE OF pg SKIP LOCKED) due
        WHERE p.page_id = due.page_id
        RETURNING p.page_id, p.alert_id, p.webhook_url, p.body, p.attempts,
                  p.idempotency_key, p.created_at, p.tier, p.channel, p.address
        """,
        patient_id,
        now,
        lease_until,
    )
    return [ClaimedPage.of(r) for r in rows]


async def claim_pages(
    conn: Conn, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedPage]:
    """Due deliveries, leased to this process until ``lease_until`` (if it dies mid-POST,
    another takes the page over then; the idempotency key lets the receiver drop a repeat)."""
    rows = await conn.fetch(
        """
        UPDATE pages p SET attempts = p.attempts + 1, next_attempt_at = $2
        FROM (SELECT page_id FROM pages
              WHERE status = 'pending' AND next_attempt_at <= $1
              ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
        WHERE p.page_id = due.page_id
        RETURNING p.page_id, p.alert_id, p.webhook_url, p.body, p.attempts,
                  p.idempotency_key, p.created_at, p.tier, p.channel, p.address
        """,
        now,
        lease_until,
        limit,
    )
    return [ClaimedPage.of(r) for r in rows]


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


async def pages_of(conn: Conn, alert_id: Any) -> list[PageRow]:
    rows = await conn.fetch(
        "SELECT * FROM pages WHERE alert_id = $1 ORDER BY created_at, tier, recipient_index",
        alert_id,
    )
    return [PageRow.of(r) for r in rows]


async def attempts_of(conn: Conn, alert_id: Any) -> list[AttemptRow]:
    rows = await conn.fetch(
        "SELECT a.* FROM page_attempts a JOIN pages p USING (page_id) "
        "WHERE p.alert_id = $1 ORDER BY a.started_at, a.attempt",
        alert_id,
    )
    return [AttemptRow.of(r) for r in rows]


async def page_by_token(conn: Conn, token: str) -> PageRow | None:
    row = await conn.fetchrow("SELECT * FROM pages WHERE ack_token = $1", token)
    return None if row is None else PageRow.of(row)


async def lock_page(conn: Conn, page_id: Any) -> PageRow:
    row = await conn.fetchrow("SELECT * FROM pages WHERE page_id = $1 FOR UPDATE", page_id)
    assert row is not None
    return PageRow.of(row)


async def use_ack_token(conn: Conn, page_id: Any, now: datetime) -> None:
    await conn.execute("UPDATE pages SET ack_used_at = $2 WHERE page_id = $1", page_id, now)


async def page_by_reply(conn: Conn, clinician_id: str, code: int) -> PageRow | None:
    """The newest SMS page that gave this clinician this reply code number."""
    row = await conn.fetchrow(
        "SELECT * FROM pages WHERE clinician_id = $1 AND reply_code = $2 "
        "ORDER BY created_at DESC LIMIT 1",
        clinician_id,
        code,
    )
    return None if row is None else PageRow.of(row)


async def paged_of(conn: Conn, alert_id: Any) -> list[PageRow]:
    """The alert's pages someone was sent (an attempt made), delivered ones first: who
    an acknowledgement notice goes to (services/alerts/alerting/notices.py)."""
    rows = await conn.fetch(
        "SELECT * FROM pages WHERE alert_id = $1 AND reason <> 'ack_notice' AND attempts > 0 "
        "ORDER BY delivered_at IS NULL, created_at, tier, recipient_index",
        alert_id,
    )
    return [PageRow.of(r) for r in rows]

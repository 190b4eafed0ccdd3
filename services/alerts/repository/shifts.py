"""Shift notices (migration 0006; services/alerts/shifts.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.db import Conn


async def plan_notices(
    conn: Conn, rows: Sequence[tuple[str, str, datetime, str, datetime]], now: datetime
) -> int:
    """(schedule, clinician, shift start, kind, due) rows, each once whatever the scans."""
    if not rows:
        return 0
    cols = list(zip(*rows, strict=True))
    done = await conn.execute(
        """
        INSERT INTO shift_notices (notice_id, schedule_id, clinician_id, shift_start, kind,
                                   due_at, next_attempt_at, created_at)
        SELECT gen_random_uuid(), s, c, st, k, d, d, $6
        FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[])
             AS x (s, c, st, k, d)
        ON CONFLICT (schedule_id, clinician_id, shift_start, kind) DO NOTHING
        """,
        *cols,
        now,
    )
    return int(done.split()[-1])


async def claim_notices(
    conn: Conn, now: datetime, lease_until: datetime, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        UPDATE shift_notices n SET attempts = n.attempts + 1, next_attempt_at = $2
        FROM (SELECT notice_id FROM shift_notices
              WHERE status = 'pending' AND next_attempt_at <= $1
              ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
        WHERE n.notice_id = due.notice_id
        RETURNING n.*
        """,
        now,
        lease_until,
        limit,
    )
    return [dict(r) for r in rows]


async def finish_notice(
    conn: Conn,
    notice_id: uuid.UUID,
    *,
    status: str,
    channel: str | None,
    body: bytes | None,
    at: datetime,
    retry_at: datetime | None,
    error: str | None,
) -> None:
    """Delivered, cancelled (with why), or still pending until ``retry_at``."""
    await conn.execute(
        """
        UPDATE shift_notices SET status = $2::text, channel = coalesce($3::text, channel),
            body = coalesce($4::bytea, body), next_attempt_at = $6::timestamptz,
            last_error = $7::text,
            delivered_at = CASE WHEN $2::text = 'delivered' THEN $5::timestamptz END
        WHERE notice_id = $1
        """,
        notice_id,
        status,
        channel,
        body,
        at,
        retry_at,
        error,
    )


async def sites_paging(conn: Conn, schedule_id: str, clinician_id: str) -> list[str]:
    """The sites (and the network) whose tiers target the schedule or the clinician."""
    rows = await conn.fetch(
        """
        SELECT site_id FROM oncall
        WHERE tiers @> jsonb_build_array(jsonb_build_object('targets',
                  jsonb_build_array(jsonb_build_object('schedule_id', $1::text))))
           OR tiers @> jsonb_build_array(jsonb_build_object('targets',
                  jsonb_build_array(jsonb_build_object('clinician_id', $2::text))))
        ORDER BY site_id
        """,
        schedule_id,
        clinician_id,
    )
    return [r["site_id"] for r in rows]


async def open_alerts_at(conn: Conn, site_ids: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """Unresolved alerts of the sites: ids, kind, severity, status, site (no PHI)."""
    rows = await conn.fetch(
        """
        SELECT alert_id, kind, severity, status, site_id FROM alerts
        WHERE site_id = ANY($1::text[]) AND status <> 'resolved'
        ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, raised_at
        LIMIT $2
        """,
        list(site_ids),
        limit,
    )
    return [dict(r) for r in rows]

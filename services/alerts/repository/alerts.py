"""Alerts: one unresolved per patient and kind (index ``alerts_one_open``), their
escalation state and timer (``next_check_at``), and the signal claims that keep the
safety lane and the ordinary events from raising one signal twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.alerts.domain.dedup import falls_back_to_network
from services.alerts.domain.model import NETWORK_SITE, PAGING
from services.alerts.rows import AckTimesRow, AlertRow, CountRow
from shared.db import Conn


async def unresolved_alerts(conn: Conn, patient_id: str) -> list[AlertRow]:
    rows = await conn.fetch(
        "SELECT * FROM alerts WHERE patient_id = $1 AND status <> 'resolved' FOR UPDATE",
        patient_id,
    )
    return [AlertRow.of(r) for r in rows]


async def orphan_alerts(conn: Conn, site_id: str) -> list[AlertRow]:
    """The open paging alerts a new on-call policy of ``site_id`` takes, locked: the
    site's opened while nobody was on call, and those paging the network ops on-call in
    its place. For the network (NETWORK_SITE): its own opened while nobody was on call,
    and every site's critical ones that found nobody on call at all."""
    if site_id == NETWORK_SITE:
        rows = await conn.fetch(
            "SELECT * FROM alerts WHERE policy IS NULL AND status = 'open' "
            "AND severity IN ('critical', 'high') "
            "AND (site_id = $1 OR severity = ANY($2::text[])) FOR UPDATE",
            site_id,
            [s.value for s in PAGING if falls_back_to_network(s)],
        )
    else:
        rows = await conn.fetch(
            "SELECT * FROM alerts WHERE site_id = $1 "
            "AND (policy IS NULL OR policy_site IS NOT NULL) "
            "AND status = 'open' AND severity IN ('critical', 'high') FOR UPDATE",
            site_id,
        )
    return [AlertRow.of(r) for r in rows]


async def insert_alert(conn: Conn, values: dict[str, Any]) -> AlertRow:
    cols = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO alerts ({cols}) VALUES ({params}) RETURNING *",  # noqa: S608 (our names)
        *values.values(),
    )
    assert row is not None
    return AlertRow.of(row)


async def update_alert(conn: Conn, alert_id: Any, values: dict[str, Any]) -> AlertRow:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, start=2))
    row = await conn.fetchrow(
        f"UPDATE alerts SET {sets} WHERE alert_id = $1 RETURNING *",  # noqa: S608 (our names)
        alert_id,
        *values.values(),
    )
    assert row is not None
    return AlertRow.of(row)


async def repeat_alert(
    conn: Conn, alert_id: str, reasons: Sequence[str], seen_at: datetime, now: datetime
) -> AlertRow:
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
    return AlertRow.of(row)


async def lock_alert(conn: Conn, alert_id: str) -> AlertRow | None:
    row = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = $1 FOR UPDATE", alert_id)
    return None if row is None else AlertRow.of(row)


async def get_alert(conn: Conn, alert_id: str) -> AlertRow | None:
    row = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = $1", alert_id)
    return None if row is None else AlertRow.of(row)


async def due_alerts(conn: Conn, now: datetime, limit: int) -> list[AlertRow]:
    rows = await conn.fetch(
        "SELECT * FROM alerts WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2 "
        "FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [AlertRow.of(r) for r in rows]


async def lock_due_alert(conn: Conn, alert_id: Any, now: datetime) -> AlertRow | None:
    """The alert, locked, when its next escalation decision is due (else None)."""
    row = await conn.fetchrow(
        "SELECT * FROM alerts WHERE alert_id = $1 AND next_check_at <= $2 FOR UPDATE SKIP LOCKED",
        alert_id,
        now,
    )
    return None if row is None else AlertRow.of(row)


async def unresolved_alert(conn: Conn, patient_id: str, kind: str) -> AlertRow | None:
    row = await conn.fetchrow(
        "SELECT * FROM alerts WHERE patient_id = $1 AND kind = $2 AND status <> 'resolved'",
        patient_id,
        kind,
    )
    return None if row is None else AlertRow.of(row)


async def list_alerts(
    conn: Conn,
    *,
    site_id: str | None,
    patient_id: str | None,
    status: str | None,
    severity: str | None,
    kind: str | None,
    limit: int,
) -> list[AlertRow]:
    rows = await conn.fetch(
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
    return [AlertRow.of(r) for r in rows]


async def counts(conn: Conn, site_id: str | None) -> list[CountRow]:
    rows = await conn.fetch(
        "SELECT site_id, status, severity, count(*) AS n FROM alerts "
        "WHERE ($1::text IS NULL OR site_id = $1) GROUP BY site_id, status, severity "
        "ORDER BY site_id",
        site_id,
    )
    return [CountRow.of(r) for r in rows]


async def ack_times(conn: Conn, severity: str, since: datetime) -> list[AckTimesRow]:
    """Per site and for the whole network (``site_id`` null), alerts of ``severity``
    raised since ``since``: how many, how many acknowledged, median and p90 seconds."""
    rows = await conn.fetch(
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
    return [AckTimesRow.of(r) for r in rows]


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

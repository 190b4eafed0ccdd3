"""The timers' wake-up and earliest due time, and the pipeline watchdog's marks
(services/alerts/watchdog.py): heartbeats, progress marks, outbox ages."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from services.alerts.rows import NoOutbox
from shared.db import Conn

WAKE_CHANNEL = "alerts_timers"


async def next_due(conn: Conn, include_pages: bool) -> datetime | None:
    """The earliest due time of any timer (four index lookups)."""
    due: datetime | None = await conn.fetchval(
        """
        SELECT least((SELECT min(deadline_at) FROM patients),
                     (SELECT min(next_check_at) FROM alerts),
                     CASE WHEN $1 THEN (SELECT min(next_attempt_at) FROM pages
                                        WHERE status = 'pending') END,
                     (SELECT min(next_attempt_at) FROM shift_notices
                      WHERE status = 'pending'))
        """,
        include_pages,
    )
    return due


async def wake_timers(conn: Conn) -> None:
    """Wake every timers process when this transaction commits (something is due soon)."""
    await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)


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
    raises NoOutbox where that service never ran (outside a transaction: the failed
    statement would abort it)."""
    query = (
        "SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8 "  # noqa: S608
        f'FROM "{schema}".outbox WHERE published_at IS NULL'
    )
    try:
        age = await conn.fetchval(query)
    except asyncpg.UndefinedTableError as exc:
        raise NoOutbox(schema) from exc
    return None if age is None else max(float(age), 0.0)

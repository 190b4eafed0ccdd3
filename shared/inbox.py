"""Idempotent consumption: record the event id in the same transaction as the effect."""

from __future__ import annotations

from shared.db import Conn


async def first_time(conn: Conn, event_id: str, topic: str) -> bool:
    """True when this event has not been processed; must run inside the effect's transaction.

    If the transaction rolls back, so does the record, and a redelivery runs again.
    """
    status = await conn.execute(
        "INSERT INTO inbox (event_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        event_id,
        topic,
    )
    return bool(status == "INSERT 0 1")


async def first_times(conn: Conn, ids: list[tuple[str, str]]) -> set[str]:
    """``first_time`` for several events (event id, topic) in one statement: the ids not
    processed before (an id twice in ``ids`` is in the answer once)."""
    rows = await conn.fetch(
        "INSERT INTO inbox (event_id, topic) SELECT * FROM unnest($1::text[], $2::text[]) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        [i for i, _ in ids],
        [t for _, t in ids],
    )
    return {r["event_id"] for r in rows}

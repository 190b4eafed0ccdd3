"""Notes at rest (services/alerts/alerting/notes.py): the plaintext notes migration 0002
left in ``legacy_notes``, the encrypted ones on their alerts, and the advisory lock that
lets one process at a time encrypt them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.alerts.rows import LegacyNote
from shared.db import Conn


async def has_legacy_notes(conn: Conn) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM legacy_notes)"))


async def count_legacy_notes(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM legacy_notes"))


async def lock_legacy_notes(conn: Conn, limit: int) -> list[LegacyNote]:
    """The next ``limit`` plaintext notes of migration 0002, locked: alert_id, step, note."""
    rows = await conn.fetch(
        "SELECT alert_id, step, note FROM legacy_notes ORDER BY alert_id, step LIMIT $1 FOR UPDATE",
        limit,
    )
    return [LegacyNote.of(r) for r in rows]


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

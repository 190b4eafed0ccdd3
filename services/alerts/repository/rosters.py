"""On-call people: clinicians, schedules and their overrides (migration 0005)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from services.alerts.rows import ClinicianRow, OverrideRow, ScheduleRow
from shared.db import Conn


async def put_clinician(
    conn: Conn, clinician_id: str, fields: dict[str, Any], now: datetime
) -> ClinicianRow:
    row = await conn.fetchrow(
        """
        INSERT INTO clinicians (clinician_id, name, timezone, contact_methods,
                                notification_rules, quiet_hours, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (clinician_id) DO UPDATE
            SET name = excluded.name, timezone = excluded.timezone,
                contact_methods = excluded.contact_methods,
                notification_rules = excluded.notification_rules,
                quiet_hours = excluded.quiet_hours, updated_at = excluded.updated_at,
                version = clinicians.version + 1
        RETURNING *
        """,
        clinician_id,
        fields["name"],
        fields["timezone"],
        fields["contact_methods"],
        fields["notification_rules"],
        fields["quiet_hours"],
        now,
    )
    assert row is not None
    return ClinicianRow.of(row)


async def get_clinician(conn: Conn, clinician_id: str) -> ClinicianRow | None:
    row = await conn.fetchrow("SELECT * FROM clinicians WHERE clinician_id = $1", clinician_id)
    return None if row is None else ClinicianRow.of(row)


async def list_clinicians(conn: Conn) -> list[ClinicianRow]:
    rows = await conn.fetch("SELECT * FROM clinicians ORDER BY clinician_id")
    return [ClinicianRow.of(r) for r in rows]


async def clinicians_by_id(conn: Conn, ids: Collection[str]) -> dict[str, ClinicianRow]:
    rows = await conn.fetch(
        "SELECT * FROM clinicians WHERE clinician_id = ANY($1::text[])", list(ids)
    )
    return {r["clinician_id"]: ClinicianRow.of(r) for r in rows}


async def known_clinicians(conn: Conn, ids: Collection[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT clinician_id FROM clinicians WHERE clinician_id = ANY($1::text[])", list(ids)
    )
    return {r["clinician_id"] for r in rows}


async def next_reply_code(conn: Conn, clinician_id: str) -> int:
    """The clinician's next SMS reply code number, 1-99 and round again: the newest page
    holding a number is the one a reply with it means (services/alerts/domain/rosters.py)."""
    n = await conn.fetchval(
        "UPDATE clinicians SET sms_seq = sms_seq % 99 + 1 WHERE clinician_id = $1 "
        "RETURNING sms_seq",
        clinician_id,
    )
    return int(n or 1)


async def put_schedule(
    conn: Conn, schedule_id: str, fields: dict[str, Any], now: datetime
) -> ScheduleRow:
    row = await conn.fetchrow(
        """
        INSERT INTO schedules (schedule_id, name, timezone, rotations, updated_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (schedule_id) DO UPDATE
            SET name = excluded.name, timezone = excluded.timezone,
                rotations = excluded.rotations, updated_at = excluded.updated_at,
                version = schedules.version + 1
        RETURNING *
        """,
        schedule_id,
        fields["name"],
        fields["timezone"],
        fields["rotations"],
        now,
    )
    assert row is not None
    return ScheduleRow.of(row)


async def get_schedule(conn: Conn, schedule_id: str) -> ScheduleRow | None:
    row = await conn.fetchrow("SELECT * FROM schedules WHERE schedule_id = $1", schedule_id)
    return None if row is None else ScheduleRow.of(row)


async def list_schedules(conn: Conn) -> list[ScheduleRow]:
    rows = await conn.fetch("SELECT * FROM schedules ORDER BY schedule_id")
    return [ScheduleRow.of(r) for r in rows]


async def schedules_by_id(conn: Conn, ids: Collection[str]) -> dict[str, ScheduleRow]:
    rows = await conn.fetch(
        "SELECT * FROM schedules WHERE schedule_id = ANY($1::text[])", list(ids)
    )
    return {r["schedule_id"]: ScheduleRow.of(r) for r in rows}


async def overrides_of(
    conn: Conn, schedule_ids: Collection[str], ending_after: datetime
) -> dict[str, list[OverrideRow]]:
    """The schedules' overrides not over by ``ending_after``, soonest first."""
    rows = await conn.fetch(
        "SELECT * FROM schedule_overrides WHERE schedule_id = ANY($1::text[]) AND ends_at > $2 "
        "ORDER BY starts_at, created_at",
        list(schedule_ids),
        ending_after,
    )
    out: dict[str, list[OverrideRow]] = {}
    for r in rows:
        out.setdefault(r["schedule_id"], []).append(OverrideRow.of(r))
    return out


async def insert_override(
    conn: Conn,
    schedule_id: str,
    start: datetime,
    end: datetime,
    clinician_id: str,
    replaces: str | None,
    now: datetime,
) -> OverrideRow:
    row = await conn.fetchrow(
        """
        INSERT INTO schedule_overrides (override_id, schedule_id, starts_at, ends_at,
                                        clinician_id, replaces, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *
        """,
        uuid.uuid4(),
        schedule_id,
        start,
        end,
        clinician_id,
        replaces,
        now,
    )
    assert row is not None
    return OverrideRow.of(row)


async def delete_override(conn: Conn, schedule_id: str, override_id: uuid.UUID) -> bool:
    done = await conn.execute(
        "DELETE FROM schedule_overrides WHERE schedule_id = $1 AND override_id = $2",
        schedule_id,
        override_id,
    )
    return bool(done.endswith(" 1"))


async def clinician_by_phone(conn: Conn, phone: str) -> ClinicianRow | None:
    """The clinician with this SMS number (E.164) among their contact methods."""
    row = await conn.fetchrow(
        "SELECT * FROM clinicians WHERE contact_methods @> $1::jsonb ORDER BY clinician_id LIMIT 1",
        [{"type": "sms", "address": phone}],
    )
    return None if row is None else ClinicianRow.of(row)


async def audit(conn: Conn, actor: str, method: str, route: str, params: dict[str, str]) -> None:
    """An audit row for a change made without a bearer token (an ack link, an SMS reply),
    in the change's own transaction: under the person it acted as."""
    await conn.execute(
        "INSERT INTO audit (actor, method, route, path_params, status) "
        "VALUES ($1, $2, $3, $4, 200)",
        actor,
        method,
        route,
        params,
    )

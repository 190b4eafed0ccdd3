"""Sites: their hours, capacity and protocol; the site's booking lock."""

from __future__ import annotations

import asyncpg

from services.scheduling.rows import NewSite, SiteRow
from shared.db import Conn

_COLUMNS = (
    "site_id, name, timezone, hours, treatment_rooms, therapists, protocol, protocol_spec, "
    "protocol_numbers, updated_at"
)


def _site(r: asyncpg.Record) -> SiteRow:
    return SiteRow(
        site_id=r["site_id"],
        name=r["name"],
        timezone=r["timezone"],
        hours={day: (v[0], v[1]) for day, v in r["hours"].items()},
        treatment_rooms=r["treatment_rooms"],
        therapists=r["therapists"],
        protocol=r["protocol"],
        protocol_spec=r["protocol_spec"],
        protocol_numbers=r["protocol_numbers"],
        updated_at=r["updated_at"],
    )


async def upsert_site(conn: Conn, site_id: str, site: NewSite) -> SiteRow:
    row = await conn.fetchrow(
        f"""
        INSERT INTO sites (site_id, name, timezone, hours, treatment_rooms, therapists, protocol,
                           protocol_spec, protocol_numbers)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (site_id) DO UPDATE SET
            name = EXCLUDED.name, timezone = EXCLUDED.timezone, hours = EXCLUDED.hours,
            treatment_rooms = EXCLUDED.treatment_rooms, therapists = EXCLUDED.therapists,
            protocol = EXCLUDED.protocol, protocol_spec = EXCLUDED.protocol_spec,
            protocol_numbers = EXCLUDED.protocol_numbers, updated_at = now()
        RETURNING {_COLUMNS}
        """,  # noqa: S608
        site_id,
        site.name,
        site.timezone,
        {day: list(v) for day, v in site.hours.items()},
        site.treatment_rooms,
        site.therapists,
        site.protocol,
        site.protocol_spec,
        site.protocol_numbers,
    )
    assert row is not None
    return _site(row)


async def get_site(conn: Conn, site_id: str) -> SiteRow | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM sites WHERE site_id = $1", site_id)  # noqa: S608
    return None if row is None else _site(row)


async def list_sites(conn: Conn) -> list[SiteRow]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM sites ORDER BY site_id")  # noqa: S608
    return [_site(r) for r in rows]


# The site's lock, then its row (a row of NULLs when there is no such site). The
# sub-select calls a volatile function, so it is never flattened away: the lock is
# taken whether or not the site exists. The row is read as of the statement's start, as
# a read before the lock would be; what must be read after the lock (the calendar:
# services/scheduling/repository/calendars.py) is read by the next statement.
_SERIALIZED_SITE = (
    f"SELECT {_COLUMNS} FROM (SELECT pg_advisory_xact_lock(hashtext('scheduling.site'), "  # noqa: S608
    "hashtext($1))) AS serialized LEFT JOIN sites ON sites.site_id = $1"
)


async def serialized_site(conn: Conn, site_id: str) -> SiteRow | None:
    """Take the site's booking lock (held to commit), always after the patient's, and
    read the site (None: not configured), in one round trip. One transaction at a time
    plans and books at a site: concurrent bookings at one site (a worker's partitions
    are handled at once) waited on each other's rows through the exclusion constraints
    and deadlocked; planning on a calendar nobody else is changing also never loses a
    race."""
    row = await conn.fetchrow(_SERIALIZED_SITE, site_id)
    return None if row is None or row["site_id"] is None else _site(row)

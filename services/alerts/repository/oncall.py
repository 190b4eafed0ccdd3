"""On-call policies: a site's tiers, and the network ops on-call (``_network``)."""

from __future__ import annotations

from datetime import datetime

from services.alerts.rows import OncallRow, TiersJson
from shared.db import Conn


async def put_oncall(conn: Conn, site_id: str, tiers: TiersJson, now: datetime) -> OncallRow:
    row = await conn.fetchrow(
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
    assert row is not None
    return OncallRow.of(row)


async def get_oncall(conn: Conn, site_id: str) -> OncallRow | None:
    row = await conn.fetchrow(
        "SELECT site_id, tiers, version, updated_at FROM oncall WHERE site_id = $1", site_id
    )
    return None if row is None else OncallRow.of(row)

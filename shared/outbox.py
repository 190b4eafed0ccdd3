"""Transactional outbox, the write side.

``enqueue`` (or ``row`` in a repository's own statement) writes an event in the
same transaction as the state change it announces, so an event exists if and
only if that change committed. ``shared.relay`` publishes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from prometheus_client import Gauge

from shared.db import Conn
from shared.events import CloudEvent

BACKLOG = Gauge("outbox_backlog", "Outbox events not yet published", ["schema"])
BACKLOG_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished event", ["schema"]
)


def row(event: CloudEvent) -> tuple[str, str, str, bytes]:
    """The outbox columns (event_id, topic, key, value) of an event, for a repository that
    writes its state change and the event in one statement."""
    return (event.id, event.type, event.key, event.to_bytes())


# Outbox priorities: the relay publishes every row of a higher priority before any of a
# lower one (shared/relay.py). SAFETY is the safety lane (docs/domain.md, "Safety signals
# first"): a suicide-risk signal never waits behind routine events.
ROUTINE, SAFETY = 0, 1


# Events with their priorities, added by a repository's own statement (one round trip
# for a state change and its events): ``insert_sql(n)`` reads the five arrays of
# ``arrays(announce)`` as parameters $n..$n+4 and inserts the rows in the given order;
# ``insert_sql(n, "i")`` only when the CTE ``i`` returned a row (the change happened).
def insert_sql(first: int, only_with: str | None = None) -> str:
    a, b, c, d, e = (f"${first + k}" for k in range(5))
    gate = f", {only_with}" if only_with else ""
    # parameter numbers and a CTE name of ours: no input reaches the text
    source = (
        f"unnest({a}::uuid[], {b}::text[], {c}::text[], {d}::bytea[], {e}::smallint[]) "
        f"WITH ORDINALITY AS e(id, topic, key, value, priority, n){gate}"
    )
    head = "INSERT INTO outbox (event_id, topic, key, value, priority)"
    return f"{head} SELECT e.id, e.topic, e.key, e.value, e.priority FROM {source} ORDER BY e.n"  # noqa: S608


def arrays(
    announce: Sequence[tuple[CloudEvent, int]],
) -> tuple[list[str], list[str], list[str], list[bytes], list[int]]:
    """The parameters of ``insert_sql`` for (event, priority) pairs."""
    rows = [row(e) for e, _ in announce]
    return (
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [priority for _, priority in announce],
    )


async def enqueue(conn: Conn, event: CloudEvent, *, priority: int = ROUTINE) -> None:
    """Add an event to the outbox; call inside the transaction of the state change."""
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, value, priority) VALUES ($1, $2, $3, $4, $5)",
        *row(event),
        priority,
    )


# A row that fires the outbox's trigger, for ``shared.db.warm_pool``'s rehearsal at start
# (always rolled back: never stored, never relayed, its NOTIFY never sent).
WARM_UP = (
    "INSERT INTO outbox (event_id, topic, key, value) "
    "VALUES (gen_random_uuid(), 'warm-up', 'warm-up', ''::bytea)"
)


# One statement for a batch (one trigger run, one NOTIFY): the ids follow the array order.
# The topic is a parameter of its own and the priority the column's default (routine):
# a burst of the timers is 100,000 rows, and every array element is encoded one by one.
_ENQUEUE_ENCODED = (
    "INSERT INTO outbox (event_id, topic, key, value) "
    "SELECT e.id, $2, e.key, e.value "
    "FROM unnest($1::uuid[], $3::text[], $4::bytea[]) WITH ORDINALITY AS e(id, key, value, n) "
    "ORDER BY e.n"
)


async def enqueue_encoded(
    conn: Conn,
    topic: str,
    event_ids: Sequence[str],
    keys: Sequence[str],
    values: Sequence[bytes],
) -> None:
    """Several routine events of one topic in one statement, in order (one trigger run,
    one NOTIFY), already encoded (``shared.events.new_events_bytes`` builds the values):
    each an event id, a key and a value."""
    if not (len(event_ids) == len(keys) == len(values)):
        raise ValueError("one event id, one key and one value per event")
    if event_ids:
        await conn.execute(_ENQUEUE_ENCODED, event_ids, topic, keys, values)


async def measure_backlog(pool: asyncpg.Pool, schema: str) -> None:
    """Refresh the backlog gauges (called when /metrics is scraped)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, "
            "coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS age "
            "FROM outbox WHERE published_at IS NULL"
        )
    assert row is not None
    BACKLOG.labels(schema).set(row["n"])
    BACKLOG_AGE.labels(schema).set(float(row["age"]))

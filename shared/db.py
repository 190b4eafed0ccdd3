"""PostgreSQL: one asyncpg pool per service, its own schema, versioned migrations.

Each service owns one schema in the ``care`` database (``intake``, ``scheduling``,
``alerts``); its connections set ``search_path`` to it, so its SQL is unqualified.
Migrations are plain SQL files applied in name order inside one transaction each,
recorded in ``<schema>.schema_migrations``, serialised across processes with an
advisory lock, so several instances can start at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg

from shared.logging import get_logger
from shared.retry import Backoff, until_done

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Conn = asyncpg.Connection

log = get_logger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"


def connect_kwargs(dsn: str, schema: str | None = None) -> dict[str, Any]:
    """Connection options: TLS off on loopback unless the URL asks for it (it only costs CPU)."""
    kwargs: dict[str, Any] = {}
    parts = urlsplit(dsn)
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and "sslmode" not in parts.query:
        kwargs["ssl"] = False
    if schema is not None:
        kwargs["server_settings"] = {
            "search_path": schema,
            "application_name": f"interval-{schema}",
        }
    return kwargs


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A pool connection goes back as it is: no reset round trip on every release.

    asyncpg's default reset (advisory unlock all, CLOSE ALL, UNLISTEN, RESET ALL) is a
    round trip per request, for session state our pooled connections never keep: SET is
    only ever SET LOCAL, listeners use connections of their own (shared/relay.py,
    shared/devclock.py, services/alerts/timers.py), and session advisory locks on a
    pool connection are taken only through ``session_lock``, which closes the
    connection when it cannot release one. asyncpg still rolls back a transaction left
    open and drops listeners before this runs."""


async def create_pool(
    dsn: str,
    schema: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    idle_in_transaction_s: float = 0,
) -> asyncpg.Pool:
    """``idle_in_transaction_s``: PostgreSQL ends a session whose transaction waited
    this long for its client's next statement (0: never)."""
    kwargs = connect_kwargs(dsn, schema)
    if idle_in_transaction_s > 0:
        kwargs.setdefault("server_settings", {})["idle_in_transaction_session_timeout"] = str(
            int(idle_in_transaction_s * 1000)
        )
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=30,
        **kwargs,
    )
    assert pool is not None
    return pool


async def warm_pool(
    pool: asyncpg.Pool,
    statements: Sequence[str],
    connections: int,
    rehearse: Sequence[str] = (),
) -> None:
    """Before the first request: open ``connections`` of the pool and have each one's
    server session parse and plan-check ``statements`` (the hot paths), so that the
    catalog lookups of a new session and its first parse are not a client's wait.

    ``rehearse``: statements each session runs once, in a transaction rolled back, for
    what only running does: a trigger's PL/pgSQL function is compiled, and its queries
    planned, by the first statement of a session that fires it (the outbox's NOTIFY
    trigger, shared/outbox.py ``WARM_UP``). Nothing of them is kept or sent: a NOTIFY
    is only delivered at commit. Without this the first burst after a start (several
    requests at once, so fresh sessions) answered in 40-160 ms instead of 3
    (docs/performance.md, "Cold start")."""
    async with contextlib.AsyncExitStack() as held:
        conns = [await held.enter_async_context(pool.acquire()) for _ in range(connections)]
        for conn in conns:
            for sql in statements:
                await conn.prepare(sql)
            if rehearse:
                tx = conn.transaction()
                await tx.start()
                try:
                    for sql in rehearse:
                        await conn.execute(sql)
                finally:
                    await tx.rollback()


@contextlib.asynccontextmanager
async def session_lock(pool: asyncpg.Pool, name: str, *, wait: bool = True) -> AsyncIterator[bool]:
    """A session-level advisory lock named ``name``, held on a pool connection for the
    block; yields whether it is held (``wait=False`` gives up at once when another
    session holds it). Whatever interrupts taking or releasing it (an error, a
    cancellation), the connection is closed rather than returned, which ends its session
    and so releases the lock: pool connections are returned without a reset (see
    ``_keep_session``), so none may go back holding one."""
    async with pool.acquire() as holder:
        try:
            if wait:
                await holder.execute("SELECT pg_advisory_lock(hashtext($1))", name)
                held = True
            else:
                held = bool(
                    await holder.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", name)
                )
        except BaseException:
            holder.terminate()
            raise
        try:
            yield held
        finally:
            if held:
                try:
                    await holder.execute("SELECT pg_advisory_unlock(hashtext($1))", name)
                except BaseException:
                    holder.terminate()
                    raise


def _lock_key(schema: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True
    )


def migration_files(service_dir: Path) -> list[tuple[str, str]]:
    """The shared migrations (outbox, inbox) first, then the service's own, by name."""
    files = sorted(SHARED_MIGRATIONS.glob("*.sql")) + sorted(service_dir.glob("*.sql"))
    return [(f.stem, f.read_text()) for f in files]


# PostgreSQL not reachable (yet): worth waiting for, unlike an error in the SQL itself.
UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
# Any failure of a statement or of the connection: what a loop that must survive the
# database (a relay, the dev clock's watcher, the heartbeat) catches and retries. The
# one place our code names the driver's error types (with UNREACHABLE above and
# shared/processing.py TRANSIENT); callers use these names.
DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def migrate_when_up(
    dsn: str,
    schema: str,
    service_dir: Path,
    process: str,
    stop: asyncio.Event | None = None,
    backoff: Backoff | None = None,
) -> bool:
    """``migrate`` once PostgreSQL answers, retrying with capped backoff meanwhile (a
    process may start before its database); False when ``stop`` was set first."""

    async def attempt() -> bool:
        await migrate(dsn, schema, migration_files(service_dir))
        return True

    done = await until_done(
        attempt,
        retry_on=UNREACHABLE,
        backoff=backoff or Backoff(0.5, 5.0),
        on_retry=lambda exc, delay: log.warning(
            f"{process}_waiting_for_database", error=repr(exc), retry_in_s=delay
        ),
        stop=stop,
    )
    return bool(done)


async def migrate(dsn: str, schema: str, migrations: Sequence[tuple[str, str]]) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    conn = await asyncpg.connect(dsn, **connect_kwargs(dsn))
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                r["version"]
                for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')  # noqa: S608
            }
            for version, sql in migrations:
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                    await conn.execute(sql.replace("{schema}", schema))
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)", version
                    )
                applied.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))
    finally:
        await conn.close()
    return applied


async def ping(pool: asyncpg.Pool, timeout: float) -> None:
    async with pool.acquire(timeout=timeout) as conn:
        await conn.fetchval("SELECT 1", timeout=timeout)

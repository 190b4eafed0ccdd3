"""The services' connection pools on the real PostgreSQL (shared/db.py): connections go
back to the pool without a reset round trip, so no session state may ride back with
them; session advisory locks are taken only through ``session_lock``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared import db
from shared.processing import TRANSIENT, EventProcessor
from shared.settings import DEFAULT_DATABASE_URL, CommonSettings
from tests.support.eventually import eventually
from tools.stack import BASE_DSN

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(BASE_DSN, "public", min_size=1, max_size=3)
    try:
        yield p
    finally:
        await p.close()


async def advisory_sessions(name: str, *, granted: bool = True) -> int:
    """Sessions holding (``granted``) or waiting for the advisory lock ``name``, seen
    from outside."""
    conn = await asyncpg.connect(BASE_DSN, **db.connect_kwargs(BASE_DSN))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = $2 "
                "AND objid = (hashtext($1)::bigint & 4294967295)::oid",
                name,
                granted,
            )
        )
    finally:
        await conn.close()


async def test_session_lock_is_held_for_the_block_and_released_after(
    pool: asyncpg.Pool,
) -> None:
    name = f"test-{uuid.uuid4()}"
    async with db.session_lock(pool, name) as held:
        assert held
        assert await advisory_sessions(name) == 1
        async with db.session_lock(pool, name, wait=False) as again:
            assert not again  # another session: refused at once, not waited for
    assert await advisory_sessions(name) == 0
    # every pooled connection went back without it: one of them takes it at once
    async with db.session_lock(pool, name, wait=False) as held:
        assert held


async def test_an_error_inside_the_block_still_releases_the_lock(pool: asyncpg.Pool) -> None:
    name = f"test-{uuid.uuid4()}"
    with pytest.raises(RuntimeError):
        async with db.session_lock(pool, name):
            raise RuntimeError("the work failed")
    assert await advisory_sessions(name) == 0


async def test_a_waiter_cancelled_before_it_gets_the_lock_never_holds_it_later(
    pool: asyncpg.Pool,
) -> None:
    name = f"test-{uuid.uuid4()}"
    other = await asyncpg.connect(BASE_DSN, **db.connect_kwargs(BASE_DSN))
    try:
        await other.execute("SELECT pg_advisory_lock(hashtext($1))", name)

        async def wait_for_it() -> None:
            async with db.session_lock(pool, name):
                pytest.fail("the lock is held elsewhere")

        waiter = asyncio.create_task(wait_for_it())
        await eventually(lambda: _waiting(name), what="the waiter queued on the advisory lock")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await other.execute("SELECT pg_advisory_unlock(hashtext($1))", name)
    finally:
        await other.close()
    assert await advisory_sessions(name) == 0
    async with db.session_lock(pool, name, wait=False) as held:
        assert held


async def _waiting(name: str) -> bool:
    return await advisory_sessions(name, granted=False) > 0


@pytest.mark.skipif(BASE_DSN != DEFAULT_DATABASE_URL, reason="DATABASE_URL names another server")
async def test_the_default_url_reaches_the_local_server_by_its_socket_with_a_password() -> None:
    """With no DATABASE_URL, every process talks to the local server over its Unix socket
    (cheaper than loopback TCP: shared/settings.py), logged in as ``care`` by password
    (deploy/bin/postgres.sh adds that rule to pg_hba.conf, ahead of Debian's peer rule):
    no client address, a session of ``care``, and a wrong password refused there."""
    pool = await db.create_pool(DEFAULT_DATABASE_URL, "public", min_size=1, max_size=1)
    try:
        row = await pool.fetchrow(
            "SELECT inet_client_addr() AS addr, current_user AS who, "
            "(SELECT client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS port"
        )
    finally:
        await pool.close()
    assert row is not None
    assert row["addr"] is None  # a Unix socket, not TCP
    assert row["port"] == -1
    assert row["who"] == "care"
    wrong = DEFAULT_DATABASE_URL.replace("care:care@", "care:not-the-password@")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong, timeout=5)


async def test_a_connection_goes_back_without_an_open_transaction(pool: asyncpg.Pool) -> None:
    """No reset round trip, but a transaction left open (a failed request) is still
    rolled back: the next user of the connection starts clean."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS leftover (x int)")
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()


async def test_warming_opens_the_connections_and_fails_the_start_on_a_broken_statement(
    pool: asyncpg.Pool,
) -> None:
    await db.warm_pool(pool, ["SELECT $1::int + 1"], 3)
    assert pool.get_size() == 3  # opened before any request needed them
    with pytest.raises(asyncpg.UndefinedTableError):  # at start, not at the first request
        await db.warm_pool(pool, ["SELECT * FROM no_such_table"], 1)


async def test_warming_rehearses_writes_in_every_session_and_keeps_nothing_of_them(
    pool: asyncpg.Pool,
) -> None:
    """A rehearsed insert fires its table's trigger once per session (the sequence the
    trigger draws from, which no rollback undoes, counts them) and leaves no row and no
    NOTIFY behind."""
    name = f"warm_{uuid.uuid4().hex[:8]}"
    setup = await asyncpg.connect(BASE_DSN, **db.connect_kwargs(BASE_DSN))
    heard: list[str] = []
    await setup.add_listener(name, lambda *args: heard.append(args[-1]))
    try:
        await setup.execute(
            f"""
            CREATE TABLE {name} (x int);
            CREATE SEQUENCE {name}_fired;
            CREATE FUNCTION {name}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM nextval('{name}_fired');
                PERFORM pg_notify('{name}', 'inserted');
                RETURN NULL;
            END $$;
            CREATE TRIGGER {name}_t AFTER INSERT ON {name}
                FOR EACH STATEMENT EXECUTE FUNCTION {name}_notify();
            """
        )
        await db.warm_pool(pool, ["SELECT $1::int + 1"], 3, [f"INSERT INTO {name} VALUES (1)"])
        assert pool.get_size() == 3
        fired = await setup.fetchval(
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {name}_fired"
        )
        assert fired == 3  # once in each session
        assert await setup.fetchval(f"SELECT count(*) FROM {name}") == 0
        await setup.execute("SELECT 1")  # a round trip for any notification to arrive
        assert heard == []
    finally:
        await setup.execute(
            f"DROP TABLE IF EXISTS {name}; DROP FUNCTION IF EXISTS {name}_notify(); "
            f"DROP SEQUENCE IF EXISTS {name}_fired"
        )
        await setup.close()


async def test_a_transaction_left_idle_is_ended_and_its_row_locks_freed() -> None:
    """A consumer frozen mid-transaction (CONSUMER_IDLE_IN_TRANSACTION_S) does not hold
    the rows it locked for good: PostgreSQL ends its session, a waiter gets the row, and
    the frozen one's next statement fails with an error the processor retries."""
    table = f"idle_{uuid.uuid4().hex[:8]}"
    frozen = await db.create_pool(
        BASE_DSN, "public", min_size=1, max_size=1, idle_in_transaction_s=0.5
    )
    other = await asyncpg.connect(BASE_DSN, **db.connect_kwargs(BASE_DSN))
    try:
        await other.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        await other.execute(f"INSERT INTO {table} VALUES (1)")

        async def hold_while_another_waits(conn: db.Conn) -> None:
            async with conn.transaction():
                await conn.execute(f"SELECT id FROM {table} WHERE id = 1 FOR UPDATE")
                # the waiter gets the row once the frozen session is ended, not before
                async with other.transaction():
                    await other.execute("SET LOCAL lock_timeout = '5s'")
                    await other.execute(f"SELECT id FROM {table} WHERE id = 1 FOR UPDATE")
                await conn.execute("SELECT 1")

        async with frozen.acquire() as conn:
            with pytest.raises(TRANSIENT):
                await hold_while_another_waits(conn)
        # the pool replaces the ended connection
        async with frozen.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await other.execute(f"DROP TABLE IF EXISTS {table}")
        await other.close()
        await frozen.close()


async def test_a_processors_connections_carry_the_idle_in_transaction_timeout() -> None:
    settings = CommonSettings(database_url=BASE_DSN, consumer_idle_in_transaction_s=7)
    processor = EventProcessor(settings=settings, schema="public", group="t", routes=[])
    await processor.start()
    try:
        assert processor.pool is not None
        async with processor.pool.acquire() as conn:
            assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "7s"
    finally:
        await processor.stop()

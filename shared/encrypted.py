"""Encrypted columns as a whole, for every service that stores PHI (shared/crypto.py):
encrypting plaintext left by rows written before a service encrypted, and re-encrypting
everything under the newest key (``python -m services.<service> rotate-phi-keys``).

Every pass walks a table in primary-key order, ``batch_size`` rows per transaction, the
rows locked (``FOR UPDATE``) while they are rewritten, so a request changing the same
row at the same time waits for the batch and nothing is lost. Each pass is idempotent:
it rewrites only what still needs it, and may be stopped and run again.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg
import orjson
import uvloop

from shared import db
from shared.crypto import PhiCipher, PhiDecryptError, PhiKeyError, PhiKeySettings
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class PhiTable:
    """A table's encrypted (bytea) columns. With ``check`` set, each column has a
    ``legacy_<column>`` plaintext twin from before encryption, which ``check`` (a NOT
    VALID constraint) requires to be null; ``encrypt_legacy`` empties them."""

    name: str
    key: str
    columns: tuple[str, ...]
    check: str | None = None
    key_type: str = "text"

    @property
    def legacy(self) -> tuple[str, ...]:
        return tuple(f"legacy_{c}" for c in self.columns) if self.check else ()


@dataclass
class Tally:
    rows: int = 0  # rows looked at
    encrypted: int = 0  # legacy plaintext values encrypted
    rotated: int = 0  # values re-encrypted under the first key (or, dry run: would be)


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


async def _pass(
    pool: asyncpg.Pool,
    cipher: PhiCipher,
    table: PhiTable,
    *,
    rotate: bool,
    batch_size: int,
    dry_run: bool = False,
) -> Tally:
    """One walk over ``table``: legacy plaintext encrypted (always), and with ``rotate``
    every value not under the first key re-encrypted. ``dry_run`` only counts."""
    cols = ", ".join((*table.columns, *table.legacy))
    only_legacy = (
        "" if rotate else " AND (" + " OR ".join(f"{c} IS NOT NULL" for c in table.legacy) + ")"
    )
    select = (
        f"SELECT {table.key}, {cols} FROM {table.name} "  # noqa: S608
        f"WHERE ($1::{table.key_type} IS NULL OR {table.key} > $1){only_legacy} "
        f"ORDER BY {table.key} LIMIT $2" + ("" if dry_run else " FOR UPDATE")
    )
    sets = ", ".join(
        [f"{c} = ${i}" for i, c in enumerate(table.columns, 2)]
        + [f"{c} = NULL" for c in table.legacy]
    )
    update = f"UPDATE {table.name} SET {sets} WHERE {table.key} = $1"  # noqa: S608
    tally = Tally()
    last: object = None
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(select, last, batch_size)
            if not rows:
                return tally
            changes: list[tuple[object, ...]] = []
            for row in rows:
                values: list[bytes | None] = []
                changed = False
                for i, col in enumerate(table.columns):
                    token: bytes | None = row[col]
                    legacy = row[table.legacy[i]] if table.legacy else None
                    if legacy is not None:
                        if token is None:  # (a row with both keeps its ciphertext)
                            token = cipher.encrypt(_plain(legacy))
                            tally.encrypted += 1
                        changed = True
                    elif rotate and token is not None and not cipher.is_current(token):
                        token = cipher.rotate(token)
                        tally.rotated += 1
                        changed = True
                    values.append(token)
                if changed:
                    changes.append((row[table.key], *values))
            tally.rows += len(rows)
            if changes and not dry_run:
                await conn.executemany(update, changes)
            last = rows[-1][table.key]


async def _validated(pool: asyncpg.Pool, constraint: str) -> bool:
    async with pool.acquire() as conn:
        return bool(
            await conn.fetchval(
                "SELECT convalidated FROM pg_constraint WHERE conname = $1 "
                "AND connamespace = current_schema()::regnamespace",
                constraint,
            )
        )


async def encrypt_legacy(
    pool: asyncpg.Pool, cipher: PhiCipher, tables: Sequence[PhiTable], batch_size: int, lock: str
) -> int:
    """Encrypt the plaintext twins (``legacy_*``) of the tables with a ``check`` and null
    them; then validate each check, so the database itself vouches that no plaintext is
    left (and later starts skip the scan). One process at a time (the advisory ``lock``);
    returns the values encrypted."""
    checked = [t for t in tables if t.check]
    if all([await _validated(pool, t.check) for t in checked if t.check]):
        return 0
    done = 0
    async with db.session_lock(pool, lock):
        for table in checked:
            assert table.check is not None
            if await _validated(pool, table.check):
                continue
            tally = await _pass(pool, cipher, table, rotate=False, batch_size=batch_size)
            async with pool.acquire() as conn:
                await conn.execute(f"ALTER TABLE {table.name} VALIDATE CONSTRAINT {table.check}")
            if tally.encrypted:
                log.info("phi_plaintext_encrypted", table=table.name, values=tally.encrypted)
            done += tally.encrypted
    return done


async def rotate_tables(
    pool: asyncpg.Pool,
    cipher: PhiCipher,
    tables: Sequence[PhiTable],
    batch_size: int,
    lock: str,
    *,
    dry_run: bool = False,
) -> dict[str, Tally]:
    """Re-encrypt every value of ``tables`` not under the first key (one rotation at a
    time per ``lock``). PhiDecryptError when a value is under no configured key."""
    async with db.session_lock(pool, lock, wait=False) as held:
        if not held:
            raise RuntimeError("another rotate-phi-keys is running on this database")
        out: dict[str, Tally] = {}
        for table in tables:
            out[table.name] = await _pass(
                pool, cipher, table, rotate=True, batch_size=batch_size, dry_run=dry_run
            )
            log.info(
                "phi_rotation_checked" if dry_run else "phi_rotated",
                table=table.name,
                rows=out[table.name].rows,
                rotated=out[table.name].rotated,
                primary=cipher.primary_key_id,
            )
        return out


Rotate = Callable[[asyncpg.Pool, PhiCipher, int, bool], Awaitable[dict[str, Tally]]]


async def rotate_command(
    settings: PhiKeySettings,
    *,
    service: str,
    schema: str,
    migrations: Path,
    rotate: Rotate,
    check: bool,
) -> int:
    """``python -m services.<service> rotate-phi-keys [--check]``: the service's
    ``rotate`` (a pass over its encrypted tables; a dry run with ``check``), then a
    one-line JSON report. Exit 0 when done; with ``check``, 1 while anything is left to
    rotate, and 2 when the schema lacks migrations (a check changes nothing, not even
    the schema)."""
    cipher = settings.phi_cipher()
    files = db.migration_files(migrations)
    if not check:  # as every process of the service does at start
        await db.migrate(settings.database_url, schema, files)
    pool = await db.create_pool(settings.database_url, schema, min_size=1, max_size=3)
    try:
        if check:
            async with pool.acquire() as conn:
                done = set()
                if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
                    done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            pending = [name for name, _ in files if name not in done]
            if pending:
                print(
                    f"rotate-phi-keys --check: the {service} database lacks migrations "
                    f"{', '.join(pending)} (the {service} API or rotate-phi-keys applies them)",
                    file=sys.stderr,
                )
                return 2
        tallies = await rotate(pool, cipher, settings.phi_batch_size, check)
    finally:
        await pool.close()
    left = sum(t.rotated + t.encrypted for t in tallies.values())
    report = {
        "primary_key": cipher.primary_key_id,
        "keys": list(cipher.key_ids),
        "check_only": check,
        "tables": {name: vars(t) for name, t in tallies.items()},
    }
    print(orjson.dumps(report).decode(), flush=True)
    return 1 if check and left else 0


def rotate_main(
    settings: PhiKeySettings,
    *,
    service: str,
    schema: str,
    migrations: Path,
    rotate: Rotate,
    check: bool,
) -> int:
    """``rotate-phi-keys`` as a process role: ``rotate_command`` on its own event loop,
    and a key that cannot be loaded or cannot read what is stored said in one line
    (exit 2)."""
    try:
        return uvloop.run(
            rotate_command(
                settings,
                service=service,
                schema=schema,
                migrations=migrations,
                rotate=rotate,
                check=check,
            )
        )
    except (PhiKeyError, PhiDecryptError) as exc:
        print(f"rotate-phi-keys: {exc}", file=sys.stderr)
        return 2

"""The encrypted PHI columns as a whole: encrypting the plaintext left by rows written
before migration 0002, checking the configured keys against the stored values at start,
and re-encrypting everything under the newest key (``rotate-phi-keys``).

Every pass walks a table in primary-key order, ``batch_size`` rows per transaction, the
rows locked (``FOR UPDATE``) while they are rewritten, so a request changing the same
patient at the same time waits for the batch and nothing is lost. Each pass is
idempotent: it rewrites only what still needs it, and may be stopped and run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from services.intake.crypto import PhiCipher
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class PhiTable:
    name: str
    key: str
    columns: tuple[str, ...]  # each a bytea column with a legacy_<column> plaintext twin
    check: str  # the NOT VALID constraint of migration 0002

    @property
    def legacy(self) -> tuple[str, ...]:
        return tuple(f"legacy_{c}" for c in self.columns)


PHI_TABLES = (
    PhiTable(
        "patients",
        "patient_id",
        ("name", "date_of_birth", "phone", "email", "discharge_note"),
        "patients_phi_encrypted",
    ),
    PhiTable("intakes", "intake_id", ("review_note",), "intakes_phi_encrypted"),
    PhiTable("checkins", "checkin_id", ("note",), "checkins_phi_encrypted"),
)
BACKFILL_LOCK = "intake:phi-backfill"
ROTATE_LOCK = "intake:phi-rotate"


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
        f"SELECT {table.key}, {cols} FROM {table.name} WHERE {table.key} > $1{only_legacy} "  # noqa: S608
        f"ORDER BY {table.key} LIMIT $2" + ("" if dry_run else " FOR UPDATE")
    )
    sets = ", ".join(
        [f"{c} = ${i}" for i, c in enumerate(table.columns, 2)]
        + [f"{c} = NULL" for c in table.legacy]
    )
    update = f"UPDATE {table.name} SET {sets} WHERE {table.key} = $1"  # noqa: S608
    tally = Tally()
    last = ""
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(select, last, batch_size)
            if not rows:
                return tally
            changes: list[tuple[object, ...]] = []
            for row in rows:
                values: list[bytes | None] = []
                changed = False
                for col, legacy in zip(table.columns, table.legacy, strict=True):
                    token: bytes | None = row[col]
                    if row[legacy] is not None:
                        if token is None:  # (a row with both keeps its ciphertext)
                            token = cipher.encrypt(_plain(row[legacy]))
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


async def encrypt_legacy(pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int) -> int:
    """Encrypt the plaintext PHI of rows written before migration 0002 and null it; then
    validate each table's check, so the database itself vouches that no plaintext is left
    (and later starts skip the scan). One process at a time; returns the values encrypted.
    """
    if all([await _validated(pool, t.check) for t in PHI_TABLES]):
        return 0
    done = 0
    async with pool.acquire() as lock:
        await lock.execute("SELECT pg_advisory_lock(hashtext($1))", BACKFILL_LOCK)
        try:
            for table in PHI_TABLES:
                if await _validated(pool, table.check):
                    continue
                tally = await _pass(pool, cipher, table, rotate=False, batch_size=batch_size)
                async with pool.acquire() as conn:
                    await conn.execute(
                        f"ALTER TABLE {table.name} VALIDATE CONSTRAINT {table.check}"
                    )
                if tally.encrypted:
                    log.info("phi_plaintext_encrypted", table=table.name, values=tally.encrypted)
                done += tally.encrypted
        finally:
            await lock.execute("SELECT pg_advisory_unlock(hashtext($1))", BACKFILL_LOCK)
    return done


async def check_keys(pool: asyncpg.Pool, cipher: PhiCipher) -> None:
    """Refuse to start with keys that cannot read what is stored (a wrong key file, or an
    old key removed before rotation finished): PhiDecryptError, before any request."""
    async with pool.acquire() as conn:
        sample = await conn.fetchval(
            "SELECT name FROM patients WHERE name IS NOT NULL ORDER BY updated_at LIMIT 1"
        )
    if sample is not None:
        cipher.decrypt(sample)


async def prepare(pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int) -> None:
    """What the intake API does at start, before it serves."""
    await encrypt_legacy(pool, cipher, batch_size)
    await check_keys(pool, cipher)


async def rotate_all(
    pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int, *, dry_run: bool = False
) -> dict[str, Tally]:
    """Re-encrypt every PHI value not under the first key (``rotate-phi-keys``).

    Run it after every API process has been restarted with the new key first in the
    list; when it reports nothing left to rotate (``dry_run`` counts without writing),
    the old keys can be removed. PhiDecryptError when a value is under no configured key.
    """
    if not dry_run:
        await encrypt_legacy(pool, cipher, batch_size)
    async with pool.acquire() as lock:
        if not await lock.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", ROTATE_LOCK):
            raise RuntimeError("another rotate-phi-keys is running on this database")
        try:
            out: dict[str, Tally] = {}
            for table in PHI_TABLES:
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
        finally:
            await lock.execute("SELECT pg_advisory_unlock(hashtext($1))", ROTATE_LOCK)

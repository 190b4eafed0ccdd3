"""Acknowledge/resolve notes at rest: Fernet tokens under the stack's PHI keys
(shared/crypto.py; migration 0002).

At start the alerts API encrypts the notes written before migration 0002 (moved to
``legacy_notes``) into their alerts and deletes them, then checks that its keys read
what is stored; ``python -m services.alerts rotate-phi-keys`` re-encrypts every note
under the newest key (shared/encrypted.py). Only a clinician reads a note
(services/alerts/api.py); no event, log line, page or audit row carries one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from services.alerts import repository as repo
from services.alerts.rows import AlertRow
from shared import encrypted
from shared.crypto import PhiCipher
from shared.db import session_lock
from shared.encrypted import PhiTable, Tally
from shared.logging import get_logger

log = get_logger(__name__)

STEPS = ("acknowledged", "resolved")
NOTES = PhiTable("alerts", "alert_id", tuple(f"{s}_note" for s in STEPS), key_type="uuid")
BACKFILL_LOCK = "alerts:notes-backfill"
ROTATE_LOCK = "alerts:notes-rotate"


async def encrypt_legacy(pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int) -> int:
    """Encrypt the plaintext notes of ``legacy_notes`` into their alerts (a note written
    since stays) and delete them, ``batch_size`` per transaction, one process at a time.
    Returns the notes encrypted."""
    async with pool.acquire() as conn:
        if not await repo.has_legacy_notes(conn):
            return 0
    done = 0
    async with session_lock(pool, BACKFILL_LOCK):
        while True:
            async with pool.acquire() as conn, conn.transaction():
                rows = await repo.lock_legacy_notes(conn, batch_size)
                if not rows:
                    break
                for step in STEPS:
                    args = [(r.alert_id, cipher.encrypt(r.note)) for r in rows if r.step == step]
                    if args:
                        await repo.fill_notes(conn, step, args)
                await repo.delete_legacy_notes(conn, [(r.alert_id, r.step) for r in rows])
                done += len(rows)
    if done:
        log.info("phi_plaintext_encrypted", table="alerts", values=done)
    return done


async def check_keys(pool: asyncpg.Pool, cipher: PhiCipher) -> None:
    """Refuse to start with keys that cannot read the stored notes: PhiDecryptError."""
    async with pool.acquire() as conn:
        sample = await repo.newest_note(conn)
    if sample is not None:
        cipher.decrypt(sample)


async def prepare(pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int) -> None:
    """What the alerts API does at start, before it serves."""
    await encrypt_legacy(pool, cipher, batch_size)
    await check_keys(pool, cipher)


async def rotate_all(
    pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int, dry_run: bool = False
) -> dict[str, Tally]:
    """Re-encrypt every note not under the first key (``rotate-phi-keys``); a dry run
    also counts the legacy plaintext notes still to encrypt."""
    if dry_run:
        async with pool.acquire() as conn:
            legacy = await repo.count_legacy_notes(conn)
    else:
        legacy = await encrypt_legacy(pool, cipher, batch_size)
    out = await encrypted.rotate_tables(
        pool, cipher, (NOTES,), batch_size, ROTATE_LOCK, dry_run=dry_run
    )
    out["legacy_notes"] = Tally(rows=legacy, encrypted=legacy)
    return out


def decrypt_notes(cipher: PhiCipher, row: AlertRow | Mapping[str, Any]) -> dict[str, str | None]:
    """An alert's notes in clear text, by step (``acknowledged``, ``resolved``)."""
    alert = row if isinstance(row, AlertRow) else AlertRow.of(row)
    return {
        "acknowledged": cipher.decrypt(alert.acknowledged_note),
        "resolved": cipher.decrypt(alert.resolved_note),
    }

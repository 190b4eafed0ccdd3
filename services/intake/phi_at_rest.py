"""PHI at rest in intake's tables: the encrypted columns (migration 0002), encrypting the
plaintext left by rows written before it, checking the configured keys against the
stored values at start, and re-encrypting everything under the newest key
(``rotate-phi-keys``). The passes are the stack's (shared/encrypted.py); this module
names intake's tables and locks."""

from __future__ import annotations

import asyncpg

from shared import encrypted
from shared.crypto import PhiCipher
from shared.encrypted import PhiTable, Tally

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


async def encrypt_legacy_phi(pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int) -> int:
    """Encrypt the plaintext PHI of rows written before migration 0002 and null it, then
    validate the checks; returns the values encrypted."""
    return await encrypted.encrypt_legacy(pool, cipher, PHI_TABLES, batch_size, BACKFILL_LOCK)


async def check_phi_keys(pool: asyncpg.Pool, cipher: PhiCipher) -> None:
    """Refuse to start with keys that cannot read what is stored (a wrong key file, or an
    old key removed before rotation finished): PhiDecryptError, before any request."""
    async with pool.acquire() as conn:
        sample = await conn.fetchval(
            "SELECT name FROM patients WHERE name IS NOT NULL ORDER BY updated_at LIMIT 1"
        )
    if sample is not None:
        cipher.decrypt(sample)


async def prepare_phi(pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int) -> None:
    """What the intake API does at start, before it serves."""
    await encrypt_legacy_phi(pool, cipher, batch_size)
    await check_phi_keys(pool, cipher)


async def rotate_phi(
    pool: asyncpg.Pool, cipher: PhiCipher, batch_size: int, dry_run: bool = False
) -> dict[str, Tally]:
    """Re-encrypt every PHI value not under the first key (``rotate-phi-keys``).

    Run it after every API process has been restarted with the new key first in the
    list; when it reports nothing left to rotate (``dry_run`` counts without writing),
    the old keys can be removed. PhiDecryptError when a value is under no configured key.
    """
    if not dry_run:
        await encrypt_legacy_phi(pool, cipher, batch_size)
    return await encrypted.rotate_tables(
        pool, cipher, PHI_TABLES, batch_size, ROTATE_LOCK, dry_run=dry_run
    )

"""``python -m services.intake api|relay|rotate-phi-keys|new-phi-key``.

- ``api``: the HTTP API; ``relay``: the outbox relay process.
- ``rotate-phi-keys [--check]``: re-encrypts every stored PHI value under the first key
  of PHI_KEYS / PHI_KEYS_FILE, in batches (PHI_BATCH_SIZE), idempotently; ``--check``
  only counts what is left to rotate and exits 1 while anything is.
- ``new-phi-key``: prints a new random Fernet key (for PHI_KEYS / PHI_KEYS_FILE).
"""

from __future__ import annotations

import argparse
import sys

import orjson
import uvloop

from services.intake import phi
from services.intake.app import MIGRATIONS, create_app
from services.intake.crypto import PhiDecryptError, PhiKeyError, new_key
from services.intake.settings import SCHEMA, IntakeSettings
from shared import db
from shared.logging import configure_logging
from shared.relay import serve_relay
from shared.service import serve


async def rotate_phi_keys(settings: IntakeSettings, *, check: bool) -> int:
    cipher = settings.phi_cipher()
    migrations = db.migration_files(MIGRATIONS)
    if not check:  # as every process of the service does at start
        await db.migrate(settings.database_url, SCHEMA, migrations)
    pool = await db.create_pool(settings.database_url, SCHEMA, min_size=1, max_size=3)
    try:
        if check:  # a check changes nothing, the schema included
            async with pool.acquire() as conn:
                done = set()
                if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
                    done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            pending = [name for name, _ in migrations if name not in done]
            if pending:
                print(
                    "rotate-phi-keys --check: the intake database lacks migrations "
                    f"{', '.join(pending)} (the intake API or rotate-phi-keys applies them)",
                    file=sys.stderr,
                )
                return 2
        tallies = await phi.rotate_all(pool, cipher, settings.phi_batch_size, dry_run=check)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.intake")
    parser.add_argument("role", choices=["api", "relay", "rotate-phi-keys", "new-phi-key"])
    parser.add_argument(
        "--check",
        action="store_true",
        help="rotate-phi-keys: count the values not under the first key, change nothing "
        "(exit 1 while any is left)",
    )
    args = parser.parse_args(argv)
    if args.role == "new-phi-key":
        print(new_key())
        return 0
    settings = IntakeSettings()
    configure_logging(f"intake-{args.role}", settings.log_level, settings.log_json)
    if args.role == "rotate-phi-keys":
        try:
            return uvloop.run(rotate_phi_keys(settings, check=args.check))
        except (PhiKeyError, PhiDecryptError) as exc:
            print(f"rotate-phi-keys: {exc}", file=sys.stderr)
            return 2
    if args.role == "api":
        try:
            app = create_app(settings)
        except PhiKeyError as exc:
            print(f"intake api: {exc}", file=sys.stderr)
            return 2
        serve(app, settings, settings.intake_port)
    else:
        uvloop.run(serve_relay(settings, SCHEMA, MIGRATIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())

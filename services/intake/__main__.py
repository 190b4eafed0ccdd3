"""``python -m services.intake api|relay|rotate-phi-keys|new-phi-key``.

- ``api``: the HTTP API; ``relay``: the outbox relay process.
- ``rotate-phi-keys [--check]``: re-encrypts every PHI value intake stores under the
  first key of PHI_KEYS / PHI_KEYS_FILE (``python -m services.alerts rotate-phi-keys``
  does the alerts service's notes; shared/encrypted.py), in batches (PHI_BATCH_SIZE),
  idempotently; ``--check`` only counts what is left to rotate and exits 1 while
  anything is.
- ``new-phi-key``: prints a new random Fernet key (for PHI_KEYS / PHI_KEYS_FILE).
"""

from __future__ import annotations

import argparse
import sys

import uvloop

from services.intake import heartbeat, phi_at_rest
from services.intake.app import MIGRATIONS, create_app
from services.intake.settings import SCHEMA, IntakeSettings
from shared.crypto import PhiKeyError, new_key
from shared.encrypted import rotate_main
from shared.logging import configure_logging
from shared.priority import lead_the_cpu
from shared.relay import serve_relay
from shared.service import serve


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
        return rotate_main(
            settings,
            service="intake",
            schema=SCHEMA,
            migrations=MIGRATIONS,
            rotate=phi_at_rest.rotate_phi,
            check=args.check,
        )
    if args.role == "api":  # where suicide-risk signals enter (shared/priority.py)
        lead_the_cpu(settings.safety_entry_nice, "intake-api")
        try:
            app = create_app(settings)
        except PhiKeyError as exc:
            print(f"intake api: {exc}", file=sys.stderr)
            return 2
        serve(app, settings, settings.intake_port)
    else:
        # the pipeline heartbeat rides along (services/intake/heartbeat.py)
        uvloop.run(serve_relay(settings, SCHEMA, MIGRATIONS, tasks=heartbeat.tasks(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

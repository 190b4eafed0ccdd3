"""``python -m services.alerts api|relay|worker|timers|safety|watchdog|rotate-phi-keys|...``.

- ``safety``: the safety lane's consumer (services/alerts/safety.py): suicide-risk
  signals from their own topic, paged straight after their alert commits.

- ``watchdog``: the pipeline watchdog (services/alerts/watchdog.py): pages the network
  ops on-call with ``pipeline_stalled`` when a stage of the pipeline stops moving.

- ``rotate-phi-keys [--check]``: re-encrypts every acknowledge/resolve note under the
  first key of PHI_KEYS / PHI_KEYS_FILE (the stack's PHI keys, shared/crypto.py), as
  ``python -m services.intake rotate-phi-keys`` does intake's PHI; ``--check`` only
  counts what is left and exits 1 while anything is.
- ``new-phi-key``: prints a new random Fernet key.
"""

from __future__ import annotations

import argparse
import sys

import uvloop

from services.alerts.alerting import notes
from services.alerts.app import MIGRATIONS, create_app, create_processor
from services.alerts.safety import serve_safety
from services.alerts.settings import SCHEMA, AlertsSettings
from services.alerts.timers import serve_timers
from services.alerts.watchdog import serve_watchdog
from shared.consumer import build_faust_app, run_worker
from shared.crypto import PhiKeyError, new_key
from shared.encrypted import rotate_main
from shared.logging import configure_logging
from shared.priority import yield_to_safety
from shared.relay import serve_relay
from shared.service import serve

# Roles that carry no safety signal: they yield the CPU (shared/priority.py). The safety
# lane, the timers (escalations, page retries), the watchdog and the API keep theirs.
ROUTINE_ROLES = ("worker", "relay")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.alerts")
    parser.add_argument(
        "role",
        choices=[
            "api",
            "relay",
            "worker",
            "timers",
            "safety",
            "watchdog",
            "rotate-phi-keys",
            "new-phi-key",
        ],
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="rotate-phi-keys: count the notes not under the first key, change nothing "
        "(exit 1 while any is left)",
    )
    args = parser.parse_args(argv)
    if args.role == "new-phi-key":
        print(new_key())
        return 0
    settings = AlertsSettings()
    service = f"alerts-{args.role}"
    configure_logging(service, settings.log_level, settings.log_json)
    if args.role in ROUTINE_ROLES:
        yield_to_safety(settings.routine_nice, service)
    if args.role == "rotate-phi-keys":
        return _rotate(settings, check=args.check)
    return _serve(args.role, service, settings)


def _rotate(settings: AlertsSettings, *, check: bool) -> int:
    return rotate_main(
        settings,
        service="alerts",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        rotate=notes.rotate_all,
        check=check,
    )


def _serve(role: str, service: str, settings: AlertsSettings) -> int:
    """Run a long-lived role until it is stopped."""
    if role == "api":
        try:
            api = create_app(settings)
        except PhiKeyError as exc:
            print(f"alerts api: {exc}", file=sys.stderr)
            return 2
        serve(api, settings, settings.alerts_port)
    elif role == "relay":
        # alerts writes no safety-lane row (shared/outbox.py SAFETY): one lane, one listener
        uvloop.run(serve_relay(settings, SCHEMA, MIGRATIONS, safety_lane=False))
    elif role == "timers":
        uvloop.run(serve_timers(settings, MIGRATIONS))
    elif role == "safety":
        uvloop.run(serve_safety(settings, MIGRATIONS))
    elif role == "watchdog":
        uvloop.run(serve_watchdog(settings, MIGRATIONS))
    else:
        app = build_faust_app(create_processor(settings))
        run_worker(app, service, settings, schema=SCHEMA, migrations=MIGRATIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

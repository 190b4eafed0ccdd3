"""``python -m services.alerts api|relay|worker|timers``."""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvloop

from services.alerts.app import MIGRATIONS, create_app, create_processor
from services.alerts.settings import SCHEMA, AlertsSettings
from services.alerts.timers import serve_timers
from shared import db
from shared.consumer import build_faust_app, run_worker
from shared.logging import configure_logging
from shared.relay import serve_relay
from shared.service import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.alerts")
    parser.add_argument("role", choices=["api", "relay", "worker", "timers"])
    args = parser.parse_args(argv)
    settings = AlertsSettings()
    service = f"alerts-{args.role}"
    configure_logging(service, settings.log_level, settings.log_json)
    if args.role == "api":
        serve(create_app(settings), settings, settings.alerts_port)
    elif args.role == "relay":
        uvloop.run(serve_relay(settings, SCHEMA, MIGRATIONS))
    elif args.role == "timers":
        uvloop.run(serve_timers(settings, MIGRATIONS))
    else:
        asyncio.run(db.migrate(settings.database_url, SCHEMA, db.migration_files(MIGRATIONS)))
        app = build_faust_app(create_processor(settings))
        run_worker(app, service, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

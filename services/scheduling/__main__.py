"""``python -m services.scheduling api|relay|worker``."""

from __future__ import annotations

import argparse
import sys

import uvloop

from services.scheduling.app import MIGRATIONS, create_app, create_processor, worker_timers
from services.scheduling.repository.calendars import CalendarCache
from services.scheduling.settings import SCHEMA, SchedulingSettings
from shared.consumer import build_faust_app, run_worker
from shared.logging import configure_logging
from shared.priority import yield_to_safety
from shared.relay import serve_relay
from shared.service import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.scheduling")
    parser.add_argument("role", choices=["api", "relay", "worker"])
    args = parser.parse_args(argv)
    settings = SchedulingSettings()
    service = f"scheduling-{args.role}"
    configure_logging(service, settings.log_level, settings.log_json)
    if args.role != "api":  # the worker and relay carry no safety signal
        yield_to_safety(settings.routine_nice, service)
    if args.role == "api":
        serve(create_app(settings), settings, settings.scheduling_port)
    elif args.role == "relay":
        # scheduling writes no safety-lane row (shared/outbox.py SAFETY): one lane, one listener
        uvloop.run(serve_relay(settings, SCHEMA, MIGRATIONS, safety_lane=False))
    else:
        calendars = CalendarCache()  # the worker process's one, for reactions and timers
        processor = create_processor(settings, calendars=calendars)
        timers = worker_timers(settings, processor, calendars=calendars)
        app = build_faust_app(processor, timers)
        run_worker(app, service, settings, schema=SCHEMA, migrations=MIGRATIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

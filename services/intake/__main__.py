"""``python -m services.intake api|relay``: the HTTP API or the outbox relay process."""

from __future__ import annotations

import argparse
import sys

import uvloop

from services.intake.app import MIGRATIONS, create_app
from services.intake.settings import SCHEMA, IntakeSettings
from shared.logging import configure_logging
from shared.relay import serve_relay
from shared.service import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.intake")
    parser.add_argument("role", choices=["api", "relay"])
    args = parser.parse_args(argv)
    settings = IntakeSettings()
    configure_logging(f"intake-{args.role}", settings.log_level, settings.log_json)
    if args.role == "api":
        serve(create_app(settings), settings, settings.intake_port)
    else:
        uvloop.run(serve_relay(settings, SCHEMA, MIGRATIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())

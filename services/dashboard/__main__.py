"""``python -m services.dashboard``: the ops web page (DASHBOARD_PORT, 8000)."""

from __future__ import annotations

import sys

from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from shared.logging import configure_logging
from shared.priority import yield_to_safety
from shared.service import serve


def main() -> int:
    settings = DashboardSettings()
    configure_logging("dashboard", settings.log_level, settings.log_json)
    yield_to_safety(settings.routine_nice, "dashboard")  # reads only: routine
    serve(create_app(settings), settings, settings.dashboard_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The dashboard as a process, and the headless Chromium the browser tests drive."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from tests.support.stack import (
    ARTIFACTS,
    ServiceProcess,
    free_port,
    service_env,
    wait_ready,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


HAVE_CHROMIUM = Path(CHROMIUM).exists()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def start_dashboard(database: str, **urls: str) -> tuple[str, ServiceProcess]:
    port = free_port()
    env = service_env(database, DASHBOARD_PORT=str(port), BOARD_REFRESH_S="1", **urls)
    proc = ServiceProcess(
        "dashboard",
        ["services.dashboard"],
        env,
        ARTIFACTS / "logs" / f"dashboard-{uuid.uuid4().hex[:6]}.log",
    )
    proc.start()
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url, proc)
    return url, proc

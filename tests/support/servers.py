"""The seam through which the fault tests stop and start the broker and the database:
the session's containers (tests/support/containers.py) when the suite runs on them,
else this checkout's local servers through deploy/bin/kafka.sh and postgres.sh
(``TEST_BROKER_CTL=<script taking stop|start|restart>``: another broker of one's own).
Someone else's broker or database (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL pointing
elsewhere) is never ours to stop.
"""

from __future__ import annotations

import asyncio
import os

from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_KAFKA
from tests.support import containers
from tools.stack import BASE_DSN, KAFKA, ROOT

BIN = ROOT / "deploy" / "bin"


def broker_is_ours() -> bool:
    return (
        containers.BACKEND is not None
        or KAFKA in (DEFAULT_KAFKA, "localhost:9092")
        or bool(os.environ.get("TEST_BROKER_CTL"))
    )


def database_is_ours() -> bool:
    return containers.BACKEND is not None or BASE_DSN == DEFAULT_DATABASE_URL


async def broker(action: str) -> None:
    """``stop``, ``start`` (back once a produce/consume round trip works) or ``restart``."""
    assert broker_is_ours(), "the broker is someone else's"
    if containers.BACKEND is not None:
        await containers.restart(containers.BACKEND.kafka, action)
        return
    await run(os.environ.get("TEST_BROKER_CTL") or str(BIN / "kafka.sh"), action)


async def database(action: str) -> None:
    """``stop``, ``start`` (back once the care role connects) or ``restart``."""
    assert database_is_ours(), "the database is someone else's"
    if containers.BACKEND is not None:
        await containers.restart(containers.BACKEND.postgres, action)
        return
    if action in ("stop", "restart"):
        await run(str(BIN / "postgres.sh"), "stop", "--force")
    if action in ("start", "restart"):
        await run(str(BIN / "postgres.sh"), "start")


async def run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode(errors="replace")
    print(text)
    assert proc.returncode == 0, f"{argv} failed (exit {proc.returncode}):\n{text[-3000:]}"

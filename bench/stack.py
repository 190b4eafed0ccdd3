"""Start the intake service (API + relay) as real processes on a throwaway database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_KAFKA

ROOT = Path(__file__).resolve().parents[1]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
BASE_DSN = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


@dataclass
class Stack:
    url: str
    dsn: str


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def intake_stack() -> AsyncIterator[Stack]:
    name = f"care_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = urlunsplit(urlsplit(BASE_DSN)._replace(path=f"/{name}"))
    port = _port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "INTAKE_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    logs = ROOT / ".state" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for role in ("api", "relay"):
            with (logs / f"bench-intake-{role}.log").open("ab") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "services.intake", role],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=out,
                    )
                )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("intake did not become ready")
                await asyncio.sleep(0.1)
        yield Stack(url=url, dsn=dsn)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=20)
        admin = await asyncpg.connect(BASE_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

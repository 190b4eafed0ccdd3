"""The one way our processes are started apart from supervisord: each in a space of
its own (a throwaway database and topic prefix), as ``python -m <module> <role>``
subprocesses, the same commands supervisord runs. The tests (tests/support/stack.py)
and the benchmarks (bench/stack.py) both start their stacks with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from shared.db import connect_kwargs
from shared.events import ALL_TOPICS
from shared.kafka import ensure_topics
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_KAFKA
from tools.ports import PORT_RANGE as PORT_RANGE
from tools.ports import bindable as bindable
from tools.ports import free_port as free_port

ROOT = Path(__file__).resolve().parents[1]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
BASE_DSN = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass(frozen=True)
class Space:
    """A stack's own database and topic prefix (a module's second stack, apart from the
    session's): ``care_<kind>_<run>`` and ``<kind>-<run>.``, every topic created."""

    run: str
    name: str
    dsn: str
    prefix: str
    # the bootstrap servers its topics are on (a cluster's: tests/faults/test_cluster.py)
    kafka: str = KAFKA


async def create_database(name: str) -> str:
    """A new empty database ``name`` on the server of ``DATABASE_URL``; its URL."""
    admin = await asyncpg.connect(BASE_DSN, **connect_kwargs(BASE_DSN))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(BASE_DSN, name)


@contextlib.asynccontextmanager
async def scratch_database(kind: str) -> AsyncIterator[str]:
    """A database of its own for a block (``<kind>_<random>``, dropped after it); its URL."""
    name = f"{kind}_{uuid.uuid4().hex[:6]}"
    dsn = await create_database(name)
    try:
        yield dsn
    finally:
        await drop_database(name)


async def create_space(kind: str, *, kafka: str = KAFKA, replication: int = 1) -> Space:
    run = uuid.uuid4().hex[:6]
    name = f"care_{kind}_{run}"
    await create_database(name)
    prefix = f"{kind}-{run}."
    servers = kafka.split(",")
    await ensure_topics(servers, [prefix + t for t in ALL_TOPICS], replication=replication)
    return Space(run, name, with_database(BASE_DSN, name), prefix, kafka)


async def drop_space(space: Space) -> None:
    """The database and the topics go: a broker that keeps thousands of partitions of
    finished runs takes a minute to restart (tests/faults/test_chaos.py restarts it),
    and a developer's broker is not thrown away."""
    await drop_database(space.name)
    await delete_topics([space.prefix + t for t in ALL_TOPICS], kafka=space.kafka)


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(BASE_DSN, **connect_kwargs(BASE_DSN))
    try:
        for attempt in range(30):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                # an autovacuum worker (the server's own role) on the database just
                # loaded: ours cannot end it; it finishes within seconds
                if attempt == 29:
                    raise
                await asyncio.sleep(1)
    finally:
        await admin.close()


async def delete_topics(names: list[str], *, kafka: str = KAFKA) -> None:
    """Best effort: a test's own topics go when it is done (the broker may be away)."""
    kafka_admin = AIOKafkaAdminClient(bootstrap_servers=kafka.split(","))
    try:
        await kafka_admin.start()
        await kafka_admin.delete_topics(names)
    except Exception as exc:
        print(f"could not delete topics {names[:2]}...: {exc!r}", file=sys.stderr)
    finally:
        await kafka_admin.close()


@dataclass
class ServiceProcess:
    """A process of ours (``python -m <module> <args>``), logs to a file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    # where a process without an HTTP API serves /metrics (its *_METRICS_PORT)
    metrics_port: int | None = None

    @property
    def metrics_url(self) -> str:
        assert self.metrics_port is not None, f"{self.name} serves no metrics port"
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def with_metrics(self, variable: str) -> ServiceProcess:
        """This process serving /metrics on a free port, given to it as ``variable``."""
        self.metrics_port = free_port()
        self.env = {**self.env, variable: str(self.metrics_port)}
        return self

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(  # noqa: S603  # our own modules, our argv
                [sys.executable, "-m", *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        stop_all([self], sig)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def stop_all(procs: Iterable[ServiceProcess], sig: int = signal.SIGTERM) -> None:
    """Signal every process first, then wait for each: they shut down side by side (a
    stack of two dozen processes, each taking a second or more, in seconds rather than
    minutes). One still running 20 s after the signal is killed."""
    running = [p for p in procs if p.proc is not None and p.proc.poll() is None]
    for p in running:
        assert p.proc is not None
        p.proc.send_signal(sig)
    deadline = time.monotonic() + 20
    for p in running:
        assert p.proc is not None
        try:
            p.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            # a process that ignores SIGTERM is a bug to see in its log, not a reason
            # to leave the others running: stop it hard, as supervisord would
            print(f"{p.name} did not stop within 20 s of signal {sig}; killing it")
            p.proc.kill()
            p.proc.wait(timeout=20)


async def wait_ready(url: str, proc: ServiceProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert proc.proc is not None
            if proc.proc.poll() is not None:
                raise AssertionError(f"{proc.name} exited:\n{proc.logs()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready:\n{proc.logs()[-3000:]}")

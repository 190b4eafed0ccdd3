"""The broker and the database in containers, started with testcontainers: the test
session's backend when ``INTERVAL_TESTCONTAINERS=1`` (else the local processes of
deploy/bin/, as always).

tests/conftest.py calls :func:`start_if_asked` before any plugin is imported, because
tools/stack.py reads ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` once, on import:
the containers' addresses are in the environment by then, and every process the tests
start inherits them. The images are this repository's (deploy/containers/build.sh);
``INTERVAL_PG_IMAGE`` / ``INTERVAL_KAFKA_IMAGE`` name others that take the same settings
(the official ``postgres`` and ``apache/kafka`` images do).

The containers share the host's network (the engine needs no bridge, and the broker
advertises an address the host reaches): each listens on 127.0.0.1, on free ports.
testcontainers' Ryuk reaper comes from Docker Hub, so it is off; the containers carry
the label ``org.interval.test=1`` and their session's pid instead, and go at the end of
the session, or at the start of a later one when that pid is gone (a killed run).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tools.ports import free_port

if TYPE_CHECKING:
    import docker
    from testcontainers.core.container import DockerContainer

ROOT = Path(__file__).resolve().parents[2]
LABEL = "org.interval.test"
OWNER_LABEL = "org.interval.test.owner"  # the pid of the pytest process that started it
PG_IMAGE = os.environ.get("INTERVAL_PG_IMAGE", "interval/postgres:15")
KAFKA_IMAGE = os.environ.get("INTERVAL_KAFKA_IMAGE", "interval/kafka:3.9.2")
# deploy/bin/postgres.sh's: the session stacks and the fault tests' second stacks at once
PG_MAX_CONNECTIONS = os.environ.get("PG_MAX_CONNECTIONS", "400")
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30  # seconds a stopped container has before SIGKILL (deploy/bin/kafka.sh's)


def asked() -> bool:
    return os.environ.get("INTERVAL_TESTCONTAINERS") == "1"


@dataclass
class Backend:
    postgres: DockerContainer
    kafka: DockerContainer
    database_url: str
    kafka_servers: str
    started_in: float


BACKEND: Backend | None = None


def start_if_asked() -> None:
    """With ``INTERVAL_TESTCONTAINERS=1``: the containers up and ready, and their
    addresses in ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS``."""
    global BACKEND
    if not asked() or BACKEND is not None:
        return
    # read by testcontainers on import
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    client = engine()
    check_images(client)
    remove_leftovers(client)
    client.close()
    t0 = time.monotonic()
    pg_port, kafka_port, controller_port = free_ports(3)
    postgres = _container(PG_IMAGE, "postgres").with_envs(
        POSTGRES_USER="care", POSTGRES_PASSWORD="care", POSTGRES_DB="care", PGPORT=str(pg_port)
    )
    postgres.with_command(
        [
            "postgres",
            *("-c", f"port={pg_port}"),
            *("-c", "listen_addresses=127.0.0.1"),
            *("-c", f"max_connections={PG_MAX_CONNECTIONS}"),
        ]
    )
    kafka = _container(KAFKA_IMAGE, "kafka").with_envs(
        # deploy/kafka/server.properties's, on this session's ports (the official image
        # reads only these, none of that file)
        KAFKA_NODE_ID="1",
        KAFKA_PROCESS_ROLES="broker,controller",
        KAFKA_LISTENERS=(
            f"PLAINTEXT://127.0.0.1:{kafka_port},CONTROLLER://127.0.0.1:{controller_port}"
        ),
        KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{kafka_port}",
        KAFKA_CONTROLLER_QUORUM_VOTERS=f"1@127.0.0.1:{controller_port}",
        KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
        KAFKA_INTER_BROKER_LISTENER_NAME="PLAINTEXT",
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
        KAFKA_NUM_PARTITIONS="6",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        KAFKA_HEAP_OPTS="-Xms256m -Xmx512m",
    )
    started: list[DockerContainer] = []
    try:
        for c in (postgres, kafka):
            c.start()
            started.append(c)
        backend = Backend(
            postgres=postgres,
            kafka=kafka,
            database_url=f"postgresql://care:care@127.0.0.1:{pg_port}/care",
            kafka_servers=f"127.0.0.1:{kafka_port}",
            started_in=0.0,
        )
        wait_ready(backend)
    except BaseException:
        for c in started:
            c.stop()
        raise
    backend.started_in = time.monotonic() - t0
    os.environ["DATABASE_URL"] = backend.database_url
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = backend.kafka_servers
    BACKEND = backend
    # a session that ends before pytest_unconfigure (a crash while configuring) too
    atexit.register(stop)


def free_ports(n: int) -> list[int]:
    """``n`` different free ports (each free_port() alone may repeat one: nothing holds it)."""
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def _container(image: str, role: str) -> DockerContainer:
    from testcontainers.core.container import DockerContainer

    c = DockerContainer(image)
    c.with_kwargs(
        # (as `network`, not `network_mode`: testcontainers then skips its guess of a
        # network for a client that itself runs in a container)
        network="host",
        labels={LABEL: "1", OWNER_LABEL: str(os.getpid()), f"{LABEL}.role": role},
    )
    return c


def wait_ready(backend: Backend, timeout: float = READY_TIMEOUT) -> None:
    asyncio.run(_ready(backend, timeout))


async def _ready(backend: Backend, timeout: float) -> None:
    await asyncio.gather(postgres_ready(backend, timeout), kafka_ready(backend, timeout))


async def postgres_ready(backend: Backend, timeout: float = READY_TIMEOUT) -> None:
    """Until the care role connects to its database (the image's first start creates
    both, on a server that listens on the socket only meanwhile)."""
    import asyncpg

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(backend.database_url, timeout=3)
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL container not ready in {timeout:.0f}s: {exc!r}\n"
                    + logs(backend.postgres)
                ) from exc
            await asyncio.sleep(0.2)


async def kafka_ready(backend: Backend, timeout: float = READY_TIMEOUT) -> None:
    """deploy/bin/kafka.sh's readiness: a produce and consumer-group round trip."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "shared.admin", "wait-kafka", "--timeout", str(int(timeout))),
        cwd=ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": backend.kafka_servers},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(
            f"Kafka container not ready:\n{out.decode(errors='replace')[-2000:]}\n"
            + logs(backend.kafka)
        )


def logs(container: DockerContainer, lines: int = 40) -> str:
    try:
        out, err = container.get_logs()
    except Exception as exc:  # the engine may be gone too
        return f"(no logs: {exc!r})"
    text = (out + err).decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def engine() -> docker.DockerClient:
    """The Docker engine of DOCKER_HOST (else the local socket), or a clear error."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise RuntimeError(
            "INTERVAL_TESTCONTAINERS=1, but no Docker engine answers "
            f"({exc}); start one (docs/architecture.md, Tests)"
        ) from exc
    return client


def check_images(client: docker.DockerClient) -> None:
    """This repository's images are built, not pulled (there is no registry for them)."""
    import docker

    for image in (PG_IMAGE, KAFKA_IMAGE):
        if not image.startswith("interval/"):
            continue  # another registry's image: testcontainers pulls it
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            raise RuntimeError(
                f"no image {image}: run deploy/containers/build.sh (or set "
                "INTERVAL_PG_IMAGE / INTERVAL_KAFKA_IMAGE to images you can pull)"
            ) from None


def remove_leftovers(client: docker.DockerClient) -> None:
    """Containers of an earlier session whose pytest process is gone (killed before its
    end). A running session's containers stay: several sessions may run at once."""
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        owner = c.labels.get(OWNER_LABEL, "")
        if not (owner.isdigit() and Path(f"/proc/{owner}").exists()):
            c.remove(force=True, v=True)


def stop() -> None:
    """The session's containers go (with their volumes)."""
    global BACKEND
    if BACKEND is None:
        return
    backend, BACKEND = BACKEND, None
    for c in (backend.kafka, backend.postgres):
        c.stop()


async def restart(container: DockerContainer, action: str) -> None:
    """``stop``, ``start`` or ``restart`` one of the session's containers, as
    deploy/bin/kafka.sh / postgres.sh do their server (stop: SIGTERM, then SIGKILL after
    STOP_TIMEOUT; start: back and ready). Its data and ports stay."""
    assert BACKEND is not None
    wrapped = container.get_wrapped_container()
    if action in ("stop", "restart"):
        await asyncio.to_thread(wrapped.stop, timeout=STOP_TIMEOUT)
    if action in ("start", "restart"):
        await asyncio.to_thread(wrapped.start)
        if container is BACKEND.kafka:
            await kafka_ready(BACKEND)
        else:
            await postgres_ready(BACKEND)


def report_header() -> list[str]:
    if BACKEND is None:
        return []
    return [
        f"testcontainers: PostgreSQL ({PG_IMAGE}) at {BACKEND.database_url.split('@')[1]}, "
        f"Kafka ({KAFKA_IMAGE}) at {BACKEND.kafka_servers}, "
        f"ready in {BACKEND.started_in:.1f}s"
    ]

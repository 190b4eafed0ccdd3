"""The outbox relay process of a service: migrate, connect, publish until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from aiokafka.errors import KafkaError
from prometheus_client import start_http_server

from shared import db
from shared.kafka import idempotent_producer
from shared.logging import get_logger
from shared.outbox import OutboxRelay, RelayConfig
from shared.settings import CommonSettings

log = get_logger(__name__)


async def serve_relay(settings: CommonSettings, schema: str, migrations: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    delay = 0.5
    while True:  # start even while the database or broker is still coming up
        try:
            await db.migrate(settings.database_url, schema, db.migration_files(migrations))
            break
        except (OSError, TimeoutError) as exc:
            log.warning("relay_waiting_for_database", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    producer = idempotent_producer(settings.kafka_servers, f"{schema}-relay")
    while not stop.is_set():
        try:
            await producer.start()
            break
        except KafkaError as exc:
            log.warning("relay_waiting_for_kafka", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    if settings.relay_metrics_port:
        start_http_server(settings.relay_metrics_port, addr=settings.http_host)
    relay = OutboxRelay(
        RelayConfig(
            dsn=settings.database_url,
            schema=schema,
            batch_size=settings.outbox_batch_size,
            poll_interval_s=settings.outbox_poll_interval_s,
        ),
        producer,
    )
    task = asyncio.create_task(relay.run())
    log.info("relay_started", schema=schema)
    await stop.wait()
    relay.stop()
    await task
    await producer.stop()
    log.info("relay_stopped", schema=schema)

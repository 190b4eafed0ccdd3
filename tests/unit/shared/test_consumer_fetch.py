"""The workers' faust consumer fetches as configured (shared/consumer.py
``_FetchingThread``): faust passes neither a minimum size nor our wait to aiokafka, and
with aiokafka's defaults a worker spent a third of its CPU on fetch round trips
(docs/performance.md)."""

from __future__ import annotations

import asyncio

from shared.consumer import _faust_app
from shared.settings import CommonSettings


async def test_the_workers_consumer_waits_for_bytes_as_configured() -> None:
    settings = CommonSettings(consumer_fetch_min_bytes=1234, consumer_fetch_max_wait_ms=7)
    app = _faust_app(settings, "fetch-test")
    thread = app.consumer._thread  # type: ignore[attr-defined]  # faust's, not typed
    consumer = thread._create_consumer(asyncio.get_running_loop())
    try:
        # what aiokafka hands its fetcher when the consumer starts
        assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (1234, 7)
    finally:
        await consumer.stop()
        thread.thread_loop.close()  # made for the thread, which never ran

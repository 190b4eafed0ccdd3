"""A worker's periodic tasks (build_faust_app's ``timers``, e.g. the scheduling worker's
waitlist retry) really run, as faust runs them; no broker needed to see that."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from shared.consumer import build_faust_app
from shared.processing import EventProcessor
from shared.settings import CommonSettings
from tests.support.eventually import eventually


async def test_a_worker_timer_calls_its_function_every_interval() -> None:
    calls: list[int] = []

    async def retry_waitlists() -> None:
        calls.append(1)

    processor = EventProcessor(
        settings=CommonSettings(), schema="probe", group="probe-timers", routes=[]
    )
    app = build_faust_app(processor, timers=[(0.01, retry_waitlists)])
    # faust starts every task it registered with the app; the last one is our timer
    timer: asyncio.Future[Any] = asyncio.ensure_future(app._app_tasks[-1]())
    try:
        await eventually(lambda: len(calls) >= 3, timeout=10, what="three ticks")
    finally:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer

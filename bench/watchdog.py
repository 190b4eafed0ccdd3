"""The pipeline watchdog's figure: how long after a stage stops the network ops on-call is
paged, and how long after its restart the alert resolves itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.load import open_loop
from bench.stack import Stack, stack
from tools.page_receiver import PageReceiver, Received


async def section_watchdog() -> None:
    """docs/domain.md, "Pipeline watchdog": how long after a stage stops the network ops
    on-call is paged, at the production defaults (PIPELINE_STALL_S 30, a heartbeat every
    5 s): the safety lane killed (the heartbeat stops arriving), and the alerts worker
    killed while intakes keep arriving (its group's offsets stand still with lag)."""
    print("Alerts: pipeline watchdog, stage stopped -> pipeline_stalled page (defaults)")
    async with (
        PageReceiver() as receiver,
        stack(("intake", "alerts"), extra_roles={"alerts": ("watchdog",)}) as st,
        aiohttp.ClientSession() as session,
    ):
        stall_s = float(os.environ.get("PIPELINE_STALL_S", "30"))
        oncall = {"tiers": [{"recipients": [{"name": "SRE", "webhook_url": receiver.url("/ops")}]}]}
        async with session.put(f"{st.urls['alerts']}/v1/oncall/network", json=oncall) as r:
            assert r.status == 200, await r.text()
        await asyncio.sleep(15)  # every stage beating, the watchdog looking
        stalls = _Stalls(st, session, receiver, stall_s)
        await stalls.detect("alerts-safety", load=False)
        await asyncio.sleep(10)  # the restarted lane rejoined and beats arrive again
        await stalls.detect("alerts-worker", load=True)


@dataclass(frozen=True)
class _Stalls:
    """The watchdog section's measurement: a stage stopped, its page, its resolution."""

    st: Stack
    session: aiohttp.ClientSession
    receiver: PageReceiver
    stall_s: float

    def pages(self) -> list[Received]:
        return [
            x
            for x in self.receiver.requests("/ops")
            if x.json and x.json.get("kind") == "pipeline_stalled"
        ]

    async def open_alerts(self) -> list[dict[str, Any]]:
        async with self.session.get(
            f"{self.st.urls['alerts']}/v1/alerts",
            params={"kind": "pipeline_stalled", "status": "open"},
        ) as r:
            alerts: list[dict[str, Any]] = await r.json()
            return alerts

    async def detect(self, victim: str, load: bool) -> None:
        """Kill ``victim`` (under 10 intakes/s with ``load``) and restart it once the ops
        on-call is paged; print how long the page took and the alert took to resolve."""
        assert not self.pages(), "a healthy stack was paged"
        background = asyncio.create_task(
            open_loop(self.st.urls["intake"], 10, self.stall_s + 40) if load else asyncio.sleep(0)
        )
        t0 = time.monotonic()
        self.st.kill(victim)
        try:
            got = await self.receiver.wait_for_request(
                lambda x: x.path == "/ops" and x.json.get("status") == "open",
                timeout=self.stall_s + 60,
            )
            took = got.received_mono - t0
        finally:
            self.st.restart(victim)
        reasons = [a["reasons"] for a in await self.open_alerts()]
        t1 = time.monotonic()
        while await self.open_alerts():  # resolves by itself once the stage moves again
            assert time.monotonic() - t1 < 120, "the stall alert never resolved"
            await asyncio.sleep(0.2)
        resolved = time.monotonic() - t1
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background
        print(
            f"  {victim} killed{' under 10 intakes/s' if load else ''}: paged after "
            f"{took:.1f} s (goal < PIPELINE_STALL_S + 5 = {self.stall_s + 5:.0f} s), reasons "
            f"{reasons}; resolved {resolved:.1f} s after its restart"
        )
        self.receiver.clear()

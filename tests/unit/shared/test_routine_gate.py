"""The routine gate (shared/web.py RoutineGate): under a flood of routine requests a
request of the safety path is served at once, while the routine ones take turns."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shared.web import install_routine_gate
from tests.support.eventually import eventually


def gated_app(limit: int, queue_max: int = 0) -> tuple[FastAPI, dict[str, int], asyncio.Event]:
    app = FastAPI()
    install_routine_gate(app, [("POST", "/v1/intakes")], limit, queue_max)
    seen = {"running": 0, "most": 0, "done": 0}
    release = asyncio.Event()

    @app.post("/v1/intakes")
    async def intake() -> dict[str, int]:
        seen["running"] += 1
        seen["most"] = max(seen["most"], seen["running"])
        await release.wait()  # a slow routine request, held until the test lets go
        seen["running"] -= 1
        seen["done"] += 1
        return seen

    @app.post("/v1/checkins")
    async def checkin() -> dict[str, str]:
        return {"ok": "at once"}

    @app.get("/v1/intakes")
    async def listed() -> dict[str, str]:  # the same path, another method: not gated
        return {"ok": "at once"}

    return app, seen, release


def waiting() -> float:
    return REGISTRY.get_sample_value("http_routine_waiting") or 0.0


def refused() -> float:
    return REGISTRY.get_sample_value("http_routine_refused_total") or 0.0


async def test_a_checkin_passes_a_flood_of_intakes_which_take_turns() -> None:
    app, seen, release = gated_app(limit=3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        before = waiting()
        flood = [asyncio.create_task(client.post("/v1/intakes")) for _ in range(20)]
        await eventually(  # the flood has arrived: 3 running, 17 waiting at the gate
            lambda: seen["running"] == 3 and waiting() - before == 17, timeout=5, every=0
        )
        r = await asyncio.wait_for(client.post("/v1/checkins"), 5)
        assert r.json() == {"ok": "at once"}
        r = await asyncio.wait_for(client.get("/v1/intakes"), 5)
        assert r.status_code == 200
        assert seen["done"] == 0  # the check-in did not wait for any intake
        release.set()
        answers = await asyncio.gather(*flood)
    assert [a.status_code for a in answers] == [200] * 20  # nothing refused, nothing lost
    assert seen["most"] == 3
    assert waiting() == before


async def test_a_full_queue_refuses_the_next_at_once_and_serves_the_rest() -> None:
    """ROUTINE_QUEUE_MAX: 3 running and 5 waiting, so 12 of a flood of 20 are refused at
    once (503, Retry-After, their bodies unread); a check-in still passes; the 8 taken in
    are all answered."""
    app, seen, release = gated_app(limit=3, queue_max=5)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        before, refused_before = waiting(), refused()
        flood = [asyncio.create_task(client.post("/v1/intakes", json={"n": i})) for i in range(20)]
        await eventually(
            lambda: (
                seen["running"] == 3
                and waiting() - before == 5
                and refused() - refused_before == 12
                and sum(t.done() for t in flood) == 12  # the refusals answered
            ),
            timeout=5,
            every=0,
        )
        refusals = [t.result() for t in flood if t.done()]
        assert len(refusals) == 12
        for r in refusals:
            assert r.status_code == 503
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"] == "overloaded"
        r = await asyncio.wait_for(client.post("/v1/checkins"), 5)
        assert r.json() == {"ok": "at once"}
        release.set()
        answers = await asyncio.gather(*flood)
    assert sorted(a.status_code for a in answers) == [200] * 8 + [503] * 12
    assert seen["done"] == 8  # every request taken in was served; none refused was run
    assert waiting() == before
    # the queue is counted down as requests leave it: one at a time, none is ever refused
    app2, _, release2 = gated_app(limit=1, queue_max=1)
    release2.set()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app2), base_url="http://t") as c:
        assert [(await c.post("/v1/intakes")).status_code for _ in range(3)] == [200] * 3

"""The demo's side of the public HTTP APIs: the calls, the stack's clock, settling."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from tools.demo.network import ALERTS_TIMEOUT_S, CLOCK_TIMEOUT_S, SETTLE, DemoError, T

# --- HTTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    intake: str
    scheduling: str
    alerts: str


class Api:
    """The three services' public APIs; every unexpected answer is a ``DemoError``."""

    def __init__(self, client: httpx.AsyncClient, urls: Urls) -> None:
        self.client = client
        self.urls = urls

    async def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        ok: Sequence[int] = (200, 201, 202),
    ) -> Any:
        try:
            r = await self.client.request(method, url, json=json, params=params)
        except httpx.HTTPError as exc:
            raise DemoError(f"{method} {url} failed: {exc!r}") from None
        if r.status_code not in ok:
            raise DemoError(f"{method} {url} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    async def intake(self, method: str, path: str, **kw: Any) -> Any:
        return await self.call(method, self.urls.intake + path, **kw)

    async def scheduling(self, method: str, path: str, **kw: Any) -> Any:
        return await self.call(method, self.urls.scheduling + path, **kw)

    async def alerts(self, method: str, path: str, **kw: Any) -> Any:
        return await self.call(method, self.urls.alerts + path, **kw)


class Clock:
    """The stack's dev clock (``/v1/dev/clock``): read, and moved forward for everyone."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.started: datetime | None = None

    async def now(self) -> datetime:
        answer = await self.api.scheduling("GET", "/v1/dev/clock", ok=(200, 404))
        if answer.get("error") == "not_found" or "now" not in answer:
            raise DemoError(
                "the demo moves the stack's clock, and this stack has none: start it with "
                "DEV_CLOCK=1 (`make up` and `make start` do, unless DEV_CLOCK=0)"
            )
        now = datetime.fromisoformat(answer["now"])
        if self.started is None:
            self.started = now
        return now

    async def advance_to(self, when: datetime) -> datetime:
        """The stack's time, at least ``when`` (every service told before it returns)."""
        now = await self.now()
        if now >= when:
            return now
        seconds = math.ceil((when - now).total_seconds()) + 1
        moved = await self.api.scheduling("POST", "/v1/dev/clock", json={"advance_s": seconds})
        target = moved["offset_s"]
        deadline = time.monotonic() + CLOCK_TIMEOUT_S
        while True:
            seen = await asyncio.gather(
                self.api.intake("GET", "/v1/dev/clock"), self.api.alerts("GET", "/v1/dev/clock")
            )
            if all(s["offset_s"] >= target for s in seen):
                return datetime.fromisoformat(moved["now"])
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the services did not all follow the clock within {CLOCK_TIMEOUT_S:.0f}s"
                )
            await asyncio.sleep(0.02)


@dataclass
class Settle:
    """What the alerts service must have seen before the clock moves on (see SETTLE):
    (patient id, "monitored" | "checkin", the stack's time it was done)."""

    api: Api
    pending: list[tuple[str, str, datetime]] = field(default_factory=list)

    def note(self, patient_id: str, what: str, at: datetime) -> None:
        self.pending.append((patient_id, what, at))

    async def before(self, target: datetime) -> None:
        due = [w for w in self.pending if w[2] + SETTLE < target]
        deadline = time.monotonic() + ALERTS_TIMEOUT_S
        while due:
            states = await asyncio.gather(
                *(
                    self.api.alerts("GET", f"/v1/patients/{pid}/monitoring", ok=(200, 404))
                    for pid, _, _ in due
                )
            )
            due = [w for w, s in zip(due, states, strict=True) if not _seen(w, s)]
            if due and time.monotonic() > deadline:
                raise DemoError(
                    f"the alerts service has not seen {len(due)} completed dose(s) or "
                    f"check-in(s) after {ALERTS_TIMEOUT_S:.0f}s; are the relays and the "
                    "alerts worker running? (`make status`)"
                )
            if due:
                await asyncio.sleep(0.05)
        self.pending = [w for w in self.pending if w[2] + SETTLE >= target]


def _seen(what: tuple[str, str, datetime], state: Any) -> bool:
    _, kind, at = what
    if not isinstance(state, dict) or not state.get("monitored"):
        return False
    if kind == "monitored":
        return True
    last = state.get("last_checkin_at")
    return last is not None and datetime.fromisoformat(last) >= at


async def check_reachable(client: httpx.AsyncClient, urls: Urls) -> None:
    async def one(name: str, url: str) -> None:
        try:
            r = await client.get(f"{url}/readyz", timeout=5)
        except httpx.HTTPError as exc:
            raise DemoError(
                f"the {name} service is not reachable at {url} ({type(exc).__name__}): "
                "run `make up` or `make start` first"
            ) from None
        if r.status_code != 200:
            raise DemoError(
                f"the {name} service at {url} is not ready ({r.status_code}: {r.text[:200]}); "
                "is the stack still starting? (`make status`, logs in .state/logs/)"
            )

    await asyncio.gather(
        one("intake", urls.intake), one("scheduling", urls.scheduling), one("alerts", urls.alerts)
    )


async def gather_all(aws: Sequence[Awaitable[T]]) -> list[T]:
    """All of them; the first failure cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise

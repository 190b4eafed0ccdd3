"""Warming an app's routes before its first request (shared/warmup.py): every POST route,
in included routers too, is matched and its parameters resolved, and no endpoint runs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel

from shared.warmup import warm_routes


class Body(BaseModel):
    name: str


def test_every_post_route_is_reached_and_no_endpoint_runs() -> None:
    resolved: list[str] = []
    ran: list[str] = []

    def seen(path: str) -> Any:
        def dependency() -> None:
            resolved.append(path)

        return Depends(dependency)

    router = APIRouter(prefix="/v1")

    @router.post("/things", dependencies=[seen("/v1/things")])
    async def create(body: Body) -> dict[str, str]:
        ran.append("create")
        return {}

    @router.post("/things/{thing_id}/close", dependencies=[seen("/v1/things/{id}/close")])
    async def close(thing_id: str, body: Body) -> dict[str, str]:
        ran.append("close")
        return {}

    @router.post("/things/{thing_id}/poke", dependencies=[seen("poke")])
    async def poke(thing_id: str) -> dict[str, str]:  # no body: nothing would stop it
        ran.append("poke")
        return {}

    @router.get("/things/{thing_id}", dependencies=[seen("GET")])
    async def read(thing_id: str) -> dict[str, str]:
        ran.append("read")
        return {}

    app = FastAPI()
    app.include_router(router, prefix="/api")

    @app.post("/top")
    async def top(body: Annotated[Body, Depends()]) -> None:
        ran.append("top")

    warmed = asyncio.run(warm_routes(app))
    assert warmed == 2  # the two POST routes that take a body
    # the GET and the POST without a body left alone
    assert sorted(resolved) == ["/v1/things", "/v1/things/{id}/close"]
    assert ran == []  # every body refused: nothing happened

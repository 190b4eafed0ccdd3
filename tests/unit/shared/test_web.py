"""The HTTP shell's refusals of hostile input, on a small app (no services, no database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any

import httpx
import pytest
from asyncpg.exceptions import CharacterNotInRepertoireError
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.validation import IsoDate, IsoInstant, NoNul
from shared.web import install_body_limit, install_error_handlers, install_input_guard

LIMIT = 1024


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: IsoInstant
    day: IsoDate
    text: Annotated[str, StringConstraints(strict=True, max_length=5000), NoNul] = ""


def make_app(limit: int = LIMIT) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_body_limit(app, limit)
    install_input_guard(app)
    router = APIRouter()

    @router.post("/things/{thing_id}")
    async def post(thing_id: str, body: Body) -> dict[str, Any]:
        return {"thing_id": thing_id, "at": body.at.isoformat(), "day": body.day.isoformat()}

    @router.get("/things")
    async def search(q: str = "") -> dict[str, str]:
        return {"q": q}

    @router.get("/unstorable")
    async def unstorable() -> None:
        raise CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00")

    app.include_router(router)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


GOOD = {"at": "2026-11-23T14:05:00Z", "day": "1981-04-02"}


async def test_times_are_iso_strings_never_numbers(client: httpx.AsyncClient) -> None:
    r = await client.post("/things/a", json=GOOD)
    assert r.status_code == 200, r.text
    assert r.json()["at"] == "2026-11-23T14:05:00+00:00"
    for field, value in [("at", 0), ("at", False), ("at", 1.7e9), ("day", 0), ("day", True)]:
        r = await client.post("/things/a", json={**GOOD, field: value})
        assert r.status_code == 422, (field, value, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field]
    r = await client.post("/things/a", json={**GOOD, "day": "2026-11-23T14:05:00Z"})
    assert r.status_code == 422


def test_iso_types_still_take_python_values() -> None:
    body = Body(at=datetime.fromisoformat("2026-11-23T14:05:00+00:00"), day=date(1981, 4, 2))
    assert body.day == date(1981, 4, 2)


async def test_nul_is_refused_in_body_path_and_query(client: httpx.AsyncClient) -> None:
    r = await client.post("/things/a", json={**GOOD, "text": "a\x00b"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["text"]
    r = await client.post("/things/a%00", json=GOOD)
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    r = await client.get("/things", params={"q": "x\x00", "other": "fine"})
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "query.q", "message": "must not contain a NUL character"}
    ]
    assert (await client.get("/things", params={"q": "100%"})).status_code == 200


async def test_text_the_database_cannot_store_is_the_clients_422(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/unstorable")
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"


async def chunks(raw: bytes, size: int = 256) -> AsyncIterator[bytes]:
    for i in range(0, len(raw), size):
        yield raw[i : i + size]


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_body_over_the_limit_is_413_announced_or_streamed(
    client: httpx.AsyncClient, streamed: bool
) -> None:
    raw = b'{"at": "2026-11-23T14:05:00Z", "day": "1981-04-02"' + b" " * LIMIT + b"}"
    content = chunks(raw) if streamed else raw
    r = await client.post(
        "/things/a", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "payload_too_large"


async def test_a_body_too_deep_to_parse_is_malformed_json() -> None:
    transport = httpx.ASGITransport(app=make_app(limit=1 << 20))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        raw = b"[" * 100_000 + b"]" * 100_000
        r = await c.post("/things/a", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "malformed_json"

"""The dev clock's pure parts (docs/architecture.md "Dev clock"): the offset, the
forward-only rule, the loopback-only rule, and who may move it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from shared import clock, devclock
from shared.access import allowed_roles
from shared.clock import ClockBackwards, ClockTooFar, check_advance, is_loopback, loopback_refusal
from shared.errors import Conflict
from shared.service import build_app
from shared.settings import CommonSettings


@pytest.fixture(autouse=True)
def wall_clock() -> Iterator[None]:
    clock.set_offset(0)
    yield
    clock.set_offset(0)


def test_without_an_offset_the_clock_is_the_wall_clock() -> None:
    before = datetime.now(UTC)
    now = clock.utcnow()
    assert before <= now <= datetime.now(UTC)
    assert now.tzinfo is UTC


def test_the_offset_moves_every_reading_forward_by_as_much() -> None:
    assert clock.set_offset(86400) is True
    assert clock.set_offset(86400) is False  # the same value is no change
    now = clock.utcnow()
    wall = datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < now - wall <= timedelta(days=1)
    assert clock.offset_s() == 86400


def test_an_offset_out_of_range_is_not_adopted() -> None:
    for bad in (-1, clock.MAX_OFFSET_S + 1):
        with pytest.raises(ValueError, match="out of range"):
            clock.set_offset(bad)
    assert clock.offset_s() == 0


def test_time_only_moves_forward() -> None:
    assert check_advance(3600, 100) == 3700
    for backwards in (0, -1, -86400):
        with pytest.raises(ClockBackwards) as exc:
            check_advance(backwards, 100)
        assert isinstance(exc.value, Conflict)  # a 409 in the JSON error shape
        assert exc.value.code == "clock_backwards"
    with pytest.raises(ClockTooFar):
        check_advance(10, clock.MAX_OFFSET_S)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "example.org"])
def test_addresses_others_can_reach_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_dev_clock_is_refused_on_any_listening_address_but_loopback() -> None:
    assert loopback_refusal("intake api", [("HTTP_HOST", "127.0.0.1")]) is None
    reason = loopback_refusal("intake api", [("HTTP_HOST", "0.0.0.0")])
    assert reason is not None
    assert "intake api" in reason
    assert "HTTP_HOST=0.0.0.0" in reason
    assert "DEV_CLOCK" in reason


def test_a_process_with_the_dev_clock_on_a_public_address_stops_at_start() -> None:
    settings = CommonSettings(dev_clock=True, http_host="0.0.0.0")
    with pytest.raises(SystemExit) as exc:
        devclock.refuse_unless_loopback(settings, "scheduling api")
    assert "refused" in str(exc.value.code)
    devclock.refuse_unless_loopback(CommonSettings(http_host="0.0.0.0"), "scheduling api")
    devclock.refuse_unless_loopback(CommonSettings(dev_clock=True), "scheduling api")


def test_with_tokens_any_role_that_changes_things_may_move_the_clock_a_viewer_may_not() -> None:
    settings = CommonSettings(dev_clock=True)
    rules = devclock.rules(settings, ())
    assert allowed_roles(rules, "POST", "/v1/dev/clock") == ("intake", "scheduler", "clinician")
    assert allowed_roles(rules, "GET", "/v1/dev/clock") is None  # reads are open
    assert devclock.rules(CommonSettings(), ()) == ()


def _app(settings: CommonSettings) -> httpx.AsyncClient:
    app = build_app(
        title="t",
        description="t",
        settings=settings,
        schema="t",
        migrations=Path("."),
        make_deps=lambda pool: None,  # type: ignore[arg-type,return-value]
        router=APIRouter(),
        max_body_bytes=1024,
    )
    # the lifespan is not entered: no database is needed for what is asked here
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_without_dev_clock_the_path_is_not_a_route() -> None:
    async with _app(CommonSettings()) as client:
        r = await client.get("/v1/dev/clock")
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"
        assert (await client.post("/v1/dev/clock", json={"advance_s": 60})).status_code == 404
        assert "/v1/dev/clock" not in (await client.get("/openapi.json")).json()["paths"]


async def test_with_dev_clock_the_clock_reads_and_bad_bodies_are_422() -> None:
    clock.set_offset(7200)
    async with _app(CommonSettings(dev_clock=True)) as client:
        r = await client.get("/v1/dev/clock")
        assert r.status_code == 200
        body = r.json()
        assert body["offset_s"] == 7200
        assert body["now"].endswith("Z")
        now = datetime.fromisoformat(body["now"])
        assert timedelta(seconds=7190) < now - datetime.now(UTC) <= timedelta(seconds=7200)
        for bad in ({}, {"advance_s": "60"}, {"advance_s": 1.5}, {"advance_s": 60, "x": 1}):
            r = await client.post("/v1/dev/clock", json=bad)
            assert r.status_code == 422, bad
            assert r.json()["error"] == "validation_error"
        assert "/v1/dev/clock" in (await client.get("/openapi.json")).json()["paths"]

"""Hostile input: every service's own OpenAPI document turned against it (schemathesis).

Each service is fuzzed as the real process, on the real broker and database: for every
operation of its ``/openapi.json``, cases from the documented examples, schemathesis's
coverage phase (boundaries, wrong types, missing and extra fields) and ``FUZZ_EXAMPLES``
random cases each valid and invalid. Every answer must be no 5xx, a documented status
with the documented content type and body, and invalid input refused with a 4xx.
A fixed seed (``FUZZ_SEED``) and no example database written, so CI repeats itself.

Then what a generator from the schema cannot say: JSON's ``false`` is not the integer 0
(each service, field by field), NUL characters, and bodies over the size limit, announced
or streamed, refused with 413 before they end.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import hypothesis
import orjson
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.scheduling import site_body
from tests.support.stack import AlertsStack, IntakeStack, SchedulingStack
from tools.factories import checkin_body, intake_body

pytestmark = pytest.mark.integration

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# a fixed seed: CI repeats itself; another FUZZ_SEED explores elsewhere
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "20261123"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

CONFIG: dict[str, Any] = {
    "seed": FUZZ_SEED,
    "generation": {
        "mode": "all",  # valid and invalid data
        "max-examples": FUZZ_EXAMPLES,
        "deterministic": False,
        "database": "none",
    },
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    # the fuzzer's invalid input must be refused with one of these
    "checks": {"negative_data_rejection": {"expected-statuses": ["400", "404", "413", "422"]}},
}

SETTINGS = hypothesis.settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=False,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def load(url: str, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    # schemathesis 4.32's lazy loader renames the test node per operation through
    # ``node._nodeid``, which pytest 9.2 no longer has: give it one to rename.
    node: Any = request.node
    if not hasattr(node, "_nodeid"):
        node._nodeid = node.nodeid
    return schemathesis.openapi.from_url(
        f"{url}/openapi.json", config=schemathesis.Config.from_dict(CONFIG), timeout=10
    )


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def intake_schema(intake: IntakeStack, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    return load(intake.url, request)


@pytest.fixture
def scheduling_schema(
    scheduling: SchedulingStack, request: pytest.FixtureRequest
) -> schemathesis.BaseSchema:
    return load(scheduling.url, request)


@pytest.fixture
def alerts_schema(alerts: AlertsStack, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    return load(alerts.url, request)


intake_api = schemathesis.pytest.from_fixture("intake_schema")
scheduling_api = schemathesis.pytest.from_fixture("scheduling_schema")
alerts_api = schemathesis.pytest.from_fixture("alerts_schema")


@intake_api.parametrize()
@SETTINGS
def test_intake_survives_hostile_input(
    case: schemathesis.Case[Any], session: requests.Session
) -> None:
    case.call_and_validate(session=session, checks=CHECKS, timeout=30)


@scheduling_api.parametrize()
@SETTINGS
def test_scheduling_survives_hostile_input(
    case: schemathesis.Case[Any], session: requests.Session
) -> None:
    case.call_and_validate(session=session, checks=CHECKS, timeout=30)


@alerts_api.parametrize()
@SETTINGS
def test_alerts_survives_hostile_input(
    case: schemathesis.Case[Any], session: requests.Session
) -> None:
    case.call_and_validate(session=session, checks=CHECKS, timeout=30)


# --- strict types: JSON's false is not 0, 2.5 is no integer, "3" is not 3 -----------------
# (2.0 is the integer 2, as JSON Schema's ``type: integer`` says: shared/validation.py
# WholeNumber)

Key = str | int


def with_value(body: dict[str, Any], path: tuple[Key, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def field_name(path: tuple[Key, ...]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


STRICT_CASES: list[tuple[str, tuple[Key, ...], Any]] = [
    # intake screen
    ("intake", ("phq9", 0), False),
    ("intake", ("phq9", 8), True),
    ("intake", ("phq9", 1), "3"),
    ("intake", ("phq9", 2), 2.5),
    ("intake", ("cssrs", "plan"), 0),
    ("intake", ("cssrs", "intent"), "false"),
    ("intake", ("vitals", "systolic"), True),
    ("intake", ("antidepressant_trials", 0, "weeks"), True),
    ("intake", ("antidepressant_trials", 0, "adequate"), 1),
    ("intake", ("submitted_at",), 0),
    ("intake", ("patient", "date_of_birth"), 0),
    ("intake", ("patient", "patient_id"), 42),
    # check-in
    ("checkin", ("suicidal_ideation",), 0),
    ("checkin", ("phq9", 0), False),
    ("checkin", ("submitted_at",), 1700000000),
    # site
    ("site", ("treatment_rooms",), True),
    ("site", ("therapists",), 2.5),
    ("site", ("treatment_rooms",), "2"),
    ("site", ("hours", "mon", 0), 8),
    # pre-dose vitals
    ("vitals", ("systolic",), False),
    ("vitals", ("diastolic",), 80.5),
    ("vitals", ("taken_at",), 0),
    # on-call
    ("oncall", ("tiers", 0, "escalate_after_s"), False),
    ("oncall", ("tiers", 0, "escalate_after_s"), "30"),
    ("oncall", ("tiers", 0, "escalate_after_s"), 30.5),
    ("oncall", ("tiers", 0, "recipients", 0, "name"), 7),
]


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    STRICT_CASES,
    ids=[f"{k}-{field_name(p)}={v!r}" for k, p, v in STRICT_CASES],
)
async def test_a_value_of_the_wrong_json_type_is_refused_naming_the_field(
    intake: IntakeStack,
    scheduling: SchedulingStack,
    alerts: AlertsStack,
    kind: str,
    path: tuple[Key, ...],
    value: Any,
) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    ib = intake_body()
    cases: dict[str, tuple[str, str, str, dict[str, Any], str | None]] = {
        "intake": (intake.url, "POST", "/v1/intakes", ib, f"/v1/intakes/{ib['intake_id']}"),
        "checkin": (intake.url, "POST", "/v1/checkins", checkin_body("p-1", [1] * 9), None),
        "site": (scheduling.url, "PUT", f"/v1/sites/{site}", site_body(), f"/v1/sites/{site}"),
        "vitals": (
            scheduling.url,
            "POST",
            f"/v1/appointments/{uuid.uuid4()}/vitals",
            {"systolic": 120, "diastolic": 80, "taken_at": datetime.now(UTC).isoformat()},
            None,
        ),
        "oncall": (
            alerts.url,
            "PUT",
            f"/v1/sites/{site}/oncall",
            {
                "tiers": [
                    {
                        "recipients": [{"name": "Dr. A", "webhook_url": "http://127.0.0.1:9/p"}],
                        "escalate_after_s": 30,
                    }
                ]
            },
            f"/v1/sites/{site}/oncall",
        ),
    }
    base, method, url, body, stored_at = cases[kind]
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        r = await c.request(method, url, json=with_value(body, path, value))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field_name(path)]
        if stored_at is not None:
            assert (await c.get(stored_at)).status_code == 404


async def test_a_whole_number_written_with_a_fraction_is_that_integer(
    intake: IntakeStack,
) -> None:
    body = intake_body()
    body["phq9"] = [float(v) for v in body["phq9"]]
    body["vitals"]["systolic"] = 128.0
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as c:
        r = await c.post("/v1/intakes", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["phq9_total"] == sum(int(v) for v in body["phq9"])
        # the same screen with plain integers is the same body: a replay, not a conflict
        body["phq9"] = [int(v) for v in body["phq9"]]
        body["vitals"]["systolic"] = 128
        assert (await c.post("/v1/intakes", json=body)).status_code == 200


async def test_a_nul_character_is_refused_before_it_reaches_the_database(
    intake: IntakeStack, scheduling: SchedulingStack, alerts: AlertsStack
) -> None:
    """PostgreSQL text cannot hold NUL: in a path no id can match (404), in a query or a
    body it is a bad field (422); never a 500."""
    async with httpx.AsyncClient(timeout=10) as c:
        for url in (
            f"{intake.url}/v1/intakes/a%00b",
            f"{intake.url}/v1/patients/%00/measures",
            f"{scheduling.url}/v1/sites/%00",
            f"{scheduling.url}/v1/patients/p%00/appointments",
            f"{alerts.url}/v1/alerts/%00",
            f"{alerts.url}/v1/patients/%00/monitoring",
        ):
            r = await c.get(url)
            assert r.status_code == 404, (url, r.text)
            assert r.json()["error"] == "not_found"
        for url, field in (
            (f"{scheduling.url}/v1/waitlist?site_id=a%00", "query.site_id"),
            (f"{alerts.url}/v1/alerts?patient_id=%00&status=open", "query.patient_id"),
        ):
            r = await c.get(url)
            assert r.status_code == 422, (url, r.text)
            assert [e["field"] for e in r.json()["errors"]] == [field]
        ib = intake_body()
        ib["patient"]["name"] = "Ada\x00"
        r = await c.post(f"{intake.url}/v1/intakes", json=ib)
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["patient.name"]
        assert (await c.get(f"{intake.url}/v1/intakes/{ib['intake_id']}")).status_code == 404
        r = await c.put(f"{scheduling.url}/v1/sites/site-nul", json=site_body(name="a\x00b"))
        assert [e["field"] for e in r.json()["errors"]] == ["name"]
        r = await c.post(f"{alerts.url}/v1/alerts/{uuid.uuid4()}/resolve", json={"by": "\x00"})
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["by"]


# --- oversized bodies --------------------------------------------------------------------

MAX_BODY_BYTES = 64 * 1024  # every service's default max_body_bytes


@dataclass(frozen=True)
class Write:
    """A representative write of a service: where, a valid body, where it would be read."""

    service: str
    method: str
    path: str
    body: dict[str, Any]
    stored_at: str


def writes(intake: IntakeStack, scheduling: SchedulingStack, alerts: AlertsStack) -> list[Write]:
    ib = intake_body()
    site = f"site-{uuid.uuid4().hex[:8]}"
    oncall = {"tiers": [{"recipients": [{"name": "Dr. A", "webhook_url": "http://127.0.0.1:9/p"}]}]}
    return [
        Write(intake.url, "POST", "/v1/intakes", ib, f"/v1/intakes/{ib['intake_id']}"),
        Write(scheduling.url, "PUT", f"/v1/sites/{site}", site_body(), f"/v1/sites/{site}"),
        Write(alerts.url, "PUT", f"/v1/sites/{site}/oncall", oncall, f"/v1/sites/{site}/oncall"),
    ]


def padded(body: dict[str, Any], size: int) -> bytes:
    """The body as JSON, padded with insignificant whitespace to exactly ``size`` bytes."""
    raw = orjson.dumps(body)
    assert len(raw) < size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


async def chunks(raw: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for i in range(0, len(raw), size):
        yield raw[i : i + size]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_over_the_limit_is_refused_with_413_and_stores_nothing(
    intake: IntakeStack,
    scheduling: SchedulingStack,
    alerts: AlertsStack,
    framing: str,
) -> None:
    for w in writes(intake, scheduling, alerts):
        raw = padded(w.body, MAX_BODY_BYTES + 1)
        async with httpx.AsyncClient(base_url=w.service, timeout=10) as c:
            content: bytes | AsyncIterator[bytes] = (
                raw if framing == "content-length" else chunks(raw)
            )
            r = await c.request(
                w.method, w.path, content=content, headers={"content-type": "application/json"}
            )
            assert r.status_code == 413, (w.path, r.status_code, r.text)
            assert r.json()["error"] == "payload_too_large"
            assert (await c.get(w.stored_at)).status_code == 404, w.path
            # the same body at the limit is fine: the size alone was refused
            content = padded(w.body, MAX_BODY_BYTES)
            if framing == "chunked":
                content = chunks(content)
            r = await c.request(
                w.method, w.path, content=content, headers={"content-type": "application/json"}
            )
            assert r.status_code in (200, 201), (w.path, r.status_code, r.text)


async def answer_to_unfinished_upload(url: str, head: bytes, parts: list[bytes]) -> bytes:
    """Send a request head and part of a body, never the rest: the answer (status line and
    headers) must come anyway, without waiting for a body that is not coming."""
    u = httpx.URL(url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    try:
        writer.write(head)
        for p in parts:
            writer.write(p)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # the service may have hung up first
            await writer.wait_closed()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_an_oversized_upload_is_refused_before_it_ends(
    intake: IntakeStack,
    scheduling: SchedulingStack,
    alerts: AlertsStack,
    framing: str,
) -> None:
    for w in writes(intake, scheduling, alerts):
        target = httpx.URL(w.service)
        head = (
            f"{w.method} {w.path} HTTP/1.1\r\nhost: {target.host}:{target.port}\r\n"
            "content-type: application/json\r\n"
        )
        if framing == "content-length":
            # 100 MiB announced, 1 KiB sent: refused on the announcement
            head += f"content-length: {100 * 1024 * 1024}\r\n\r\n"
            parts = [b"{" + b" " * 1023]
        else:
            # chunks past the limit, and no last chunk: refused on what arrived
            head += "transfer-encoding: chunked\r\n\r\n"
            chunk = b" " * 16384
            parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (MAX_BODY_BYTES // len(chunk) + 1)
        started = time.monotonic()
        answer = await answer_to_unfinished_upload(w.service, head.encode(), parts)
        assert answer.startswith(b"HTTP/1.1 413"), (w.path, answer)
        assert time.monotonic() - started < 5

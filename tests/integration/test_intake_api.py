"""The intake service as a client sees it: real process, real PostgreSQL, real Kafka."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from services.intake.domain.mbc import assess_checkin
from shared.crypto import PhiCipher
from shared.events import CloudEvent
from tests.support.eventually import eventually
from tests.support.stack import PHI_KEY, EventLog, IntakeStack
from tools.factories import checkin_body, deep, intake_body, phi_strings

pytestmark = pytest.mark.integration


def events_for(log: EventLog, topic: str, subject: str) -> list[CloudEvent]:
    out = []
    for r in log.on(topic):
        e = CloudEvent.from_bytes(r.value, tolerant=True)  # as a consumer reads it
        if e.subject == subject:
            out.append(e)
    return out


async def outbox_rows(dsn: str, subject: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM intake.outbox_events WHERE key = $1", subject)
        )
    finally:
        await conn.close()


async def stored(dsn: str, table: str, column: str, value: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(f"SELECT count(*) FROM intake.{table} WHERE {column} = $1", value)
        )
    finally:
        await conn.close()


async def test_eligible_intake_is_decided_and_published_once_without_phi(
    http: httpx.AsyncClient, intake: IntakeStack, event_log: EventLog
) -> None:
    body = intake_body()
    pid = body["patient"]["patient_id"]
    r = await http.post("/v1/intakes", json=body)
    assert r.status_code == 201, r.text
    result = r.json()
    assert result["decision"] == "eligible"
    assert result["reasons"] == []
    assert result["phq9_total"] == 20
    assert result["phq9_severity"] == "severe"
    assert result["suicide_risk"] == "none"
    for phi in phi_strings(body):
        assert phi not in r.text

    await eventually(
        lambda: len(events_for(event_log, "intake.screened", pid)) == 1, what="intake.screened"
    )
    [event] = events_for(event_log, "intake.screened", pid)
    record = next(r for r in event_log.on("intake.screened") if r.key == pid.encode())
    assert record.key == pid.encode()
    assert event.specversion == "1.0"
    assert event.type == "intake.screened"
    assert event.source == "urn:interval:intake"
    assert event.data["intake_id"] == body["intake_id"]
    assert event.data["decision"] == "eligible"
    assert event.data["phq9_total"] == 20
    assert "patient" not in event.data

    # A replay answers 200 with the same result and publishes nothing.
    again = await http.post("/v1/intakes", json=body)
    assert again.status_code == 200
    assert again.json() == result
    assert await outbox_rows(intake.dsn, pid) == 1

    got = await http.get(f"/v1/intakes/{body['intake_id']}")
    assert got.status_code == 200
    assert got.json() == result
    for phi in [*phi_strings(body), body["patient"]["date_of_birth"]]:
        assert phi not in got.text
        assert not event_log.containing(phi), f"PHI {phi!r} found on a topic"
        assert phi not in intake.api.logs() + intake.relay.logs(), f"PHI {phi!r} in a log"


async def test_reused_intake_id_with_a_different_body_is_409_and_changes_nothing(
    http: httpx.AsyncClient, intake: IntakeStack
) -> None:
    body = intake_body()
    assert (await http.post("/v1/intakes", json=body)).status_code == 201
    other = deep(body)
    other["phq9"] = [0] * 9
    r = await http.post("/v1/intakes", json=other)
    assert r.status_code == 409
    assert r.json()["error"] == "conflict"
    assert (await http.get(f"/v1/intakes/{body['intake_id']}")).json()["phq9_total"] == 20
    assert await outbox_rows(intake.dsn, body["patient"]["patient_id"]) == 1


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/v1/intakes", content=b'{"intake_id": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "malformed_json"


@pytest.mark.parametrize("payload", [b"[]", b"42", b'"text"', b"null"])
async def test_a_body_that_is_not_an_object_is_422(http: httpx.AsyncClient, payload: bytes) -> None:
    r = await http.post(
        "/v1/intakes", content=payload, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"


async def test_every_invalid_field_is_named_in_one_422_and_nothing_is_stored(
    http: httpx.AsyncClient, intake: IntakeStack
) -> None:
    body = intake_body()
    body["intake_id"] = ""
    body["phq9"] = [3, 3, 2, 3, 2, 3, 2, 2]  # eight items
    body["cssrs"].pop("plan")
    body["conditions"] = ["controlled_hypertension", "werewolf_syndrome"]
    body["vitals"]["systolic"] = "high"
    body["vitals"]["heart_rate"] = True  # JSON true is not a number
    body["submitted_at"] = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    body["preferences"]["timezone"] = "Mars/Olympus_Mons"
    r = await http.post("/v1/intakes", json=body)
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert {
        "intake_id",
        "phq9",
        "cssrs.plan",
        "conditions[1]",
        "vitals.systolic",
        "vitals.heart_rate",
        "submitted_at",
        "preferences.timezone",
    } <= fields
    assert await stored(intake.dsn, "patients", "patient_id", body["patient"]["patient_id"]) == 0
    assert await outbox_rows(intake.dsn, body["patient"]["patient_id"]) == 0


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("phq9",), [3, 3, 2, 3, 2, 3, 2, 2, 4], "phq9[8]"),
        (("phq9",), [3, 3, 2, 3, 2, 3, 2, 2, -1], "phq9[8]"),
        (("phq9",), [3, 3, 2, 3, 2, 3, 2, 2, False], "phq9[8]"),
        (("phq9",), [3, 3, 2, 3, 2, 3, 2, 2, "1"], "phq9[8]"),
        (("patient", "patient_id"), "", "patient.patient_id"),
        (("patient", "date_of_birth"), "2999-01-01", "patient.date_of_birth"),
        (("site_id",), "   ", "site_id"),
        (("cssrs", "intent"), 0, "cssrs.intent"),
        (
            ("antidepressant_trials",),
            [{"medication": "x", "adequate": True, "weeks": 8, "outcome": "cured"}],
            "antidepressant_trials[0].outcome",
        ),
        (("preferences", "earliest"), "25:00", "preferences.earliest"),
        (("vitals", "diastolic"), None, "vitals.diastolic"),
    ],
)
async def test_each_bad_field_is_named(
    http: httpx.AsyncClient, path: tuple[str, ...], value: Any, field: str
) -> None:
    body = intake_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    r = await http.post("/v1/intakes", json=body)
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}


async def test_unknown_intake_is_404(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1/intakes/no-such-intake")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


async def test_high_suicide_risk_needs_review_and_approval_publishes_reviewed(
    http: httpx.AsyncClient, event_log: EventLog
) -> None:
    body = intake_body()
    body["cssrs"]["intent"] = True
    pid = body["patient"]["patient_id"]
    r = await http.post("/v1/intakes", json=body)
    assert r.json()["decision"] == "needs_review"
    assert r.json()["suicide_risk"] == "high"
    assert "suicide_risk_high" in r.json()["reasons"]

    approved = await http.post(
        f"/v1/intakes/{body['intake_id']}/approve",
        json={"by": "Dr. Reviewer", "note": "discussed safety plan"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["review"]["outcome"] == "approved"
    # The same review again is a no-op; the opposite one is a conflict.
    again = await http.post(f"/v1/intakes/{body['intake_id']}/approve", json={"by": "Dr. Reviewer"})
    assert again.status_code == 200
    declined = await http.post(f"/v1/intakes/{body['intake_id']}/decline", json={"by": "Dr. B"})
    assert declined.status_code == 409

    await eventually(
        lambda: len(events_for(event_log, "intake.reviewed", pid)) == 1, what="intake.reviewed"
    )
    [event] = events_for(event_log, "intake.reviewed", pid)
    assert event.data["outcome"] == "approved"
    assert "discussed safety plan" not in json.dumps(event.data)
    assert "Dr. Reviewer" not in json.dumps(event.data)


async def test_reviewing_an_eligible_intake_is_409(http: httpx.AsyncClient) -> None:
    body = intake_body()
    await http.post("/v1/intakes", json=body)
    r = await http.post(f"/v1/intakes/{body['intake_id']}/approve", json={"by": "Dr. A"})
    assert r.status_code == 409
    assert (await http.post("/v1/intakes/nope/decline", json={"by": "Dr. A"})).status_code == 404


async def test_checkins_carry_the_measurement_based_care_verdict(
    http: httpx.AsyncClient, event_log: EventLog, intake: IntakeStack
) -> None:
    now = datetime.now(UTC)
    body = intake_body(submitted_at=(now - timedelta(hours=2)).isoformat())  # baseline 20
    pid = body["patient"]["patient_id"]
    await http.post("/v1/intakes", json=body)

    def at(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).isoformat()

    better = checkin_body(pid, [1, 1, 0, 0, 0, 0, 0, 0, 0], submitted_at=at(30))  # total 2
    r = await http.post("/v1/checkins", json=better)
    assert r.status_code == 202, r.text
    assert r.json()["assessment"]["response"] is True
    assert r.json()["assessment"]["remission"] is True
    assert better["note"] not in r.text
    replay = await http.post("/v1/checkins", json=better)
    assert replay.status_code == 200
    assert replay.json() == r.json()

    worse = checkin_body(pid, [2, 2, 1, 1, 1, 1, 1, 1, 0], submitted_at=at(10))  # total 10
    r = await http.post("/v1/checkins", json=worse)
    assert r.json()["assessment"]["worsening"] is True

    mood_only = checkin_body(pid, None, suicidal_ideation=True, submitted_at=at(5))
    assert (await http.post("/v1/checkins", json=mood_only)).status_code == 202

    await eventually(
        lambda: len(events_for(event_log, "checkin.recorded", pid)) == 3,
        what="three checkin.recorded",
    )
    by_id = {e.data["checkin_id"]: e for e in events_for(event_log, "checkin.recorded", pid)}
    assert by_id[worse["checkin_id"]].data["assessment"]["worsening"] is True
    assert by_id[worse["checkin_id"]].data["assessment"]["lowest_total"] == 2
    assert by_id[mood_only["checkin_id"]].data["suicidal_ideation"] is True
    assert by_id[mood_only["checkin_id"]].data["phq9_total"] is None
    # scheduling's topic carries the worsening and the ideation check-ins, never the
    # calm one: each the recorded payload field for field, as an event of its own
    await eventually(
        lambda: len(events_for(event_log, "checkin.flagged", pid)) == 2,
        what="two checkin.flagged",
    )
    flagged = {e.data["checkin_id"]: e for e in events_for(event_log, "checkin.flagged", pid)}
    assert set(flagged) == {worse["checkin_id"], mood_only["checkin_id"]}
    for checkin_id, twin in flagged.items():
        assert twin.data == by_id[checkin_id].data
        assert twin.id != by_id[checkin_id].id
    for c in (better, worse, mood_only):
        assert not event_log.containing(c["note"]), "a check-in note reached a topic"


async def test_a_checkin_counts_an_earlier_received_one_with_the_same_submitted_at(
    http: httpx.AsyncClient, event_log: EventLog
) -> None:
    """Two check-ins stamped with one instant are ordered by arrival: the second one's
    verdict counts the first (here its remission, so a rise to 12 is a worsening)."""
    now = datetime.now(UTC)
    body = intake_body(submitted_at=(now - timedelta(hours=2)).isoformat())  # baseline 20
    pid = body["patient"]["patient_id"]
    assert (await http.post("/v1/intakes", json=body)).status_code == 201
    same = (now - timedelta(minutes=10)).isoformat()
    # ids in the reverse of arrival order, so an order by id would put them the wrong way
    remission = checkin_body(
        pid, [1, 1, 1, 1, 0, 0, 0, 0, 0], submitted_at=same, checkin_id=f"z-{uuid4()}"
    )  # total 4
    relapse = checkin_body(
        pid, [2, 2, 2, 2, 1, 1, 1, 1, 0], submitted_at=same, checkin_id=f"a-{uuid4()}"
    )  # total 12

    first = await http.post("/v1/checkins", json=remission)
    assert first.status_code == 202, first.text
    assert first.json()["assessment"]["remission"] is True
    second = await http.post("/v1/checkins", json=relapse)
    assert second.status_code == 202, second.text
    assert second.json()["assessment"]["worsening"] is True
    assert second.json()["assessment"]["worsening_reasons"] == [
        "rise_from_lowest",  # 12 >= 4 + 5
        "relapse_after_remission",  # 12 >= 10 after a 4
    ]

    await eventually(
        lambda: len(events_for(event_log, "checkin.recorded", pid)) == 2,
        what="two checkin.recorded",
    )
    by_id = {e.data["checkin_id"]: e.data for e in events_for(event_log, "checkin.recorded", pid)}
    assert by_id[relapse["checkin_id"]]["assessment"]["worsening"] is True
    assert by_id[relapse["checkin_id"]]["assessment"]["worsening_reasons"] == [
        "rise_from_lowest",
        "relapse_after_remission",
    ]
    assert by_id[relapse["checkin_id"]]["assessment"]["lowest_total"] == 4

    measures = (await http.get(f"/v1/patients/{pid}/measures")).json()["measures"]
    assert [m["id"] for m in measures] == [
        body["intake_id"],
        remission["checkin_id"],
        relapse["checkin_id"],
    ]


async def test_checkin_for_an_unknown_patient_is_404_and_stores_nothing(
    http: httpx.AsyncClient, intake: IntakeStack
) -> None:
    body = checkin_body("p-nobody", [0] * 9)
    r = await http.post("/v1/checkins", json=body)
    assert r.status_code == 404
    assert await stored(intake.dsn, "checkins", "checkin_id", body["checkin_id"]) == 0


async def test_discharge_is_published_once(http: httpx.AsyncClient, event_log: EventLog) -> None:
    body = intake_body()
    pid = body["patient"]["patient_id"]
    await http.post("/v1/intakes", json=body)
    first = await http.post(f"/v1/patients/{pid}/discharge", json={"by": "Dr. A"})
    assert first.status_code == 200
    assert first.json()["status"] == "discharged"
    second = await http.post(f"/v1/patients/{pid}/discharge")
    assert second.json() == first.json()
    assert (await http.post("/v1/patients/p-unknown/discharge")).status_code == 404
    await eventually(
        lambda: len(events_for(event_log, "patient.discharged", pid)) == 1,
        what="patient.discharged",
    )


async def test_oversized_body_is_refused_with_413(http: httpx.AsyncClient) -> None:
    body = intake_body()
    body["patient"]["name"] = "x" * 200_000
    r = await http.post("/v1/intakes", json=body)
    assert r.status_code == 413


async def test_ops_endpoints(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "kafka": "ok"}
    metrics = await http.get("/metrics")
    assert "http_requests_total" in metrics.text
    assert 'outbox_backlog{schema="intake"}' in metrics.text
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/intakes" in spec["paths"]


async def test_a_replay_answers_the_same_body_whatever_offset_the_time_was_sent_in(
    http: httpx.AsyncClient,
) -> None:
    at = datetime.now(UTC).astimezone(timezone(timedelta(hours=-5))) - timedelta(hours=1)
    body = intake_body(submitted_at=at.isoformat())
    first = await http.post("/v1/intakes", json=body)
    again = await http.post("/v1/intakes", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


async def test_concurrent_submissions_of_one_intake_store_and_publish_it_once(
    http: httpx.AsyncClient, intake: IntakeStack
) -> None:
    body = intake_body()
    rivals = []
    for i in range(5):  # same id, other bodies: each must be refused, none may win the PHI
        other = deep(body)
        other["patient"]["name"] = f"Rival {i}"
        rivals.append(other)
    answers = await asyncio.gather(
        *(http.post("/v1/intakes", json=b) for b in [body] * 10 + rivals)
    )
    codes = [r.status_code for r in answers]
    assert codes.count(201) == 1
    assert await outbox_rows(intake.dsn, body["patient"]["patient_id"]) == 1
    conn = await asyncpg.connect(intake.dsn)
    try:
        stored_name = await conn.fetchval(
            "SELECT name FROM intake.patients WHERE patient_id = $1", body["patient"]["patient_id"]
        )
    finally:
        await conn.close()
    won = next(
        b for b, r in zip([body] * 10 + rivals, answers, strict=True) if r.status_code == 201
    )
    assert PhiCipher([PHI_KEY]).decrypt(stored_name) == won["patient"]["name"]
    losers = [
        r.status_code
        for b, r in zip([body] * 10 + rivals, answers, strict=True)
        if b["patient"]["name"] != won["patient"]["name"]
    ]
    assert set(losers) == {409}


async def test_concurrent_submissions_of_one_checkin_store_and_publish_it_once(
    http: httpx.AsyncClient, intake: IntakeStack
) -> None:
    """Ten copies of a check-in and rivals with its id (another note; another patient)
    at once: it is stored and announced once, every copy answers it, every rival is 409."""
    pid = (await http.post("/v1/intakes", json=(first := intake_body()))).json()["patient_id"]
    other = (await http.post("/v1/intakes", json=intake_body())).json()["patient_id"]
    assert pid == first["patient"]["patient_id"]
    body = checkin_body(pid, [2, 2, 1, 1, 1, 1, 0, 0, 0])
    rivals = [{**body, "note": "another note"}, {**body, "patient_id": other}]
    answers = await asyncio.gather(
        *(http.post("/v1/checkins", json=b) for b in [body] * 10 + rivals)
    )
    codes = [r.status_code for r in answers]
    assert sorted(codes[:10]) == [200] * 9 + [202], codes
    assert {r.json()["checkin_id"] for r in answers[:10]} == {body["checkin_id"]}
    assert len({r.text for r in answers[:10]}) == 1  # every copy answers the stored one
    assert codes[10:] == [409, 409], [r.text for r in answers[10:]]
    assert await stored(intake.dsn, "checkins", "checkin_id", body["checkin_id"]) == 1
    conn = await asyncpg.connect(intake.dsn)
    try:
        published = await conn.fetchval(
            "SELECT count(*) FROM intake.outbox_events "
            "WHERE topic = 'checkin.recorded' AND key = $1",
            pid,
        )
        elsewhere = await conn.fetchval(
            "SELECT count(*) FROM intake.checkins WHERE patient_id = $1", other
        )
    finally:
        await conn.close()
    assert published == 1
    assert elsewhere == 0


async def test_concurrent_checkins_of_one_patient_are_each_decided_on_all_before_them(
    http: httpx.AsyncClient, intake: IntakeStack
) -> None:
    """Forty different check-ins of one patient at once, all stamped with one instant:
    they are stored one at a time (migration 0004: a check-in decided on a read that
    another one overtook is decided again), so each stored verdict is the one the
    rules give on exactly the check-ins that arrived before it: here a total of 10 is a
    worsening exactly when a remission (a 0) arrived before it."""
    now = datetime.now(UTC)
    body = intake_body(
        submitted_at=(now - timedelta(hours=1)).isoformat(), phq9=[3, 3, 3, 3, 3, 3, 3, 3, 0]
    )
    pid = body["patient"]["patient_id"]
    assert (await http.post("/v1/intakes", json=body)).status_code == 201
    baseline = sum(body["phq9"])
    at = (now - timedelta(minutes=5)).isoformat()
    scores = [[2, 2, 2, 1, 1, 1, 1, 0, 0]] * 20 + [[0] * 9] + [[2, 2, 2, 1, 1, 1, 1, 0, 0]] * 19
    await asyncio.gather(*(http.get("/readyz") for _ in scores))  # connections open: all at once
    answers = await asyncio.gather(
        *(http.post("/v1/checkins", json=checkin_body(pid, s, submitted_at=at)) for s in scores)
    )
    assert [r.status_code for r in answers] == [202] * len(scores), [r.text for r in answers]
    conn = await asyncpg.connect(intake.dsn)
    try:
        rows = await conn.fetch(
            "SELECT phq9_total, response, remission, worsening, worsening_reasons "
            "FROM intake.checkins WHERE patient_id = $1 ORDER BY submitted_at, arrival",
            pid,
        )
    finally:
        await conn.close()
    assert len(rows) == len(scores)
    for n, row in enumerate(rows):
        expected = assess_checkin(baseline, [r["phq9_total"] for r in rows[:n]], row["phq9_total"])
        got = (row["response"], row["remission"], row["worsening"], tuple(row["worsening_reasons"]))
        assert got == (
            expected.response,
            expected.remission,
            expected.worsening,
            expected.worsening_reasons,
        ), f"check-in {n} in arrival order"

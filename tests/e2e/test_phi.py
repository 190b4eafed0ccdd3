"""PHI at rest and in motion.

At rest: the intake database holds the patient's name, birth date, phone, e-mail and
every note only as Fernet tokens under PHI_KEYS (this session's key, conftest.PHI_KEY);
plaintext rows from before migration 0002 are encrypted when the API starts; and
``python -m services.intake rotate-phi-keys`` moves every value to a new key.

In motion: a whole journey (intake, scheduling, a suicidal-ideation check-in that pages
on-call, acknowledgement, discharge, the dashboard's pages) leaves none of the PHI it
submitted on any topic, in any log line, in any page sent, in any web page or in any
table of any service.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from services.intake.app import MIGRATIONS
from services.intake.phi_at_rest import PHI_TABLES
from shared import db
from shared.crypto import PhiCipher, PhiDecryptError, new_key
from tests.support.browser import start_dashboard
from tests.support.eventually import eventually
from tests.support.scheduling import appointments, site_body
from tests.support.stack import (
    ARTIFACTS,
    PHI_KEY,
    ROOT,
    AlertsStack,
    EventLog,
    IntakeStack,
    SchedulingStack,
    ServiceProcess,
    free_port,
    scratch_database,
    service_env,
    wait_ready,
)
from tools.factories import checkin_body, intake_body, phi_strings
from tools.page_receiver import PageReceiver

pytestmark = pytest.mark.integration

SUICIDAL = [1, 1, 1, 0, 1, 1, 0, 0, 2]


def distinctive_dob() -> str:
    """A birth date no other test submits, so finding it anywhere means it leaked."""
    rnd = random.Random(uuid.uuid4().int)
    return date(1925 + rnd.randrange(60), 1 + rnd.randrange(12), 1 + rnd.randrange(28)).isoformat()


def tagged(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:10]}"


async def rows_as_text(dsn: str, schemas: tuple[str, ...]) -> dict[str, list[str]]:
    """Every row of every table of ``schemas``, each row as PostgreSQL's text of it."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = ANY($1) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
            list(schemas),
        )
        out: dict[str, list[str]] = {}
        for t in tables:
            name = f'"{t["table_schema"]}"."{t["table_name"]}"'
            out[name] = [r[0] for r in await conn.fetch(f"SELECT t::text FROM {name} AS t")]
        return out
    finally:
        await conn.close()


async def assert_no_plaintext(dsn: str, schemas: tuple[str, ...], phi: list[str]) -> None:
    tables = await rows_as_text(dsn, schemas)
    assert any(t.endswith('"patients"') and rows for t, rows in tables.items()), tables.keys()
    for table, rows in tables.items():
        for row in rows:
            for value in phi:
                assert value not in row, f"PHI {value!r} in plaintext in {table}"


async def encrypted_values(dsn: str) -> list[bytes]:
    """Every PHI value stored, as stored (a Fernet token); and no legacy plaintext."""
    conn = await asyncpg.connect(dsn)
    try:
        values: list[bytes] = []
        for t in PHI_TABLES:
            cols = ", ".join((*t.columns, *t.legacy))
            for row in await conn.fetch(f"SELECT {cols} FROM intake.{t.name}"):
                assert all(row[c] is None for c in t.legacy), f"plaintext left in {t.name}"
                values += [bytes(row[c]) for c in t.columns if row[c] is not None]
        return values
    finally:
        await conn.close()


# --- at rest ----------------------------------------------------------------------------


async def test_phi_is_stored_encrypted_and_the_api_still_answers(
    http: httpx.AsyncClient, intake: IntakeStack
) -> None:
    body = intake_body()
    body["patient"]["date_of_birth"] = distinctive_dob()
    body["cssrs"]["intent"] = True  # needs_review: a clinician's review note too
    pid = body["patient"]["patient_id"]
    review_note = tagged("discussed the safety plan with the patient's sister")
    checkin_note = tagged("slept badly after the argument with Tom")
    discharge_note = tagged("moving to Lisbon, referred to Dr. Costa")
    phi = [*phi_strings(body), body["patient"]["date_of_birth"]]
    notes = [review_note, checkin_note, discharge_note]

    created = await http.post("/v1/intakes", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["decision"] == "needs_review"
    reviewed = await http.post(
        f"/v1/intakes/{body['intake_id']}/approve", json={"by": "Dr. Reviewer", "note": review_note}
    )
    assert reviewed.status_code == 200, reviewed.text
    checkin = checkin_body(pid, [1, 1, 1, 1, 0, 0, 0, 0, 0], note=checkin_note)
    assert (await http.post("/v1/checkins", json=checkin)).status_code == 202
    discharged = await http.post(
        f"/v1/patients/{pid}/discharge", json={"by": "Dr. Reviewer", "note": discharge_note}
    )
    assert discharged.status_code == 200, discharged.text

    # the API answers as before, from the same rows, and never with the PHI
    got = await http.get(f"/v1/intakes/{body['intake_id']}")
    assert got.status_code == 200
    assert got.json()["decision"] == "needs_review"
    assert got.json()["review"]["outcome"] == "approved"
    measures = await http.get(f"/v1/patients/{pid}/measures")
    assert measures.status_code == 200
    assert [m["source"] for m in measures.json()["measures"]] == ["intake", "checkin"]
    assert measures.json()["discharged_at"] is not None
    replay = await http.post("/v1/intakes", json=body)  # the body hash still tells replays
    assert replay.status_code == 200
    other = {**body, "patient": {**body["patient"], "name": "Somebody Else"}}
    assert (await http.post("/v1/intakes", json=other)).status_code == 409
    for response in (created, reviewed, discharged, got, measures, replay):
        for value in phi + notes:
            assert value not in response.text

    # the database: no plaintext anywhere in the intake schema ...
    await assert_no_plaintext(intake.dsn, ("intake",), phi + notes)
    # ... each value a token that this session's key opens ...
    cipher = PhiCipher([PHI_KEY])
    conn = await asyncpg.connect(intake.dsn)
    try:
        patient = await conn.fetchrow("SELECT * FROM intake.patients WHERE patient_id = $1", pid)
        intake_row = await conn.fetchrow(
            "SELECT review_note FROM intake.intakes WHERE intake_id = $1", body["intake_id"]
        )
        note = await conn.fetchval(
            "SELECT note FROM intake.checkins WHERE checkin_id = $1", checkin["checkin_id"]
        )
        # ... and the database itself refuses plaintext (the checks of migration 0002)
        checks = await conn.fetch(
            "SELECT conname, convalidated FROM pg_constraint "
            "WHERE connamespace = 'intake'::regnamespace AND conname LIKE '%phi_encrypted'"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE intake.patients SET legacy_name = 'Plain Text' WHERE patient_id = $1", pid
            )
    finally:
        await conn.close()
    assert patient is not None
    assert intake_row is not None
    p = body["patient"]
    assert cipher.decrypt(patient["name"]) == p["name"]
    assert cipher.decrypt(patient["date_of_birth"]) == p["date_of_birth"]
    assert cipher.decrypt(patient["phone"]) == p["phone"]
    assert cipher.decrypt(patient["email"]) == p["email"]
    assert cipher.decrypt(patient["discharge_note"]) == discharge_note
    assert cipher.decrypt(intake_row["review_note"]) == review_note
    assert cipher.decrypt(note) == checkin_note
    assert {r["conname"]: r["convalidated"] for r in checks} == {
        "patients_phi_encrypted": True,
        "intakes_phi_encrypted": True,
        "checkins_phi_encrypted": True,
    }


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """A database of its own: this test changes keys, which the session's API must not see."""
    async with scratch_database("care_test_phi") as dsn:
        yield dsn


def intake_api(dsn: str, keys: str, **extra: str) -> tuple[str, ServiceProcess]:
    port = free_port()
    env = {**service_env(dsn, INTAKE_PORT=str(port), PHI_BATCH_SIZE="2", **extra)}
    env["PHI_KEYS"] = keys
    proc = ServiceProcess(
        "intake-api",
        ["services.intake", "api"],
        env,
        ARTIFACTS / "logs" / f"intake-api-phi-{uuid.uuid4().hex[:6]}.log",
    )
    proc.start()
    return f"http://127.0.0.1:{port}", proc


async def exited(proc: ServiceProcess, timeout: float = 60) -> int:
    popen = proc.proc
    assert popen is not None
    try:
        code: int = await eventually(popen.poll, lambda c: c is not None, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"{proc.name} still running:\n{proc.logs()[-2000:]}") from None
    return code


async def rotate(dsn: str, keys: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    env = service_env(dsn, PHI_BATCH_SIZE="2")
    env["PHI_KEYS"] = keys
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.intake",
        "rotate-phi-keys",
        *extra,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    lines = out.decode().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith('{"primary_key"') else {}
    return proc.returncode, report, out.decode() + err.decode()


def left_to_rotate(report: dict[str, Any]) -> int:
    return sum(t["rotated"] + t["encrypted"] for t in report["tables"].values())


LEGACY = {
    "p-legacy-1": ("Legacy Person One", date(1950, 5, 17), "+1-555-LEG-0001", "one@legacy.example"),
    "p-legacy-2": ("Legacy Person Two", date(1961, 8, 3), None, None),
    "p-legacy-3": ("Legacy Person Three", date(1972, 12, 9), "+1-555-LEG-0003", None),
}
LEGACY_NOTES = {
    "discharge": "legacy discharge: moved to Porto",
    "review": "legacy review: spoke with the family",
    "checkin": "legacy check-in: nightmares again",
}


async def seed_legacy_rows(dsn: str) -> None:
    """The database as migration 0001 left it, with plaintext PHI in it."""
    before = [m for m in db.migration_files(MIGRATIONS) if m[0][:4] <= "0001"]
    await db.migrate(dsn, "intake", before)
    conn = await asyncpg.connect(dsn)
    try:
        for i, (pid, (name, dob, phone, email)) in enumerate(LEGACY.items(), 1):
            await conn.execute(
                "INSERT INTO intake.patients (patient_id, site_id, name, date_of_birth, phone, "
                "email, baseline_intake_id, baseline_total, treatment_started_at, discharged_at, "
                "discharge_note) VALUES ($1, 'site-a', $2, $3, $4, $5, $6, 20, now(), "
                "CASE WHEN $7 THEN now() END, CASE WHEN $7 THEN $8 END)",
                pid,
                name,
                dob,
                phone,
                email,
                f"i-legacy-{i}",
                i == 1,
                LEGACY_NOTES["discharge"],
            )
            await conn.execute(
                "INSERT INTO intake.intakes (intake_id, patient_id, site_id, submitted_at, "
                "body_hash, phq9, phq9_total, phq9_severity, phq9_item9_positive, suicide_risk, "
                "decision, reasons, conditions, review_outcome, reviewed_by, review_note, "
                "reviewed_at) VALUES ($1, $2, 'site-a', now(), '\\x00', '{3,3,2,3,2,3,2,2,0}', "
                "20, 'severe', false, 'high', 'needs_review', '{suicide_risk_high}', '{}', "
                "'approved', 'Dr. Old', $3, now())",
                f"i-legacy-{i}",
                pid,
                LEGACY_NOTES["review"] if i == 2 else None,
            )
        await conn.execute(
            "INSERT INTO intake.checkins (checkin_id, patient_id, submitted_at, body_hash, phq9, "
            "phq9_total, phq9_item9_positive, suicidal_ideation, note, response, remission, "
            "worsening, worsening_reasons) VALUES ('c-legacy-1', 'p-legacy-3', now(), '\\x00', "
            "NULL, NULL, false, false, $1, false, false, false, '{}')",
            LEGACY_NOTES["checkin"],
        )
    finally:
        await conn.close()


async def test_plaintext_from_before_the_migration_is_encrypted_and_keys_rotate(
    fresh_database: str,
) -> None:
    dsn = fresh_database
    await seed_legacy_rows(dsn)
    legacy_phi = [
        *(v.isoformat() if isinstance(v, date) else v for row in LEGACY.values() for v in row if v),
        *LEGACY_NOTES.values(),
    ]
    old, new = new_key(), new_key()

    # A check before the service ran changes nothing, not even the schema.
    code, _, output = await rotate(dsn, old, "--check")
    assert code == 2, output
    assert "lacks migrations" in output
    conn = await asyncpg.connect(dsn)
    try:
        versions = {r[0] for r in await conn.fetch("SELECT version FROM intake.schema_migrations")}
    finally:
        await conn.close()
    assert "0002_phi_encrypted" not in versions

    # The API starts with the old key: before it serves, the plaintext is encrypted.
    url, api = intake_api(dsn, old)
    await wait_ready(url, api)
    try:
        await assert_no_plaintext(dsn, ("intake",), legacy_phi)
        cipher = PhiCipher([old])
        conn = await asyncpg.connect(dsn)
        try:
            one = await conn.fetchrow(
                "SELECT * FROM intake.patients WHERE patient_id = 'p-legacy-1'"
            )
            two = await conn.fetchrow(
                "SELECT * FROM intake.patients WHERE patient_id = 'p-legacy-2'"
            )
            review = await conn.fetchval(
                "SELECT review_note FROM intake.intakes WHERE intake_id = 'i-legacy-2'"
            )
            note = await conn.fetchval("SELECT note FROM intake.checkins")
        finally:
            await conn.close()
        assert one is not None
        assert two is not None
        assert [cipher.decrypt(one[c]) for c in ("name", "date_of_birth", "phone", "email")] == [
            "Legacy Person One",
            "1950-05-17",
            "+1-555-LEG-0001",
            "one@legacy.example",
        ]
        assert cipher.decrypt(one["discharge_note"]) == LEGACY_NOTES["discharge"]
        assert (two["phone"], two["email"], two["discharge_note"]) == (None, None, None)
        assert cipher.decrypt(review) == LEGACY_NOTES["review"]
        assert cipher.decrypt(note) == LEGACY_NOTES["checkin"]

        # and new PHI arrives through the API as usual
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            body = intake_body()
            assert (await client.post("/v1/intakes", json=body)).status_code == 201
            pid = body["patient"]["patient_id"]
            checkin = checkin_body(pid, [0] * 9)
            assert (await client.post("/v1/checkins", json=checkin)).status_code == 202
    finally:
        api.kill(signal.SIGTERM)
    stored = await encrypted_values(dsn)
    assert len(stored) >= 14
    assert all(PhiCipher([old]).decrypt(v) for v in stored)

    # Rotation: the new key first, the old one still there to read.
    code, report, output = await rotate(dsn, f"{new},{old}", "--check")
    assert code == 1, output  # something is left to rotate; --check changes nothing
    assert left_to_rotate(report) == len(stored)
    assert await encrypted_values(dsn) == stored

    code, report, output = await rotate(dsn, f"{new},{old}")
    assert code == 0, output
    assert left_to_rotate(report) == len(stored)
    assert report["tables"]["patients"]["rows"] == 4
    for key in (old, new):
        assert key not in output  # never logged nor printed

    code, report, output = await rotate(dsn, f"{new},{old}", "--check")  # idempotent
    assert (code, left_to_rotate(report)) == (0, 0), output
    code, report, output = await rotate(dsn, f"{new},{old}")
    assert (code, left_to_rotate(report)) == (0, 0), output

    rotated = await encrypted_values(dsn)
    assert len(rotated) == len(stored)
    only_new, only_old = PhiCipher([new]), PhiCipher([old])
    assert sorted(only_new.decrypt(v) or "" for v in rotated) == sorted(
        only_old.decrypt(v) or "" for v in stored
    )
    for value in rotated:
        with pytest.raises(PhiDecryptError):
            only_old.decrypt(value)

    # The old key alone can no longer read the database: the API refuses to start ...
    url, api = intake_api(dsn, old)
    try:
        assert await exited(api) != 0
        assert "cannot be decrypted with any of the 1 configured PHI key" in api.logs()
    finally:
        api.kill()
    # ... a missing key too, saying what to set ...
    url, api = intake_api(dsn, "", PHI_KEYS_FILE=str(ARTIFACTS / f"absent-{uuid.uuid4().hex}.key"))
    try:
        assert await exited(api) == 2
        assert "set PHI_KEYS" in api.logs()
    finally:
        api.kill()
    # ... and the new key alone serves.
    url, api = intake_api(dsn, new)
    try:
        await wait_ready(url, api)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            later = checkin_body(pid, [0] * 9)
            assert (await client.post("/v1/checkins", json=later)).status_code == 202
    finally:
        api.kill(signal.SIGTERM)
    for key in (old, new):
        assert key not in api.logs()


# --- in motion: a whole journey ---------------------------------------------------------


async def test_a_whole_journey_leaks_no_phi_to_topics_logs_pages_or_tables(
    intake: IntakeStack,
    scheduling: SchedulingStack,
    alerts: AlertsStack,
    intake_http: httpx.AsyncClient,
    event_log: EventLog,
    database: str,
) -> None:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    body = intake_body(site_id=site_id)
    body["patient"]["date_of_birth"] = distinctive_dob()
    pid = body["patient"]["patient_id"]
    checkin = checkin_body(
        pid, SUICIDAL, suicidal_ideation=True, note=tagged("wants to end it, told Maria")
    )
    discharge_note = tagged("discharged to the care of Dr. Okafor in Leeds")
    phi = [*phi_strings(body), body["patient"]["date_of_birth"], checkin["note"], discharge_note]
    responses: list[httpx.Response] = []

    async with (
        PageReceiver(signing_secret=alerts.knobs["PAGE_SIGNING_SECRET"]) as receiver,
        httpx.AsyncClient(base_url=scheduling.url, timeout=30) as sched,
        httpx.AsyncClient(base_url=alerts.url, timeout=30) as alerting,
    ):
        oncall = {
            "tiers": [
                {
                    "recipients": [{"name": "Dr. Pager", "webhook_url": receiver.url("/page")}],
                    "escalate_after_s": 30,
                }
            ]
        }
        responses.append(await sched.put(f"/v1/sites/{site_id}", json=site_body()))
        responses.append(await alerting.put(f"/v1/sites/{site_id}/oncall", json=oncall))
        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]

        # intake -> the scheduling worker proposes the induction series
        responses.append(await intake_http.post("/v1/intakes", json=body))
        assert responses[-1].status_code == 201, responses[-1].text
        await eventually(lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series")

        # a check-in with suicidal ideation -> a critical alert -> on-call is paged
        responses.append(await intake_http.post("/v1/checkins", json=checkin))
        assert responses[-1].status_code == 202, responses[-1].text
        page = await receiver.wait_for_request(
            lambda r: r.path == "/page" and r.json["patient_id"] == pid, timeout=15, what="page"
        )
        alert_id = page.json["alert_id"]
        for step in ("acknowledge", "resolve"):
            r = await alerting.post(f"/v1/alerts/{alert_id}/{step}", json={"by": "Dr. Pager"})
            assert r.status_code == 200, r.text
            responses.append(r)

        # discharge -> scheduling cancels the future appointments
        responses.append(
            await intake_http.post(
                f"/v1/patients/{pid}/discharge", json={"by": "Dr. Pager", "note": discharge_note}
            )
        )
        assert responses[-1].status_code == 200, responses[-1].text
        await eventually(
            lambda: appointments(sched, pid),
            lambda a: all(x["status"] == "cancelled" for x in a),
            what="appointments cancelled on discharge",
        )
        await eventually(
            lambda: any(
                r.key == pid.encode() and json.loads(r.value)["data"].get("change") == "resolved"
                for r in event_log.on("alert.changed")
            ),
            what="alert.changed resolved",
        )
        for path in (f"/v1/patients/{pid}/appointments", f"/v1/sites/{site_id}/schedule"):
            responses.append(await sched.get(path))
        for path in (f"/v1/alerts/{alert_id}", f"/v1/patients/{pid}/monitoring"):
            responses.append(await alerting.get(path))
        responses.append(await intake_http.get(f"/v1/intakes/{body['intake_id']}"))
        responses.append(await intake_http.get(f"/v1/patients/{pid}/measures"))

        # the ops dashboard's web pages about this site and patient
        board_url, board = await start_dashboard(
            database, INTAKE_URL=intake.url, ALERTS_URL=alerts.url, SCHEDULING_URL=scheduling.url
        )
        try:
            async with httpx.AsyncClient(base_url=board_url, timeout=30) as web:
                for path in ("/", f"/sites/{site_id}", f"/patients/{pid}", "/partials/board"):
                    r = await web.get(path)
                    assert r.status_code == 200, (path, r.text[:500])
                    responses.append(r)
        finally:
            board.kill(signal.SIGTERM)
        pages = list(receiver.received)

    assert pages, "no page was sent"
    assert event_log.on("intake.screened")
    assert event_log.on("checkin.recorded")
    procs = [
        intake.api,
        intake.relay,
        scheduling.api,
        scheduling.relay,
        *scheduling.workers,
        alerts.api,
        alerts.relay,
        *alerts.workers,
        *alerts.timers,
        board,
    ]
    logs = {p.log_path.name: p.logs() for p in procs}
    assert sum(bool(text) for text in logs.values()) >= 8, "the processes logged nothing?"
    for value in phi:
        raw = value.encode()
        for record in event_log.records:
            assert raw not in record.value, f"PHI {value!r} on topic {record.topic}"
            assert raw not in (record.key or b""), f"PHI {value!r} in a key on {record.topic}"
            for header in record.headers.values():
                assert raw not in header, f"PHI {value!r} in a header on {record.topic}"
        for name, text in logs.items():
            assert value not in text, f"PHI {value!r} in the log {name}"
        for p in pages:
            assert raw not in p.body, f"PHI {value!r} in a page to {p.path}"
            assert value not in json.dumps(p.headers), f"PHI {value!r} in a page's headers"
        for r in responses:
            assert value not in r.text, f"PHI {value!r} in the answer to {r.request.url}"
    await assert_no_plaintext(database, ("intake", "scheduling", "alerts"), phi)

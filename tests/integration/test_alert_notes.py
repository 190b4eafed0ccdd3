"""Acknowledge/resolve notes are PHI: at rest only as Fernet tokens under the stack's PHI
keys (migration 0002 of the alerts service), shown to clinicians only, and never on a
topic, in a log line or in the audit trail."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from services.alerts.app import MIGRATIONS
from shared import db
from shared.auth import digest
from shared.crypto import PhiCipher, new_key
from tests.support.alerts import SUICIDAL, checkin, new_patient, new_site
from tests.support.eventually import eventually
from tests.support.stack import (
    ARTIFACTS,
    PHI_KEY,
    ROOT,
    AlertsStack,
    EventLog,
    IntakeStack,
    ServiceProcess,
    free_port,
    scratch_database,
    service_env,
    wait_ready,
)

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
TOKENS = {"dr-notes": ["clinician"], "wall-screen": ["viewer"], "desk": ["intake"]}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-of-{name}-{RUN}"}


def tagged(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:10]}"


@pytest.fixture
async def api(alerts: AlertsStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=alerts.url, timeout=10) as client:
        yield client


async def raised_alert(api: httpx.AsyncClient, intake_http: httpx.AsyncClient) -> str:
    """A new patient's suicide-risk alert (nobody on call: nobody is paged)."""
    site_id = await new_site(api, None)
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    found = await eventually(
        lambda: api.get("/v1/alerts", params={"patient_id": pid}),
        lambda r: len(r.json()) == 1,
        what="the suicide-risk alert",
    )
    alert_id: str = found.json()[0]["alert_id"]
    return alert_id


async def stored_notes(dsn: str, alert_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT acknowledged_note, resolved_note FROM alerts.alerts WHERE alert_id = $1",
            uuid.UUID(alert_id),
        )
        assert row is not None
        return row
    finally:
        await conn.close()


async def alerts_schema_text(dsn: str) -> str:
    """Every row of every table of the alerts schema, as PostgreSQL's text of it."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'alerts' AND table_type = 'BASE TABLE'"
        )
        out = []
        for t in tables:
            name = f'alerts."{t["table_name"]}"'
            out += [r[0] for r in await conn.fetch(f"SELECT t::text FROM {name} AS t")]
        return "\n".join(out)
    finally:
        await conn.close()


async def test_notes_are_stored_as_fernet_tokens_and_never_published_or_logged(
    api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    alerts: AlertsStack,
    intake: IntakeStack,
    event_log: EventLog,
) -> None:
    alert_id = await raised_alert(api, intake_http)
    ack_note = tagged("called her sister Maria, she is with the patient")
    resolve_note = tagged("safety plan agreed, crisis line number given")

    r = await api.post(f"/v1/alerts/{alert_id}/acknowledge", json={"by": "Dr. N", "note": ack_note})
    assert r.status_code == 200, r.text
    assert ack_note not in r.text
    r = await api.post(f"/v1/alerts/{alert_id}/resolve", json={"by": "Dr. N", "note": resolve_note})
    assert r.status_code == 200, r.text

    # the database holds Fernet tokens under the stack's PHI key, and no plaintext anywhere
    row = await stored_notes(alerts.dsn, alert_id)
    cipher = PhiCipher([PHI_KEY])
    for column, note in (("acknowledged_note", ack_note), ("resolved_note", resolve_note)):
        token = bytes(row[column])
        assert token.startswith(b"gAAAA"), f"{column} is not a Fernet token"
        assert cipher.decrypt(token) == note
    text = await alerts_schema_text(alerts.dsn)
    assert ack_note not in text
    assert resolve_note not in text

    # and it refuses a plaintext note outright
    conn = await asyncpg.connect(alerts.dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE alerts.alerts SET acknowledged_note = convert_to($2, 'UTF8') "
                "WHERE alert_id = $1",
                uuid.UUID(alert_id),
                ack_note,
            )
    finally:
        await conn.close()

    # no tokens configured (loopback): the API shows the notes
    detail = (await api.get(f"/v1/alerts/{alert_id}")).json()
    assert detail["acknowledged"]["note"] == ack_note
    assert detail["acknowledged"]["note_withheld"] is False
    assert detail["resolved"]["note"] == resolve_note

    # the changes were announced, without the notes
    def announced() -> bool:
        changes = [
            d["change"] for d in event_log.data("alert.changed") if d["alert_id"] == alert_id
        ]
        return "acknowledged" in changes and "resolved" in changes

    await eventually(announced, what="alert.changed for the acknowledgement and resolution")
    for note in (ack_note, resolve_note):
        assert not event_log.containing(note), "a note reached a topic"
        for proc in (alerts.api, alerts.relay, *alerts.workers, *alerts.timers, intake.api):
            assert note not in proc.logs(), f"a note in the log of {proc.name}"


@dataclass
class Guarded:
    url: str
    proc: ServiceProcess


@pytest.fixture(scope="module")
async def guarded(database: str, alerts: AlertsStack) -> AsyncIterator[Guarded]:
    """A second alerts API on the session's database, with tokens (API_TOKENS_FILE)."""
    ARTIFACTS.mkdir(exist_ok=True)
    tokens = ARTIFACTS / f"tokens-notes-{RUN}.json"
    entries = [
        {"name": n, "roles": r, "sha256": digest(f"token-of-{n}-{RUN}").hex()}
        for n, r in TOKENS.items()
    ]
    tokens.write_text(json.dumps({"tokens": entries}))
    port = free_port()
    env = service_env(database, ALERTS_PORT=str(port), API_TOKENS_FILE=str(tokens))
    proc = ServiceProcess(
        "alerts-guarded-notes",
        ["services.alerts", "api"],
        env,
        ARTIFACTS / "logs" / f"alerts-guarded-notes-{RUN}.log",
    )
    proc.start()
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url, proc)
    yield Guarded(url, proc)
    proc.kill(signal.SIGTERM)


async def test_only_a_clinician_reads_a_note_and_the_audit_trail_keeps_none(
    api: httpx.AsyncClient, intake_http: httpx.AsyncClient, guarded: Guarded, database: str
) -> None:
    alert_id = await raised_alert(api, intake_http)
    note = tagged("patient disclosed a plan; police welfare check requested")
    async with httpx.AsyncClient(base_url=guarded.url, timeout=10) as client:
        r = await client.post(
            f"/v1/alerts/{alert_id}/acknowledge",
            json={"by": "Dr. N", "note": note},
            headers=bearer("dr-notes"),
        )
        assert r.status_code == 200, r.text

        as_clinician = await client.get(f"/v1/alerts/{alert_id}", headers=bearer("dr-notes"))
        assert as_clinician.status_code == 200
        assert as_clinician.json()["acknowledged"]["note"] == note
        assert as_clinician.json()["acknowledged"]["note_withheld"] is False

        for other in ("wall-screen", "desk"):
            seen = await client.get(f"/v1/alerts/{alert_id}", headers=bearer(other))
            assert seen.status_code == 200
            assert note not in seen.text, f"{other} was shown the note"
            ack: dict[str, Any] = seen.json()["acknowledged"]
            assert ack["by"] == "Dr. N"  # the rest of the trail is there
            assert ack["note"] is None
            assert ack["note_withheld"] is True

        trail = await client.get("/v1/audit", headers=bearer("dr-notes"))
        assert trail.status_code == 200
        assert any(e["path_params"].get("alert_id") == alert_id for e in trail.json())
        assert note not in trail.text
    assert note not in await alerts_schema_text(database)
    assert note not in guarded.proc.logs()


# --- notes stored in plaintext before migration 0002 ------------------------------------


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    async with scratch_database("care_test_notes") as dsn:
        yield dsn


LEGACY_ACK = "legacy ack: spoke with her husband"
LEGACY_RESOLVE = "legacy resolve: admitted to St. Mary's"


async def seed_legacy_alert(dsn: str) -> uuid.UUID:
    """An alert as migration 0001 left it, with plaintext notes."""
    await db.migrate(dsn, "alerts", [m for m in db.migration_files(MIGRATIONS) if m[0] < "0002"])
    alert_id = uuid.uuid4()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO alerts.alerts (alert_id, patient_id, site_id, kind, severity, status, "
            "raised_at, first_seen_at, last_seen_at, acknowledged_at, acknowledged_by, "
            "acknowledged_note, resolved_at, resolved_by, resolved_note, updated_at) "
            "VALUES ($1, 'p-legacy', 'site-a', 'suicide_risk', 'critical', 'resolved', now(), "
            "now(), now(), now(), 'Dr. Old', $2, now(), 'Dr. Old', $3, now())",
            alert_id,
            LEGACY_ACK,
            LEGACY_RESOLVE,
        )
    finally:
        await conn.close()
    return alert_id


async def rotate(dsn: str, keys: str, *extra: str) -> tuple[int, str]:
    env = service_env(dsn, PHI_BATCH_SIZE="1")
    env["PHI_KEYS"] = keys
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.alerts",
        "rotate-phi-keys",
        *extra,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_plaintext_notes_from_before_the_migration_are_encrypted_at_start_and_rotate(
    fresh_database: str,
) -> None:
    dsn = fresh_database
    alert_id = await seed_legacy_alert(dsn)
    old, new = new_key(), new_key()

    port = free_port()
    env = service_env(dsn, ALERTS_PORT=str(port), PHI_BATCH_SIZE="1")
    env["PHI_KEYS"] = old
    api = ServiceProcess(
        "alerts-api-legacy",
        ["services.alerts", "api"],
        env,
        ARTIFACTS / "logs" / f"alerts-api-legacy-{uuid.uuid4().hex[:6]}.log",
    )
    api.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, api)  # ready only once the notes are encrypted
        text = await alerts_schema_text(dsn)
        assert LEGACY_ACK not in text
        assert LEGACY_RESOLVE not in text
        row = await stored_notes(dsn, str(alert_id))
        assert PhiCipher([old]).decrypt(row["acknowledged_note"]) == LEGACY_ACK
        assert PhiCipher([old]).decrypt(row["resolved_note"]) == LEGACY_RESOLVE
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            detail = (await client.get(f"/v1/alerts/{alert_id}")).json()
        assert detail["acknowledged"]["note"] == LEGACY_ACK
        assert detail["resolved"]["note"] == LEGACY_RESOLVE
    finally:
        api.kill(signal.SIGTERM)

    # rotation: the new key first, the old one after it; then the old one can go
    code, out = await rotate(dsn, f"{new},{old}", "--check")
    assert code == 1, out  # two notes under the old key
    code, out = await rotate(dsn, f"{new},{old}")
    assert code == 0, out
    code, out = await rotate(dsn, new, "--check")
    assert code == 0, out
    row = await stored_notes(dsn, str(alert_id))
    assert PhiCipher([new]).decrypt(row["acknowledged_note"]) == LEGACY_ACK
    assert PhiCipher([new]).decrypt(row["resolved_note"]) == LEGACY_RESOLVE
    for note in (LEGACY_ACK, LEGACY_RESOLVE):
        assert note not in out
        assert note not in api.logs()

"""The scheduling worker's first statements of an intake on a real PostgreSQL
(services/scheduling/repository/patients.py, sites.py): the patient's advisory lock and
row lock taken by one statement, in that order; the site's lock and row by one; and the
intake taken with the standing that decides a course read back by the same statement."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.scheduling.app import MIGRATIONS
from services.scheduling.repository import patients, sites
from services.scheduling.settings import SCHEMA
from shared import db
from tools.stack import scratch_database

pytestmark = pytest.mark.integration

AT = datetime(2099, 3, 2, 9, tzinfo=UTC)


@contextlib.asynccontextmanager
async def _migrated() -> AsyncIterator[str]:
    async with scratch_database("patient_reads") as dsn:
        await db.migrate(dsn, SCHEMA, db.migration_files(MIGRATIONS))
        yield dsn


async def _connect(dsn: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn, **db.connect_kwargs(dsn, SCHEMA))
    # jsonb as Python objects, as the services' pools have it (shared/db.py)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


async def _waiting_on_advisory_lock(observer: asyncpg.Connection, pid: int) -> bool:
    """Whether session ``pid`` waits on an advisory lock now (checked until it does)."""
    for _ in range(500):
        event = await observer.fetchval(
            "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", pid
        )
        if event == "advisory":
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_new_patient_is_created_only_once_their_advisory_lock_is_taken() -> None:
    async with _migrated() as dsn:
        holder, worker, observer = [await _connect(dsn) for _ in range(3)]
        try:
            holder_tx = holder.transaction()
            await holder_tx.start()
            await patients.serialize_patient(holder, "patient-1")  # another event's turn

            worker_pid = await worker.fetchval("SELECT pg_backend_pid()")
            worker_tx = worker.transaction()
            await worker_tx.start()
            locked = asyncio.create_task(
                patients.serialized_locked_patient(worker, "patient-1", "site-1")
            )
            assert await _waiting_on_advisory_lock(observer, worker_pid)
            # waiting for its turn, and nothing written yet: the row comes after the lock
            assert not locked.done()
            assert await holder.fetchval("SELECT count(*) FROM patients") == 0

            await holder_tx.commit()
            row = await asyncio.wait_for(locked, 10)
            assert (row.patient_id, row.site_id, row.intake_id) == ("patient-1", "site-1", None)
            await worker_tx.commit()
            assert await observer.fetchval("SELECT site_id FROM patients") == "site-1"
        finally:
            for conn in (holder, worker, observer):
                await conn.close()


async def test_a_known_patient_is_locked_and_kept_at_their_site() -> None:
    async with _migrated() as dsn:
        worker, other = await _connect(dsn), await _connect(dsn)
        try:
            await patients.serialized_locked_patient(worker, "patient-1", "site-1")
            tx = worker.transaction()
            await tx.start()
            row = await patients.serialized_locked_patient(worker, "patient-1", "site-2")
            assert row.site_id == "site-1"  # the intake's own site is taken by take_intake
            with pytest.raises(asyncpg.LockNotAvailableError):  # the row is locked
                await other.execute(
                    "SELECT 1 FROM patients WHERE patient_id = 'patient-1' FOR UPDATE NOWAIT"
                )
            await tx.rollback()
        finally:
            await worker.close()
            await other.close()


async def test_taking_an_intake_reads_back_the_standing_that_decides_a_course() -> None:
    async with _migrated() as dsn:
        conn = await _connect(dsn)
        try:
            await patients.serialized_locked_patient(conn, "patient-1", "site-1")
            first = await patients.take_intake(
                conn, "patient-1", "site-2", {"days": ["mon"]}, "intake-1", AT, "needs_review"
            )
            assert first.has_induction is False
            s = first.standing
            assert (s.patient_id, s.site_id, s.preferences, s.decision) == (
                "patient-1",
                "site-2",
                {"days": ["mon"]},
                "needs_review",
            )
            assert (s.review, s.held_since, s.discharged_at) == (None, None, None)
            assert await patients.course_standing(conn, "patient-1") == first

            # a review of this intake, an open hold, an induction series and a discharge:
            # each shows in what the same statement reads back
            await patients.record_review(conn, "intake-1", "patient-1", "approved", AT)
            await patients.record_hold(conn, "alert-1", "patient-1", "site-2", AT, None)
            await conn.execute(
                "INSERT INTO sites (site_id, name, timezone, hours, treatment_rooms, "
                "therapists) VALUES ('site-2', 'Site 2', 'UTC', '{}', 2, 2)"
            )
            await conn.execute(
                "INSERT INTO series (series_id, patient_id, site_id, purpose, protocol) "
                "VALUES ('series-1', 'patient-1', 'site-2', 'induction', 'standard')"
            )
            await patients.discharge(conn, "patient-1", AT + timedelta(days=1))
            again = await patients.take_intake(
                conn, "patient-1", "site-2", None, "intake-1", AT, "eligible"
            )
            assert again.has_induction is True
            s = again.standing
            assert (s.decision, s.review, s.held_since, s.preferences) == (
                "eligible",
                "approved",
                AT,
                None,
            )
            assert s.discharged_at == AT + timedelta(days=1)  # never touched by an intake
            assert await patients.course_standing(conn, "patient-1") == again

            # another intake: the review was of the one before
            newer = await patients.take_intake(
                conn, "patient-1", "site-2", None, "intake-2", AT + timedelta(days=2), "eligible"
            )
            assert newer.standing.review is None
            assert await patients.course_standing(conn, "patient-2") is None
        finally:
            await conn.close()


async def test_the_site_is_read_with_its_lock_taken_whether_or_not_it_is_configured() -> None:
    async with _migrated() as dsn:
        holder, worker, observer = [await _connect(dsn) for _ in range(3)]
        try:
            await holder.execute(
                "INSERT INTO sites (site_id, name, timezone, hours, treatment_rooms, "
                "therapists) VALUES ('site-1', 'Site 1', 'UTC', '{\"mon\": [\"09:00\", "
                '"17:00"]}\', 3, 2)'
            )
            holder_tx = holder.transaction()
            await holder_tx.start()
            assert (await sites.serialized_site(holder, "site-1")) is not None

            worker_pid = await worker.fetchval("SELECT pg_backend_pid()")
            worker_tx = worker.transaction()
            await worker_tx.start()
            read = asyncio.create_task(sites.serialized_site(worker, "site-1"))
            assert await _waiting_on_advisory_lock(observer, worker_pid)  # its turn waits
            await holder_tx.commit()
            site = await asyncio.wait_for(read, 10)
            assert site is not None
            assert (site.site_id, site.treatment_rooms, site.therapists) == ("site-1", 3, 2)
            assert site.hours == {"mon": ("09:00", "17:00")}

            # a site nobody configured: None, and its lock is held all the same
            assert await sites.serialized_site(worker, "site-9") is None
            held = await observer.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 "
                "AND granted",
                worker_pid,
            )
            assert held == 2
            await worker_tx.commit()
        finally:
            for conn in (holder, worker, observer):
                await conn.close()

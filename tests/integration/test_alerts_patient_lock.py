"""The alerts worker's first statement of every reaction on a real PostgreSQL
(services/alerts/repository/patients.py ``lock_patient``): the patient's row locked, or
created on first sight, also when two transactions see a new patient at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.alerts import repository as repo
from services.alerts.deps import Deps
from services.alerts.rows import PatientRow
from shared.db import Conn
from tests.support.alerts import alerts_deps

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
async def deps() -> AsyncIterator[Deps]:
    async with alerts_deps(NOW, "care_patient_lock") as d:
        yield d


async def test_a_new_patient_is_created_at_their_site_and_held_by_the_transaction(
    deps: Deps,
) -> None:
    async with deps.pool.acquire() as conn, deps.pool.acquire() as other:
        async with conn.transaction():
            row = await repo.lock_patient(conn, "patient-1", "site-1", NOW)
            assert (row.patient_id, row.site_id) == ("patient-1", "site-1")
            # another transaction's first sight of the patient waits for this one
            other_pid = await other.fetchval("SELECT pg_backend_pid()")
            late = asyncio.create_task(_lock_in_transaction(other, "patient-1", "site-2"))
            await _until_waiting(deps, other_pid)
            assert not late.done()
        seen = await asyncio.wait_for(late, 10)
        assert (seen.patient_id, seen.site_id) == ("patient-1", "site-1")  # created once
        assert await conn.fetchval("SELECT count(*) FROM patients") == 1


async def test_a_known_patient_is_locked(deps: Deps) -> None:
    async with deps.pool.acquire() as conn, deps.pool.acquire() as other:
        async with conn.transaction():
            await repo.lock_patient(conn, "patient-1", "site-1", NOW)
        async with conn.transaction():
            row = await repo.lock_patient(conn, "patient-1", "site-2", NOW)
            assert row.site_id == "site-1"
            other_pid = await other.fetchval("SELECT pg_backend_pid()")
            late = asyncio.create_task(_lock_in_transaction(other, "patient-1", "site-1"))
            await _until_waiting(deps, other_pid)
        assert (await asyncio.wait_for(late, 10)).patient_id == "patient-1"


async def _lock_in_transaction(conn: Conn, pid: str, site: str) -> PatientRow:
    async with conn.transaction():
        return await repo.lock_patient(conn, pid, site, NOW)


async def _until_waiting(deps: Deps, pid: int) -> None:
    """Until session ``pid`` waits on a lock (a row's, or a transaction's insert)."""
    async with deps.pool.acquire() as observer:
        for _ in range(500):
            kind = await observer.fetchval(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
            )
            if kind == "Lock":
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the second transaction never waited")

"""The watchdog starts watching before its tables are known to be there
(services/alerts/watchdog.py): until its migrations are done the database counts as not
answering (a stall it pages), and migrations that failed are started again."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.alerts.settings import AlertsSettings
from services.alerts.watchdog import DB_ERRORS, NotMigrated, Watchdog


async def test_migrations_not_done_count_as_the_database_not_answering() -> None:
    gate = asyncio.Event()

    async def slow() -> bool:
        await gate.wait()
        return True

    async with httpx.AsyncClient() as http:
        dog = Watchdog(AlertsSettings(), http)
        dog.migrations = asyncio.create_task(slow())
        with pytest.raises(NotMigrated, match="not ready"):
            await dog.look_at_database()
        assert issubclass(NotMigrated, DB_ERRORS)  # the tick's database stall, not a crash
        gate.set()
        await dog.migrations


async def test_failed_migrations_are_started_again() -> None:
    started: list[asyncio.Task[bool]] = []

    async def failing() -> bool:
        raise RuntimeError("a migration failed")

    async def fine() -> bool:
        return True

    def migrate() -> asyncio.Task[bool]:
        started.append(asyncio.create_task(fine() if started else failing()))
        return started[-1]

    async with httpx.AsyncClient() as http:
        dog = Watchdog(AlertsSettings(), http)
        dog.migrate = migrate
        dog.migrations = migrate()
        await asyncio.gather(dog.migrations, return_exceptions=True)
        with pytest.raises(NotMigrated, match="failed"):
            await dog.look_at_database()
        assert len(started) == 2  # started again
        assert await dog.migrations is True

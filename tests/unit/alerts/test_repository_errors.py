"""The alerts repository says "that service never ran here" with its own error
(rows.py ``NoOutbox``), never the driver's: the watchdog skips that outbox."""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import pytest

from services.alerts import repository as repo
from services.alerts.rows import NoOutbox
from shared.db import Conn


class Answering:
    """A connection whose every value query answers ``value`` or fails with it."""

    def __init__(self, value: object) -> None:
        self.value = value

    async def fetchval(self, *args: Any) -> object:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


async def test_a_missing_outbox_table_is_no_outbox() -> None:
    driver = asyncpg.UndefinedTableError('relation "scheduling.outbox" does not exist')
    with pytest.raises(NoOutbox) as raised:
        await repo.outbox_age(cast(Conn, Answering(driver)), "scheduling")
    assert raised.value.__cause__ is driver


async def test_an_outbox_answers_its_age_or_none_when_empty() -> None:
    assert await repo.outbox_age(cast(Conn, Answering(None)), "intake") is None
    assert await repo.outbox_age(cast(Conn, Answering(12.5)), "intake") == 12.5
    assert await repo.outbox_age(cast(Conn, Answering(-0.25)), "intake") == 0.0


async def test_other_driver_errors_pass_through() -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await repo.outbox_age(
            cast(Conn, Answering(asyncpg.InsufficientPrivilegeError("denied"))), "intake"
        )

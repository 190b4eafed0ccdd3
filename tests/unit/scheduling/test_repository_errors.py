"""The scheduling repository answers a lost booking race with its own error
(rows.py ``SlotTaken``), never the driver's: the planner re-plans on it. Other driver
errors pass through as they are (a serialization failure is retried by
shared/processing.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest

from services.scheduling.repository import series
from services.scheduling.rows import NewSeries, NewSession, SlotTaken
from shared.db import Conn

START = datetime(2030, 1, 7, 9, tzinfo=UTC)
SERIES = NewSeries("series-1", "patient-1", "site-1", "induction", "standard", ())
SESSION = NewSession("appt-1", "dosing", 1, START, START + timedelta(hours=2), "room-1", None)


class Refusing:
    """A connection whose every statement fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def execute(self, *args: Any) -> str:
        raise self.error


async def book(error: Exception) -> None:
    conn = cast(Conn, Refusing(error))
    await series.book(conn, SERIES, new=True, sessions=[SESSION], events=[])


async def test_an_exclusion_violation_is_a_slot_taken() -> None:
    driver = asyncpg.ExclusionViolationError("conflicting key value violates exclusion")
    with pytest.raises(SlotTaken) as raised:
        await book(driver)
    assert raised.value.__cause__ is driver


async def test_other_driver_errors_pass_through() -> None:
    with pytest.raises(asyncpg.SerializationError):
        await book(asyncpg.SerializationError("could not serialize access"))

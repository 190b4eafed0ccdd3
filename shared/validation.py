"""Strict request types every service's schemas share.

FastAPI validates a decoded JSON body in pydantic's Python mode, where a strict
``date``/``datetime`` would refuse the ISO 8601 strings JSON carries, and a lax one
reads a number (or ``false``) as a Unix timestamp: ``"date_of_birth": 0`` would be
1970-01-01. These accept what JSON means by a time (an ISO 8601 string) and nothing else.
Text refuses a NUL character, which no PostgreSQL text column can hold.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
"""Every client-chosen id (intake, check-in, patient, site): 1-128 of these characters."""
ID_MAX_LENGTH = 128


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, str | datetime):
        return value
    raise PydanticCustomError(
        "datetime_type", "Input should be an ISO 8601 date-time string with a UTC offset"
    )


def _iso_date(value: Any) -> Any:
    if isinstance(value, str | date) and not isinstance(value, datetime):
        return value
    raise PydanticCustomError("date_type", "Input should be an ISO 8601 date string (YYYY-MM-DD)")


IsoInstant = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]
"""An instant with its UTC offset, given as an ISO 8601 string (never a number)."""

IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar date given as ``YYYY-MM-DD`` (never a number, never a date-time)."""


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "String should not contain a NUL character")
    return value


NoNul = AfterValidator(_no_nul)
"""For ``Annotated[str, ..., NoNul]``: free text a database can store."""

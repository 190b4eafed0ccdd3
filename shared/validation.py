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
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

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


def _iso_instant_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "datetime_type", "Input should be an ISO 8601 date-time string with a UTC offset"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "datetime_parsing", "Input should be an ISO 8601 date-time with a UTC offset"
        ) from None
    if parsed.tzinfo is None:
        raise PydanticCustomError("timezone_aware", "Input should have a UTC offset")
    return parsed


IsoInstantText = Annotated[AwareDatetime, BeforeValidator(_iso_instant_text)]
"""An instant in a query string: ISO 8601 with its offset only. (Lax pydantic reads a
number-like text, ``"0.5"``, as a Unix timestamp: that is refused here.)"""

IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar date given as ``YYYY-MM-DD`` (never a number, never a date-time)."""


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "String should not contain a NUL character")
    return value


NO_NUL_PATTERN = "^[^\\u0000]*$"
"""What the OpenAPI document says of every NoNul text (ECMA-262 and Python read it alike)."""


class _NoNul:
    """Refuses a NUL character, and says so in the JSON Schema (a ``pattern``, or one more
    in ``allOf`` beside a pattern the text already has)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_no_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        if "pattern" in out:
            out["allOf"] = [*out.get("allOf", []), {"pattern": NO_NUL_PATTERN}]
        else:
            out["pattern"] = NO_NUL_PATTERN
        return out


NoNul = _NoNul()
"""For ``Annotated[str, ..., NoNul]``: free text a database can store."""


SPACE = "\\t-\\r\\u001c- \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
"""Python's whitespace (``str.isspace``) as a regular-expression class body, spelled out:
``\\s`` differs between Python and ECMA-262 (which JSON Schema patterns are)."""
TEXT_PATTERN = f"^[^\\u0000]*[^{SPACE}\\u0000][^\\u0000]*$"
"""What the OpenAPI document says of short text that is stripped (``strip_whitespace``)
and must not be empty: something besides whitespace (Python's, ``str.isspace``), no NUL."""

Text = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=200),
    NoNul,
    Field(json_schema_extra={"pattern": TEXT_PATTERN}),
]
"""Short free text (a name, a reason): stripped, not empty, at most 200 characters."""


def _whole_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = BeforeValidator(_whole_number)
"""For ``Annotated[int, WholeNumber, Field(strict=True, ...)]``: JSON Schema's ``integer``
is a number without a fraction, so ``2.0`` is the integer 2 (as ``type: integer`` in the
OpenAPI document promises); ``2.5``, ``true`` and ``"2"`` stay refused."""

TIME_ZONES = sorted(available_timezones() - {"localtime"})
"""The IANA time zone names a service knows: its tz database's ("localtime" is this
machine's zone file, not a name)."""

TIME_ZONE_SCHEMA: dict[str, Any] = {
    "format": "iana-time-zone",
    "enum": TIME_ZONES,
    "examples": ["America/New_York"],
    "description": "an IANA time zone name (the tz database's, e.g. Europe/Berlin)",
}
"""The JSON Schema of a time-zone field: a name of the tz database, each listed
(``format: iana-time-zone`` names what they are; no JSON Schema format does)."""


_ZONES = frozenset(TIME_ZONES)


def _time_zone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York)")
    return value


TimeZone = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(_time_zone),
    Field(json_schema_extra=TIME_ZONE_SCHEMA),
]
"""A time zone field: an IANA name of the tz database, or a 422 naming the field."""

HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
"""A local time of day as HH:MM (00:00-23:59)."""

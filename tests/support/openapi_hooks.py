"""What schemathesis is told beyond the OpenAPI documents (SCHEMATHESIS_HOOKS for
tests/integration/test_openapi_conformance.py).

The rules that tie two fields together, or a field to the present, cannot be said in
JSON Schema; each is in its model's description and answered with a 422 naming the
field. Generated requests are kept inside them here, replacing one schema-valid value by
another (positive cases only: a negative case keeps the violation it was drawn with):

- an instant (``submitted_at``) or date (``date_of_birth``) not in the future, and a
  birth date not after the submission (services/intake/schemas.py);
- ``earliest`` before ``latest`` (intake preferences), a site's closing time after its
  opening time (services/scheduling/schemas.py ``Hours``);
- a site's protocol numbers that fit together (checked by services/scheduling/planner, so
  an object of them becomes the preset ``standard``);
- ``to`` after ``from`` (services/scheduling/api.py ``site_schedule``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import schemathesis

PAST = "2020-01-02T03:04:05Z"


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _ordered(pair: Any) -> bool:
    return not (
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(v, str) for v in pair)
        and pair[0] >= pair[1]
    )


def _keep_rules(body: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    submitted = _instant(body.get("submitted_at"))
    if submitted is not None and submitted > now:
        body["submitted_at"] = PAST
        submitted = _instant(PAST)
    patient = body.get("patient")
    born = _day(patient.get("date_of_birth")) if isinstance(patient, dict) else None
    if isinstance(patient, dict) and born is not None:
        latest = submitted.date() if submitted is not None else now.date()
        if born > min(latest, now.date()):
            patient["date_of_birth"] = "1980-01-01"
    prefs = body.get("preferences")
    if isinstance(prefs, dict) and not _ordered([prefs.get("earliest"), prefs.get("latest")]):
        prefs["earliest"], prefs["latest"] = "08:00", "18:00"
    hours = body.get("hours")
    if isinstance(hours, dict):
        for day, pair in hours.items():
            if not _ordered(pair):
                hours[day] = ["08:00", "18:00"]
    if isinstance(body.get("protocol"), dict):
        body["protocol"] = "standard"


@schemathesis.hook
def before_add_examples(ctx: Any, examples: list[Any]) -> None:
    for case in examples:  # the examples phase, which map_case does not see
        map_case(ctx, case)


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    meta = case.meta
    if meta is not None and meta.generation.mode.is_negative:
        return case  # its violation stays as drawn
    if isinstance(case.body, dict):
        _keep_rules(case.body)
    query = case.query
    if isinstance(query, dict):
        start, end = _instant(query.get("from")), _instant(query.get("to"))
        if start is not None and end is not None and end <= start:
            query["to"] = (start + timedelta(days=1)).isoformat()
    return case

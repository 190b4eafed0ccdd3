"""Request bodies for tests and benchmarks: valid by default, unique ids and unique PHI
strings per call."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def intake_body(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    body: dict[str, Any] = {
        "intake_id": str(uuid.uuid4()),
        "site_id": "site-a",
        "submitted_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "patient": {
            "patient_id": uid("p"),
            "name": f"Ada Example{tag}",
            "date_of_birth": "1981-04-02",
            "phone": f"+1-555-{tag}",
            "email": f"ada.{tag}@example.org",
        },
        "phq9": [3, 3, 2, 3, 2, 3, 2, 2, 0],
        "cssrs": {
            "wish_to_be_dead": False,
            "suicidal_thoughts": False,
            "method": False,
            "intent": False,
            "plan": False,
            "behavior_past_3_months": False,
            "behavior_ever": False,
        },
        "antidepressant_trials": [
            {"medication": "sertraline", "adequate": True, "weeks": 8, "outcome": "no_response"},
            {
                "medication": "venlafaxine",
                "adequate": True,
                "weeks": 10,
                "outcome": "partial_response",
            },
        ],
        "conditions": ["controlled_hypertension"],
        "vitals": {"systolic": 128, "diastolic": 82, "heart_rate": 74},
        "preferences": {
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
            "earliest": "08:00",
            "latest": "18:00",
        },
    }
    for key, value in overrides.items():
        body[key] = value
    return body


def phi_strings(body: dict[str, Any]) -> list[str]:
    p = body["patient"]
    return [p["name"], p["phone"], p["email"]]


def routine_phq9() -> list[int]:
    """A check-in's PHQ-9 answers with item 9 (thoughts of self-harm) at 0: a routine
    check-in, not a safety signal (a load of those is a different load)."""
    return [random.randint(0, 3) for _ in range(8)] + [0]  # noqa: S311 (test data)


def checkin_body(patient_id: str, phq9: list[int] | None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "checkin_id": str(uuid.uuid4()),
        "patient_id": patient_id,
        "submitted_at": datetime.now(UTC).isoformat(),
        "phq9": phq9,
        "suicidal_ideation": False,
        "note": f"slept badly {uuid.uuid4().hex[:8]}",
    }
    body.update(overrides)
    return body


def deep(body: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(body)

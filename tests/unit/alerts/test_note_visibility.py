"""An alert's audit trail shows its notes to clinicians only: withheld, a note reads as
null and says it was withheld; an absent note is never reported as withheld."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.alerts.alerting.notes import decrypt_notes
from services.alerts.schemas import AlertDetail
from shared.crypto import PhiCipher, new_key

NOW = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
CIPHER = PhiCipher([new_key()])


def resolved_row(ack_note: str | None, resolve_note: str | None) -> dict[str, Any]:
    return {
        "alert_id": uuid.uuid4(),
        "patient_id": "p-1",
        "site_id": "site-a",
        "kind": "suicide_risk",
        "severity": "critical",
        "status": "resolved",
        "raised_at": NOW,
        "first_seen_at": NOW,
        "last_seen_at": NOW,
        "occurrences": 1,
        "reasons": [],
        "inhibited_by": None,
        "tiers_paged": 1,
        "last_escalated_at": None,
        "repages": 0,
        "last_repaged_at": None,
        "acknowledged_at": NOW,
        "acknowledged_by": "Dr. A",
        "acknowledged_note": CIPHER.encrypt(ack_note),
        "acknowledged_tier": 0,
        "resolved_at": NOW,
        "resolved_by": "Dr. A",
        "resolved_note": CIPHER.encrypt(resolve_note),
        "next_check_at": None,
        "policy": None,
    }


def test_a_clinician_reads_the_notes_in_clear_text() -> None:
    row = resolved_row("called the patient", None)
    detail = AlertDetail.from_row(row, notes=decrypt_notes(CIPHER, row))
    assert detail.acknowledged is not None
    assert detail.resolved is not None
    assert detail.acknowledged.note == "called the patient"
    assert detail.acknowledged.note_withheld is False
    assert (detail.resolved.note, detail.resolved.note_withheld) == (None, False)


def test_anyone_else_gets_null_and_is_told_a_note_was_withheld() -> None:
    detail = AlertDetail.from_row(resolved_row("called the patient", None), notes=None)
    assert detail.acknowledged is not None
    assert detail.resolved is not None
    assert (detail.acknowledged.note, detail.acknowledged.note_withheld) == (None, True)
    assert (detail.resolved.note, detail.resolved.note_withheld) == (None, False)
    assert "called the patient" not in detail.model_dump_json()

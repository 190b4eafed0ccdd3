"""Logs never print PHI, even when a caller passes it by mistake."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import structlog

from shared.logging import configure_logging, get_logger


def test_phi_keys_are_redacted_from_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "INFO", json=True)
    get_logger("t").info(
        "oops",
        name="Ada Example",
        email="ada@example.org",
        date_of_birth="1981-04-02",
        phone="+1-555",
        note="sad",
        patient_id="p-1",
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["patient_id"] == "p-1"
    for key in ("name", "email", "date_of_birth", "phone", "note"):
        assert line[key] == "[redacted]"
    structlog.contextvars.clear_contextvars()


def test_times_in_a_log_line_are_iso_8601(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "INFO", json=True)
    at = datetime(2026, 12, 1, 7, 33, 27, 180924, tzinfo=UTC)
    get_logger("t").warning("page_failed", retry_at=at)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["retry_at"] == "2026-12-01T07:33:27.180924+00:00"
    structlog.contextvars.clear_contextvars()

"""Logs never print PHI, even when a caller passes it by mistake."""

from __future__ import annotations

import json

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

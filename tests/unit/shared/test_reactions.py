"""Reactions are wired by payload type (shared/processing.py Reaction): a handler wired to
another payload's events is a type error that `make lint` (mypy) reports, and two
reactions to one event type are refused when the processor is built."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

from shared import events
from shared.db import Conn
from shared.processing import Reaction, service_processor
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[3]


async def on_checkin(
    conn: Conn, deps: object, e: events.CloudEvent, p: events.CheckinRecorded
) -> None:
    return None


def mypy_errors(tmp_path: Path, body: str) -> str:
    source = tmp_path / "wiring.py"
    source.write_text(
        textwrap.dedent(
            """
            from shared import events
            from shared.processing import Reaction
            from shared.db import Conn


            async def on_checkin(
                conn: Conn, deps: object, e: events.CloudEvent, p: events.CheckinRecorded
            ) -> None:
                return None


            async def on_alert(
                conn: Conn,
                deps: object,
                e: events.CloudEvent,
                p: events.AlertRaised | events.AlertChanged,
            ) -> None:
                return None
            """
        )
        + textwrap.dedent(body)
    )
    out, _, _ = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary", str(source)]
    )
    return out


def test_a_handler_wired_to_its_own_payload_type_checks(tmp_path: Path) -> None:
    out = mypy_errors(
        tmp_path,
        """
        ok = [
            Reaction(events.CheckinRecorded, on_checkin),
            Reaction(events.AlertRaised, on_alert),
            Reaction(events.AlertChanged, on_alert),
        ]
        """,
    )
    assert out == "", out


def test_a_handler_wired_to_another_payload_is_a_type_error(tmp_path: Path) -> None:
    out = mypy_errors(tmp_path, "wrong = Reaction(events.IntakeScreened, on_checkin)\n")
    assert 'Argument 2 to "Reaction" has incompatible type' in out, out
    assert "IntakeScreened" in out


def test_a_reaction_reads_its_payloads_topic() -> None:
    assert Reaction(events.CheckinRecorded, on_checkin).event_type == "checkin.recorded"


def test_two_reactions_to_one_event_type_are_refused() -> None:
    with pytest.raises(ValueError, match="one reaction per event type"):
        service_processor(
            settings=CommonSettings(),
            schema="test",
            group="test",
            make_deps=lambda pool: None,
            reactions=[
                Reaction(events.CheckinRecorded, on_checkin),
                Reaction(events.CheckinRecorded, on_checkin),
            ],
        )

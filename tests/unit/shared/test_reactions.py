"""Reactions are wired by payload type (shared/processing.py Reaction): a handler wired to
another payload's events is a type error that `make lint` (mypy) reports, and two
reactions to one event type are refused when the processor is built."""

from __future__ import annotations

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


# One mypy run for both wirings (a cold run takes ~10-20 s): the right ones, then the
# wrong one, each error found by its line.
WIRING = """
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


ok = [
    Reaction(events.CheckinRecorded, on_checkin),
    Reaction(events.AlertRaised, on_alert),
    Reaction(events.AlertChanged, on_alert),
]
wrong = Reaction(events.IntakeScreened, on_checkin)
"""


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy's errors on WIRING by the first word of their line (``ok``, ``wrong``, ...)."""
    source = tmp_path_factory.mktemp("wiring") / "wiring.py"
    source.write_text(WIRING)
    out, _, _ = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary", str(source)]
    )
    lines = WIRING.splitlines()
    statement: dict[int, str] = {}  # line number -> the name its statement assigns
    name = ""
    for number, line in enumerate(lines, start=1):
        if line and not line[0].isspace() and line[0] not in ")]":
            name = line.split()[0]
        statement[number] = name
    errors: dict[str, list[str]] = {}
    for line in out.splitlines():
        _, at, rest = line.split(":", 2)
        errors.setdefault(statement[int(at)], []).append(rest)
    return errors


def test_a_handler_wired_to_its_own_payload_type_checks(
    mypy_errors: dict[str, list[str]],
) -> None:
    assert "ok" not in mypy_errors, mypy_errors


def test_a_handler_wired_to_another_payload_is_a_type_error(
    mypy_errors: dict[str, list[str]],
) -> None:
    out = "\n".join(mypy_errors.get("wrong", []))
    assert 'Argument 2 to "Reaction" has incompatible type' in out, mypy_errors
    assert "IntakeScreened" in out
    assert set(mypy_errors) == {"wrong"}, mypy_errors


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

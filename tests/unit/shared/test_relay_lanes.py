"""Which of the outbox's NOTIFY payloads wake which relay lane (shared/relay.py,
shared/migrations/0000_outbox_wake_lanes.sql)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.relay import OutboxRelay, RelayConfig


def lanes() -> dict[str, Any]:
    config = RelayConfig(dsn="postgresql://unused/x", schema="intake")
    relay = OutboxRelay(config, producer=None)
    return {lane.name: lane for lane in relay.lanes}


@pytest.mark.parametrize(
    ("payload", "safety", "routine"),
    [
        ("routine", False, True),  # routine rows only: the safety lane sleeps on
        ("safety", True, True),  # a safety-lane row (perhaps beside routine ones)
        ("", True, True),  # an older trigger's payload: both look
    ],
)
def test_a_notification_wakes_the_lanes_it_concerns(
    payload: str, safety: bool, routine: bool
) -> None:
    by_name = lanes()
    for lane in by_name.values():
        lane.notified(None, 1, "intake_outbox", payload)
    assert by_name["safety"].wake.is_set() is safety
    assert by_name["routine"].wake.is_set() is routine


def test_only_the_routine_lane_lingers() -> None:
    by_name = lanes()
    assert by_name["safety"].linger_s == 0
    assert by_name["routine"].linger_s == RelayConfig(dsn="", schema="x").linger_s > 0

"""Which of the outbox's NOTIFY channels wake which relay lane (shared/relay.py,
shared/migrations/0000_outbox_wake_safety_channel.sql)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.relay import OutboxRelay, RelayConfig


def lanes() -> dict[str, Any]:
    config = RelayConfig(dsn="postgresql://unused/x", schema="intake")
    relay = OutboxRelay(config, producer=None)
    return {lane.name: lane for lane in relay.lanes}


def test_each_lane_listens_on_its_own_channel() -> None:
    """The safety lane's channel is notified only by statements that wrote a safety-lane
    row (shared/migrations/0000_outbox_wake_safety_channel.sql): no routine write's
    notification is sent to it. The routine lane keeps the channel every write notifies."""
    by_name = lanes()
    assert by_name["safety"].channel == "_outbox_safety"
    assert by_name["routine"].channel == "_outbox"


@pytest.mark.parametrize("payload", ["routine", "safety", ""])
def test_a_notification_on_a_lanes_channel_wakes_it(payload: str) -> None:
    for lane in lanes().values():
        lane.notified(None, 1, "intake" + lane.channel, payload)
        assert lane.wake.is_set()


def test_only_the_routine_lane_lingers() -> None:
    by_name = lanes()
    assert by_name["safety"].linger_s == 0
    assert by_name["routine"].linger_s == RelayConfig(dsn="", schema="x").linger_s > 0

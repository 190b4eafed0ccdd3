"""The alerts board's order and the overview's site rows (pure view logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.dashboard.board import age, board_order, critical_open

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def alert(aid: str, severity: str, status: str, minutes_ago: int) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "severity": severity,
        "status": status,
        "raised_at": (T0 - timedelta(minutes=minutes_ago)).isoformat(),
    }


def test_open_before_acknowledged_then_critical_first_then_newest_first() -> None:
    alerts = [
        alert("ack-crit", "critical", "acknowledged", 1),
        alert("old-crit", "critical", "open", 30),
        alert("new-high", "high", "open", 0),
        alert("new-crit", "critical", "open", 2),
        alert("warn", "warning", "open", 5),
    ]
    assert [a["alert_id"] for a in board_order(alerts)] == [
        "new-crit",
        "old-crit",
        "new-high",
        "warn",
        "ack-crit",
    ]


def test_only_open_critical_alerts_sound() -> None:
    alerts = [
        alert("a", "critical", "open", 1),
        alert("b", "critical", "acknowledged", 1),
        alert("c", "high", "open", 1),
    ]
    assert critical_open(alerts) == ["a"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (86400, "1 d")],
)
def test_age_reads_in_the_largest_whole_unit(seconds: int, text: str) -> None:
    assert age((T0 - timedelta(seconds=seconds)).isoformat(), T0) == text


def test_age_of_a_future_time_is_zero() -> None:
    assert age((T0 + timedelta(seconds=5)).isoformat(), T0) == "0 s"

"""What the alerts board shows, in which order: a pure view over the alerts API's rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

SEVERITY_ORDER = {"critical": 0, "high": 1, "warning": 2}
STATUS_ORDER = {"open": 0, "acknowledged": 1, "resolved": 2}


def board_order(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open before acknowledged; within each, critical first, then newest first."""

    def key(a: dict[str, Any]) -> tuple[int, int, float]:
        raised = datetime.fromisoformat(a["raised_at"]).timestamp()
        return (STATUS_ORDER[a["status"]], SEVERITY_ORDER[a["severity"]], -raised)

    return sorted(alerts, key=key)


def critical_open(alerts: Sequence[dict[str, Any]]) -> list[str]:
    """Ids of the open critical alerts (the page sounds and flashes for a new one)."""
    return [a["alert_id"] for a in alerts if a["severity"] == "critical" and a["status"] == "open"]


def age(raised_at: str, now: datetime) -> str:
    """'42 s', '7 min', '3 h', '2 d' since the alert was raised."""
    seconds = max(0, int((now - datetime.fromisoformat(raised_at)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"

"""A patient's course, ids only: the PHQ-9 trend with the response and remission lines
(docs/domain.md "Measurement-based care") and the series' progress, as pure data for the page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REMISSION_BELOW = 5  # remission: total < 5
RESPONSE_FRACTION = 0.5  # response: total down >= 50% from the intake baseline


def phq9_chart(measures: dict[str, Any]) -> dict[str, Any]:
    """Points (time, total) of the intake and every scored check-in; worsening points
    flagged; the response line at half the baseline and the remission line at 5."""
    points = [
        {
            "x": m["at"],
            "y": m["phq9_total"],
            "source": m["source"],
            "worsening": bool(m["worsening"]),
            "suicidal": bool(m["suicidal_ideation"]) or bool(m["phq9_item9_positive"]),
        }
        for m in measures["measures"]
        if m["phq9_total"] is not None
    ]
    baseline = measures.get("baseline_total")
    return {
        "points": points,
        "baseline": baseline,
        "response_line": baseline * RESPONSE_FRACTION if baseline is not None else None,
        "remission_line": REMISSION_BELOW,
    }


def series_progress(appointments: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Dosing sessions completed of those planned (cancelled ones do not count)."""
    doses = [a for a in appointments if a["kind"] in ("dosing", "maintenance")]
    live = [a for a in doses if a["status"] != "cancelled"]
    done = [a for a in doses if a["status"] == "completed"]
    return {
        "doses_completed": len(done),
        "doses_planned": len(live),
        "no_shows": sum(1 for a in doses if a["status"] == "no_show"),
        "next": next(
            (
                a
                for a in sorted(live, key=lambda a: a["start"])
                if a["status"] in ("proposed", "confirmed")
            ),
            None,
        ),
    }

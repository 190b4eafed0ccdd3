"""The network overview's rows: unknown stays unknown when a service is down."""

from __future__ import annotations

from typing import Any

from services.dashboard.overview import ack_rows, duration, pct, site_rows

SITES = [
    {"site_id": "a", "name": "Downtown", "timezone": "America/New_York"},
    {"site_id": "b", "name": "Uptown", "timezone": "Europe/London"},
]
ZERO = {"critical": 0, "high": 0, "warning": 0, "total": 0}


def summary(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "patients_in_induction": 4,
        "waitlisted": 1,
        "induction_completion_rate": 0.5,
        "inductions_ended": 2,
        "utilisation_today": {"rooms": 0.25, "therapists": None},
        "utilisation_week": {"rooms": 0.1, "therapists": 0.05},
    }
    return {**base, **kw}


def test_rows_merge_scheduling_and_alerts_figures_with_critical_sites_first() -> None:
    counts = {
        "sites": [
            {"site_id": "b", "open": {**ZERO, "critical": 1, "total": 1}, "acknowledged": ZERO},
            {"site_id": "c", "open": {**ZERO, "high": 2, "total": 2}, "acknowledged": ZERO},
        ]
    }
    rows = site_rows(
        SITES, {"a": summary(), "b": summary()}, counts, [{"site_id": "a", "monitored": 3}]
    )
    assert [r["site_id"] for r in rows] == ["b", "c", "a"]
    a = rows[2]
    assert (a["in_induction"], a["monitored"], a["waitlisted"], a["critical"]) == (4, 3, 1, 0)
    # a site only the alerts service knows of still shows, with its scheduling figures unknown
    c = rows[1]
    assert c["name"] is None
    assert c["in_induction"] is None
    assert c["high"] == 2


def test_a_service_down_leaves_its_figures_unknown_not_zero() -> None:
    rows = site_rows(SITES, {}, None, None)
    assert {r["site_id"] for r in rows} == {"a", "b"}
    for r in rows:
        assert r["critical"] is None
        assert r["monitored"] is None
        assert r["in_induction"] is None


def test_percent_and_durations_read_naturally() -> None:
    assert pct(None) == "—"
    assert pct(0.256) == "26%"
    assert duration(None) == "—"
    assert duration(42) == "42 s"
    assert duration(600) == "10 min"
    assert duration(3 * 3600) == "3.0 h"


def test_ack_rows_put_the_network_first() -> None:
    week: list[dict[str, Any]] = [{"site_id": None, "p50_s": 10}, {"site_id": "a", "p50_s": 10}]
    month: list[dict[str, Any]] = [
        {"site_id": None, "p50_s": 20},
        {"site_id": "a", "p50_s": 20},
        {"site_id": "b"},
    ]
    rows = ack_rows(week, month)
    assert [r["site_id"] for r in rows] == [None, "a", "b"]
    assert rows[2]["week"] is None

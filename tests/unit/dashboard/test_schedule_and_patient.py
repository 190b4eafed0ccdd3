"""The site week (lanes, local times, opening hours) and the patient's PHQ-9 chart data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.dashboard.patient import phq9_chart, series_progress
from services.dashboard.schedule import bounds, build_week, week_start

SITE: dict[str, Any] = {
    "site_id": "west",
    "timezone": "America/Los_Angeles",
    "hours": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    "treatment_rooms": 2,
    "therapists": 1,
}
MONDAY = date(2026, 11, 23)


def appt(aid: str, resource: str, start: str, end: str, **kw: Any) -> dict[str, Any]:
    return {
        "appointment_id": aid,
        "patient_id": "p-1",
        "kind": kw.get("kind", "dosing"),
        "status": kw.get("status", "proposed"),
        "sequence": 1,
        "resource": resource,
        "start": start,
        "end": end,
    }


def test_the_week_starts_on_monday_in_the_site_time_zone() -> None:
    assert week_start(date(2026, 11, 26)) == MONDAY
    begin, end = bounds(SITE, MONDAY)
    assert begin == datetime(2026, 11, 23, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert (end - begin).days == 7


def test_a_lane_per_room_and_therapist_with_weekends_closed() -> None:
    week = build_week(SITE, [], MONDAY)
    assert [lane.resource for lane in week.lanes] == ["room-1", "room-2", "therapist-1"]
    cells = week.lanes[0].cells
    assert [c.open_left is not None for c in cells] == [True] * 5 + [False] * 2
    # the visible span is opening hours plus an hour either side: 08:00-18:00
    assert cells[0].open_left == 10.0
    assert cells[0].open_width == 80.0


def test_appointments_land_in_their_lane_and_local_day_at_local_time() -> None:
    # 17:00 UTC on Wednesday is 09:00 in Los Angeles (PST, UTC-8)
    a = appt("a", "room-2", "2026-11-25T17:00:00+00:00", "2026-11-25T20:00:00+00:00")
    b = appt("b", "therapist-1", "2026-11-27T00:30:00+00:00", "2026-11-27T01:00:00+00:00")
    week = build_week(SITE, [a, b], MONDAY)
    room2 = week.lanes[1].cells
    [block] = room2[2].blocks
    assert (block.local_start, block.local_end) == ("09:00", "12:00")
    assert block.left == 10.0
    assert block.width == 30.0
    assert block.actions == ("confirm", "cancel")
    # 00:30 UTC Friday is 16:30 Thursday in Los Angeles
    [late] = week.lanes[2].cells[3].blocks
    assert late.local_start == "16:30"


def test_appointments_outside_the_week_or_on_unknown_resources_are_left_out() -> None:
    outside = appt("x", "room-1", "2026-12-01T17:00:00+00:00", "2026-12-01T20:00:00+00:00")
    unknown = appt("y", "room-9", "2026-11-25T17:00:00+00:00", "2026-11-25T20:00:00+00:00")
    week = build_week(SITE, [outside, unknown], MONDAY)
    assert all(not c.blocks for lane in week.lanes for c in lane.cells)


def test_confirmed_appointments_offer_complete_no_show_and_cancel_final_ones_nothing() -> None:
    c = appt(
        "c", "room-1", "2026-11-24T17:00:00+00:00", "2026-11-24T20:00:00+00:00", status="confirmed"
    )
    d = appt(
        "d", "room-1", "2026-11-25T17:00:00+00:00", "2026-11-25T20:00:00+00:00", status="completed"
    )
    week = build_week(SITE, [c, d], MONDAY)
    assert week.lanes[0].cells[1].blocks[0].actions == ("complete", "no-show", "cancel")
    assert week.lanes[0].cells[2].blocks[0].actions == ()


def test_the_chart_has_a_point_per_scored_measure_and_the_response_line_at_half_baseline() -> None:
    def m(source: str, total: int | None, worsening: bool | None = None) -> dict[str, Any]:
        return {
            "source": source,
            "at": "2026-11-24T10:00:00Z",
            "phq9_total": total,
            "worsening": worsening,
            "suicidal_ideation": None,
            "phq9_item9_positive": False,
        }

    data = {
        "baseline_total": 18,
        "measures": [m("intake", 18), m("checkin", None), m("checkin", 12, True)],
    }
    chart = phq9_chart(data)
    assert [p["y"] for p in chart["points"]] == [18, 12]
    assert [p["worsening"] for p in chart["points"]] == [False, True]
    assert chart["response_line"] == 9.0
    assert chart["remission_line"] == 5


def test_series_progress_counts_completed_doses_of_those_still_planned() -> None:
    appts = [
        appt("1", "room-1", "2026-11-24T17:00:00+00:00", "x", status="completed"),
        appt("2", "room-1", "2026-11-26T17:00:00+00:00", "x", status="cancelled"),
        appt("3", "room-1", "2026-11-28T17:00:00+00:00", "x", status="no_show"),
        appt("4", "room-1", "2026-11-30T17:00:00+00:00", "x", status="confirmed"),
        appt("5", "therapist-1", "2026-11-25T17:00:00+00:00", "x", kind="integration"),
    ]
    p = series_progress(appts)
    assert (p["doses_completed"], p["doses_planned"], p["no_shows"]) == (1, 3, 1)
    assert p["next"]["appointment_id"] == "4"


def test_a_block_carries_its_data_attributes_and_escapes_what_came_from_outside() -> None:
    a = appt("a-1", "room-1", "2026-11-23T17:00:00+00:00", "2026-11-23T20:00:00+00:00")
    a["patient_id"] = 'p-"><script>x</script>'
    cell = build_week(SITE, [a], MONDAY).lanes[0].cells[0]
    [block] = cell.blocks
    html = str(cell.blocks_html)
    assert html.startswith('<div class="block dosing proposed" data-appointment-id="a-1" ')
    for attr in (
        'data-status="proposed"',
        'data-local-start="09:00"',
        'data-local-end="12:00"',
        'data-kind="dosing"',
        'data-seq="1"',
        f'style="{block.style}"',
    ):
        assert attr in html
    assert "<script>" not in html
    assert 'data-patient="p-&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in html
    assert html.endswith('<span class="label">09:00 D1</span></div>')

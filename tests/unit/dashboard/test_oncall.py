"""The on-call page's shaping (services/dashboard/oncall.py): tiers resolved to names, gaps
and handoffs in the right zone, and the page's forms read back into the alerts API's bodies
(or into errors beside the form, nothing sent)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.dashboard import oncall

NY = ZoneInfo("America/New_York")
NAMES = {"c-ada": "Dr. Ada", "c-ben": "Dr. Ben"}
CLINICIAN: dict[str, Any] = {
    "clinician_id": "c-ada",
    "name": "Dr. Ada",
    "timezone": "America/New_York",
    "contact_methods": [
        {"id": "cell", "type": "sms", "address": "+15555550123"},
        {"id": "work", "type": "email", "address": "ada@clinic.example"},
    ],
    "notification_rules": [
        {"contact_method": "cell", "after_s": 0},
        {"contact_method": "work", "after_s": 300},
    ],
    "quiet_hours": {"start": "22:00", "end": "07:00"},
}


def test_tiers_name_their_targets_who_is_on_now_and_their_own_gaps_in_the_sites_zone() -> None:
    policy = {
        "tiers": [
            {"targets": [{"schedule_id": "psy"}], "recipients": []},
            {"targets": [{"clinician_id": "c-ben"}], "recipients": [{"name": "Front desk"}]},
        ]
    }
    now = {
        "tiers": [
            {"clinician_ids": ["c-ada"], "reachable": ["c-ada"], "recipients": []},
            {"clinician_ids": ["c-ben"], "reachable": [], "recipients": []},
        ]
    }
    gaps = [{"from": "2026-12-07T14:00:00+00:00", "to": "2026-12-10T14:00:00+00:00", "tier": 1}]
    tiers = oncall.site_tiers(policy, now, gaps, NAMES, {"psy": "Psychiatry"}, NY)
    assert [t.targets for t in tiers] == [["schedule Psychiatry"], ["Dr. Ben"]]
    assert tiers[0].on_now == [{"clinician_id": "c-ada", "name": "Dr. Ada", "reachable": True}]
    assert tiers[1].on_now[0]["reachable"] is False
    assert tiers[1].recipients == ["Front desk"]
    assert tiers[0].gaps == ["Mon 07 Dec 09:00 to Thu 10 Dec 09:00"]  # New York time
    assert tiers[1].gaps == []


def test_an_unknown_clinician_shows_by_id_and_an_empty_tier_says_nobody() -> None:
    policy = {"tiers": [{"targets": [{"schedule_id": "gone"}], "recipients": []}]}
    now: dict[str, Any] = {"tiers": [{"clinician_ids": [], "reachable": [], "recipients": []}]}
    (tier,) = oncall.site_tiers(policy, now, [], {}, {}, NY)
    assert tier.targets == ["schedule gone"]
    assert tier.nobody
    assert oncall.name_of({}, "c-x") == "c-x"


def test_handoffs_read_in_the_schedules_zone_with_nobody_for_an_empty_side() -> None:
    handoffs = [
        {"at": "2026-12-07T14:00:00Z", "before": [], "after": ["c-ada"]},
        {"at": "2026-12-08T14:00:00Z", "before": ["c-ada"], "after": ["c-ada", "c-ben"]},
    ]
    assert oncall.handoff_lines(handoffs, NAMES, NY) == [
        {"at": "Mon 07 Dec 09:00", "before": "nobody", "after": "Dr. Ada"},
        {"at": "Tue 08 Dec 09:00", "before": "Dr. Ada", "after": "Dr. Ada, Dr. Ben"},
    ]


def test_rules_and_rotations_in_words() -> None:
    assert oncall.rule_lines(CLINICIAN) == ["sms (cell) at 0 s", "email (work) at 300 s"]
    weekly = {
        "participants": ["c-ada", "c-ben"],
        "shift": "weekly",
        "handoff": "09:00",
        "handoff_weekday": "mon",
        "start": "2026-12-07",
    }
    assert oncall.rotation_line(weekly, NAMES) == (
        "weekly at mon 09:00 from 2026-12-07: Dr. Ada, Dr. Ben"
    )
    assert oncall.rotation_line({**weekly, "shift": "daily"}, NAMES).startswith("daily at 09:00")


def test_a_clinicians_prefilled_form_reads_back_into_the_same_body() -> None:
    form = {
        "name": CLINICIAN["name"],
        "timezone": CLINICIAN["timezone"],
        "contact_methods": oncall.methods_text(CLINICIAN),
        "notification_rules": oncall.rules_text(CLINICIAN),
        "quiet_start": "22:00",
        "quiet_end": "07:00",
    }
    body, errors = oncall.clinician_body(form)
    assert errors == []
    assert body == {k: v for k, v in CLINICIAN.items() if k != "clinician_id"}


def test_a_clinician_form_that_cannot_be_read_names_each_bad_line() -> None:
    form = {
        "name": "Dr. Ada",
        "timezone": "UTC",
        "contact_methods": "cell sms\n\nwork email ada@clinic.example",
        "notification_rules": "work soon",
        "quiet_start": "22:00",
        "quiet_end": "",
    }
    _, errors = oncall.clinician_body(form)
    assert [e["field"] for e in errors] == [
        "contact_methods[0]",
        "notification_rules[0]",
        "quiet_hours",
    ]


def test_no_quiet_hours_is_null() -> None:
    body, errors = oncall.clinician_body({"name": "A", "timezone": "UTC"})
    assert body["quiet_hours"] is None
    assert errors == []


def test_a_schedules_prefilled_form_reads_back_and_daily_lines_may_omit_the_weekday() -> None:
    schedule = {
        "rotations": [
            {
                "participants": ["c-ada", "c-ben"],
                "shift": "weekly",
                "handoff": "09:00",
                "handoff_weekday": "fri",
                "start": "2026-12-07",
            }
        ]
    }
    form = {"name": " Psy ", "timezone": "UTC", "rotations": oncall.rotations_text(schedule)}
    body, errors = oncall.schedule_body(form)
    assert errors == []
    assert body == {"name": "Psy", "timezone": "UTC", "rotations": schedule["rotations"]}
    body, errors = oncall.schedule_body({"rotations": "c-ada daily 08:30 2026-12-07"})
    assert errors == []
    assert body["rotations"][0]["handoff_weekday"] == "mon"
    _, errors = oncall.schedule_body({"rotations": "c-ada daily 08:30 someday 2026-12-07\nx"})
    assert [e["field"] for e in errors] == ["rotations[0]", "rotations[1]"]


def test_an_overrides_local_window_is_read_in_the_schedules_zone() -> None:
    form = {
        "from": "2026-12-24T17:00",
        "to": "2026-12-26T09:00",
        "clinician_id": "c-ben",
        "replaces": "c-ada",
    }
    body, errors = oncall.override_body(form, "America/New_York")
    assert errors == []
    assert datetime.fromisoformat(body["from"]) == datetime(2026, 12, 24, 22, 0, tzinfo=UTC)
    assert body["to"] == "2026-12-26T09:00:00-05:00"
    assert body["replaces"] == "c-ada"
    body, _ = oncall.override_body({**form, "replaces": ""}, "America/New_York")
    assert body["replaces"] is None  # added, standing in for nobody


def test_an_override_without_times_is_refused_before_anything_is_sent() -> None:
    _, errors = oncall.override_body({"from": "", "to": "tomorrow"}, "UTC")
    assert [e["field"] for e in errors] == ["from", "to"]


def test_an_unknown_zone_reads_as_utc() -> None:
    assert oncall.zone("Mars/Olympus") == ZoneInfo("UTC")
    assert oncall.zone(None) == ZoneInfo("UTC")


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True),
            st.sampled_from(["sms", "email", "webhook"]),
            st.from_regex(r"[^\s]{1,20}( [^\s]{1,5})?", fullmatch=True),
        ),
        max_size=5,
    )
)
def test_contact_method_lines_round_trip(methods: list[tuple[str, str, str]]) -> None:
    c = {"contact_methods": [{"id": i, "type": t, "address": a} for i, t, a in methods]}
    body, errors = oncall.clinician_body({"contact_methods": oncall.methods_text(c)})
    assert errors == []
    assert body["contact_methods"] == c["contact_methods"]


def test_site_ids_keep_only_ids_the_services_accept() -> None:
    assert oncall.site_ids(" site-a, ,../alerts,site.b:2,a/b ") == ["site-a", "site.b:2"]
    assert oncall.site_ids(None) == []
    assert len(oncall.site_ids(",".join(f"s{i}" for i in range(80)))) == 50
    assert not oncall.is_id("x" * 129)

"""Spacing counts every dose the patient has (docs/domain.md, "Who is scheduled, and
when"): every new dose keeps ``min_gap`` (standard 48 h, retreat 24 h) from each of
the patient's other doses, completed ones included, and no rolling 7 days holds
more than ``max_doses_per_7_days`` (standard 2, retreat 4), counting both."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.model import (
    RETREAT,
    STANDARD,
    Kind,
    NoFit,
    Preferences,
    Protocol,
    SeriesPlan,
    SinglePlan,
)
from services.scheduling.domain.search import Spacing, respects_spacing
from services.scheduling.domain.slots import find_series, find_single
from tests.unit.scheduling.builders import (
    WEEK,
    doses_of,
    local,
    site,
    spacing_violations,
    violations,
)

SITE = site(days=WEEK)  # New York, every day 08:00-18:00, 2 rooms, 2 therapists
NOW = local(SITE, 2026, 11, 22, 12)  # Sunday noon: the earliest start is Monday noon
T = local(SITE, 2026, 12, 21, 10)  # a Monday 10:00, on the slot grid
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def single_at(
    moment: datetime, doses: Sequence[datetime], protocol: Protocol = STANDARD
) -> SinglePlan | NoFit:
    """A dose asked for exactly at ``moment`` (the window is that one instant)."""
    return find_single(
        SITE,
        Calendar(),
        protocol,
        Preferences(),
        NOW,
        kind=Kind.dosing,
        not_before=moment,
        not_after=moment,
        sequence=1,
        patient_doses=doses,
    )


def fits(moment: datetime, doses: Sequence[datetime], protocol: Protocol = STANDARD) -> bool:
    found = single_at(moment, doses, protocol)
    if isinstance(found, NoFit):
        assert found == NoFit("no_capacity_within_window")
        return False
    assert found.dose.start == moment
    return True


def test_the_slot_fits_with_no_other_doses() -> None:
    assert fits(T, [])


@pytest.mark.parametrize("protocol", [STANDARD, RETREAT], ids=["standard_48h", "retreat_24h"])
def test_a_dose_exactly_min_gap_after_another_is_allowed(protocol: Protocol) -> None:
    assert fits(T, [T - protocol.min_gap], protocol)


@pytest.mark.parametrize("protocol", [STANDARD, RETREAT], ids=["standard_48h", "retreat_24h"])
def test_a_dose_one_second_less_than_min_gap_after_another_is_refused(protocol: Protocol) -> None:
    assert not fits(T, [T - protocol.min_gap + SECOND], protocol)


@pytest.mark.parametrize("protocol", [STANDARD, RETREAT], ids=["standard_48h", "retreat_24h"])
def test_a_dose_exactly_min_gap_before_a_later_one_is_allowed(protocol: Protocol) -> None:
    assert fits(T, [T + protocol.min_gap], protocol)


@pytest.mark.parametrize("protocol", [STANDARD, RETREAT], ids=["standard_48h", "retreat_24h"])
def test_a_dose_one_second_less_than_min_gap_before_a_later_one_is_refused(
    protocol: Protocol,
) -> None:
    assert not fits(T, [T + protocol.min_gap - SECOND], protocol)


def test_a_third_standard_dose_exactly_7_days_after_the_first_of_two_is_allowed() -> None:
    assert fits(T, [T - 7 * DAY, T - 3 * DAY])


def test_a_third_standard_dose_one_second_inside_7_days_is_refused() -> None:
    assert not fits(T, [T - 7 * DAY + SECOND, T - 3 * DAY])


def test_the_cap_counts_later_doses_too() -> None:
    assert fits(T, [T + 3 * DAY, T + 7 * DAY])
    assert not fits(T, [T + 3 * DAY, T + 7 * DAY - SECOND])


def test_the_cap_counts_doses_on_both_sides() -> None:
    assert fits(T, [T - 3 * DAY, T + 4 * DAY])
    assert not fits(T, [T - 3 * DAY, T + 4 * DAY - SECOND])


def test_retreat_allows_a_fourth_dose_in_7_days_but_not_a_fifth() -> None:
    three = [T - 3 * DAY, T - 2 * DAY, T - DAY]
    assert fits(T, three, RETREAT)
    assert fits(T, [T - 7 * DAY, *three], RETREAT)
    assert not fits(T, [T - 7 * DAY + SECOND, *three], RETREAT)


def test_completed_doses_in_the_past_count() -> None:
    assert not fits(NOW + DAY, [NOW - HOUR])  # 25 h after a dose completed yesterday


def test_rebooking_looks_past_doses_out_of_reach() -> None:
    far = [T - 30 * DAY, T + 30 * DAY]
    assert fits(T, far)


def test_respects_spacing_reads_exact_boundaries() -> None:
    gap, week = STANDARD.min_gap, timedelta(days=7)
    assert respects_spacing(T, [T - gap], STANDARD)
    assert not respects_spacing(T, [T - gap + SECOND], STANDARD)
    assert respects_spacing(T, [T - week, T - gap], STANDARD)
    assert not respects_spacing(T, [T - week + SECOND, T - gap], STANDARD)


def test_spacing_counts_existing_and_planned_doses_together() -> None:
    spacing = Spacing(STANDARD, [T - 7 * DAY + HOUR])
    assert spacing.allows(T)
    assert spacing.allows(T, planned=[T - 7 * DAY - HOUR])
    assert not spacing.allows(T, planned=[T - 3 * DAY])
    assert not spacing.allows(T, planned=[T + HOUR])


def test_spacing_reaches_a_gap_longer_than_the_week() -> None:
    weekly = Protocol(name="weekly-plus", min_gap=timedelta(days=8), doses=2)
    spacing = Spacing(weekly, [T - 8 * DAY + SECOND])
    assert not spacing.allows(T)
    assert Spacing(weekly, [T - 8 * DAY]).allows(T)


def series(doses: Sequence[datetime], protocol: Protocol = STANDARD) -> SeriesPlan:
    found = find_series(SITE, Calendar(), protocol, Preferences(), NOW, patient_doses=doses)
    assert isinstance(found, SeriesPlan), found
    assert (
        violations(found.sessions, site_=SITE, calendar=Calendar(), now=NOW, protocol=protocol)
        == []
    )
    return found


def all_doses(found: SeriesPlan, doses: Sequence[datetime]) -> list[datetime]:
    return [*doses, *(d.start for d in doses_of(found.sessions))]


def test_a_series_keeps_the_gap_from_a_dose_the_patient_already_has() -> None:
    booked = [local(SITE, 2026, 11, 23, 14)]  # Monday 14:00, say a maintenance dose
    found = series(booked)
    assert spacing_violations(all_doses(found, booked), STANDARD) == []
    assert found.first_start == local(SITE, 2026, 11, 25, 14)  # exactly 48 h later


def test_a_series_counts_a_completed_dose_in_the_weekly_cap() -> None:
    completed = [local(SITE, 2026, 11, 21, 12)]  # Saturday noon, before now
    found = series(completed)
    starts = [d.start for d in doses_of(found.sessions)]
    assert starts[0] == local(SITE, 2026, 11, 23, 12)  # exactly 48 h after it
    # Saturday and Monday fill the week from Saturday: the second waits until then.
    assert starts[1] == local(SITE, 2026, 11, 28, 12)
    assert spacing_violations(all_doses(found, completed), STANDARD) == []


def test_a_series_steps_around_doses_booked_in_its_weeks() -> None:
    booked = [local(SITE, 2026, 11, 26, 9), local(SITE, 2026, 12, 7, 9)]
    found = series(booked)
    assert spacing_violations(all_doses(found, booked), STANDARD) == []
    assert len(doses_of(found.sessions)) == STANDARD.doses


def test_a_retreat_series_counts_other_doses_in_its_cap_of_4() -> None:
    booked = [local(SITE, 2026, 11, 24, 12), local(SITE, 2026, 11, 25, 12)]
    found = series(booked, RETREAT)
    assert spacing_violations(all_doses(found, booked), RETREAT) == []


def test_no_series_when_other_doses_leave_no_room_within_the_window() -> None:
    # A dose every 48 h for the whole horizon leaves no gap for any series dose.
    crowded = [NOW + timedelta(hours=48 * n) for n in range(-1, 50)]
    found = find_series(SITE, Calendar(), STANDARD, Preferences(), NOW, patient_doses=crowded)
    assert found == NoFit("no_capacity_within_horizon")

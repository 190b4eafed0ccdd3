"""Between-session monitoring (docs/domain.md, "Monitoring between sessions"): monitored
from the first completed dosing (or maintenance) session until discharge; a check-in is
due every interval and missed when none arrived by due + grace."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.alerts.domain.monitoring import (
    Miss,
    Monitor,
    MonitoringRule,
    on_checkin,
    on_deadline,
    on_discharge,
    on_dosing_completed,
)
from tests.unit.alerts.builders import T0, sec

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
RULE = MonitoringRule(interval=DAY, grace=12 * HOUR, threshold=2)


def started(at_offset: timedelta = timedelta(0)) -> Monitor:
    return on_dosing_completed(Monitor(), T0 + at_offset, RULE)


# --- the rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "grace", "threshold"),
    [
        (timedelta(0), HOUR, 1),
        (-DAY, HOUR, 1),
        (DAY, -sec(1), 1),
        (DAY, HOUR, 0),
        (DAY, HOUR, -1),
    ],
)
def test_a_rule_without_positive_interval_nonnegative_grace_and_threshold_is_rejected(
    interval: timedelta, grace: timedelta, threshold: int
) -> None:
    with pytest.raises(ValueError, match="interval > 0"):
        MonitoringRule(interval=interval, grace=grace, threshold=threshold)


def test_a_zero_grace_and_threshold_one_are_allowed() -> None:
    rule = MonitoringRule(interval=sec(1), grace=timedelta(0), threshold=1)
    assert rule.grace == timedelta(0)


# --- starting and stopping -----------------------------------------------------------


def test_nobody_is_monitored_before_a_dose() -> None:
    m = Monitor()
    assert not m.active
    assert m.deadline(RULE) is None
    assert on_deadline(m, T0 + 100 * DAY, RULE) == (m, [])


def test_the_first_completed_dose_starts_monitoring() -> None:
    m = started()
    assert m.active
    assert m.started_at == T0
    assert m.next_due_at == T0 + DAY
    assert m.deadline(RULE) == T0 + DAY + 12 * HOUR
    assert m.consecutive_misses == 0


def test_a_second_completed_dose_does_not_move_the_schedule() -> None:
    m = started()
    assert on_dosing_completed(m, T0 + 3 * DAY, RULE) == m
    assert on_dosing_completed(m, T0 - DAY, RULE) == m


def test_discharge_stops_monitoring() -> None:
    m = on_discharge(started(), T0 + 2 * DAY)
    assert not m.active
    assert m.discharged_at == T0 + 2 * DAY
    assert m.deadline(RULE) is None
    assert on_deadline(m, T0 + 30 * DAY, RULE) == (m, [])


def test_discharge_at_the_very_instant_of_the_start_stops_monitoring() -> None:
    assert not on_discharge(started(), T0).active


@pytest.mark.parametrize("completed", [T0 - DAY, T0 - sec(1), T0])
def test_a_dose_completed_at_or_before_a_known_discharge_does_not_start(
    completed: datetime,
) -> None:
    m = on_discharge(Monitor(), T0)
    assert on_dosing_completed(m, completed, RULE) == m
    assert not m.active


def test_a_dose_after_the_discharge_restarts_monitoring_readmission() -> None:
    m = on_deadline(started(), T0 + 2 * DAY, RULE)[0]
    assert m.consecutive_misses == 1
    m = on_discharge(m, T0 + 3 * DAY)
    m = on_dosing_completed(m, T0 + 10 * DAY, RULE)
    assert m.active
    assert m.started_at == T0 + 10 * DAY
    assert m.next_due_at == T0 + 11 * DAY
    assert m.consecutive_misses == 0
    assert m.deadline(RULE) == T0 + 11 * DAY + 12 * HOUR


def test_an_out_of_order_discharge_older_than_a_later_start_does_not_stop() -> None:
    # discharged at day 3, readmitted at day 10; a stale discharge of day 1 arrives late
    m = on_dosing_completed(on_discharge(started(), T0 + 3 * DAY), T0 + 10 * DAY, RULE)
    late = on_discharge(m, T0 + DAY)
    assert late.active
    assert late.discharged_at == T0 + 3 * DAY
    assert late.deadline(RULE) == m.deadline(RULE)


def test_a_discharge_before_the_start_arriving_after_it_does_not_stop() -> None:
    m = started(5 * DAY)
    late = on_discharge(m, T0 + DAY)
    assert late.active
    assert late.deadline(RULE) == m.deadline(RULE)


def test_a_discharge_arriving_before_the_dose_it_follows_keeps_the_patient_unmonitored() -> None:
    m = on_discharge(Monitor(), T0 + 5 * DAY)
    m = on_dosing_completed(m, T0 + DAY, RULE)
    assert not m.active
    assert m.deadline(RULE) is None


# --- check-ins -----------------------------------------------------------------------


def test_a_checkin_ends_the_run_of_misses_and_moves_the_due_time() -> None:
    m, misses = on_deadline(started(), T0 + 3 * DAY, RULE)
    assert [x.consecutive for x in misses] == [1, 2]
    checkin = T0 + 3 * DAY + 5 * HOUR
    m = on_checkin(m, checkin, RULE)
    assert m.consecutive_misses == 0
    assert m.last_checkin_at == checkin
    assert m.next_due_at == checkin + DAY
    assert m.deadline(RULE) == checkin + DAY + 12 * HOUR


def test_a_checkin_one_second_before_the_grace_ends_prevents_the_miss() -> None:
    m = started()
    deadline = m.deadline(RULE)
    assert deadline is not None
    m = on_checkin(m, deadline - sec(1), RULE)
    after, misses = on_deadline(m, deadline, RULE)
    assert misses == []
    assert after == m


def test_a_deadline_reached_exactly_is_a_miss() -> None:
    m = started()
    deadline = T0 + DAY + 12 * HOUR
    after, misses = on_deadline(m, deadline, RULE)
    assert misses == [Miss(due_at=T0 + DAY, deadline_at=deadline, consecutive=1)]
    assert after.consecutive_misses == 1
    assert after.next_due_at == T0 + 2 * DAY


def test_one_second_before_the_deadline_is_not_a_miss() -> None:
    m = started()
    assert on_deadline(m, T0 + DAY + 12 * HOUR - sec(1), RULE) == (m, [])


def test_a_zero_grace_deadline_is_the_due_time_itself() -> None:
    rule = MonitoringRule(interval=DAY, grace=timedelta(0), threshold=1)
    m = on_dosing_completed(Monitor(), T0, rule)
    assert m.deadline(rule) == T0 + DAY
    assert on_deadline(m, T0 + DAY - sec(1), rule)[1] == []
    assert len(on_deadline(m, T0 + DAY, rule)[1]) == 1


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_several_deadlines_passed_at_once_are_one_miss_each(n: int) -> None:
    m = started()
    first_deadline = T0 + DAY + 12 * HOUR
    now = first_deadline + (n - 1) * DAY + 3 * HOUR  # n deadlines passed, not n + 1
    after, misses = on_deadline(m, now, RULE)
    assert [x.consecutive for x in misses] == list(range(1, n + 1))
    assert [x.due_at for x in misses] == [T0 + (i + 1) * DAY for i in range(n)]
    assert [x.deadline_at for x in misses] == [x.due_at + 12 * HOUR for x in misses]
    assert after.consecutive_misses == n
    assert after.next_due_at == T0 + (n + 1) * DAY
    next_deadline = after.deadline(RULE)
    assert next_deadline is not None
    assert next_deadline > now


def test_misses_keep_counting_across_separate_timer_firings() -> None:
    m = started()
    m, first = on_deadline(m, T0 + DAY + 12 * HOUR, RULE)
    m, second = on_deadline(m, T0 + 2 * DAY + 12 * HOUR, RULE)
    assert [x.consecutive for x in first + second] == [1, 2]


def test_a_deadline_firing_twice_counts_one_miss() -> None:
    m = started()
    m, first = on_deadline(m, T0 + DAY + 12 * HOUR, RULE)
    again, second = on_deadline(m, T0 + DAY + 12 * HOUR, RULE)
    assert len(first) == 1
    assert second == []
    assert again == m


def test_the_limit_caps_the_misses_then_skips_to_the_present() -> None:
    m = started()
    now = T0 + DAY + 12 * HOUR + 9 * DAY  # deadlines of days 1..10: ten passed
    assert len(on_deadline(m, now, RULE)[1]) == 10
    after, misses = on_deadline(m, now, RULE, limit=3)
    assert [x.consecutive for x in misses] == [1, 2, 3]
    assert [x.due_at for x in misses] == [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    assert after.consecutive_misses == 3
    next_deadline = after.deadline(RULE)
    assert next_deadline is not None
    assert now < next_deadline <= now + RULE.interval
    # the skipped-to due time stays on the interval grid
    assert after.next_due_at == T0 + 11 * DAY
    # and nothing is missed again at the same instant
    assert on_deadline(after, now, RULE, limit=3) == (after, [])


def test_the_limit_between_deadlines_skips_to_the_next_future_one() -> None:
    m = started()
    now = T0 + DAY + 12 * HOUR + 9 * DAY + 5 * HOUR
    after, misses = on_deadline(m, now, RULE, limit=3)
    assert len(misses) == 3
    assert after.next_due_at == T0 + 11 * DAY
    assert after.deadline(RULE) == T0 + 11 * DAY + 12 * HOUR


def test_an_older_checkin_arriving_late_is_ignored() -> None:
    m = on_checkin(started(), T0 + 20 * HOUR, RULE)
    m, _ = on_deadline(m, T0 + 20 * HOUR + DAY + 12 * HOUR, RULE)
    assert m.consecutive_misses == 1
    assert on_checkin(m, T0 + 10 * HOUR, RULE) == m
    assert on_checkin(m, T0 + 20 * HOUR, RULE) == m  # the same one again


def test_a_checkin_before_the_dose_is_remembered_but_does_not_anchor() -> None:
    m = on_checkin(Monitor(), T0 - HOUR, RULE)
    assert not m.active
    assert m.last_checkin_at == T0 - HOUR
    assert m.next_due_at is None
    m = on_dosing_completed(m, T0, RULE)
    assert m.next_due_at == T0 + DAY


def test_a_checkin_after_the_dose_that_arrives_first_anchors_the_first_due_time() -> None:
    # check-in at T0+5h is processed before the dose completed at T0 (another topic)
    m = on_checkin(Monitor(), T0 + 5 * HOUR, RULE)
    assert not m.active
    m = on_dosing_completed(m, T0, RULE)
    assert m.active
    assert m.started_at == T0
    assert m.next_due_at == T0 + 5 * HOUR + DAY


def test_a_checkin_at_the_instant_of_the_dose_anchors_like_the_dose() -> None:
    m = on_dosing_completed(on_checkin(Monitor(), T0, RULE), T0, RULE)
    assert m.next_due_at == T0 + DAY
    assert on_checkin(started(), T0, RULE).next_due_at == T0 + DAY


def test_a_checkin_while_discharged_is_remembered_only() -> None:
    m = on_discharge(started(), T0 + DAY)
    after = on_checkin(m, T0 + 2 * DAY, RULE)
    assert after.last_checkin_at == T0 + 2 * DAY
    assert after.next_due_at == m.next_due_at
    assert after.deadline(RULE) is None


def test_a_late_checkin_from_before_a_readmission_does_not_reset_the_new_run() -> None:
    m = on_discharge(started(), T0 + DAY)
    m = on_dosing_completed(m, T0 + 10 * DAY, RULE)
    m, misses = on_deadline(m, T0 + 11 * DAY + 12 * HOUR, RULE)
    assert len(misses) == 1
    after = on_checkin(m, T0 + 5 * DAY, RULE)  # before the new start, arriving late
    assert after.consecutive_misses == 1
    assert after.next_due_at == m.next_due_at
    assert after.last_checkin_at == T0 + 5 * DAY


def test_a_check_in_processed_after_misses_it_predates_does_not_recount_them() -> None:
    rule = MonitoringRule(interval=timedelta(hours=24), grace=timedelta(hours=12), threshold=2)
    m = on_dosing_completed(Monitor(), T0, rule)
    # two deadlines pass (T0+36h, T0+60h) before a check-in from T0+1h is processed
    m, misses = on_deadline(m, T0 + timedelta(hours=61), rule)
    assert [x.consecutive for x in misses] == [1, 2]
    planned = m.next_due_at
    m = on_checkin(m, T0 + timedelta(hours=1), rule)
    assert m.consecutive_misses == 0
    assert m.next_due_at == planned
    _, again = on_deadline(m, T0 + timedelta(hours=62), rule)
    assert again == []

"""Properties of missed check-in detection over random rules, starts and outages."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.domain.monitoring import (
    Miss,
    Monitor,
    MonitoringRule,
    on_checkin,
    on_deadline,
    on_dosing_completed,
)
from tests.unit.alerts.builders import T0, sec

FAST = settings(max_examples=200, deadline=None)

# Intervals of at least an hour over at most 40 days: under the default limit of 1000.
rules = st.builds(
    MonitoringRule,
    interval=st.integers(3600, 7 * 86400).map(sec),
    grace=st.integers(0, 2 * 86400).map(sec),
    threshold=st.integers(1, 5),
)


@FAST
@given(rules, st.integers(0, 40 * 86400).map(sec))
def test_one_late_timer_finds_the_same_misses_as_a_timer_on_time(
    rule: MonitoringRule, elapsed: timedelta
) -> None:
    m = on_dosing_completed(Monitor(), T0, rule)
    now = T0 + elapsed
    late, late_misses = on_deadline(m, now, rule)

    on_time, on_time_misses = m, []
    while (d := on_time.deadline(rule)) is not None and d <= now:
        on_time, found = on_deadline(on_time, d, rule)
        assert len(found) == 1
        on_time_misses += found

    assert late_misses == on_time_misses
    assert late == on_time


@FAST
@given(rules, st.integers(0, 40 * 86400).map(sec))
def test_misses_are_consecutive_one_interval_apart_and_the_next_deadline_is_ahead(
    rule: MonitoringRule, elapsed: timedelta
) -> None:
    m = on_dosing_completed(Monitor(), T0, rule)
    now = T0 + elapsed
    after, misses = on_deadline(m, now, rule)
    first_deadline = T0 + rule.interval + rule.grace
    expected = 0 if now < first_deadline else (now - first_deadline) // rule.interval + 1
    assert len(misses) == expected
    assert [x.consecutive for x in misses] == list(range(1, expected + 1))
    assert all(x.deadline_at == x.due_at + rule.grace <= now for x in misses)
    assert all(b.due_at - a.due_at == rule.interval for a, b in itertools.pairwise(misses))
    deadline = after.deadline(rule)
    assert deadline is not None
    assert deadline > now


@FAST
@given(rules, st.integers(0, 40 * 86400).map(sec), st.integers(0, 20))
def test_the_limit_bounds_the_misses_and_always_leaves_a_future_deadline(
    rule: MonitoringRule, elapsed: timedelta, limit: int
) -> None:
    m = on_dosing_completed(Monitor(), T0, rule)
    now = T0 + elapsed
    unlimited = on_deadline(m, now, rule)[1]
    after, misses = on_deadline(m, now, rule, limit=limit)
    assert misses == unlimited[:limit]
    deadline = after.deadline(rule)
    assert deadline is not None
    assert now < deadline <= now + rule.interval + rule.grace
    assert after.next_due_at is not None
    # still on the grid of due times
    assert (after.next_due_at - (T0 + rule.interval)) % rule.interval == timedelta(0)
    assert on_deadline(after, now, rule, limit=limit) == (after, [])


@FAST
@given(
    rules,
    st.lists(st.integers(0, 20 * 86400), min_size=1, max_size=20),
)
def test_a_checkin_always_ends_the_run_and_puts_the_deadline_after_it(
    rule: MonitoringRule, offsets: list[int]
) -> None:
    m = on_dosing_completed(Monitor(), T0, rule)
    for offset in sorted(offsets):
        now = T0 + sec(offset)
        m, misses = on_deadline(m, now, rule)
        m = on_checkin(m, now, rule)
        if m.last_checkin_at == now:
            assert m.consecutive_misses == 0
            assert m.next_due_at == now + rule.interval
        deadline = m.deadline(rule)
        assert deadline is not None
        assert deadline > now
        assert all(isinstance(x, Miss) for x in misses)

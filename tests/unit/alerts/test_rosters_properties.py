"""Properties of on-call rules (services/alerts/domain/rosters.py) over random schedules,
overrides and windows around the 2026 daylight-saving changes: ``handoffs`` lists exactly
the instants at which ``oncall_at`` changes, and ``coverage_gaps`` exactly the maximal
windows without cover."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.domain.rosters import (
    Clinician,
    ContactMethod,
    NotificationRule,
    Override,
    Rotation,
    Schedule,
    ScheduleTarget,
    Target,
    coverage_gaps,
    handoffs,
    local_instant,
    oncall_at,
    resolve_targets,
)

FAST = settings(max_examples=150, deadline=None)
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]
PEOPLE = ["a", "b", "c", "d"]
# Around New York's and Berlin's changes (March, October/November) and Lord Howe's (April, October).
BASES = [datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 10, 22, tzinfo=UTC)]
BASES += [datetime(2026, 4, 2, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)]
ONE_US = timedelta(microseconds=1)

# Handoff times including ones inside or at the edge of a gap or a repeated hour.
handoff_times = st.sampled_from(
    [time(0), time(1, 30), time(1, 45), time(2), time(2, 15), time(2, 30), time(3), time(9)]
) | st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))

rotations = st.builds(
    Rotation,
    participants=st.lists(st.sampled_from(PEOPLE), min_size=0, max_size=4).map(tuple),
    shift=st.sampled_from(["daily", "weekly"]),
    handoff=handoff_times,
    handoff_weekday=st.integers(0, 6),
    start=st.dates(date(2026, 2, 20), date(2026, 11, 5)),
)


@st.composite
def overrides(draw: st.DrawFn, base: datetime) -> Override:
    start = base + timedelta(minutes=draw(st.integers(-3 * 1440, 14 * 1440)))
    end = start + timedelta(minutes=draw(st.integers(1, 5 * 1440)))
    return Override(
        draw(st.uuids()).hex,
        start,
        end,
        draw(st.sampled_from(PEOPLE)),
        draw(st.none() | st.sampled_from(PEOPLE)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Schedule, datetime, datetime]:
    base = draw(st.sampled_from(BASES))
    schedule = Schedule(
        "s",
        draw(st.sampled_from(ZONES)),
        tuple(draw(st.lists(rotations, min_size=1, max_size=3))),
        tuple(draw(st.lists(overrides(base), max_size=4))),
    )
    start = base + timedelta(minutes=draw(st.integers(0, 7 * 1440)))
    end = start + timedelta(minutes=draw(st.integers(1, 10 * 1440)))
    return schedule, start, end


fractions = st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=6)


def samples(lo: datetime, hi: datetime, fracs: list[float]) -> list[datetime]:
    """Instants in [lo, hi): its ends, and some in between."""
    span = hi - lo
    points = [lo, hi - ONE_US] + [lo + span * f for f in fracs]
    return [p for p in points if lo <= p < hi]


@FAST
@given(scenarios(), fractions)
def test_oncall_is_constant_between_handoffs_and_changes_at_each(
    scenario: tuple[Schedule, datetime, datetime], fracs: list[float]
) -> None:
    schedule, start, end = scenario
    hs = handoffs(schedule, start, end)
    times = [h.at for h in hs]
    assert times == sorted(set(times))  # in time order, none twice
    assert all(start <= t < end for t in times)
    before = oncall_at(schedule, start - ONE_US)
    for h in hs:
        assert h.before == before
        assert h.before != h.after
        assert oncall_at(schedule, h.at - ONE_US) == h.before
        assert oncall_at(schedule, h.at) == h.after
        before = h.after
    bounds = [start, *times, end]
    expected = [oncall_at(schedule, start), *(h.after for h in hs)]
    for (lo, hi), on in zip(pairwise(bounds), expected, strict=True):
        for p in samples(lo, hi, fracs):
            assert oncall_at(schedule, p) == on, (lo, hi, p)


@FAST
@given(scenarios(), st.integers(1, 10 * 1440))
def test_handoffs_of_adjacent_windows_add_up(
    scenario: tuple[Schedule, datetime, datetime], minutes: int
) -> None:
    schedule, start, end = scenario
    mid = start + timedelta(minutes=minutes)
    if mid >= end:
        mid = end
    assert handoffs(schedule, start, mid) + handoffs(schedule, mid, end) == handoffs(
        schedule, start, end
    )


def _clinicians(with_rules: set[str]) -> dict[str, Clinician]:
    method = (ContactMethod("cell", "sms", "+12025550123"),)
    rules = (NotificationRule("cell", 0),)
    return {p: Clinician(p, "UTC", method, rules if p in with_rules else ()) for p in PEOPLE}


@FAST
@given(
    scenarios(),
    st.sets(st.sampled_from(PEOPLE)),
    st.lists(st.sampled_from(["s", "unknown"]), min_size=0, max_size=2),
    fractions,
)
def test_coverage_gaps_are_exactly_the_maximal_windows_without_cover(
    scenario: tuple[Schedule, datetime, datetime],
    with_rules: set[str],
    target_ids: list[str],
    fracs: list[float],
) -> None:
    schedule, start, end = scenario
    clinicians = _clinicians(with_rules)
    tier: list[Target] = [ScheduleTarget(t) for t in target_ids]
    gaps = coverage_gaps([tier], {"s": schedule}, clinicians, start, end)
    for g in gaps:
        assert g.tier == 1
        assert start <= g.start < g.end <= end
    for g, nxt in pairwise(gaps):
        assert g.end < nxt.start  # disjoint and not adjacent: merged otherwise

    def covered(at: datetime) -> bool:
        on = resolve_targets(tier, {"s": schedule}, at)
        return any(clinicians[c].notification_rules for c in on)

    edges = sorted({start, end, *(t for g in gaps for t in (g.start, g.end))})
    for lo, hi in pairwise(edges):
        in_gap = any(g.start <= lo and hi <= g.end for g in gaps)
        for p in samples(lo, hi, fracs):
            assert covered(p) is not in_gap, (lo, hi, p)


@FAST
@given(
    st.sampled_from(ZONES),
    st.dates(date(2020, 1, 1), date(2040, 12, 31)),
    st.builds(time, st.integers(0, 23), st.integers(0, 59)),
)
def test_local_instant_is_that_wall_time_or_the_end_of_the_gap_holding_it(
    tz_name: str, day: date, wall: time
) -> None:
    tz = ZoneInfo(tz_name)
    got = local_instant(day, wall, tz)
    local = got.astimezone(tz).replace(tzinfo=None)
    want = datetime.combine(day, wall)
    if local != want:  # in a gap: the first instant after it
        assert local > want
        assert (got - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < want
    # The first occurrence: no earlier instant shows that wall time.
    for back in (timedelta(minutes=30), timedelta(hours=1)):
        assert (got - back).astimezone(tz).replace(tzinfo=None) != want
    # Later wall times on the same day are never earlier instants.
    if wall < time(23, 59):
        later = (datetime.combine(day, wall) + timedelta(minutes=1)).time()
        assert local_instant(day, later, tz) >= got

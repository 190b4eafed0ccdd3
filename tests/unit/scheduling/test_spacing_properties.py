"""Properties of docs/domain.md's "Spacing counts every dose the patient has": no
two non-cancelled doses of a patient closer than ``min_gap`` (standard 48 h, retreat
24 h) and no rolling 7 days over ``max_doses_per_7_days`` (standard 2, retreat 4),
whatever the sequence of series, cancellations, no-shows, deferrals and worsenings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from hypothesis import event, given
from hypothesis import strategies as st

from services.scheduling.domain.model import (
    RETREAT,
    STANDARD,
    Kind,
    PlannedSession,
    Preferences,
    Protocol,
    SeriesPlan,
    SinglePlan,
    Site,
)
from services.scheduling.domain.search import Searcher, Spacing, respects_spacing
from services.scheduling.domain.slots import find_series, find_single
from tests.unit.scheduling.builders import spacing_violations
from tests.unit.scheduling.strategies import FAST, busy_for, nows, prefs, sites

T = datetime(2027, 1, 11, 10, tzinfo=UTC)  # any instant; spacing has no calendar
SPACINGS = st.sampled_from(
    [
        STANDARD,
        RETREAT,
        Protocol(name="cap-1", max_doses_per_7_days=1, min_gap=timedelta(0)),
        Protocol(name="gap-8d", min_gap=timedelta(days=8), window=timedelta(days=60)),
    ]
)
# Minutes from T, with whole days and hours frequent so that boundaries are hit.
OFFSETS = st.one_of(
    st.integers(-20 * 1440, 20 * 1440),
    st.integers(-20, 20).map(lambda d: d * 1440),
    st.integers(-480, 480).map(lambda h: h * 60),
)


def at(minutes: int) -> datetime:
    return T + timedelta(minutes=minutes)


@FAST
@given(SPACINGS, st.lists(OFFSETS, max_size=8), OFFSETS)
def test_the_blocked_intervals_say_exactly_what_respects_spacing_says(
    protocol: Protocol, others: list[int], start: int
) -> None:
    doses = [at(m) for m in others]
    assert Spacing(protocol, doses).allows(at(start)) == respects_spacing(
        at(start), doses, protocol
    )


@FAST
@given(SPACINGS, st.lists(OFFSETS, max_size=8), OFFSETS, st.lists(st.floats(0, 1), max_size=5))
def test_next_allowed_is_the_first_moment_that_keeps_the_rules(
    protocol: Protocol, others: list[int], start: int, fractions: list[float]
) -> None:
    doses = [at(m) for m in others]
    found = Spacing(protocol, doses).next_allowed(at(start))
    assert found >= at(start)
    assert respects_spacing(found, doses, protocol)
    before = [
        found - timedelta.resolution,
        *(at(start) + (found - at(start)) * f for f in fractions),
    ]
    for moment in before:
        if at(start) <= moment < found:
            assert not respects_spacing(moment, doses, protocol)


@dataclass
class Patient:
    """One patient's sessions as the simulation books them: dose and integration pairs."""

    pairs: list[tuple[PlannedSession, PlannedSession]] = field(default_factory=list)

    def doses(self) -> list[datetime]:
        return [dose.start for dose, _ in self.pairs]

    def busy(self) -> list[tuple[datetime, datetime]]:
        return [(s.start, s.end) for pair in self.pairs for s in pair]

    def sessions(self) -> list[PlannedSession]:
        return [s for pair in self.pairs for s in pair]


ACTIONS = st.sampled_from(["series", "cancel", "rebook", "no_show", "defer", "worsen", "wait"])
STEPS = st.lists(st.tuples(ACTIONS, st.integers(0, 30), st.integers(1, 10 * 24)), max_size=10)


@FAST
@given(
    st.data(),
    sites(min_days=4),
    nows,
    st.sampled_from([STANDARD, RETREAT]),
    prefs | st.just(Preferences()),
    STEPS,
)
def test_no_sequence_of_plans_and_changes_breaks_the_gap_or_the_weekly_cap(
    data: st.DataObject,
    site: Site,
    now: datetime,
    protocol: Protocol,
    wish: Preferences,
    steps: list[tuple[str, int, int]],
) -> None:
    """Series planned, doses cancelled (with and without a replacement), missed,
    deferred on the day and maintenance brought forward on worsening, each planned
    with ``patient_doses`` = the patient's other live or completed doses."""
    others = data.draw(busy_for(site, now))  # other patients' bookings
    patient = Patient()
    placed = 0

    def single(kind: Kind, not_before: datetime, days: int, sequence: int) -> None:
        nonlocal placed
        found = find_single(
            site,
            others.with_booked(patient.sessions()),
            protocol,
            wish,
            now,
            kind=kind,
            not_before=not_before,
            not_after=not_before + timedelta(days=days),
            sequence=sequence,
            patient_busy=patient.busy(),
            patient_doses=patient.doses(),
        )
        if isinstance(found, SinglePlan):
            patient.pairs.append(found.sessions)
            placed += 1

    for action, pick, hours in [("series", 0, 0), *steps]:  # a course starts with a series
        future = [p for p in patient.pairs if p[0].start > now]
        chosen = future[pick % len(future)] if future else None
        if action == "series":
            plan = find_series(
                site,
                others.with_booked(patient.sessions()),
                protocol,
                wish,
                now,
                patient_busy=patient.busy(),
                patient_doses=patient.doses(),
            )
            if isinstance(plan, SeriesPlan):
                by_sequence: dict[int, list[PlannedSession]] = {}
                for s in plan.sessions:
                    by_sequence.setdefault(s.sequence, []).append(s)
                for dose, integration in by_sequence.values():
                    patient.pairs.append((dose, integration))
                placed += protocol.doses
        elif action == "worsen":  # a maintenance within 7 days
            single(Kind.maintenance, now, 7, 1)
        elif action == "wait":
            now += timedelta(hours=hours)
        elif chosen is not None:
            patient.pairs.remove(chosen)  # the caller leaves out the dose being replaced
            dose = chosen[0]
            if action == "rebook":  # cancelled by the clinic, a replacement proposed
                single(Kind.dosing, dose.start, 7, dose.sequence)
            elif action == "no_show":  # the patient did not come: a replacement pair
                now = dose.start + timedelta(hours=1)
                single(Kind.dosing, now, 14, dose.sequence)
            elif action == "defer":  # pre-dose vitals too high on the day
                now = dose.start - timedelta(minutes=30)
                single(Kind.dosing, now + timedelta(days=1), 14, dose.sequence)
        assert spacing_violations(patient.doses(), protocol) == [], (action, patient.doses())
    event(f"doses placed: {min(placed, 12) // 3 * 3}+")


def test_the_simulated_rules_are_the_domains_thresholds() -> None:
    assert (STANDARD.min_gap, STANDARD.max_doses_per_7_days) == (timedelta(hours=48), 2)
    assert (RETREAT.min_gap, RETREAT.max_doses_per_7_days) == (timedelta(hours=24), 4)
    assert spacing_violations([T, T + timedelta(hours=47)], STANDARD) != []
    assert spacing_violations([T, T + timedelta(days=2), T + timedelta(days=6)], STANDARD) != []
    assert spacing_violations([T, T + timedelta(days=2), T + timedelta(days=7)], STANDARD) == []


@FAST
@given(
    st.data(),
    sites(min_days=4),
    nows,
    st.sampled_from([STANDARD, RETREAT]),
    st.lists(st.integers(-3 * 24, 40 * 24), max_size=5),
)
def test_dropping_hopeless_series_early_never_loses_a_plan(
    data: st.DataObject, site: Site, now: datetime, protocol: Protocol, hours: list[int]
) -> None:
    """``Searcher._cannot_finish`` only saves time: the plan is the one found without it."""
    calendar = data.draw(busy_for(site, now))
    doses = sorted(now + timedelta(hours=h) for h in hours)

    def plan() -> object:
        return find_series(site, calendar, protocol, Preferences(), now, patient_doses=doses)

    pruned = plan()
    with patch.object(Searcher, "_cannot_finish", lambda *_: False):
        assert plan() == pruned

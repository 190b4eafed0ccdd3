"""Properties of the slot search over random sites, zones, hours and busy calendars."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.model import (
    WEEKDAYS,
    Kind,
    NoFit,
    Preferences,
    Protocol,
    SeriesPlan,
    Site,
    weekly_hours,
)
from services.scheduling.domain.slots import find_series, find_single
from tests.unit.scheduling.builders import violations
from tests.unit.scheduling.strategies import (
    FAST,
    REASONS,
    ZONES,
    busy_for,
    nows,
    patient_busy,
    prefs,
    protocols,
    sites,
)


def kept(given_prefs: Preferences, relaxed: tuple[str, ...]) -> Preferences:
    """The preferences a plan claims to honour: those it did not relax."""
    return Preferences(
        weekdays=None if "weekdays" in relaxed else given_prefs.weekdays,
        earliest=None if "time_of_day" in relaxed else given_prefs.earliest,
        latest=None if "time_of_day" in relaxed else given_prefs.latest,
        timezone=given_prefs.timezone,
    )


@FAST
@given(st.data(), sites(min_days=4), nows, protocols, prefs)
def test_every_series_keeps_every_rule_and_its_unrelaxed_preferences(
    data: st.DataObject, site: Site, now: datetime, protocol: Protocol, wish: Preferences
) -> None:
    calendar = data.draw(busy_for(site, now))
    mine = data.draw(patient_busy(now))
    found = find_series(site, calendar, protocol, wish, now, patient_busy=mine)
    event(found.reason if isinstance(found, NoFit) else f"plan, relaxed {found.relaxed}")
    if isinstance(found, NoFit):
        assert found.reason in REASONS
        return
    assert set(found.relaxed) <= set(wish.given())
    assert found.first_start == found.sessions[0].start < now + timedelta(days=90)
    problems = violations(
        found.sessions,
        site_=site,
        calendar=calendar,
        now=now,
        protocol=protocol,
        prefs=kept(wish, found.relaxed),
        patient_busy=mine,
    )
    assert problems == []


@FAST
@given(st.data(), sites(min_days=4), nows, protocols, prefs, st.integers(0, 30), st.integers(0, 10))
def test_every_single_dose_keeps_every_rule_and_its_window(
    data: st.DataObject,
    site: Site,
    now: datetime,
    protocol: Protocol,
    wish: Preferences,
    opens_in: int,
    length: int,
) -> None:
    calendar = data.draw(busy_for(site, now))
    mine = data.draw(patient_busy(now))
    not_before = now + timedelta(days=opens_in)
    not_after = not_before + timedelta(days=length)
    found = find_single(
        site,
        calendar,
        protocol,
        wish,
        now,
        kind=Kind.maintenance,
        not_before=not_before,
        not_after=not_after,
        sequence=1,
        preferred_therapist="therapist-1",
        patient_busy=mine,
    )
    event(found.reason if isinstance(found, NoFit) else f"plan, relaxed {found.relaxed}")
    if isinstance(found, NoFit):
        assert found.reason in REASONS
        return
    assert not_before <= found.dose.start <= not_after
    problems = violations(
        found.sessions,
        site_=site,
        calendar=calendar,
        now=now,
        protocol=protocol,
        prefs=kept(wish, found.relaxed),
        patient_busy=mine,
        series=False,
    )
    assert problems == []


@FAST
@given(st.sampled_from(ZONES), nows, protocols)
def test_a_site_open_every_day_with_nothing_booked_always_fits_a_series(
    zone: str, now: datetime, protocol: Protocol
) -> None:
    site = Site("s", zone, weekly_hours({d: (time(8), time(18)) for d in WEEKDAYS}), 1, 1)
    found = find_series(site, Calendar(), protocol, Preferences(), now)
    assert isinstance(found, SeriesPlan)
    assert found.relaxed == ()
    assert (
        violations(found.sessions, site_=site, calendar=Calendar(), now=now, protocol=protocol)
        == []
    )

"""Hypothesis strategies for the scheduling properties: sites, times, calendars."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import settings
from hypothesis import strategies as st

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.model import (
    RETREAT,
    STANDARD,
    WEEKDAYS,
    Busy,
    FitFailure,
    Preferences,
    Site,
    weekly_hours,
)

FAST = settings(max_examples=200, deadline=None)
# Zones with DST both ways, half-hour and 45-minute offsets, negative DST (Dublin),
# Ramadan changes (Casablanca) and the date line.
ZONES = [
    "America/New_York",
    "Australia/Sydney",
    "Europe/London",
    "Europe/Dublin",
    "Asia/Kolkata",
    "Asia/Tehran",
    "America/St_Johns",
    "Pacific/Chatham",
    "Africa/Casablanca",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "UTC",
]
REASONS = {reason.value for reason in FitFailure}


def quarter(q: int) -> time:
    return time(q * 15 // 60, q * 15 % 60)


@st.composite
def sites(
    draw: st.DrawFn,
    min_days: int = 1,
    zones: st.SearchStrategy[str] | None = None,
    latest_open: int = 64,
) -> Site:
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=min_days, max_size=7, unique=True))
    hours = {}
    for day in days:
        opens = draw(st.integers(0, latest_open))  # from 00:00, in quarter hours
        closes = min(opens + draw(st.integers(6, 60)), 95)  # 1.5 to 15 h, by 23:45
        hours[day] = (quarter(opens), quarter(closes))
    return Site(
        site_id="site-p",
        timezone=draw(st.sampled_from(ZONES) if zones is None else zones),
        hours=weekly_hours(hours),
        rooms=draw(st.integers(1, 4)),
        therapists=draw(st.integers(1, 3)),
    )


nows = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
protocols = st.sampled_from([STANDARD, RETREAT])
prefs = st.builds(
    Preferences,
    weekdays=st.none() | st.frozensets(st.sampled_from(WEEKDAYS), min_size=1),
    earliest=st.none() | st.integers(0, 80).map(quarter),
    latest=st.none() | st.integers(12, 95).map(quarter),
    timezone=st.none() | st.sampled_from(ZONES),
)


@st.composite
def busy_for(draw: st.DrawFn, site: Site, now: datetime) -> Calendar:
    """Bookings of the site's rooms and therapists over the next 40 days."""
    resources = site.room_ids() + site.therapist_ids()
    bookings = draw(
        st.lists(
            st.builds(
                Busy,
                resource=st.sampled_from(resources),
                start=st.integers(0, 40 * 96).map(lambda q: now + timedelta(minutes=15 * q)),
                end=st.just(now),
            ),
            max_size=80,
        )
    )
    lengths = draw(st.lists(st.integers(2, 40), min_size=len(bookings), max_size=len(bookings)))
    return Calendar.from_busy(
        Busy(b.resource, b.start, b.start + timedelta(minutes=15 * n))
        for b, n in zip(bookings, lengths, strict=True)
    )


@st.composite
def patient_busy(draw: st.DrawFn, now: datetime) -> list[tuple[datetime, datetime]]:
    starts = draw(st.lists(st.integers(0, 30 * 24), max_size=4))
    return [(now + timedelta(hours=h), now + timedelta(hours=h + 3)) for h in starts]

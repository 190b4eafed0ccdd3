"""What scheduling's repository takes and returns: frozen values, never request bodies or
driver records (docs/architecture.md, "Services and processes"); and the errors it raises
in place of the driver's (``SlotTaken``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from services.scheduling.domain.clearance import Standing
from services.scheduling.domain.model import Protocol, Site, Weekday, stored_protocol


@dataclass(frozen=True, slots=True)
class NewSite:
    """A site as its body gives it: ``protocol`` names the protocol (a preset, or
    ``custom``), ``protocol_spec`` is the body's protocol as given and
    ``protocol_numbers`` every number it resolves to."""

    name: str
    timezone: str
    hours: dict[Weekday, tuple[str, str]]  # weekday -> (opens, closes) as HH:MM
    treatment_rooms: int
    therapists: int
    protocol: str
    protocol_spec: Any
    protocol_numbers: dict[str, int | float]


@dataclass(frozen=True, slots=True)
class SiteRow:
    site_id: str
    name: str
    timezone: str
    hours: dict[Weekday, tuple[str, str]]
    treatment_rooms: int
    therapists: int
    protocol: str
    protocol_spec: Any  # the body's protocol as given (None for sites stored before 0005)
    protocol_numbers: dict[str, int | float] | None  # None before 0005
    updated_at: datetime

    def as_site(self) -> Site:
        hours = tuple(
            (day, time.fromisoformat(opens), time.fromisoformat(closes))
            for day, (opens, closes) in self.hours.items()
        )
        return Site(
            site_id=self.site_id,
            timezone=self.timezone,
            hours=hours,
            rooms=self.treatment_rooms,
            therapists=self.therapists,
        )

    def as_protocol(self) -> Protocol:
        return stored_protocol(self.protocol, self.protocol_numbers)


@dataclass(frozen=True, slots=True)
class SeriesRow:
    series_id: str
    patient_id: str
    site_id: str
    purpose: str
    protocol: str
    protocol_numbers: dict[str, int | float] | None

    def as_protocol(self) -> Protocol:
        """The protocol the series was planned with (its own numbers, whatever the site's now)."""
        return stored_protocol(self.protocol, self.protocol_numbers)


@dataclass(frozen=True, slots=True)
class NewSeries:
    """A series row to insert with its first sessions."""

    series_id: str
    patient_id: str
    site_id: str
    purpose: str
    protocol: str
    relaxed: tuple[str, ...]
    protocol_numbers: dict[str, int | float] | None = None
    intake_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewSession:
    """An appointment to insert, proposed, in a series (``repository.series.book``)."""

    appointment_id: str
    kind: str
    sequence: int
    start: datetime
    end: datetime
    resource: str
    replaces: str | None  # the appointment it replaces (the dose of a pair, or a lone session)


class SlotTaken(Exception):
    """PostgreSQL refused a booking: another transaction booked an overlapping slot of the
    room, the therapist or the patient (the appointments' exclusion constraints).
    ``repository.series.book`` raises it in place of the driver's error; the planner
    (services/scheduling/planner/booking.py) re-plans on a fresh calendar."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a rebooking sits in its series: a waitlist entry's place (None: an induction
    or a new maintenance session, which have none)."""

    series_id: str
    sequence: int
    kind: str


@dataclass(frozen=True, slots=True)
class AppointmentRow:
    appointment_id: str
    patient_id: str
    site_id: str
    series_id: str
    kind: str
    sequence: int
    status: str
    start: datetime
    end: datetime
    resource: str
    reason: str
    cause: str | None
    replaces: str | None
    relaxed: tuple[str, ...]  # the series' preferences it could not honour


@dataclass(frozen=True, slots=True)
class DoseRow:
    """A dosing or maintenance session of a series, as the induction's count needs it."""

    appointment_id: str
    sequence: int
    status: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class BookingRow:
    """A booking as the calendar cache follows it (by change number)."""

    appointment_id: str
    resource: str
    start: datetime
    end: datetime
    status: str
    change_seq: int


@dataclass(frozen=True, slots=True)
class PatientRow:
    patient_id: str
    site_id: str
    preferences: dict[str, Any] | None
    discharged_at: datetime | None
    intake_id: str | None
    intake_submitted_at: datetime | None
    decision: str | None
    course_started_at: datetime | None


@dataclass(frozen=True, slots=True)
class StandingRow:
    """The patient with their latest intake's review and the start of any hold."""

    patient_id: str
    site_id: str
    preferences: dict[str, Any] | None
    discharged_at: datetime | None
    decision: str | None
    review: str | None
    held_since: datetime | None

    def as_standing(self) -> Standing:
        return Standing(
            decision=self.decision,
            review=self.review,
            discharged_at=self.discharged_at,
            held=self.held_since is not None,
        )


@dataclass(frozen=True, slots=True)
class CourseStanding:
    """What decides whether a course starts (services/scheduling/reactions.py): the
    patient's standing, and whether they have an induction series yet."""

    standing: StandingRow
    has_induction: bool


@dataclass(frozen=True, slots=True)
class HeldRow:
    patient_id: str
    site_id: str
    since: datetime


@dataclass(frozen=True, slots=True)
class WaitlistRow:
    patient_id: str
    site_id: str
    purpose: str
    reason: str
    preferences: dict[str, Any] | None
    not_before: datetime | None
    place: Place | None
    since: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class InductionRow:
    """An induction series of a site, for the dashboard's figures."""

    patient_id: str
    protocol: Protocol
    live: bool  # a dose is still planned
    done: tuple[int, ...]  # the sequences of its completed doses


@dataclass(frozen=True, slots=True)
class SpanRow:
    """A booked (not cancelled) session's kind and time, for utilisation."""

    kind: str
    start: datetime
    end: datetime

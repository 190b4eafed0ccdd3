"""In-memory stand-ins for the scheduling shell's I/O, for unit tests of its
orchestration (services/scheduling/planner/, services/scheduling/commands.py):
``FakeScheduling`` implements exactly the repository calls of
services/scheduling/planner/store.py ``Store`` over dicts, as the SQL does (a booking
answers the waitlist entry at its place; ``lose_races`` makes the next bookings fail as
the exclusion constraints refuse an overlap another worker booked first);
``FakeCalendars`` is the site's calendar from those rows, never stale; ``FakeConn`` keeps
the events enqueued through the outbox and its ``transaction()`` does nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg

from services.scheduling.deps import Deps, Planning
from services.scheduling.domain.calendar import Calendar, Timeline
from services.scheduling.domain.lifecycle import LIVE, OCCUPYING
from services.scheduling.domain.maintenance import DosingVitalsPolicy, MaintenancePolicy
from services.scheduling.domain.model import WEEKDAYS
from services.scheduling.planner.store import Store
from services.scheduling.rows import (
    AppointmentRow,
    DoseRow,
    NewSeries,
    NewSession,
    PatientRow,
    Place,
    SeriesRow,
    SiteRow,
    SlotTaken,
    StandingRow,
    WaitlistRow,
)
from shared.db import Conn
from shared.events import CloudEvent
from tests.support.fakes import OnePool, OutboxConn

# when waitlist entries were made: in the order they were, before any test's now
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_LIVE = {s.value for s in LIVE}
_OCCUPYING = {s.value for s in OCCUPYING}


def lost_race() -> SlotTaken:
    """What booking raises when another transaction booked an overlapping slot first
    (services/scheduling/repository/series.py ``book``)."""
    return SlotTaken("conflicting key value violates exclusion constraint")


# the outbox-keeping connection and its pool (tests/support/fakes.py)
FakeConn = OutboxConn
FakePool = OnePool


class FakeScheduling:
    """Sites, patients, series, appointments (in the order they were created) and the
    waitlist of one test, and the events the shell enqueued."""

    def __init__(self) -> None:
        self.sites_: dict[str, SiteRow] = {}
        self.patients: dict[str, PatientRow] = {}
        self.held: set[str] = set()
        self.series: dict[str, SeriesRow] = {}
        self.appointments: dict[str, AppointmentRow] = {}
        self.entries: list[WaitlistRow] = []
        self.outbox: list[CloudEvent] = []
        self.lose_races = 0  # the next bookings refused as overlapping
        self.races_lost = 0

    def store(self) -> Store:
        return Store(self, self, self, self, self)

    # --- set-up and views ---

    def add_site(self, site_id: str, *, rooms: int = 2, therapists: int = 2) -> None:
        hours = {day: ("08:00", "18:00") for day in WEEKDAYS[:5]}
        self.sites_[site_id] = SiteRow(
            site_id,
            site_id,
            "America/New_York",
            hours,
            rooms,
            therapists,
            "standard",
            None,
            None,
            _EPOCH,
        )

    def add_patient(self, patient_id: str, site_id: str) -> None:
        """A patient cleared for scheduling (an eligible intake)."""
        self.patients[patient_id] = PatientRow(
            patient_id, site_id, None, None, f"intake-{patient_id}", None, "eligible", None
        )

    def _since(self) -> datetime:
        return _EPOCH + timedelta(seconds=len(self.entries))

    def wait(self, patient_id: str, site_id: str, purpose: str = "induction") -> None:
        """An entry on the waitlist, as an earlier proposal that found no room left it."""
        self.entries.append(
            WaitlistRow(patient_id, site_id, purpose, "no_fit", None, None, None, self._since(), 1)
        )

    def of(self, patient_id: str, kind: str | None = None) -> list[AppointmentRow]:
        return [
            a
            for a in self.appointments.values()
            if a.patient_id == patient_id and (kind is None or a.kind == kind)
        ]

    def events(self, topic: str) -> list[dict[str, Any]]:
        return [e.data for e in self.outbox if e.type == topic]

    # --- appointments ---

    async def get_appointment(
        self, conn: Conn, appointment_id: str, *, for_update: bool = False
    ) -> AppointmentRow | None:
        return self.appointments.get(appointment_id)

    async def set_status(
        self, conn: Conn, appointment_id: str, status: str, cause: str | None = None
    ) -> AppointmentRow:
        row = self.appointments[appointment_id]
        row = dataclasses.replace(row, status=status, cause=cause or row.cause)
        self.appointments[appointment_id] = row
        return row

    def _at(self, series_id: str, sequence: int, integration: bool) -> list[AppointmentRow]:
        return [
            a
            for a in self.appointments.values()
            if a.series_id == series_id
            and a.sequence == sequence
            and (a.kind == "integration") == integration
        ]

    async def paired_integration(
        self, conn: Conn, series_id: str, sequence: int
    ) -> AppointmentRow | None:
        return next((a for a in self._at(series_id, sequence, True) if a.status in _LIVE), None)

    async def released_integration(
        self, conn: Conn, series_id: str, sequence: int
    ) -> AppointmentRow | None:
        off = [a for a in self._at(series_id, sequence, True) if a.status not in _OCCUPYING]
        return off[-1] if off else None

    async def pending_maintenance(
        self, conn: Conn, patient_id: str, now: datetime
    ) -> AppointmentRow | None:
        pending = [
            a for a in self.of(patient_id, "maintenance") if a.status in _LIVE and a.start > now
        ]
        return min(pending, key=lambda a: a.start, default=None)

    @staticmethod
    def _dose(a: AppointmentRow) -> DoseRow:
        return DoseRow(a.appointment_id, a.sequence, a.status, a.start, a.end)

    async def series_doses(self, conn: Conn, series_id: str) -> list[DoseRow]:
        return [
            self._dose(a)
            for a in self.appointments.values()
            if a.series_id == series_id and a.kind != "integration"
        ]

    async def series_dose(self, conn: Conn, series_id: str, sequence: int) -> DoseRow | None:
        given = [a for a in self._at(series_id, sequence, False) if a.status in _OCCUPYING]
        return self._dose(given[-1]) if given else None

    async def replaced_dose_start(
        self, conn: Conn, series_id: str, sequence: int
    ) -> datetime | None:
        off = [a for a in self._at(series_id, sequence, False) if a.status not in _OCCUPYING]
        return off[-1].start if off else None

    async def last_dose_started(
        self, conn: Conn, patient_id: str, now: datetime
    ) -> datetime | None:
        return max(
            (
                a.start
                for a in self.of(patient_id)
                if a.kind != "integration" and a.status in _OCCUPYING and a.start <= now
            ),
            default=None,
        )

    async def patient_times(
        self, conn: Conn, patient_id: str, since: datetime, ignoring: str | None = None
    ) -> tuple[list[tuple[datetime, datetime]], list[datetime]]:
        live = [a for a in self.of(patient_id) if a.status in _OCCUPYING]
        busy = [(a.start, a.end) for a in live if a.end > since]
        doses = sorted(
            a.start for a in live if a.kind != "integration" and a.appointment_id != ignoring
        )
        return busy, doses

    # --- patients ---

    async def serialize_patient(self, conn: Conn, patient_id: str) -> None:
        return None

    async def get_patient(self, conn: Conn, patient_id: str) -> PatientRow | None:
        return self.patients.get(patient_id)

    async def standing(self, conn: Conn, patient_id: str) -> StandingRow | None:
        p = self.patients.get(patient_id)
        if p is None:
            return None
        held_since = _EPOCH if patient_id in self.held else None
        return StandingRow(
            p.patient_id, p.site_id, p.preferences, p.discharged_at, p.decision, None, held_since
        )

    # --- series ---

    async def book(
        self,
        conn: Conn,
        series: NewSeries,
        *,
        new: bool,
        sessions: Sequence[NewSession],
        events: Sequence[tuple[str, str, str, bytes]],
        place: Place | None = None,
    ) -> None:
        if self.lose_races:
            self.lose_races -= 1
            self.races_lost += 1
            raise lost_race()
        if new:
            self.series[series.series_id] = SeriesRow(
                series.series_id,
                series.patient_id,
                series.site_id,
                series.purpose,
                series.protocol,
                series.protocol_numbers,
            )
        for s in sessions:
            self.appointments[s.appointment_id] = AppointmentRow(
                appointment_id=s.appointment_id,
                patient_id=series.patient_id,
                site_id=series.site_id,
                series_id=series.series_id,
                kind=s.kind,
                sequence=s.sequence,
                status="proposed",
                start=s.start,
                end=s.end,
                resource=s.resource,
                reason=series.purpose,
                cause=None,
                replaces=s.replaces,
                relaxed=series.relaxed,
            )
        self.outbox.extend(CloudEvent.from_bytes(e[3]) for e in events)
        await self.remove(conn, series.patient_id, series.purpose, place)

    async def get_series(self, conn: Conn, series_id: str) -> SeriesRow | None:
        return self.series.get(series_id)

    # --- sites ---

    async def serialized_site(self, conn: Conn, site_id: str) -> SiteRow | None:
        return self.sites_.get(site_id)

    # --- waitlist ---

    async def add(
        self,
        conn: Conn,
        patient_id: str,
        site_id: str,
        purpose: str,
        reason: str,
        preferences: dict[str, Any] | None,
        not_before: datetime | None,
        place: Place | None = None,
    ) -> bool:
        for i, e in enumerate(self.entries):
            if (e.patient_id, e.purpose, e.place) == (patient_id, purpose, place):
                self.entries[i] = dataclasses.replace(
                    e,
                    site_id=site_id,
                    reason=reason,
                    preferences=preferences,
                    attempts=e.attempts + 1,
                )
                return False
        self.entries.append(
            WaitlistRow(
                patient_id,
                site_id,
                purpose,
                reason,
                preferences,
                not_before,
                place,
                self._since(),
                1,
            )
        )
        return True

    async def remove(
        self, conn: Conn, patient_id: str, purpose: str, place: Place | None = None
    ) -> None:
        key = (patient_id, purpose, place)
        self.entries = [e for e in self.entries if (e.patient_id, e.purpose, e.place) != key]

    async def waiting_sequences(self, conn: Conn, series_id: str) -> set[int]:
        places = [e.place for e in self.entries if e.place is not None]
        return {p.sequence for p in places if p.series_id == series_id and p.kind != "integration"}

    async def for_site(self, conn: Conn, site_id: str, limit: int) -> list[WaitlistRow]:
        waiting = [
            e for e in self.entries if e.site_id == site_id and e.patient_id not in self.held
        ]
        return sorted(waiting, key=lambda e: e.since)[:limit]

    async def sites(self, conn: Conn) -> list[str]:
        return sorted({e.site_id for e in self.entries})


class FakeCalendars:
    """The site's calendar straight from the fake's appointments (what takes a room's or
    a therapist's time), and the sites whose entry a lost race dropped."""

    def __init__(self, db: FakeScheduling) -> None:
        self.db = db
        self.invalidated: list[str] = []

    async def calendar(self, conn: Conn, site_id: str, now: datetime) -> Calendar:
        spans: dict[str, list[tuple[datetime, datetime]]] = {}
        for a in self.db.appointments.values():
            if a.site_id == site_id and a.status in _OCCUPYING and a.end > now:
                spans.setdefault(a.resource, []).append((a.start, a.end))
        return Calendar({r: Timeline.of(s) for r, s in spans.items()})

    def invalidate(self, site_id: str) -> None:
        self.invalidated.append(site_id)


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fake_deps(
    db: FakeScheduling, clock: Clock, *, replan_attempts: int = 10
) -> tuple[Deps, FakeConn, FakeCalendars]:
    """Scheduling ``Deps`` over the fakes, with the product's default policies."""
    conn = FakeConn(db.outbox)
    calendars = FakeCalendars(db)
    deps = Deps(
        pool=cast(asyncpg.Pool, FakePool(conn)),
        clock=clock,
        calendars=calendars,
        planning=Planning(
            horizon=timedelta(days=90),
            pref_patience=timedelta(days=14),
            replan_attempts=replan_attempts,
            waitlist_retry_batch=20,
        ),
        maintenance=MaintenancePolicy(),
        vitals=DosingVitalsPolicy(),
    )
    return deps, conn, calendars

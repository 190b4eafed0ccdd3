"""``Store``: the repository calls the planner and the appointment lifecycle make, one
protocol per repository module. ``REPOSITORY`` holds the real modules
(services/scheduling/repository/; mypy holds each to its protocol) and is the default
wherever a ``store`` is taken, so production passes none. Unit tests pass an in-memory
fake (tests/unit/scheduling/fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.scheduling.repository import appointments, patients, series, sites, waitlist
from services.scheduling.rows import (
    AppointmentRow,
    DoseRow,
    NewSeries,
    NewSession,
    PatientRow,
    Place,
    SeriesRow,
    SiteRow,
    StandingRow,
    WaitlistRow,
)
from shared.db import Conn


class Appointments(Protocol):
    async def get_appointment(
        self, conn: Conn, appointment_id: str, *, for_update: bool = False
    ) -> AppointmentRow | None: ...

    async def set_status(
        self, conn: Conn, appointment_id: str, status: str, cause: str | None = None
    ) -> AppointmentRow: ...

    async def paired_integration(
        self, conn: Conn, series_id: str, sequence: int
    ) -> AppointmentRow | None: ...

    async def released_integration(
        self, conn: Conn, series_id: str, sequence: int
    ) -> AppointmentRow | None: ...

    async def pending_maintenance(
        self, conn: Conn, patient_id: str, now: datetime
    ) -> AppointmentRow | None: ...

    async def series_doses(self, conn: Conn, series_id: str) -> list[DoseRow]: ...

    async def series_dose(self, conn: Conn, series_id: str, sequence: int) -> DoseRow | None: ...

    async def replaced_dose_start(
        self, conn: Conn, series_id: str, sequence: int
    ) -> datetime | None: ...

    async def last_dose_started(
        self, conn: Conn, patient_id: str, now: datetime
    ) -> datetime | None: ...

    async def patient_times(
        self, conn: Conn, patient_id: str, since: datetime, ignoring: str | None = None
    ) -> tuple[list[tuple[datetime, datetime]], list[datetime]]: ...


class Patients(Protocol):
    async def serialize_patient(self, conn: Conn, patient_id: str) -> None: ...

    async def get_patient(self, conn: Conn, patient_id: str) -> PatientRow | None: ...

    async def standing(self, conn: Conn, patient_id: str) -> StandingRow | None: ...


class Series(Protocol):
    async def book(
        self,
        conn: Conn,
        series: NewSeries,
        *,
        new: bool,
        sessions: Sequence[NewSession],
        events: Sequence[tuple[str, str, str, bytes]],
        place: Place | None = None,
    ) -> None: ...

    async def get_series(self, conn: Conn, series_id: str) -> SeriesRow | None: ...


class Sites(Protocol):
    async def serialized_site(self, conn: Conn, site_id: str) -> SiteRow | None: ...


class Waitlist(Protocol):
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
    ) -> bool: ...

    async def remove(
        self, conn: Conn, patient_id: str, purpose: str, place: Place | None = None
    ) -> None: ...

    async def waiting_sequences(self, conn: Conn, series_id: str) -> set[int]: ...

    async def for_site(self, conn: Conn, site_id: str, limit: int) -> list[WaitlistRow]: ...

    async def sites(self, conn: Conn) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Store:
    appointments: Appointments
    patients: Patients
    series: Series
    sites: Sites
    waitlist: Waitlist


REPOSITORY = Store(appointments, patients, series, sites, waitlist)

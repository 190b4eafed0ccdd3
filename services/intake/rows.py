"""What intake's repository takes and returns: frozen values, never request bodies or
driver records (docs/architecture.md, "Services and processes")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.intake.domain.mbc import CheckinAssessment
from services.intake.domain.model import Verdict
from services.intake.domain.scoring import Phq9Score


@dataclass(frozen=True, slots=True)
class PatientPhi:
    """The patient's identifying details: encrypted by the repository before storage."""

    name: str
    date_of_birth: date
    phone: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class NewIntake:
    intake_id: str
    patient_id: str
    site_id: str
    submitted_at: datetime
    digest: bytes  # the request body's hash: a replay must match it
    phq9: tuple[int, ...]
    conditions: tuple[str, ...]
    preferences: dict[str, Any] | None
    phi: PatientPhi
    score: Phq9Score
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class IntakeRow:
    intake_id: str
    patient_id: str
    site_id: str
    submitted_at: datetime
    digest: bytes
    decision: str
    reasons: tuple[str, ...]
    phq9_total: int
    phq9_severity: str
    suicide_risk: str
    phq9_item9_positive: bool
    preferences: dict[str, Any] | None
    review_outcome: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


@dataclass(frozen=True, slots=True)
class PatientRow:
    patient_id: str
    site_id: str
    baseline_total: int  # the latest intake's PHQ-9 total
    treatment_started_at: datetime  # the latest intake's submission: this course's start
    discharged_at: datetime | None


@dataclass(frozen=True, slots=True)
class CheckinContext:
    """What a new check-in's verdict depends on (services/intake/repository.py
    checkin_context): one consistent read."""

    patient: PatientRow
    version: int  # the patient's version when read (migration 0004)
    existing: bytes | None  # the body hash of a stored check-in with the new one's id
    prior: list[int]  # PHQ-9 totals of the earlier check-ins of this course, oldest first


@dataclass(frozen=True, slots=True)
class NewCheckin:
    checkin_id: str
    patient_id: str
    submitted_at: datetime
    digest: bytes
    phq9: tuple[int, ...] | None
    phq9_total: int | None
    item9_positive: bool
    suicidal_ideation: bool
    note: str | None  # PHI: encrypted by the repository
    assessment: CheckinAssessment


@dataclass(frozen=True, slots=True)
class CheckinRow:
    checkin_id: str
    patient_id: str
    submitted_at: datetime
    phq9_total: int | None
    suicidal_ideation: bool
    response: bool
    remission: bool
    worsening: bool
    worsening_reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MeasureRow:
    """One PHQ-9 score of a patient: an intake (the baseline) or a check-in. No notes."""

    source: str
    id: str
    at: datetime
    phq9_total: int | None
    phq9_item9_positive: bool
    suicidal_ideation: bool | None
    response: bool | None
    remission: bool | None
    worsening: bool | None


@dataclass(frozen=True, slots=True)
class Phq9Row:
    """One PHQ-9 a patient answered: at intake or in a check-in, its nine answers."""

    source: str  # intake | checkin
    id: str
    at: datetime
    items: tuple[int, ...]
    total: int


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """The patient with their PHI decrypted: only the FHIR Patient read asks for it."""

    patient_id: str
    site_id: str
    discharged_at: datetime | None
    phi: PatientPhi

"""Scheduling's appointments as FHIR R4 Appointments (docs/fhir.md): pure, no I/O.

Our lifecycle (services/scheduling/domain/lifecycle.py) in FHIR's statuses: proposed ->
proposed, confirmed -> booked, completed -> fulfilled, cancelled -> cancelled,
no_show -> noshow. FHIR's ``arrived`` is never given: nothing records a patient's
arrival. No US Core profile covers Appointment.
"""

from __future__ import annotations

from fhir.resources.R4B.appointment import Appointment, AppointmentParticipant
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.reference import Reference

from services.scheduling.rows import AppointmentRow
from shared.fhir import ID_SYSTEM, as_fhir_id, instant, patient_fhir_id

STATUS = {
    "proposed": "proposed",
    "confirmed": "booked",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "no_show": "noshow",
}
FHIR_STATUSES = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
)
KIND_SYSTEM = "urn:interval:appointment-kind"
KIND_TEXT = {
    "dosing": "Ketamine dosing session",
    "integration": "Integration therapy session",
    "maintenance": "Maintenance dosing session",
}
REASON_SYSTEM = "urn:interval:appointment-reason"
CAUSE_SYSTEM = "urn:interval:appointment-cause"


def appointment(row: AppointmentRow) -> Appointment:
    """One appointment: its kind as serviceType, why it was booked as reasonCode, a
    cancellation's or no-show's cause as cancelationReason; the patient and the room or
    therapist (by its label, no resource of its own) as participants."""
    status = STATUS[row.status]
    return Appointment(
        id=as_fhir_id(row.appointment_id),
        identifier=[Identifier(system=ID_SYSTEM + "appointment", value=row.appointment_id)],
        status=status,
        serviceType=[
            CodeableConcept(
                coding=[Coding(system=KIND_SYSTEM, code=row.kind)],
                text=KIND_TEXT.get(row.kind, row.kind),
            )
        ],
        reasonCode=[CodeableConcept(coding=[Coding(system=REASON_SYSTEM, code=row.reason)])],
        cancelationReason=(
            CodeableConcept(coding=[Coding(system=CAUSE_SYSTEM, code=row.cause)])
            if row.cause
            else None
        ),
        description=f"{KIND_TEXT.get(row.kind, row.kind)} {row.sequence}",
        start=instant(row.start),
        end=instant(row.end),
        minutesDuration=int((row.end - row.start).total_seconds() // 60),
        participant=[
            AppointmentParticipant(
                actor=Reference(reference=f"Patient/{patient_fhir_id(row.patient_id)}"),
                required="required",
                status="needs-action" if status == "proposed" else "accepted",
            ),
            AppointmentParticipant(
                actor=Reference(display=row.resource), required="required", status="accepted"
            ),
        ],
    )

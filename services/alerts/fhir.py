"""The alerts service's suicide-risk alerts as FHIR R4 Flags (docs/fhir.md): pure, no I/O.

A ``suicide_risk`` alert is an ``active`` Flag while it is not resolved (open or
acknowledged), ``inactive`` from its resolution, its period from raising to resolution.
No other kind of alert is a Flag. No US Core profile covers Flag.
"""

from __future__ import annotations

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.reference import Reference

from services.alerts.rows import AlertRow
from shared.fhir import ID_SYSTEM, as_fhir_id, instant, patient_fhir_id

KIND = "suicide_risk"
FLAG_STATUSES = ("active", "inactive", "entered-in-error")
SAFETY = CodeableConcept(
    coding=[
        Coding(
            system="http://terminology.hl7.org/CodeSystem/flag-category",
            code="safety",
            display="Safety",
        )
    ]
)
SNOMED = "http://snomed.info/sct"
AT_RISK_FOR_SUICIDE = "225444004"  # At risk for suicide (finding)


def flag(row: AlertRow) -> Flag | None:
    """The alert's Flag; None for an alert of any other kind."""
    if row.kind != KIND:
        return None
    resolved = row.status == "resolved"
    return Flag(
        id=as_fhir_id(str(row.alert_id)),
        identifier=[Identifier(system=ID_SYSTEM + "alert", value=str(row.alert_id))],
        status="inactive" if resolved else "active",
        category=[SAFETY],
        code=CodeableConcept(
            coding=[Coding(system=SNOMED, code=AT_RISK_FOR_SUICIDE, display="At risk for suicide")],
            text=f"Suicide risk alert ({row.severity}, {row.status})",
        ),
        subject=Reference(reference=f"Patient/{patient_fhir_id(row.patient_id)}"),
        period=Period(
            start=instant(row.raised_at),
            end=instant(row.resolved_at) if resolved and row.resolved_at else None,
        ),
    )

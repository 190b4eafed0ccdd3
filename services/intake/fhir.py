"""Intake's records as FHIR R4 resources (docs/fhir.md): pure, no I/O.

A PHQ-9 (at intake or in a check-in) is an Observation of its total, LOINC 44261-6, with
the nine answers as components in the form's order, and a QuestionnaireResponse of the
panel, LOINC 44249-1; an intake's C-SSRS triage is a RiskAssessment, LOINC 93374-7; the
patient a Patient (the only resource with a name or birth date). Codes: LOINC's PHQ-9
panel and its answer list LL358-3 (0 "Not at all" ... 3 "Nearly every day").
"""

from __future__ import annotations

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse,
    QuestionnaireResponseItem,
    QuestionnaireResponseItemAnswer,
)
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.riskassessment import RiskAssessment, RiskAssessmentPrediction

from services.intake.domain.scoring import severity_for_total
from services.intake.rows import IntakeRow, PatientRecord, Phq9Row
from shared.fhir import ID_SYSTEM, LOINC, US_CORE, instant, patient_fhir_id, resource_id

PANEL = "44249-1"  # PHQ-9 quick depression assessment panel
TOTAL = "44261-6"  # PHQ-9 total score [Reported]
CSSRS = "93374-7"  # the C-SSRS screen the RiskAssessment reports
# The nine items, in the form's order (item 9: thoughts of being better off dead).
ITEMS: tuple[tuple[str, str], ...] = (
    ("44250-9", "Little interest or pleasure in doing things"),
    ("44255-8", "Feeling down, depressed, or hopeless"),
    ("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
    ("44254-1", "Feeling tired or having little energy"),
    ("44251-7", "Poor appetite or overeating"),
    ("44258-2", "Feeling bad about yourself - or that you are a failure"),
    ("44252-5", "Trouble concentrating on things"),
    ("44253-3", "Moving or speaking slowly, or being fidgety or restless"),
    ("44260-8", "Thoughts that you would be better off dead, or of hurting yourself"),
)
# LOINC answer list LL358-3, by score.
ANSWERS: tuple[tuple[str, str], ...] = (
    ("LA6568-5", "Not at all"),
    ("LA6569-3", "Several days"),
    ("LA6570-1", "More than half the days"),
    ("LA6571-9", "Nearly every day"),
)
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
SEVERITY_SYSTEM = "urn:interval:phq9-severity"  # docs/domain.md, the PHQ-9 bands
SEVERITY_TEXT = {
    "none_minimal": "None-minimal depression",
    "mild": "Mild depression",
    "moderate": "Moderate depression",
    "moderately_severe": "Moderately severe depression",
    "severe": "Severe depression",
}
RISK_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
RISK = {"none": "negligible", "low": "low", "moderate": "moderate", "high": "high"}
QUESTIONNAIRE = f"{LOINC}/q/{PANEL}"
OBSERVATION_PROFILE = US_CORE + "us-core-observation-screening-assessment"
QR_PROFILE = US_CORE + "us-core-questionnaireresponse"
PATIENT_PROFILE = US_CORE + "us-core-patient"
SURVEY = CodeableConcept(
    coding=[
        Coding(
            system="http://terminology.hl7.org/CodeSystem/observation-category",
            code="survey",
            display="Survey",
        )
    ]
)


def subject(patient_id: str) -> Reference:
    return Reference(reference=f"Patient/{patient_fhir_id(patient_id)}")


def loinc(code: str, display: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=LOINC, code=code, display=display)])


def answer(score: int) -> Coding:
    code, display = ANSWERS[score]
    return Coding(
        system=LOINC,
        code=code,
        display=display,
        extension=[Extension(url=ORDINAL, valueDecimal=score)],
    )


def _ids(row: Phq9Row) -> tuple[str, str]:
    """The Observation's and the QuestionnaireResponse's ids of one PHQ-9."""
    return resource_id(f"phq9-{row.source}", row.id), resource_id(f"qr-{row.source}", row.id)


def phq9_observation(patient_id: str, row: Phq9Row) -> Observation:
    """The PHQ-9 total with its severity band as interpretation and the nine answers."""
    obs_id, qr_id = _ids(row)
    band = str(severity_for_total(row.total))
    return Observation(
        id=obs_id,
        meta=Meta(profile=[OBSERVATION_PROFILE]),
        identifier=[Identifier(system=ID_SYSTEM + row.source, value=row.id)],
        status="final",
        category=[SURVEY],
        code=loinc(TOTAL, "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
        subject=subject(patient_id),
        effectiveDateTime=instant(row.at),
        valueInteger=row.total,
        interpretation=[
            CodeableConcept(
                coding=[Coding(system=SEVERITY_SYSTEM, code=band)], text=SEVERITY_TEXT[band]
            )
        ],
        derivedFrom=[Reference(reference=f"QuestionnaireResponse/{qr_id}")],
        component=[
            ObservationComponent(
                code=loinc(code, text), valueCodeableConcept=CodeableConcept(coding=[answer(a)])
            )
            for (code, text), a in zip(ITEMS, row.items, strict=True)
        ],
    )


def phq9_response(patient_id: str, row: Phq9Row) -> QuestionnaireResponse:
    """The PHQ-9 as answered: one item per question (linkId its LOINC code), then the total."""
    _, qr_id = _ids(row)
    items = [
        QuestionnaireResponseItem(
            linkId=code, text=text, answer=[QuestionnaireResponseItemAnswer(valueCoding=answer(a))]
        )
        for (code, text), a in zip(ITEMS, row.items, strict=True)
    ]
    items.append(
        QuestionnaireResponseItem(
            linkId=TOTAL,
            text="PHQ-9 total score",
            answer=[QuestionnaireResponseItemAnswer(valueInteger=row.total)],
        )
    )
    return QuestionnaireResponse(
        id=qr_id,
        meta=Meta(profile=[QR_PROFILE]),
        identifier=Identifier(system=ID_SYSTEM + row.source, value=row.id),
        questionnaire=QUESTIONNAIRE,
        status="completed",
        subject=subject(patient_id),
        authored=instant(row.at),
        author=subject(patient_id),
        source=subject(patient_id),
        item=items,
    )


def risk_assessment(row: IntakeRow) -> RiskAssessment:
    """An intake's C-SSRS triage: none, low, moderate, high as risk-probability's
    negligible, low, moderate, high. No US Core profile covers RiskAssessment."""
    return RiskAssessment(
        id=resource_id("cssrs-intake", row.intake_id),
        identifier=[Identifier(system=ID_SYSTEM + "intake", value=row.intake_id)],
        status="final",
        code=loinc(CSSRS),
        subject=subject(row.patient_id),
        occurrenceDateTime=instant(row.submitted_at),
        prediction=[
            RiskAssessmentPrediction(
                outcome=CodeableConcept(text="Suicide attempt"),
                qualitativeRisk=CodeableConcept(
                    coding=[Coding(system=RISK_SYSTEM, code=RISK[row.suicide_risk])],
                    text=row.suicide_risk,
                ),
            )
        ],
    )


def patient(record: PatientRecord) -> Patient:
    """The patient for the clinician role (US Core Patient): the name as given (``text``;
    its last word as ``family``, the others as ``given``), the birth date, phone and
    e-mail. Gender is ``unknown``: the intake does not ask it."""
    phi = record.phi
    words = phi.name.split()
    telecom = [
        ContactPoint(system=system, value=value)
        for system, value in (("phone", phi.phone), ("email", phi.email))
        if value
    ]
    return Patient(
        id=patient_fhir_id(record.patient_id),
        meta=Meta(profile=[PATIENT_PROFILE]),
        identifier=[Identifier(system=ID_SYSTEM + "patient", value=record.patient_id)],
        name=[
            HumanName(text=phi.name, family=words[-1] if words else None, given=words[:-1] or None)
        ],
        gender="unknown",
        birthDate=phi.date_of_birth,
        telecom=list(telecom) or None,
    )

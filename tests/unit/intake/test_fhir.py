"""Intake's records as FHIR resources (services/intake/fhir.py), each validated by
re-reading its JSON with fhir.resources: LOINC codes, item order, severity, risk, PHI."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.intake import fhir
from services.intake.rows import IntakeRow, PatientPhi, PatientRecord, Phq9Row
from shared.fhir import LOINC, as_json
from tests.support.fhir import codes, valid

AT = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
ITEM_CODES = [
    "44250-9", "44255-8", "44259-0", "44254-1", "44251-7",
    "44258-2", "44252-5", "44253-3", "44260-8",
]  # fmt: skip
ANSWER_CODES = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}


def phq9(items: tuple[int, ...], source: str = "intake") -> Phq9Row:
    return Phq9Row(source, "i-1", AT, items, sum(items))


def intake(risk: str) -> IntakeRow:
    return IntakeRow(
        intake_id="i-1", patient_id="p-1", site_id="s", submitted_at=AT, digest=b"",
        decision="eligible", reasons=(), phq9_total=20, phq9_severity="severe",
        suicide_risk=risk, phq9_item9_positive=False, preferences=None,
        review_outcome=None, reviewed_by=None, reviewed_at=None,
    )  # fmt: skip


def test_a_phq9_is_an_observation_of_its_total_with_the_nine_items_in_order() -> None:
    items = (0, 1, 2, 3, 0, 1, 2, 3, 1)
    obs = valid(fhir.phq9_observation("p-1", phq9(items)))
    assert obs["resourceType"] == "Observation"
    assert codes(obs["code"]) == [("http://loinc.org", "44261-6")]
    assert obs["valueInteger"] == 13
    assert obs["status"] == "final"
    assert obs["effectiveDateTime"] == "2026-11-23T14:05:00Z"
    assert obs["subject"] == {"reference": "Patient/p-1"}
    assert [codes(c["code"]) for c in obs["component"]] == [[(LOINC, c)] for c in ITEM_CODES]
    answers = [c["valueCodeableConcept"]["coding"][0] for c in obs["component"]]
    assert [(a["system"], a["code"]) for a in answers] == [(LOINC, ANSWER_CODES[i]) for i in items]
    assert [a["extension"][0]["valueDecimal"] for a in answers] == list(items)
    assert codes(obs["category"][0])[0][1] == "survey"
    assert obs["meta"]["profile"] == [fhir.OBSERVATION_PROFILE]


@pytest.mark.parametrize(
    ("items", "band"),
    [
        ((0,) * 9, "none_minimal"),
        ((1, 1, 1, 1, 1, 0, 0, 0, 0), "mild"),
        ((2, 2, 2, 2, 2, 0, 0, 0, 0), "moderate"),
        ((3, 3, 3, 3, 3, 0, 0, 0, 0), "moderately_severe"),
        ((3, 3, 3, 3, 3, 3, 2, 0, 0), "severe"),
    ],
)
def test_the_severity_band_is_the_interpretation(items: tuple[int, ...], band: str) -> None:
    obs = valid(fhir.phq9_observation("p-1", phq9(items)))
    assert codes(obs["interpretation"][0]) == [(fhir.SEVERITY_SYSTEM, band)]


def test_a_phq9_is_a_questionnaire_response_of_the_loinc_panel() -> None:
    items = (3, 3, 2, 3, 2, 3, 2, 2, 0)
    qr = valid(fhir.phq9_response("p-1", phq9(items, "checkin")))
    assert qr["resourceType"] == "QuestionnaireResponse"
    assert qr["questionnaire"] == "http://loinc.org/q/44249-1"
    assert qr["status"] == "completed"
    assert [i["linkId"] for i in qr["item"]] == [*ITEM_CODES, "44261-6"]
    got = [i["answer"][0]["valueCoding"]["code"] for i in qr["item"][:9]]
    assert got == [ANSWER_CODES[a] for a in items]
    assert qr["item"][9]["answer"] == [{"valueInteger": 20}]
    assert qr["identifier"] == {"system": "urn:interval:id:checkin", "value": "i-1"}


def test_the_observation_and_the_response_of_one_phq9_point_at_each_other() -> None:
    row = phq9((1,) * 9)
    obs, qr = valid(fhir.phq9_observation("p-1", row)), valid(fhir.phq9_response("p-1", row))
    assert obs["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{qr['id']}"}]
    assert obs["id"] != fhir.phq9_observation("p-1", phq9((1,) * 9, "checkin")).id


@pytest.mark.parametrize(
    ("risk", "code"),
    [("none", "negligible"), ("low", "low"), ("moderate", "moderate"), ("high", "high")],
)
def test_the_cssrs_triage_is_a_risk_assessment(risk: str, code: str) -> None:
    ra = valid(fhir.risk_assessment(intake(risk)))
    assert ra["resourceType"] == "RiskAssessment"
    assert codes(ra["code"]) == [(LOINC, "93374-7")]
    assert codes(ra["prediction"][0]["qualitativeRisk"]) == [(fhir.RISK_SYSTEM, code)]
    assert ra["subject"] == {"reference": "Patient/p-1"}


def test_the_patient_carries_the_phi_and_nothing_else_does() -> None:
    phi = PatientPhi("Ada Lovelace Example", date(1981, 4, 2), "+1-555-0100", "ada@example.org")
    p = valid(fhir.patient(PatientRecord("p_1", "s", None, phi)))
    assert p["id"] == "-p-11"
    assert p["name"] == [
        {"text": "Ada Lovelace Example", "family": "Example", "given": ["Ada", "Lovelace"]}
    ]
    assert p["birthDate"] == "1981-04-02"
    assert p["telecom"] == [
        {"system": "phone", "value": "+1-555-0100"},
        {"system": "email", "value": "ada@example.org"},
    ]
    assert p["identifier"] == [{"system": "urn:interval:id:patient", "value": "p_1"}]
    others = [
        as_json(fhir.phq9_observation("p_1", phq9((1,) * 9))),
        as_json(fhir.phq9_response("p_1", phq9((1,) * 9))),
        as_json(fhir.risk_assessment(intake("high"))),
    ]
    for doc in map(str, others):
        for value in ("Ada", "1981", "555-0100", "example.org"):
            assert value not in doc

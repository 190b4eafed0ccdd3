"""The FHIR R4 read facade as an EHR sees it (docs/fhir.md): real processes, real
database and broker. Every resource answered is parsed by fhir.resources (so validated);
searches are paged with ``_count`` through their ``next`` links until exhausted."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.alerts import SUICIDAL, alerts_of, checkin, new_patient
from tests.support.eventually import eventually
from tests.support.fhir import codes, valid
from tests.support.scheduling import induction
from tests.support.stack import AlertsStack, IntakeStack
from tools.factories import checkin_body, intake_body, phi_strings

pytestmark = pytest.mark.integration

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
PHQ9_ITEMS = [
    "44250-9", "44255-8", "44259-0", "44254-1", "44251-7",
    "44258-2", "44252-5", "44253-3", "44260-8",
]  # fmt: skip


async def fhir_get(c: httpx.AsyncClient, url: str, **params: Any) -> tuple[int, dict[str, Any]]:
    """One FHIR answer: its status and its resource, validated."""
    r = await c.get(url, params=params or None)
    assert r.headers["content-type"].startswith(FHIR_JSON), r.text
    return r.status_code, valid(r.json())


async def search_all(
    c: httpx.AsyncClient, kind: str, count: int, **params: str
) -> tuple[list[dict[str, Any]], int]:
    """Every resource of a search, following ``next`` until there is none; (the
    resources in order, the pages read). Each page a valid searchset of at most
    ``count`` entries whose ``total`` counts them all."""
    status, bundle = await fhir_get(c, f"/fhir/r4/{kind}", _count=str(count), **params)
    assert status == 200, bundle
    found: list[dict[str, Any]] = []
    pages = 0
    while True:
        pages += 1
        assert bundle["type"] == "searchset"
        entries = bundle.get("entry", [])
        assert len(entries) <= count
        for e in entries:
            assert e["resource"]["resourceType"] == kind
            assert e["fullUrl"].endswith(f"/fhir/r4/{kind}/{e['resource']['id']}")
            found.append(e["resource"])
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        assert pages < 100, "next links without end"
        url = urlsplit(nxt[0])
        status, bundle = await fhir_get(c, f"{url.path}?{url.query}")
        assert status == 200, bundle
    assert bundle["total"] == len(found)
    ids = [r["id"] for r in found]
    assert len(set(ids)) == len(ids), "a resource came twice"
    return found, pages


def outcome_code(doc: dict[str, Any]) -> str:
    assert doc["resourceType"] == "OperationOutcome"
    code: str = doc["issue"][0]["code"]
    return code


# --- intake: PHQ-9, screens, C-SSRS, the patient ----------------------------------------


async def test_phq9_scores_are_loinc_observations_paged_through_next_links(
    intake_http: httpx.AsyncClient,
) -> None:
    body = intake_body()
    pid = body["patient"]["patient_id"]
    assert (await intake_http.post("/v1/intakes", json=body)).status_code == 201
    answers = [
        [1, 1, 1, 0, 1, 1, 0, 0, 0],
        [0, 1, 0, 0, 1, 0, 0, 0, 0],
        [2, 2, 2, 1, 1, 1, 0, 0, 0],
    ]
    for phq9 in answers:
        await checkin(intake_http, pid, phq9)
    mood_only = checkin_body(pid, None)  # no PHQ-9: no Observation
    assert (await intake_http.post("/v1/checkins", json=mood_only)).status_code == 202
    every = [body["phq9"], *answers]

    observations, pages = await search_all(
        intake_http, "Observation", 3, patient=pid, code=f"{LOINC}|44261-6"
    )
    assert pages == 2
    assert [o["valueInteger"] for o in observations] == [sum(a) for a in every]
    for obs, items in zip(observations, every, strict=True):
        assert codes(obs["code"]) == [(LOINC, "44261-6")]
        assert obs["subject"] == {"reference": f"Patient/{pid}"}
        assert [codes(c["code"]) for c in obs["component"]] == [[(LOINC, c)] for c in PHQ9_ITEMS]
        scores = [c["valueCodeableConcept"]["coding"][0]["extension"][0]["valueDecimal"]
                  for c in obs["component"]]  # fmt: skip
        assert scores == items
    assert codes(observations[0]["interpretation"][0])[0][1] == "severe"  # 20

    # the same search by the bare code, and one for a code we do not serve
    same, _ = await search_all(intake_http, "Observation", 50, patient=pid, code="44261-6")
    assert [o["id"] for o in same] == [o["id"] for o in observations]
    none, _ = await search_all(intake_http, "Observation", 50, patient=pid, code=f"{LOINC}|1-8")
    assert none == []

    responses, pages = await search_all(intake_http, "QuestionnaireResponse", 1, patient=pid)
    assert pages == 4
    assert {r["questionnaire"] for r in responses} == {f"{LOINC}/q/44249-1"}
    assert [r["item"][-1]["answer"][0]["valueInteger"] for r in responses] == [
        sum(a) for a in every
    ]
    refs = [o["derivedFrom"][0]["reference"] for o in observations]
    assert refs == [f"QuestionnaireResponse/{r['id']}" for r in responses]

    risks, _ = await search_all(intake_http, "RiskAssessment", 10, patient=pid)
    assert len(risks) == 1
    assert codes(risks[0]["code"]) == [(LOINC, "93374-7")]
    assert codes(risks[0]["prediction"][0]["qualitativeRisk"])[0][1] == "negligible"

    # no PHI anywhere but the Patient
    text = str([observations, responses, risks])
    for value in phi_strings(body):
        assert value not in text


async def test_the_patient_read_has_the_name_and_birth_date_and_escaped_ids_resolve(
    intake: IntakeStack, intake_http: httpx.AsyncClient
) -> None:
    body = intake_body()
    pid = f"p_{uuid.uuid4().hex[:8]}:x"  # not a FHIR id as it is
    body["patient"]["patient_id"] = pid
    assert (await intake_http.post("/v1/intakes", json=body)).status_code == 201
    (obs,), _ = await search_all(intake_http, "Observation", 5, patient=pid)
    ref = obs["subject"]["reference"]
    status, patient = await fhir_get(intake_http, f"/fhir/r4/{ref}")
    assert status == 200, patient
    assert f"Patient/{patient['id']}" == ref
    assert patient["identifier"] == [{"system": "urn:interval:id:patient", "value": pid}]
    assert patient["name"][0]["text"] == body["patient"]["name"]
    assert patient["birthDate"] == body["patient"]["date_of_birth"]
    assert {"system": "email", "value": body["patient"]["email"]} in patient["telecom"]
    # the escaped id searches as the plain one does
    again, _ = await search_all(intake_http, "Observation", 5, patient=ref)
    assert again == [obs]
    logs = intake.api.logs()
    assert "/fhir/r4/Patient/{fhir_id}" in logs  # the read was logged, by its route
    for value in phi_strings(body):
        assert value not in logs


async def test_bad_searches_are_operation_outcomes_and_unknown_patients_404(
    intake_http: httpx.AsyncClient,
) -> None:
    pid, _ = await new_patient(intake_http, "site-a")
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/fhir/r4/Observation", {}, 400, "required"),
        ("/fhir/r4/Observation", {"patient": pid, "name": "x"}, 400, "not-supported"),
        ("/fhir/r4/Observation", {"patient": pid, "_count": "-1"}, 400, "value"),
        ("/fhir/r4/Observation", {"patient": pid, "_count": "many"}, 400, "value"),
        ("/fhir/r4/QuestionnaireResponse", {"patient": "no such/id"}, 400, "value"),
        ("/fhir/r4/Observation", {"patient": "p-nobody-here"}, 404, "not-found"),
        ("/fhir/r4/RiskAssessment", {"patient": "p-nobody-here"}, 404, "not-found"),
        ("/fhir/r4/Patient/p-nobody-here", {}, 404, "not-found"),
        ("/fhir/r4/Encounter", {"patient": pid}, 404, "not-supported"),
    ]
    for path, params, status, code in cases:
        got, doc = await fhir_get(intake_http, path, **params)
        assert (got, outcome_code(doc)) == (status, code), (path, params, doc)
    r = await intake_http.post("/fhir/r4/Observation", json={"resourceType": "Observation"})
    assert r.status_code == 405
    assert outcome_code(valid(r.json())) == "not-supported"


async def test_every_service_states_its_capabilities(
    intake_http: httpx.AsyncClient, sched: httpx.AsyncClient, alerts_api: httpx.AsyncClient
) -> None:
    expected = {
        intake_http: {"Observation", "QuestionnaireResponse", "RiskAssessment", "Patient"},
        sched: {"Appointment"},
        alerts_api: {"Flag"},
    }
    for client, kinds in expected.items():
        status, cs = await fhir_get(client, "/fhir/r4/metadata")
        assert status == 200
        assert cs["resourceType"] == "CapabilityStatement"
        assert cs["fhirVersion"] == "4.0.1"
        assert {r["type"] for r in cs["rest"][0]["resource"]} == kinds


# --- scheduling: appointments -------------------------------------------------------------


async def test_appointments_carry_fhir_statuses_and_page(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    pid, appts = await induction(sched, intake_http)
    doses = sorted((a for a in appts if a["kind"] == "dosing"), key=lambda a: a["start"])
    confirmed, cancelled = doses[0]["appointment_id"], doses[1]["appointment_id"]
    assert (await sched.post(f"/v1/appointments/{confirmed}/confirm")).status_code == 200
    r = await sched.post(
        f"/v1/appointments/{cancelled}/cancel", json={"rebook": False, "reason": "patient_request"}
    )
    assert r.status_code == 200, r.text
    mine = await eventually(
        lambda: sched.get(f"/v1/patients/{pid}/appointments"),
        lambda r: r.status_code == 200,
        what="appointments",
    )
    ours = {a["appointment_id"]: a for a in mine.json()}

    found, pages = await search_all(sched, "Appointment", 5, patient=pid)
    assert pages == -(-len(ours) // 5)
    by_id = {a["identifier"][0]["value"]: a for a in found}
    assert set(by_id) == set(ours)
    expect = {"proposed": "proposed", "confirmed": "booked", "cancelled": "cancelled"}
    for aid, a in by_id.items():
        assert a["status"] == expect[ours[aid]["status"]]
        assert a["participant"][0]["actor"]["reference"] == f"Patient/{pid}"
    assert by_id[confirmed]["status"] == "booked"
    assert codes(by_id[cancelled]["cancelationReason"])[0][1] == "patient_request"

    booked, _ = await search_all(sched, "Appointment", 5, patient=pid, status="booked")
    assert [a["id"] for a in booked] == [by_id[confirmed]["id"]]
    nobody, _ = await search_all(sched, "Appointment", 5, patient="p-nobody-here")
    assert nobody == []
    status, doc = await fhir_get(sched, "/fhir/r4/Appointment", patient=pid, status="arrivd")
    assert (status, outcome_code(doc)) == (400, "value")


# --- alerts: the suicide-risk flag -------------------------------------------------------------


async def test_an_unresolved_suicide_risk_alert_is_an_active_flag_until_resolved(
    alerts: AlertsStack, alerts_api: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    pid, _ = await new_patient(intake_http, f"site-{uuid.uuid4().hex[:8]}")
    quiet, _ = await search_all(alerts_api, "Flag", 5, patient=pid, status="active")
    assert quiet == []
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    (alert,) = await eventually(
        lambda: alerts_of(alerts_api, pid, kind="suicide_risk"),
        lambda a: len(a) == 1,
        what="the suicide_risk alert",
    )
    (flag,), _ = await search_all(alerts_api, "Flag", 5, patient=pid, status="active")
    assert flag["identifier"][0]["value"] == alert["alert_id"]
    assert flag["subject"] == {"reference": f"Patient/{pid}"}
    assert codes(flag["category"][0]) == [
        ("http://terminology.hl7.org/CodeSystem/flag-category", "safety")
    ]

    r = await alerts_api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. F"})
    assert r.status_code == 200, r.text
    active, _ = await search_all(alerts_api, "Flag", 5, patient=pid, status="active")
    assert active == []
    (ended,), _ = await search_all(alerts_api, "Flag", 5, patient=pid)
    assert ended["status"] == "inactive"
    assert "end" in ended["period"]


async def test_a_checkin_without_risk_raises_no_flag(
    alerts_api: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    pid, _ = await new_patient(intake_http, f"site-{uuid.uuid4().hex[:8]}")
    # worsening (total 12, 12 above the lowest) but no ideation: an alert, not a flag
    await checkin(intake_http, pid, [0] * 9)
    await checkin(intake_http, pid, [2, 2, 2, 2, 2, 1, 1, 0, 0])
    (alert,) = await eventually(
        lambda: alerts_of(alerts_api, pid), lambda a: len(a) == 1, what="an alert"
    )
    assert alert["kind"] == "worsening"
    flags, _ = await search_all(alerts_api, "Flag", 5, patient=pid)
    assert flags == []

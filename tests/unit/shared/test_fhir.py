"""The FHIR facade's shared rules (shared/fhir.py): ids, search parameters, paging."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.reference import Reference

from shared.fhir import (
    MAX_COUNT,
    FhirError,
    Served,
    as_fhir_id,
    as_json,
    capability,
    outcome,
    parse_search,
    patient_fhir_id,
    patient_of,
    resource_id,
    searchset,
    tokens,
)
from tests.support.fhir import valid


@pytest.mark.parametrize("pid", ["p-0042", "p_42", "site:a:p-1", "a-0_1:2", "P.1"])
def test_a_patient_id_and_its_fhir_id_round_trip(pid: str) -> None:
    fid = patient_fhir_id(pid)
    Flag.model_validate(
        {
            "resourceType": "Flag",
            "id": fid,
            "status": "active",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/{fid}"},
        }
    )
    assert patient_of(fid) == pid
    assert patient_of(f"Patient/{fid}") == pid
    assert patient_of(pid) == pid


def test_an_id_fhir_allows_is_its_own_fhir_id() -> None:
    assert patient_fhir_id("p-0042") == "p-0042"
    assert patient_fhir_id("p_1") != "p_1"


@pytest.mark.parametrize("bad", ["", "Patient/", "-p-9", "-p-1x_", "p 1", "_p", "x" * 129])
def test_a_patient_parameter_that_is_no_id_of_ours_is_a_400(bad: str) -> None:
    with pytest.raises(FhirError) as caught:
        patient_of(bad)
    assert caught.value.status == 400


def test_derived_ids_are_fhir_ids_and_stable() -> None:
    assert resource_id("phq9-intake", "abc") == "phq9-intake-abc"
    odd = resource_id("phq9-intake", "a_b:c")
    assert odd == resource_id("phq9-intake", "a_b:c") != resource_id("phq9-checkin", "a_b:c")
    assert len(odd) <= 64
    assert "_" not in odd
    assert as_fhir_id("4f6c0a8e-0000-4000-8000-000000000001").startswith("4f6c0a8e")


def test_search_parameters_are_checked() -> None:
    s = parse_search([("patient", "p-1"), ("_count", "5")], ("patient",), ("patient",))
    assert (s.values["patient"], s.count, s.offset) == ("p-1", 5, 0)
    assert parse_search([("patient", "p"), ("_count", "100000")], ("patient",), ()).count == (
        MAX_COUNT
    )
    for pairs, code in [
        ([("_count", "5")], "required"),
        ([("patient", "")], "required"),
        ([("patient", "p"), ("name", "Ada")], "not-supported"),
        ([("patient", "p"), ("patient", "q")], "not-supported"),
        ([("patient", "p"), ("_count", "-1")], "value"),
        ([("patient", "p"), ("_count", "ten")], "value"),
        ([("patient", "p"), ("_offset", "1.5")], "value"),
        ([("patient", "p"), ("_format", "xml")], "not-supported"),
    ]:
        with pytest.raises(FhirError) as caught:
            parse_search(pairs, ("patient",), ("patient",))
        assert (caught.value.status, caught.value.code) == (400, code), pairs
    s = parse_search([("patient", "p"), ("status", "active,inactive")], ("patient", "status"), ())
    assert tokens(s, "status", ("active", "inactive")) == frozenset({"active", "inactive"})
    with pytest.raises(FhirError):
        tokens(s, "status", ("active",))


def _flags(n: int) -> list[Flag]:
    return [
        Flag(
            id=f"f{i}",
            status="active",
            code={"text": "x"},
            subject=Reference(reference="Patient/p"),
        )
        for i in range(n)
    ]


def test_paging_follows_next_links_to_every_match_once() -> None:
    flags = _flags(7)
    search = parse_search([("patient", "p"), ("_count", "3")], ("patient",), ())
    seen: list[str] = []
    pages = 0
    while True:
        bundle = valid(searchset(flags, search, "http://h", "/fhir/r4/Flag"))
        pages += 1
        assert bundle["type"] == "searchset"
        assert bundle["total"] == 7
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        query = parse_qs(urlsplit(str(nxt[0])).query)
        assert query["patient"] == ["p"]
        search = parse_search([(k, v[0]) for k, v in query.items()], ("patient",), ())
    assert pages == 3
    assert seen == [f"f{i}" for i in range(7)]


def test_count_zero_answers_the_total_alone_and_later_pages_link_back() -> None:
    flags = _flags(4)
    only = parse_search([("patient", "p"), ("_count", "0")], ("patient",), ())
    bundle = valid(searchset(flags, only, "http://h", "/fhir/r4/Flag"))
    assert bundle["total"] == 4
    assert "entry" not in bundle
    assert [link["relation"] for link in bundle["link"]] == ["self"]
    last = parse_search([("patient", "p"), ("_count", "3"), ("_offset", "3")], ("patient",), ())
    bundle = valid(searchset(flags, last, "http://h", "/fhir/r4/Flag"))
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["f3"]
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert set(links) == {"self", "previous"}
    assert "_offset=0" in links["previous"]


def test_an_empty_search_is_a_bundle_without_entries() -> None:
    search = parse_search([("patient", "p")], ("patient",), ())
    bundle = as_json(searchset([], search, "http://h", "/fhir/r4/Flag"))
    assert bundle["total"] == 0
    assert "entry" not in bundle
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_outcome_and_capability_statement_are_valid_resources() -> None:
    assert valid(outcome("not-found", "no such patient"))["issue"][0]["code"] == "not-found"
    served = [
        Served("Flag", (("patient", "reference", "the patient"),)),
        Served("Patient", (), read=True),
    ]
    cs = valid(capability("alerts", served, datetime(2026, 1, 1, tzinfo=UTC)))
    assert cs["fhirVersion"] == "4.0.1"
    kinds = {r["type"]: [i["code"] for i in r["interaction"]] for r in cs["rest"][0]["resource"]}
    assert kinds == {"Flag": ["search-type"], "Patient": ["read"]}

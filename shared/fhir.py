"""The FHIR R4 read facade's shared, pure parts (docs/fhir.md): logical ids, search
parameters, searchset Bundles with ``_count`` paging, OperationOutcome and the
CapabilityStatement. No I/O: the HTTP side is shared/fhir_web.py, each service's mapping
its ``fhir.py``.

The models are fhir.resources' R4B package (FHIR 4.3.0): its resources used here are
R4's (4.0.1) unchanged, and fhir.resources 6.x, the last release whose default is R4,
needs pydantic 1 (pyproject.toml pins pydantic 2). Every resource is built as a model,
so the library validates it before it is answered.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch, BundleLink
from fhir.resources.R4B.capabilitystatement import (
    CapabilityStatement,
    CapabilityStatementRest,
    CapabilityStatementRestResource,
    CapabilityStatementRestResourceInteraction,
    CapabilityStatementRestResourceSearchParam,
    CapabilityStatementSoftware,
)
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue

from shared.validation import ID_MAX_LENGTH, ID_PATTERN

CONTENT_TYPE = "application/fhir+json"
FHIR_VERSION = "4.0.1"
BASE = "/fhir/r4"
LOINC = "http://loinc.org"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
# Our own ids as FHIR identifiers (Patient.identifier, Observation.identifier, ...).
ID_SYSTEM = "urn:interval:id:"
DEFAULT_COUNT = 50
MAX_COUNT = 200
# Parameters every search takes: the page size, our paging cursor, the format.
PAGING = ("_count", "_offset", "_format")
JSON_FORMATS = frozenset({"json", "application/json", CONTENT_TYPE})

MAX_ID = 64  # a FHIR id's length
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_OUR_ID = re.compile(ID_PATTERN.strip("^$"))  # and at most ID_MAX_LENGTH
_ESCAPES = {"-": "-0", "_": "-1", ":": "-2"}
_UNESCAPES = {v[1]: k for k, v in _ESCAPES.items()}
_NAMESPACE = uuid.UUID("2f1c7a52-6a3e-4a43-9d5e-5b7f3c1e9a10")


class FhirError(Exception):
    """A request the facade refuses: answered as an OperationOutcome with ``status``
    (``code`` from http://hl7.org/fhir/issue-type). ``diagnostics`` never holds PHI."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics = status, code, diagnostics


def outcome(code: str, diagnostics: str, severity: str = "error") -> OperationOutcome:
    return OperationOutcome(
        issue=[OperationOutcomeIssue(severity=severity, code=code, diagnostics=diagnostics)]
    )


def patient_fhir_id(patient_id: str) -> str:
    """Patient.id for one of our patient ids: the id itself when FHIR allows it (letters,
    digits, ``-``, ``.``, at most 64); otherwise ``-`` and the id with ``-``, ``_`` and
    ``:`` escaped as ``-0``, ``-1``, ``-2``. Our ids start with a letter or digit
    (shared/validation.py ID_PATTERN), so a leading ``-`` always means escaped."""
    if _FHIR_ID.fullmatch(patient_id):
        return patient_id
    return "-" + "".join(_ESCAPES.get(c, c) for c in patient_id)


def patient_of(reference: str) -> str:
    """Our patient id from a ``patient`` parameter or a read's id: ``p-1``,
    ``Patient/p-1`` or an escaped id (patient_fhir_id); FhirError 400 otherwise."""
    given = reference.removeprefix("Patient/")
    ref = given
    if given.startswith("-"):
        ref = re.sub(r"-([012])", lambda m: _UNESCAPES[m.group(1)], given[1:])
    if (
        len(ref) > ID_MAX_LENGTH
        or not _OUR_ID.fullmatch(ref)
        or (given.startswith("-") and patient_fhir_id(ref) != given)
    ):
        raise FhirError(400, "value", "the patient parameter is not a patient id of ours")
    return ref


def resource_id(kind: str, our_id: str) -> str:
    """A FHIR id for a resource derived from one of our records: ``kind-our_id`` when
    FHIR allows it, else a name-based UUID of the two (stable across reads)."""
    candidate = f"{kind}-{our_id}"
    if _FHIR_ID.fullmatch(candidate):
        return candidate
    return str(uuid.uuid5(_NAMESPACE, candidate))


def as_fhir_id(our_id: str) -> str:
    """A FHIR id for a record whose own id (a UUID, say) usually is one already."""
    return our_id if _FHIR_ID.fullmatch(our_id) else str(uuid.uuid5(_NAMESPACE, our_id))


def tokens(search: Search, name: str, allowed: Collection[str]) -> frozenset[str] | None:
    """A token parameter's values (comma-separated: any of them), each one of
    ``allowed`` (FhirError 400 otherwise); None when it is not given."""
    raw = search.get(name)
    if raw is None:
        return None
    values = frozenset(raw.split(","))
    bad = sorted(values - set(allowed))
    if bad:
        raise FhirError(400, "value", f"{name} must be one of {', '.join(sorted(allowed))}")
    return values


def instant(at: datetime) -> str:
    """A dateTime/instant as FHIR writes it: seconds precision or finer, with its offset."""
    return at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Search:
    """A search's parameters, checked: one value each, and only the supported ones."""

    values: Mapping[str, str]
    count: int
    offset: int

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def parse_search(
    pairs: Sequence[tuple[str, str]], supported: Sequence[str], required: Sequence[str]
) -> Search:
    """FhirError 400 for a parameter this search does not support, one given twice, a
    required one missing or empty, a ``_count`` or ``_offset`` that is not a whole
    number >= 0, a format other than JSON. ``_count`` above MAX_COUNT is cut to it."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in supported and name not in PAGING:
            raise FhirError(400, "not-supported", f"unsupported search parameter: {name}")
        if name in values:
            raise FhirError(400, "not-supported", f"{name} may be given once")
        values[name] = value
    for name in required:
        if not values.get(name):
            raise FhirError(400, "required", f"the {name} search parameter is required")
    fmt = values.get("_format")
    if fmt is not None and fmt not in JSON_FORMATS:
        raise FhirError(400, "not-supported", "only JSON is served")
    count = _whole(values, "_count", DEFAULT_COUNT)
    return Search(values, min(count, MAX_COUNT), _whole(values, "_offset", 0))


def _whole(values: Mapping[str, str], name: str, default: int) -> int:
    raw = values.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise FhirError(400, "value", f"{name} must be a whole number >= 0")
    return int(raw)


def searchset(
    resources: Sequence[FHIRResourceModel], search: Search, base_url: str, path: str
) -> Bundle:
    """One page of a searchset Bundle: ``total`` counts every match, ``link`` has
    ``self`` and, while matches remain, ``next`` (the same search at the next offset);
    ``previous`` from the second page on. ``base_url`` is the server's root."""
    page = resources[search.offset : search.offset + search.count]
    links = [BundleLink(relation="self", url=_page_url(base_url, path, search, search.offset))]
    end = search.offset + search.count
    if search.count and end < len(resources):
        links.append(BundleLink(relation="next", url=_page_url(base_url, path, search, end)))
    if search.offset and search.count:
        back = max(0, search.offset - search.count)
        links.append(BundleLink(relation="previous", url=_page_url(base_url, path, search, back)))
    entries = [
        BundleEntry(
            fullUrl=f"{base_url}{BASE}/{r.get_resource_type()}/{r.id}",
            resource=r,
            search=BundleEntrySearch(mode="match"),
        )
        for r in page
    ]
    return Bundle(type="searchset", total=len(resources), link=links, entry=entries or None)


def _page_url(base_url: str, path: str, search: Search, offset: int) -> str:
    params = {k: v for k, v in search.values.items() if k not in ("_count", "_offset")}
    query = urlencode({**params, "_count": search.count, "_offset": offset})
    return f"{base_url}{path}?{query}"


@dataclass(frozen=True)
class Served:
    """One resource type a service serves, for its CapabilityStatement."""

    type: str
    params: tuple[tuple[str, str, str], ...]  # (name, type, what it matches)
    profile: str | None = None  # the US Core profile its resources claim
    read: bool = False


def capability(service: str, served: Sequence[Served], now: datetime) -> CapabilityStatement:
    """What this service's facade answers: the search (and read) interactions, their
    parameters and the profiles; JSON only, FHIR 4.0.1."""
    resources = [
        CapabilityStatementRestResource(
            type=s.type,
            supportedProfile=[s.profile] if s.profile else None,
            interaction=[
                CapabilityStatementRestResourceInteraction(code=c)
                for c in (("read",) if s.read else ()) + (("search-type",) if s.params else ())
            ],
            searchParam=[
                CapabilityStatementRestResourceSearchParam(name=n, type=t, documentation=d)
                for n, t, d in s.params
            ]
            or None,
        )
        for s in served
    ]
    return CapabilityStatement(
        status="active",
        date=instant(now),
        kind="instance",
        software=CapabilityStatementSoftware(name=f"Interval {service} service"),
        fhirVersion=FHIR_VERSION,
        format=["json"],
        rest=[CapabilityStatementRest(mode="server", resource=resources)],
    )


PARAM_COUNT = ("_count", "number", f"page size (default {DEFAULT_COUNT}, at most {MAX_COUNT})")
PARAM_PATIENT = ("patient", "reference", "the patient: p-1 or Patient/p-1 (required)")


def as_json(resource: FHIRResourceModel) -> Any:
    """The resource as JSON values, without empty elements (FHIR allows none)."""
    return resource.model_dump(mode="json", by_alias=True, exclude_none=True)

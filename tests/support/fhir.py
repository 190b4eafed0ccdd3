"""FHIR answers as a client reads them: every resource parsed (so validated) by
fhir.resources' R4B models, then looked at as plain JSON."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel

from shared.fhir import as_json


def valid(doc: Any) -> dict[str, Any]:
    """``doc`` (a resource's JSON, or a model) once fhir.resources accepted it as its
    resourceType, with every resource inside a Bundle parsed again as its own type; the
    JSON as the library writes it back, for plain assertions."""
    if isinstance(doc, FHIRResourceModel):
        doc = as_json(doc)
    kind = doc["resourceType"]
    model = get_fhir_model_class(kind).model_validate(doc)
    for entry in doc.get("entry", []):
        valid(entry["resource"])
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def codes(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.get("system", ""), c["code"]) for c in concept.get("coding", [])]

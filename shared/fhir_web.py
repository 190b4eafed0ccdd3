"""The FHIR R4 facade's HTTP side every service shares (docs/fhir.md): the
``application/fhir+json`` answer, OperationOutcome errors, ``GET /fhir/r4/metadata`` and
an OperationOutcome for any other path or method under ``/fhir/``. Who may call it is
shared/access.py's (the clinician role; metadata is open)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel

from shared.fhir import (
    BASE,
    CONTENT_TYPE,
    FhirError,
    Search,
    Served,
    as_json,
    capability,
    outcome,
    parse_search,
    searchset,
)


class FhirResponse(Response):
    media_type = CONTENT_TYPE

    def render(self, content: Any) -> bytes:
        if isinstance(content, FHIRResourceModel):
            content = as_json(content)
        return orjson.dumps(content)


def outcome_body(code: str, diagnostics: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """An OperationOutcome's bytes and headers, for answers made outside a route
    (shared/access.py's 401 and 403)."""
    body = orjson.dumps(as_json(outcome(code, diagnostics)))
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    return body, headers


def search_of(request: Request, supported: Sequence[str], required: Sequence[str]) -> Search:
    return parse_search(list(request.query_params.multi_items()), supported, required)


def page(request: Request, resources: Sequence[FHIRResourceModel], search: Search) -> Response:
    """A searchset Bundle of one page of ``resources`` (shared/fhir.py searchset)."""
    base = str(request.base_url).rstrip("/")
    return FhirResponse(searchset(resources, search, base, request.url.path))


def install_fhir(
    app: FastAPI,
    routes: APIRouter,
    service: str,
    served: Sequence[Served],
    clock: Callable[[], datetime],
) -> None:
    """The service's FHIR routes (``routes``, a router with the prefix BASE), its
    metadata, the catch-all and the error answers. Not in the OpenAPI document: the
    CapabilityStatement describes them."""
    types = {s.type for s in served}
    app.include_router(routes)
    router = APIRouter(prefix=BASE, include_in_schema=False)

    @router.get("/metadata", include_in_schema=False)
    async def metadata() -> Response:
        return FhirResponse(capability(service, served, clock()))

    @router.api_route(
        "/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def unsupported(rest: str, request: Request) -> Response:
        kind = rest.split("/", 1)[0]
        if kind in types and request.method != "GET":
            raise FhirError(405, "not-supported", f"{request.method} is not supported: read-only")
        raise FhirError(404, "not-supported", f"no such FHIR interaction here: {kind or '/'}")

    @app.exception_handler(FhirError)
    async def _refused(_: Request, exc: FhirError) -> Response:
        return FhirResponse(outcome(exc.code, exc.diagnostics), exc.status)

    app.include_router(router)

"""What every service's OpenAPI document says beyond its routes' own models: readable
``operationId``s, a tag per resource, and the answers of the HTTP shell that no handler
declares (shared/access.py's 401 / 403, shared/web.py's 503 for an unavailable dependency).

With API_TOKENS_FILE set the document also names the bearer ``securityScheme`` and asks
for it on every guarded operation (shared/access.py ``guarded``); without it no token is
asked for, and the document says so by naming none.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

SCHEME = "bearer"
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
SHELL_ANSWERS = {
    "401": "No valid bearer token (with API_TOKENS_FILE set)",
    "403": "The token's roles may not make this call",
    "503": "A dependency (PostgreSQL) is unavailable: try again",
}


def operation_id(route: APIRoute) -> str:
    """``submit_intake`` -> ``submitIntake``: the handler's name, camelCased."""
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def install_openapi(app: FastAPI, *, tokens: bool) -> None:
    """Build the document once, on first request, with the shell's answers added."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            amend(doc, tokens=tokens)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def amend(doc: dict[str, Any], *, tokens: bool) -> None:
    components = doc.setdefault("components", {})
    if tokens:
        components.setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "a token of API_TOKENS_FILE (python -m shared.auth new)",
        }
    for path, item in doc.get("paths", {}).items():
        if not path.startswith("/v1"):
            continue
        for operation in item.values():
            operation.setdefault("tags", [_tag(path)])
            responses = operation.setdefault("responses", {})
            # ``security: []`` (a route's openapi_extra): it takes no bearer token, it
            # carries its own proof (shared/access.py PUBLIC)
            public = operation.get("security") == []
            for status, description in SHELL_ANSWERS.items():
                if status != "503" and not tokens:
                    continue
                if status == "401" and public:
                    continue
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
            if tokens and not public:
                operation["security"] = [{SCHEME: []}]


def _tag(path: str) -> str:
    """``/v1/sites/{site_id}/oncall`` -> ``sites``: the resource the path starts with."""
    parts = [p for p in path.split("/") if p and p != "v1"]
    return parts[0] if parts else "v1"

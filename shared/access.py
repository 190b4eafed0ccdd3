"""The access check and the audit trail of every service's HTTP API.

One pure-ASGI middleware in front of everything else: a refused call (401, 403) reaches no handler,
so it changes nothing; with API_TOKENS_FILE set, a state-changing call that succeeded
(and a read of a FHIR Patient, the one read with PHI) is written to ``audit`` under its
token's name (without it, as before: no credentials,
no "who", no audit rows).

Each service names the roles that may make each state-changing call (``Rule``s, matched
in order on method and path); reads (GET) are open to every role; ``/v1/audit`` is for
clinicians. The FHIR R4 facade (``/fhir/``, docs/fhir.md) is for clinicians, reads
included, and its refusals are OperationOutcomes; its ``/fhir/r4/metadata`` (the
CapabilityStatement) is open. Ops endpoints (``/healthz``, ``/readyz``, ``/metrics``, the
OpenAPI document and docs) need no token.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel

from shared.auth import OPEN, Principal, TokenBook, bearer
from shared.db import DATABASE_ERRORS
from shared.errors import AppError
from shared.fhir_web import outcome_body
from shared.logging import get_logger
from shared.web import ERRORS, error_body

log = get_logger(__name__)

Scope = dict[str, Any]
ASGIApp = Callable[
    [Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]
]
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Ids an answer may carry that the audit row keeps (answers carry no PHI; see events.py).
ID_KEYS = ("intake_id", "checkin_id", "patient_id", "site_id", "appointment_id", "alert_id")


FHIR = "/fhir/"
FHIR_METADATA = "/fhir/r4/metadata"
# The one read that answers PHI (docs/fhir.md): audited like a change.
PHI_READ = re.compile(r"/fhir/r4/Patient/[^/]+")


def guarded(path: str) -> bool:
    """The paths that need a token when tokens are on."""
    return path.startswith("/v1") or (path.startswith(FHIR) and path != FHIR_METADATA)


@dataclass(frozen=True)
class Rule:
    method: str
    pattern: str  # a regular expression over the path
    roles: tuple[str, ...]

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.fullmatch(self.pattern, path) is not None


def allowed_roles(rules: Sequence[Rule], method: str, path: str) -> tuple[str, ...] | None:
    """The roles that may make this call; None when every role may (a read)."""
    if path.startswith("/v1/audit") or (path.startswith(FHIR) and path != FHIR_METADATA):
        return ("clinician",)
    for rule in rules:
        if rule.matches(method, path):
            return rule.roles
    if method in CHANGES:
        return ("clinician",)  # a change nobody listed: clinicians only
    return None


PUBLIC: tuple[str, ...] = ()
"""A ``Rule``'s roles for a call that takes no bearer token at all: it carries its own
proof (an acknowledgement link's token, a Twilio signature), checks it itself, and
writes its own audit row under the person it acts as."""


class Access:
    def _public(self, method: str, path: str) -> bool:
        return any(r.roles == PUBLIC and r.matches(method, path) for r in self.rules)

    def __init__(
        self,
        app: ASGIApp,
        *,
        book: TokenBook | None,
        rules: Sequence[Rule],
        pool: Callable[[], asyncpg.Pool | None],
    ) -> None:
        self.app = app
        self.book = book
        self.rules = rules
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not guarded(path) or self._public(scope["method"], path):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        principal = OPEN
        if self.book is not None:
            headers = dict(scope.get("headers") or [])
            token = bearer(headers.get(b"authorization", b"").decode("latin-1"))
            found = self.book.find(token) if token else None
            if found is None:
                log.warning("access_refused", status=401, method=method, path=path)
                await _refuse(send, 401, "unauthorized", "a valid bearer token is required", path)
                return
            principal = found
        roles = allowed_roles(self.rules, method, path)
        if roles is not None and not principal.may(roles):
            log.warning(
                "access_refused", status=403, method=method, path=path, actor=principal.name
            )
            await _refuse(
                send,
                403,
                "forbidden",
                f"{principal.name} may not do this (needs {', '.join(roles)})",
                path,
            )
            return
        scope.setdefault("state", {})["principal"] = principal
        status: list[int] = []
        body = bytearray()

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                if len(body) < 65536:
                    body.extend(message.get("body", b""))
                last = not message.get("more_body", False)
                audited = self.book is not None  # without tokens there is no "who"
                kept = method in CHANGES or PHI_READ.fullmatch(path) is not None
                if audited and last and kept and status and status[0] < 400:
                    # written before the answer's last byte: whoever got the answer
                    # finds the change in the trail
                    await self._audit(principal, method, scope, status[0], bytes(body))
            await send(message)

        await self.app(scope, receive, watch)

    async def _audit(
        self, who: Principal, method: str, scope: Scope, status: int, answer: bytes
    ) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or scope.get("path", "")
        params = {k: str(v) for k, v in (scope.get("path_params") or {}).items()}
        try:
            doc = orjson.loads(answer) if answer else None
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            params.update({k: str(doc[k]) for k in ID_KEYS if isinstance(doc.get(k), str)})
        pool = self.pool()
        if pool is None:
            return
        try:
            async with pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO audit (actor, method, route, path_params, status) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    who.name,
                    method,
                    template,
                    params,
                    status,
                )
        except DATABASE_ERRORS as exc:
            # the change itself committed; say loudly that its audit row is missing
            log.error("audit_write_failed", actor=who.name, route=template, error=repr(exc))


NOBODY = Principal("unknown", frozenset())


def principal_of(request: Request) -> Principal:
    """Who makes this call, as the access check found them (OPEN, every role, without
    API_TOKENS_FILE); a request it did not see has no role at all."""
    found = request.scope.get("state", {}).get("principal")
    return found if isinstance(found, Principal) else NOBODY


async def _refuse(send: Any, status: int, code: str, detail: str, path: str) -> None:
    if path.startswith(FHIR):  # an OperationOutcome, as every FHIR answer (shared/fhir_web.py)
        body, headers = outcome_body("login" if status == 401 else "forbidden", detail)
    else:
        body = orjson.dumps(error_body(code, detail))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="interval"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AuditEntry(BaseModel):
    id: int
    at: Any
    actor: str
    method: str
    route: str
    path_params: dict[str, str]
    status: int


def audit_router(pool: Callable[[Request], asyncpg.Pool]) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get(
        "/audit",
        response_model=list[AuditEntry],
        responses=ERRORS,
        summary="Who changed what, when (clinicians only; ids, never bodies)",
    )
    async def audit(
        request: Request,
        limit: int = Query(default=200, ge=1, le=5000),
        actor: str | None = None,
    ) -> list[AuditEntry]:
        async with pool(request).acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM audit WHERE ($1::text IS NULL OR actor = $1) "
                "ORDER BY id DESC LIMIT $2",
                actor,
                limit,
            )
        return [AuditEntry.model_validate(dict(r)) for r in rows]

    return router


def install_access(
    app: FastAPI,
    *,
    tokens_file: str | None,
    rules: Sequence[Rule],
    pool: Callable[[], asyncpg.Pool | None],
) -> None:
    """Load the tokens (a bad file stops the service at start, not at the first call)."""
    book = TokenBook.load(tokens_file) if tokens_file else None
    if book is not None and not book.entries:
        raise AppError(f"{tokens_file} lists no tokens: nobody could call the API")
    app.add_middleware(Access, book=book, rules=rules, pool=pool)

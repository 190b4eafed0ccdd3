"""The HTTP shell every service shares: JSON errors, health, readiness, metrics.

Error bodies are the contract's ``{"error", "detail", "errors": [{"field", "message"}]}``.
The status mapping of domain errors lives here and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
import structlog
from asyncpg.exceptions import CharacterNotInRepertoireError, UntranslatableCharacterError
from fastapi import FastAPI, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from shared.errors import AppError, Conflict, Gone, InvalidInput, NotFound, Unavailable
from shared.logging import get_logger
from shared.validation import ID_MAX_LENGTH, ID_PATTERN

log = get_logger("http")

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

GATE_WAITING = Gauge(
    "http_routine_waiting",
    "Routine requests waiting for their turn at the gate (shared/web.py RoutineGate)",
)
GATE_REFUSED = Counter(
    "http_routine_refused_total",
    "Routine requests refused (503) because the gate's queue was full (shared/web.py RoutineGate)",
)

# A site's id in a path, as intakes name sites (any other id could never have a patient,
# nor be paged for).
SiteId = Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]

STATUS = {NotFound: 404, Conflict: 409, Gone: 410, InvalidInput: 422, Unavailable: 503}


class JSONResponse(Response):
    """JSON rendered with orjson (datetimes as ISO 8601, UTC as "Z" as pydantic writes it)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)


ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: a machine-readable code, a human detail, the bad fields."""

    error: str
    detail: Any = None
    errors: list[FieldError] = []


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON"},
    404: {"model": ErrorBody, "description": "Unknown id"},
    409: {"model": ErrorBody, "description": "Id reused with another body, or step not allowed"},
    413: {"model": ErrorBody, "description": "The body is too large"},
    422: {"model": ErrorBody, "description": "Invalid fields, each named in `errors`"},
}
"""The error answers every /v1 route documents in the OpenAPI document."""


def error_body(code: str, detail: Any = None, errors: list[dict[str, str]] | None = None) -> Any:
    return {"error": code, "detail": detail, "errors": errors or []}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    return [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (a 405's ``Allow``): Starlette names
    only those of the first route that matched the path, not of its siblings."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(path):
            methods |= set(route.methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return JSONResponse(error_body("malformed_json", "the body is not valid JSON"), 400)
        return JSONResponse(
            error_body(
                "validation_error", "the request has invalid fields", validation_errors(exc)
            ),
            422,
        )

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> Response:
        status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 400)
        errors = exc.errors if isinstance(exc, InvalidInput) else None
        return JSONResponse(error_body(exc.code, exc.detail, errors), status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            400: "malformed_json",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        headers = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}
        if exc.status_code == 405:
            headers["allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(error_body(code, exc.detail), exc.status_code, headers=headers)

    @app.exception_handler(CharacterNotInRepertoireError)
    @app.exception_handler(UntranslatableCharacterError)
    async def _unstorable(_: Request, exc: Exception) -> Response:
        # text no validator caught that PostgreSQL cannot hold (a NUL): the client's input;
        # its transaction rolled back, nothing was stored
        log.warning("unstorable_text", error_type=type(exc).__name__)
        return JSONResponse(
            error_body("validation_error", "the request has text that cannot be stored"), 422
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return JSONResponse(error_body("internal_error", "unexpected server error"), 500)


class _Observe:
    """Request id, one log line and metrics per request (pure ASGI: no body buffering)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")[:64].decode("latin-1")
        request_id = given or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            path = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            REQUESTS.labels(method, path, str(status)).inc()
            LATENCY.labels(method, path).observe(elapsed)
            if path not in ("/healthz", "/readyz", "/metrics"):
                log.info(
                    "http_request",
                    method=method,
                    route=path,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")


def install_observability(
    app: FastAPI,
    readiness: ReadinessCheck,
    before_metrics: Callable[[], Awaitable[None]] | None = None,
) -> None:
    app.add_middleware(_Observe)

    @app.get("/healthz", tags=["ops"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="200 only when Kafka and PostgreSQL work",
        responses={503: {"description": "a dependency is unavailable"}},
    )
    async def readyz() -> Response:
        checks = await readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", "checks": checks}, 200 if ok else 503
        )

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        if before_metrics is not None:
            await before_metrics()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a streamed (chunked) body passes the limit. An
    HTTPException, so FastAPI's body parsing lets it through (any other error there
    becomes a 400) and the error handlers answer 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the body exceeds {max_bytes} bytes")


class BodyLimit:
    """ASGI middleware: refuse oversized bodies early (413), by Content-Length or while
    streaming."""

    def __init__(self, inner: Any, max_bytes: int) -> None:
        self.inner = inner
        self.max_bytes = max_bytes
        self.too_large = JSONResponse(
            error_body("payload_too_large", f"the body exceeds {max_bytes} bytes"), 413
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self.too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.inner(scope, limited, send)
        except _BodyTooLarge:
            await self.too_large(scope, receive, send)


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_bytes)


class RoutineGate:
    """ASGI middleware: at most ``limit`` requests of the ``routine`` routes (method, path)
    run at once; the others wait here, before their body is read or validated. Under
    overload a service's routine requests (e.g. intakes) then queue in this gate and not
    in the event loop, where every step of a request on the safety path (a check-in:
    docs/domain.md "Safety signals first") would wait behind a step of each of them.
    A request waits for its turn, in arrival order; when ``queue_max`` (> 0) are waiting
    already, one more is refused at once (503, ``Retry-After``), its body unread and
    nothing changed. Under overload the service then answers what it took in time,
    instead of working through a queue of requests whose clients have given up
    (docs/performance.md, "What the API waits for under overload")."""

    def __init__(
        self, inner: Any, routine: frozenset[tuple[str, str]], limit: int, queue_max: int = 0
    ) -> None:
        self.inner = inner
        self.routine = routine
        self.gate = asyncio.Semaphore(limit)
        self.queue_max = queue_max
        self.waiting = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) not in self.routine:
            await self.inner(scope, receive, send)
            return
        if self.queue_max and self.waiting >= self.queue_max:
            GATE_REFUSED.inc()
            await _OVERLOADED(scope, receive, send)
            return
        self.waiting += 1
        GATE_WAITING.inc()
        try:
            await self.gate.acquire()
        finally:
            self.waiting -= 1
            GATE_WAITING.dec()
        try:
            await self.inner(scope, receive, send)
        finally:
            self.gate.release()


# The gate's refusal: the same for every request, so made once.
_OVERLOADED = JSONResponse(
    error_body("overloaded", "too many requests of this kind are waiting; send it again shortly"),
    503,
    headers={"Retry-After": "1"},
)


def install_routine_gate(
    app: FastAPI, routine: Sequence[tuple[str, str]], limit: int, queue_max: int = 0
) -> None:
    if routine:
        app.add_middleware(
            RoutineGate, routine=frozenset(routine), limit=limit, queue_max=queue_max
        )


class NulGuard:
    """ASGI middleware: refuse a NUL character in the path (404: no id of ours holds one)
    or in the query (422 naming each parameter) before any handler runs: PostgreSQL
    cannot store one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = _nul_refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.inner(scope, receive, send)


def _nul_refusal(scope: Any) -> JSONResponse | None:
    if "\x00" in scope.get("path", ""):
        return JSONResponse(error_body("not_found", "no such resource"), 404)
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    bad = sorted({k for k, v in pairs if "\x00" in k or "\x00" in v})
    if not bad:
        return None
    errors = [
        {
            "field": "query." + k.replace("\x00", "\\u0000"),
            "message": "must not contain a NUL character",
        }
        for k in bad
    ]
    return JSONResponse(
        error_body("validation_error", "the request has invalid fields", errors), 422
    )


def install_input_guard(app: FastAPI) -> None:
    app.add_middleware(NulGuard)

"""Warming a FastAPI app's routes before its first request (shared/service.py)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


async def warm_routes(app: FastAPI, methods: frozenset[str] = frozenset({"POST"})) -> int:
    """Before the first request: FastAPI builds a route's parameter and body models (and
    reads the endpoint's source) the first time a request matches it, which made the
    first intake after a start take ~100 ms. Each route with one of ``methods`` that
    takes a body is sent a request with an empty-array body straight to the router (no
    middleware, so no access check, log line or metric): it matches, its body fails
    validation (422) and no endpoint runs. A route without a body is left to its first
    request, as nothing would stop its endpoint. Returns the routes warmed."""
    warmed = 0
    for route_path, route_methods, has_body in _api_routes(app.routes):
        # a route without a body would run its endpoint: never at start
        if route_methods & methods and has_body:
            method = sorted(route_methods & methods)[0]
            await _send_to_router(app, method, re.sub(r"{[^}]+}", "warm-up", route_path))
            warmed += 1
    return warmed


def _api_routes(routes: Sequence[Any], prefix: str = "") -> Iterator[tuple[str, set[str], bool]]:
    """(path, methods, whether it takes a body) of every APIRoute, inside included
    routers too (FastAPI keeps an included router whole, with its include prefix, rather
    than copying its routes)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, set(route.methods or ()), route.body_field is not None
        elif (inner := getattr(route, "original_router", None)) is not None:
            context = getattr(route, "include_context", None)
            yield from _api_routes(inner.routes, prefix + getattr(context, "prefix", ""))


async def _send_to_router(app: FastAPI, method: str, path: str) -> None:
    body = [{"type": "http.request", "body": b"[]", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return body.pop() if body else {"type": "http.disconnect"}

    async def send(_: Any) -> None:
        return None

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "app": app,
        "state": {},
    }
    # the 422 (or any refusal) is the expected end; the exit stack is what FastAPI's own
    # middleware would have put in the scope
    with contextlib.suppress(Exception):
        async with contextlib.AsyncExitStack() as stack:
            scope["fastapi_middleware_astack"] = stack
            await app.router(scope, receive, send)

"""The services' APIs as the dashboard sees them: data, or a clear "down" (never an
empty list that would read as "all clear")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Down:
    service: str
    reason: str


@dataclass(frozen=True)
class Refused:
    """The service answered with an error the user should read (e.g. a 409)."""

    status: int
    detail: str
    # a 422's ``errors: [{field, message}]``, to show beside the form that sent it
    errors: tuple[dict[str, str], ...] = field(default=())


class Upstream:
    def __init__(
        self, http: httpx.AsyncClient, urls: dict[str, str], token: str | None = None
    ) -> None:
        self.http = http
        self.urls = urls
        # the signed-in user's token, passed on so the services check and audit them
        self.headers = {"Authorization": f"Bearer {token}"} if token else None

    def acting_as(self, token: str | None) -> Upstream:
        return Upstream(self.http, self.urls, token)

    async def get(self, service: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON body, ``Down`` when the service cannot be reached or fails, ``Refused``
        for a 4xx the user should read."""
        return await self._call("GET", service, path, params=params)

    async def post(self, service: str, path: str, body: dict[str, Any]) -> Any:
        return await self._call("POST", service, path, json=body)

    async def put(self, service: str, path: str, body: dict[str, Any]) -> Any:
        return await self._call("PUT", service, path, json=body)

    async def delete(self, service: str, path: str) -> Any:
        """``{}`` when done (a 204 has no body)."""
        return await self._call("DELETE", service, path)

    async def _call(self, method: str, service: str, path: str, **kw: Any) -> Any:
        try:
            r = await self.http.request(
                method, f"{self.urls[service]}{path}", headers=self.headers, **kw
            )
        except httpx.HTTPError as exc:
            log.warning("upstream_down", service=service, error=type(exc).__name__)
            return Down(service, f"unreachable ({type(exc).__name__})")
        if r.status_code >= 500:
            return Down(service, f"answered {r.status_code}")
        if r.status_code == 401:
            return Down(service, "refused our credentials (sign in again)")
        if r.status_code >= 400:
            return Refused(r.status_code, _detail(r), _errors(r))
        return orjson.loads(r.content) if r.content else {}


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
    return str(detail or body)[:200]


def _errors(r: httpx.Response) -> tuple[dict[str, str], ...]:
    try:
        body = r.json()
    except ValueError:
        return ()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ()
    return tuple(
        {"field": str(e.get("field") or ""), "message": str(e.get("message") or "")}
        for e in errors
        if isinstance(e, dict)
    )

"""Sign-in with an API token (only with API_TOKENS_FILE): a cookie the dashboard passes
on to the services, which check and audit it (shared/auth.py, shared/access.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from services.dashboard.deps import COOKIE, deps
from shared.auth import TokenBook

OPEN_PATHS = ("/signin", "/static/", "/vendor/", "/healthz", "/readyz", "/metrics")

router = APIRouter(include_in_schema=False)


class SignedIn(BaseHTTPMiddleware):
    """Every page but the open ones needs a valid token cookie: a browser is sent to the
    sign-in page, an htmx request gets 401 with ``HX-Redirect`` there."""

    def __init__(self, app: Any, book: TokenBook | None) -> None:
        super().__init__(app)
        self.book = book

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if self.book is None or path.startswith(OPEN_PATHS):
            return await call_next(request)
        token = request.cookies.get(COOKIE)
        if token and self.book.find(token) is not None:
            return await call_next(request)
        target = "/signin?" + urlencode({"next": path})
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = "/") -> HTMLResponse:
    return deps(request).templates.TemplateResponse(
        request, "signin.html", {"next": next, "error": None}
    )


@router.post("/signin")
async def signin(request: Request) -> Any:
    form = parse_qs((await request.body()).decode(errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    target = (form.get("next") or ["/"])[0]
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    book = deps(request).book
    who = book.find(token) if book is not None and token else None
    if who is None:
        return deps(request).templates.TemplateResponse(
            request, "signin.html", {"next": target, "error": "That token is not valid."}, 401
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
    return response


@router.get("/signout")
async def signout() -> Any:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE)
    return response

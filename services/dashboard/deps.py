"""What the dashboard's routes need, built by services/dashboard/app.py at start."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.templating import Jinja2Templates

from services.dashboard.upstream import Upstream
from shared.auth import OPEN, Principal, TokenBook

COOKIE = "interval_token"  # the signed-in user's API token (only with API_TOKENS_FILE)


@dataclass(frozen=True)
class Deps:
    templates: Jinja2Templates
    upstream: Upstream
    book: TokenBook | None  # None: no sign-in (no API_TOKENS_FILE)
    refresh_s: float  # how often the alerts board refreshes itself in the browser


def deps(request: Request) -> Deps:
    d: Deps = request.app.state.deps
    return d


def up(request: Request) -> Upstream:
    """The services' APIs, called as the signed-in user (their token passed on)."""
    d = deps(request)
    return d.upstream.acting_as(request.cookies.get(COOKIE)) if d.book is not None else d.upstream


def principal(request: Request) -> Principal | None:
    """Who is signed in: everyone may do everything without sign-in (no API_TOKENS_FILE),
    as the services allow then; None for a cookie that names nobody."""
    d = deps(request)
    if d.book is None:
        return OPEN
    token = request.cookies.get(COOKIE)
    return d.book.find(token) if token else None


def may_edit_oncall(request: Request) -> bool:
    """The roles the alerts service lets change on-call people (services/alerts/app.py)."""
    who = principal(request)
    return who is not None and who.may(("scheduler",))

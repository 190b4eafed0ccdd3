"""The ops dashboard: server-rendered pages over the services' APIs, htmx for the rest.

It owns no data: every figure comes from an API call made while rendering, so a
service that is down shows as down (never as an empty list that reads "all clear").
Pages: services/dashboard/api.py; what each shows: queries.py; sign-in: signin.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services.dashboard import api, overview, signin
from services.dashboard.deps import Deps
from services.dashboard.settings import DashboardSettings
from services.dashboard.upstream import Upstream
from shared import devclock
from shared.auth import TokenBook
from shared.web import install_observability

HERE = Path(__file__).parent
VENDOR = HERE / "web" / "node_modules"


async def _ready() -> dict[str, str]:
    return {"dashboard": "ok"}


def create_app(settings: DashboardSettings) -> FastAPI:
    devclock.refuse_unless_loopback(settings, "dashboard")
    book = TokenBook.load(settings.api_tokens_file) if settings.api_tokens_file else None
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(
        pct=overview.pct, duration=overview.duration, auth_enabled=book is not None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # DEV_CLOCK=1: the pages' "now" is the stack's (its row in the stack's database)
        await devclock.watch(settings, "dashboard")
        try:
            async with httpx.AsyncClient(timeout=settings.upstream_timeout_s) as http:
                upstream = Upstream(http, settings.upstreams())
                app.state.deps = Deps(templates, upstream, book, settings.board_refresh_s)
                yield
        finally:
            await devclock.unwatch()

    app = FastAPI(title="Interval ops dashboard", version="1.0.0", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/vendor/htmx", StaticFiles(directory=VENDOR / "htmx.org" / "dist", check_dir=False))
    app.mount(
        "/vendor/chart.js", StaticFiles(directory=VENDOR / "chart.js" / "dist", check_dir=False)
    )
    install_observability(app, _ready)
    app.add_middleware(signin.SignedIn, book=book)
    app.include_router(signin.router)
    app.include_router(api.router)
    return app

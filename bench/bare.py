"""The baseline for the intake API's throughput: a bare FastAPI + asyncpg endpoint that
stores a posted JSON body in one INSERT, served the way the services are (uvicorn on
uvloop and httptools, one process, same pool size), loaded by the same client.

``python -m bench.bare PORT DSN`` serves it; ``bare_endpoint()`` starts one for a bench.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Request, Response

from shared.db import connect_kwargs
from tools.stack import (
    BASE_DSN,
    ROOT,
    ServiceProcess,
    create_space,
    drop_space,
    free_port,
    wait_ready,
)


def app(dsn: str) -> FastAPI:
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10, **connect_kwargs(dsn))
        assert pool is not None
        await pool.execute("CREATE TABLE IF NOT EXISTS bare (id text PRIMARY KEY, body jsonb)")
        state["pool"] = pool
        yield
        await pool.close()

    api = FastAPI(lifespan=lifespan)

    @api.post("/v1/intakes", status_code=201)
    async def store(request: Request) -> Response:
        body = await request.body()
        await state["pool"].execute(
            "INSERT INTO bare VALUES ($1, $2::text::jsonb)", uuid.uuid4().hex, body.decode()
        )
        return Response(b'{"ok":true}', 201, media_type="application/json")

    @api.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return api


@contextlib.asynccontextmanager
async def bare_endpoint() -> AsyncIterator[str]:
    """The bare endpoint on a throwaway database; yields its URL."""
    space = await create_space("bare")
    port = free_port()
    proc = ServiceProcess(
        "bare",
        ["bench.bare", str(port), space.dsn],
        dict(os.environ),
        ROOT / ".state" / "logs" / "bench-bare.log",
    )
    proc.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc)
        yield url
    finally:
        proc.kill()
        await drop_space(space)


if __name__ == "__main__":
    uvicorn.run(
        app(sys.argv[2] if len(sys.argv) > 2 else BASE_DSN),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )

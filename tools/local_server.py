"""``LocalServer``: what every local stand-in the tests start shares (tools/page_receiver,
tools/fake_twilio, tools/mail_sink): ``async with`` starts and stops it, ``port`` is the
one it listens on once started."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import uvicorn


class LocalServer:
    _port: int | None = None

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return self._port


S = TypeVar("S", bound=LocalServer)


def serve_until_signalled(make: Callable[[], S], banner: Callable[[S], str]) -> int:
    """``python -m tools.<stand-in>``: start the server ``make()`` builds, print
    ``banner(server)`` to stderr, serve until SIGINT or SIGTERM, then stop it; 0."""

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with make() as server:
                print(banner(server), file=sys.stderr, flush=True)
                await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


async def start_asgi(app: Any, host: str, port: int, name: str) -> tuple[uvicorn.Server, int]:
    """An ASGI app served on ``host:port`` in the running loop; the server and its port,
    once it accepts connections. Startup and shutdown are driven here rather than by
    ``server.serve()``, which installs process-wide SIGINT/SIGTERM handlers that an
    embedded stand-in must not (Ctrl-C in pytest would stop it, not the run)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        interface="asgi3",
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup()
    except SystemExit:  # uvicorn exits when it cannot bind
        raise OSError(f"{name} could not listen on {host}:{port}") from None
    return server, int(server.servers[0].sockets[0].getsockname()[1])


async def stop_asgi(server: uvicorn.Server | None) -> None:
    if server is not None:
        server.should_exit = True
        await server.shutdown()

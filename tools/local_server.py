"""``LocalServer``: what every local stand-in the tests start shares (tools/page_receiver,
tools/fake_twilio, tools/mail_sink): ``async with`` starts and stops it, ``port`` is the
one it listens on once started."""

from __future__ import annotations

from types import TracebackType
from typing import Self


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

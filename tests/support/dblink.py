"""A TCP relay in front of PostgreSQL for one process under test (``DbLink``): the
database taken away from that process alone, refused, hung or given back."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class DbLink:
    """A TCP relay in front of PostgreSQL for one process: ``cut()`` drops every
        connection through it and refuses new ones (the database gone, for that process
        alone); ``mend()`` lets them through again. ``admit(n)`` lets the next ``n`` new
    connections through a cut link (a server with a few connection slots left);
    ``refused`` counts the connections turned away."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.dsn = dsn
        self.open = True
        self.admits = 0
        self.refused = 0
        self.flowing = asyncio.Event()  # cleared: bytes wait (a database that hangs)
        self.flowing.set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        """Listen; the DSN to hand the process."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        parts = urlsplit(self.dsn)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        return urlunsplit(
            parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host)
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open and self.admits <= 0:
            self.refused += 1
            writer.close()
            return
        if not self.open:
            self.admits -= 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    await self.flowing.wait()
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    def cut(self) -> None:
        self.open = False
        for w in list(self.writers):
            w.close()
        self.writers.clear()

    def admit(self, n: int) -> None:
        self.admits = n

    def mend(self) -> None:
        self.open = True
        self.admits = 0
        self.refused = 0
        self.flowing.set()

    def hang(self) -> None:
        """Connections stay open but nothing comes back (a hung server or network)."""
        self.flowing.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

"""``ReceiverProcess``: the page receiver in a process of its own (``python -m
tools.page_receiver --record``), read back as ``Received`` requests. Where the test
process itself is loaded (it drives the load of tests/faults/test_cluster.py), an
in-process receiver's event loop answers late and stamps arrivals late: a page's
measured delay was then the test's as much as the system's."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

from tools.local_server import LocalServer
from tools.page_receiver.received import Received, from_line
from tools.page_receiver.receiver import ReceivedViews
from tools.ports import free_port


class ReceiverProcess(LocalServer, ReceivedViews):
    """Answers 200 to every POST; ``received`` is read from its record file."""

    def __init__(self, log_path: Path | None = None) -> None:
        self._port = free_port()
        self.host = "127.0.0.1"
        self._dir = tempfile.TemporaryDirectory(prefix="page-receiver-")
        self.record = Path(self._dir.name) / "received.jsonl"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/page") -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    @property
    def received(self) -> list[Received]:  # type: ignore[override]
        if not self.record.exists():
            return []
        lines = self.record.read_bytes().splitlines()
        return [from_line(line) for line in lines if line.strip()]

    async def start(self, timeout: float = 30.0) -> Self:
        argv = [sys.executable, "-m", "tools.page_receiver", "--port", str(self.port)]
        argv += ["--record", str(self.record)]
        with contextlib.ExitStack() as files:  # the child keeps its own descriptor
            out = (
                files.enter_context(self.log_path.open("ab"))
                if self.log_path
                else subprocess.DEVNULL
            )
            self.proc = subprocess.Popen(  # noqa: S603  # our own module, fixed arguments
                argv, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:  # listening once a connection is accepted
            if self.proc.poll() is not None:
                raise RuntimeError(f"the page receiver exited ({self.proc.returncode})")
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return self

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._dir.cleanup()

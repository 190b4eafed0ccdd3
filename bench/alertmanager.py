"""Baseline: Prometheus Alertmanager's time from an alert POSTed to its API until the webhook
receiver has it, to set our alerts service's POST -> page latency beside.

Alertmanager runs as a real local process (Debian's ``prometheus-alertmanager``; installed
on first use) with one route that sends every distinct alert to a webhook at once
(``group_by: ['...']``, ``group_wait: 0s``) and clustering off. Alerts go one at a time,
``spacing_s`` apart, so this is the idle latency, not throughput.

    python -m bench.alertmanager [N]
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from bench.load import ms, pct
from tools.page_receiver import PageReceiver, Received

PACKAGE = "prometheus-alertmanager"
BINARY = Path("/usr/bin/prometheus-alertmanager")
# Where the package's sysv init script keeps the pid of the system service.
SERVICE_PIDFILE = Path("/run/prometheus/prometheus-alertmanager.pid")
RECEIVER_PATH = "/am"


def _log(msg: str) -> None:
    print(f"bench.alertmanager: {msg}", file=sys.stderr, flush=True)


def ensure_alertmanager() -> Path:
    """The Alertmanager binary; installs the Debian package first if it is missing.

    Installing it may start the package's own service (listening on :9093, gossip on
    :9094 on every interface); that is stopped (and, under systemd, disabled) at once,
    since the benchmark starts its own instance on a free port."""
    if BINARY.exists():
        return BINARY
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        raise RuntimeError(
            f"{BINARY} is missing and this is not root and there is no sudo: "
            f"apt-get install --no-install-recommends {PACKAGE}"
        )
    _log(f"installing {PACKAGE} with apt-get")
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "--no-install-recommends", PACKAGE],
        check=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    _stop_system_service(sudo)
    if not BINARY.exists():
        raise RuntimeError(f"installed {PACKAGE} but {BINARY} is not there")
    return BINARY


def _stop_system_service(sudo: list[str]) -> None:
    """Stop the service the package's postinst may have started (under systemd it does;
    where a policy-rc.d denies starts, as in containers, nothing was started)."""
    quiet: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "check": False,
    }
    pid = _service_pid()  # read first: the init script's "stop" removes the pidfile
    systemd = Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None
    if systemd:
        running = subprocess.run(["systemctl", "is-active", "--quiet", PACKAGE], **quiet)
        subprocess.run([*sudo, "systemctl", "disable", "--now", PACKAGE], **quiet)
        if running.returncode == 0:
            _log(f"stopped and disabled the {PACKAGE} systemd service the package started")
    elif pid is not None and shutil.which("service"):
        subprocess.run([*sudo, "service", PACKAGE, "stop"], **quiet)
        _log(f"stopped the system {PACKAGE} service the package started (pid {pid})")
    if pid is not None and _alive_alertmanager(pid):  # the init system did not stop it
        subprocess.run([*sudo, "kill", "-TERM", str(pid)], **quiet)
        _log(f"sent SIGTERM to the system {PACKAGE} (pid {pid})")
    elif pid is None and not systemd:
        _log(f"the package started no {PACKAGE} service")


def _service_pid() -> int | None:
    """The system service's pid, if its pidfile names a live Alertmanager process."""
    try:
        pid = int(SERVICE_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive_alertmanager(pid) else None


def _alive_alertmanager(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/exe").resolve(strict=True) == BINARY.resolve()
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(receiver_url: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "bench",
            "group_by": ["..."],  # every distinct label set is its own group
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "bench",
                "webhook_configs": [{"url": receiver_url, "send_resolved": False}],
            }
        ],
    }


class Alertmanager:
    """``async with Alertmanager(receiver_url) as am:`` a private Alertmanager on a free
    127.0.0.1 port (``am.url``), its config, data and log in a temporary directory."""

    def __init__(
        self, receiver_url: str, *, binary: Path | None = None, ready_timeout_s: float = 30.0
    ) -> None:
        self.receiver_url = receiver_url
        self.binary = binary
        self.ready_timeout_s = ready_timeout_s
        self.port = 0
        self.dir: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        if self.dir is None:
            raise RuntimeError("Alertmanager not started")
        return self.dir / "alertmanager.log"

    async def __aenter__(self) -> Self:
        binary = self.binary or await asyncio.to_thread(ensure_alertmanager)
        self.dir = Path(tempfile.mkdtemp(prefix="bench-alertmanager-"))
        config = self.dir / "alertmanager.yml"  # JSON is YAML
        config.write_bytes(orjson.dumps(_config(self.receiver_url), option=orjson.OPT_INDENT_2))
        self.port = _free_port()
        try:
            with self.log_path.open("wb") as log:
                self._proc = await asyncio.create_subprocess_exec(
                    str(binary),
                    f"--config.file={config}",
                    f"--storage.path={self.dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",  # no clustering, no gossip, no peer wait
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            await self._wait_ready()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                if self._proc.returncode is not None:
                    raise RuntimeError(
                        f"alertmanager exited with {self._proc.returncode}:\n{self._log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/-/ready")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"alertmanager not ready after {self.ready_timeout_s:g} s:\n"
                        f"{self._log_tail()}"
                    )
                await asyncio.sleep(0.02)  # an external process coming up: poll briefly

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _carries(record: Received, alert_id: str) -> bool:
    """Whether an Alertmanager webhook (``{"alerts": [{"labels": ...}]}``) to /am has
    the alert."""
    body = record.json
    if record.path != RECEIVER_PATH or not isinstance(body, dict):
        return False
    alerts = body.get("alerts")
    return isinstance(alerts, list) and any(
        isinstance(a, dict)
        and isinstance(a.get("labels"), dict)
        and a["labels"].get("alert_id") == alert_id
        for a in alerts
    )


async def measure_alertmanager(
    n: int = 200, receiver: PageReceiver | None = None, spacing_s: float = 0.05
) -> list[float]:
    """Seconds from POST /api/v2/alerts until the webhook reached the receiver (on /am),
    for ``n`` distinct alerts sent one at a time. A started ``receiver`` may be passed in."""
    async with contextlib.AsyncExitStack() as stack:
        rx = receiver if receiver is not None else await stack.enter_async_context(PageReceiver())
        am = await stack.enter_async_context(Alertmanager(rx.url(RECEIVER_PATH)))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=am.url, timeout=10))
        latencies: list[float] = []
        for _ in range(n):
            alert_id = str(uuid.uuid4())
            alert = {
                "labels": {
                    "alertname": "suicide_risk",
                    "alert_id": alert_id,
                    "severity": "critical",
                    "site_id": "site-a",
                },
                "annotations": {},
                "startsAt": datetime.now(UTC).isoformat(),
            }
            sent = time.monotonic()
            response = await client.post("/api/v2/alerts", json=[alert])
            response.raise_for_status()
            got = await rx.wait_for_request(
                functools.partial(_carries, alert_id=alert_id),
                timeout=10,
                what=f"Alertmanager's webhook for alert_id={alert_id}",
            )
            latencies.append(got.received_mono - sent)
            await asyncio.sleep(spacing_s)
    return latencies


def alertmanager_version(binary: Path = BINARY) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    words = (out.stdout or out.stderr).split()
    return words[2].rstrip(",") if len(words) > 2 else "?"


def report(latencies: list[float]) -> None:
    """One line in the style of ``make bench``."""
    label = "Alertmanager POST /api/v2/alerts -> webhook"
    print(
        f"  {label:<44} p50 {ms(pct(latencies, 50))}  p99 {ms(pct(latencies, 99))}  "
        f"max {ms(max(latencies, default=0.0))}  n={len(latencies)}"
    )


async def main(n: int) -> None:
    binary = await asyncio.to_thread(ensure_alertmanager)
    print(f"Baseline: Prometheus Alertmanager {alertmanager_version(binary)} (idle, one at a time)")
    report(await measure_alertmanager(n))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))

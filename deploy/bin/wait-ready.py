"""Wait until the supervised services are up and every HTTP service answers /readyz 200.

    .venv/bin/python deploy/bin/wait-ready.py [--timeout 120] [--supervisor SOCK]
        [--logs .state/logs] NAME=BASE_URL [NAME=BASE_URL ...]

NAME is the supervisord program (its log is LOGS/NAME.log), BASE_URL e.g.
http://127.0.0.1:8001 (GET BASE_URL/readyz must answer 200). With --supervisor,
every program supervisord knows must also be RUNNING; one that is FATAL fails at
once. On failure prints, per service not ready, why and the tail of its log;
exits 1. Standard library only, plus supervisor's XML-RPC transport when used.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from pathlib import Path
from typing import Any


def probe(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback URLs)
            return resp.status == 200, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(300).decode("utf-8", "replace").strip()
        return False, f"HTTP {exc.code} {body}"
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{type(reason).__name__}: {reason}"


def supervisor_proxy(sock: str) -> Any:
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{sock}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def tail(path: Path, lines: int = 30) -> str:
    try:
        data = path.read_bytes()[-64_000:].decode("utf-8", "replace").splitlines()
    except OSError as exc:
        return f"    (no log: {exc})"
    return "\n".join("    " + line for line in data[-lines:]) or "    (log is empty)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--supervisor", help="supervisord's unix socket; check program states too")
    ap.add_argument("--logs", default=".state/logs")
    ap.add_argument("services", nargs="*", metavar="NAME=BASE_URL")
    args = ap.parse_args()

    urls: dict[str, str] = {}
    for spec in args.services:
        name, sep, base = spec.partition("=")
        if not sep:
            ap.error(f"expected NAME=BASE_URL, got {spec!r}")
        urls[name] = base.rstrip("/") + "/readyz"

    proxy = supervisor_proxy(args.supervisor) if args.supervisor else None
    start = time.monotonic()
    deadline = start + args.timeout
    ready: set[str] = set()
    why: dict[str, str] = {}
    states: dict[str, str] = {}
    fatal: list[str] = []
    while True:
        if proxy is not None:
            try:
                infos = proxy.supervisor.getAllProcessInfo()
                states = {i["name"]: i["statename"] for i in infos}
                for i in infos:
                    if i["statename"] != "RUNNING" and i["name"] not in urls:
                        why[i["name"]] = f"supervisor: {i.get('description', '')}"
                fatal = [n for n, s in states.items() if s in ("FATAL", "EXITED", "STOPPED")]
            except (OSError, xmlrpc.client.Fault) as exc:
                states = {}
                why["supervisord"] = f"not answering on {args.supervisor}: {exc}"
                fatal = []
        for name, url in urls.items():
            if name in ready:
                continue
            ok, detail = probe(url)
            if ok:
                ready.add(name)
                why.pop(name, None)
            else:
                why[name] = f"GET {url}: {detail}"
        running = all(s == "RUNNING" for s in states.values()) if proxy is not None else True
        if proxy is not None and not states:
            running = False
        if running and len(ready) == len(urls):
            print(f"ready in {time.monotonic() - start:.1f}s: {', '.join(urls) or 'all programs'}")
            return 0
        if fatal or time.monotonic() >= deadline:
            break
        time.sleep(0.3)

    names = sorted(
        set(urls) - ready
        | {n for n, s in states.items() if s != "RUNNING"}
        | set(why) & {"supervisord"}
    )
    reason = (
        f"gave up: {', '.join(fatal)} failed" if fatal else f"not ready after {args.timeout:.0f}s"
    )
    print(f"error: {reason}", file=sys.stderr)
    for name in names:
        state = states.get(name)
        print(
            f"\n  {name}: {why.get(name, 'not ready')}" + (f" [{state}]" if state else ""),
            file=sys.stderr,
        )
        if name != "supervisord":
            log = Path(args.logs) / f"{name}.log"
            print(f"  ---- last lines of {log} ----\n{tail(log)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""Each service's OpenAPI document tells the truth: ``st run <service>/openapi.json
--checks all`` (schemathesis, every check, none excluded) passes against the real API
process, with access control on (API_TOKENS_FILE, a clinician's bearer token).

Among the checks: schema-valid requests are accepted (positive data acceptance) and
schema-invalid ones refused with a 4xx (negative data rejection), answers match their
documented status, content type, headers and schema, a 405 names the allowed methods,
a call without the token is refused (ignored auth), and created resources can be read
back (the stateful phase). tests/support/openapi_hooks.py tells schemathesis what JSON
Schema cannot say (cross-field rules, the tz names of ``format: iana-time-zone``).

A fixed seed and ``CONFORMANCE_EXAMPLES`` cases per operation and phase, so CI repeats
itself; another ``CONFORMANCE_SEED`` explores elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.auth import digest
from tests.support.stack import (
    ARTIFACTS,
    IntakeStack,
    ServiceProcess,
    free_port,
    service_env,
    wait_ready,
)
from tools.stack import ROOT, create_space, drop_space

pytestmark = pytest.mark.integration

SERVICES = ("intake", "scheduling", "alerts")
EXAMPLES = int(os.environ.get("CONFORMANCE_EXAMPLES", "10"))
SEED = int(os.environ.get("CONFORMANCE_SEED", "20261204"))
RUN = uuid.uuid4().hex[:8]
TOKEN = f"conformance-{RUN}"


@pytest.fixture(scope="module")
async def guarded_apis(intake: IntakeStack) -> AsyncIterator[dict[str, str]]:
    """The three API processes on a database of their own (what schemathesis creates, e.g.
    sites with generated names, must not reach the session's stacks: the dashboard's
    browser test reads those), with a token book."""
    space = await create_space("conformance")
    ARTIFACTS.mkdir(exist_ok=True)
    tokens = ARTIFACTS / f"tokens-conformance-{RUN}.json"
    entry = {"name": "conformance", "roles": ["clinician"], "sha256": digest(TOKEN).hex()}
    tokens.write_text(json.dumps({"tokens": [entry]}))
    procs: list[ServiceProcess] = []
    urls: dict[str, str] = {}
    try:
        for svc in SERVICES:
            port = free_port()
            env = service_env(
                space.dsn, **{f"{svc.upper()}_PORT": str(port)}, API_TOKENS_FILE=str(tokens)
            )
            log = ARTIFACTS / "logs" / f"{svc}-conformance-{RUN}.log"
            proc = ServiceProcess(f"{svc}-conformance", [f"services.{svc}", "api"], env, log)
            proc.start()
            procs.append(proc)
            urls[svc] = f"http://127.0.0.1:{port}"
            await wait_ready(urls[svc], proc)
        yield urls
    finally:
        for proc in procs:
            proc.kill()
        await drop_space(space)


def config(svc: str) -> Path:
    own = ROOT / "tests" / "support" / f"schemathesis-{svc}.toml"
    return own if own.exists() else ROOT / "tests" / "support" / "schemathesis.toml"


async def st_run(svc: str, url: str, report: Path) -> tuple[int, str]:
    """``st run --checks all`` against one service; its exit code and output."""
    st = Path(sys.executable).parent / "st"
    args = [
        f"--config-file={config(svc)}",
        "run",
        f"{url}/openapi.json",
        "--checks=all",
        f"--seed={SEED}",
        f"--max-examples={EXAMPLES}",
        "--generation-database=none",
        f"--header=Authorization: Bearer {TOKEN}",
        "--request-timeout=30",
        "--workers=1",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.openapi_hooks"}
    proc = await asyncio.create_subprocess_exec(
        str(st),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    await asyncio.to_thread(report.write_text, text)
    return proc.returncode or 0, text


async def test_every_service_passes_every_schemathesis_check(
    guarded_apis: dict[str, str],
) -> None:
    reports = {svc: ARTIFACTS / f"schemathesis-{svc}-{RUN}.txt" for svc in SERVICES}
    results = await asyncio.gather(
        *(st_run(svc, guarded_apis[svc], reports[svc]) for svc in SERVICES)
    )
    failed = {svc: text for svc, (code, text) in zip(SERVICES, results, strict=True) if code}
    assert not failed, "\n\n".join(f"== {svc} ==\n{text[-6000:]}" for svc, text in failed.items())

"""What shared/openapi.py and shared/web.py add to every service's OpenAPI document and
HTTP shell: readable operationIds, the shell's answers, the bearer scheme only with
tokens, and a 405 that names every method of its path."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI

from shared.service import build_app
from shared.settings import CommonSettings
from shared.web import ERRORS


def _service(tokens_file: str | None) -> FastAPI:
    router = APIRouter(prefix="/v1")

    @router.get("/sites/{site_id}", responses=ERRORS)
    async def get_site(site_id: str) -> dict[str, str]:
        return {"site_id": site_id}

    @router.put("/sites/{site_id}", responses=ERRORS)
    async def put_site(site_id: str) -> dict[str, str]:
        return {"site_id": site_id}

    return build_app(
        title="t",
        description="t",
        settings=CommonSettings(api_tokens_file=tokens_file),
        schema="t",
        migrations=Path("."),
        make_deps=lambda pool: None,  # type: ignore[arg-type,return-value]
        router=router,
        max_body_bytes=1024,
    )


async def test_a_405_names_every_method_its_path_serves() -> None:
    transport = httpx.ASGITransport(app=_service(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.delete("/v1/sites/a")
        assert r.status_code == 405
        assert r.headers.get_list("allow") == ["GET, PUT"]
        assert r.json()["error"] == "method_not_allowed"


def test_operations_are_named_tagged_and_answer_the_shells_refusals() -> None:
    doc = _service(None).openapi()
    op = doc["paths"]["/v1/sites/{site_id}"]["put"]
    assert op["operationId"] == "putSite"
    assert op["tags"] == ["sites"]
    assert "503" in op["responses"]
    # without API_TOKENS_FILE no token is asked for, and none is refused
    assert "security" not in op
    assert "401" not in op["responses"]
    assert "securitySchemes" not in doc.get("components", {})


def test_with_tokens_every_v1_operation_asks_for_the_bearer_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        '{"tokens": [{"name": "n", "roles": ["viewer"], "sha256": "' + "0" * 64 + '"}]}'
    )
    doc = _service(str(tokens)).openapi()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for op in item.values():
            if path.startswith("/v1"):
                assert op["security"] == [{"bearer": []}], path
                assert {"401", "403", "503"} <= set(op["responses"]), path
            else:
                assert "security" not in op, path  # ops endpoints need no token

"""Tokens, roles and which role may make which call (docs/architecture.md "Access control")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.alerts.app import RULES as ALERTS
from services.intake.app import RULES as INTAKE
from services.scheduling.app import RULES as SCHEDULING
from shared.access import allowed_roles
from shared.auth import Principal, TokenBook, bearer, digest, main


def book(tmp_path: Path, **tokens: list[str]) -> TokenBook:
    f = tmp_path / "tokens.json"
    f.write_text(
        json.dumps(
            {
                "tokens": [
                    {"name": name, "roles": roles, "sha256": digest(f"tok-{name}").hex()}
                    for name, roles in tokens.items()
                ]
            }
        )
    )
    return TokenBook.load(f)


def test_a_token_is_found_by_its_hash_and_a_wrong_one_is_not(tmp_path: Path) -> None:
    b = book(tmp_path, desk=["intake"], doc=["clinician"])
    found = b.find("tok-doc")
    assert found == Principal("doc", frozenset({"clinician"}))
    assert b.find("tok-nobody") is None
    assert b.find("") is None


def test_the_file_never_holds_the_token_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "t.json"
    assert main(["new", "--name", "desk", "--roles", "intake", "--file", str(f)]) == 0
    token = capsys.readouterr().out.strip()
    assert token not in f.read_text()
    assert TokenBook.load(f).find(token) == Principal("desk", frozenset({"intake"}))
    assert f.stat().st_mode & 0o777 == 0o600


def test_unknown_roles_and_bad_hashes_stop_the_load(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"tokens": [{"name": "x", "roles": ["root"], "sha256": "00" * 32}]}))
    with pytest.raises(ValueError, match="unknown roles"):
        TokenBook.load(f)
    f.write_text(json.dumps({"tokens": [{"name": "x", "roles": ["viewer"], "sha256": "abcd"}]}))
    with pytest.raises(ValueError, match="64 hex"):
        TokenBook.load(f)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        (None, None),
    ],
)
def test_bearer_header(header: str | None, token: str | None) -> None:
    assert bearer(header) == token


def may(roles: set[str], rules: object, method: str, path: str) -> bool:
    allowed = allowed_roles(rules, method, path)  # type: ignore[arg-type]
    return allowed is None or Principal("p", frozenset(roles)).may(allowed)


@pytest.mark.parametrize(
    ("roles", "rules", "method", "path", "ok"),
    [
        ({"viewer"}, INTAKE, "GET", "/v1/intakes/i-1", True),
        ({"viewer"}, INTAKE, "POST", "/v1/intakes", False),
        ({"intake"}, INTAKE, "POST", "/v1/intakes", True),
        ({"intake"}, INTAKE, "POST", "/v1/checkins", True),
        ({"intake"}, INTAKE, "POST", "/v1/intakes/i-1/approve", False),
        ({"clinician"}, INTAKE, "POST", "/v1/intakes/i-1/approve", True),
        ({"intake"}, INTAKE, "POST", "/v1/patients/p-1/discharge", False),
        ({"scheduler"}, SCHEDULING, "PUT", "/v1/sites/site-a", True),
        ({"intake"}, SCHEDULING, "PUT", "/v1/sites/site-a", False),
        ({"scheduler"}, SCHEDULING, "POST", "/v1/appointments/a-1/no-show", True),
        ({"viewer"}, SCHEDULING, "POST", "/v1/appointments/a-1/confirm", False),
        ({"scheduler"}, ALERTS, "PUT", "/v1/sites/site-a/oncall", True),
        ({"scheduler"}, ALERTS, "POST", "/v1/alerts/x/acknowledge", False),
        ({"clinician"}, ALERTS, "POST", "/v1/alerts/x/resolve", True),
        ({"scheduler"}, ALERTS, "GET", "/v1/audit", False),
        ({"clinician"}, ALERTS, "GET", "/v1/audit", True),
        ({"scheduler"}, ALERTS, "DELETE", "/v1/anything", False),  # unlisted change
    ],
)
def test_who_may_make_which_call(
    roles: set[str], rules: object, method: str, path: str, ok: bool
) -> None:
    assert may(roles, rules, method, path) is ok

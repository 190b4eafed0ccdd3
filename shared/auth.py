"""Access control (docs/architecture.md, "Access control"): bearer tokens with roles,
from API_TOKENS_FILE.

The file holds, per token, a name (who acts, for the audit trail), its roles and the
SHA-256 of the token, never the token itself:

    {"tokens": [{"name": "front-desk", "roles": ["intake"], "sha256": "9f86d0..."}]}

``python -m shared.auth new --name front-desk --roles intake [--file tokens.json]`` makes
a random token, prints it once and adds its hash to the file. A presented token is
hashed and compared with every entry in constant time. Roles: ``intake`` (intakes,
check-ins), ``scheduler`` (sites, appointments), ``clinician`` (everything, reviews,
discharge, acknowledge/resolve, on-call, the audit trail), ``viewer`` (reads only).
Without API_TOKENS_FILE every call is allowed, as on loopback before.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROLES = ("intake", "scheduler", "clinician", "viewer")
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]

    def may(self, allowed: Iterable[str]) -> bool:
        return "clinician" in self.roles or bool(self.roles & set(allowed))


OPEN = Principal(ANONYMOUS, frozenset(ROLES))  # no API_TOKENS_FILE: everything allowed


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenBook:
    """The tokens of API_TOKENS_FILE, read once at start."""

    def __init__(self, entries: list[tuple[bytes, Principal]]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, path: str | Path) -> TokenBook:
        raw = json.loads(Path(path).read_text())
        entries = []
        for i, e in enumerate(raw.get("tokens", [])):
            roles = frozenset(e["roles"])
            unknown = roles - set(ROLES)
            if unknown:
                raise ValueError(f"token {i} ({e.get('name')}): unknown roles {sorted(unknown)}")
            sha = bytes.fromhex(e["sha256"])
            if len(sha) != 32:
                raise ValueError(f"token {i} ({e.get('name')}): sha256 must be 64 hex digits")
            entries.append((sha, Principal(str(e["name"]), roles)))
        return cls(entries)

    def find(self, token: str) -> Principal | None:
        """The token's principal; every entry is compared (constant time, no early exit)."""
        presented = digest(token)
        found = None
        for sha, principal in self.entries:
            if hmac.compare_digest(sha, presented):
                found = principal
        return found


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _new(args: argparse.Namespace) -> int:
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if not roles or set(roles) - set(ROLES):
        print(f"roles must be some of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(32)
    path = Path(args.file)
    book = json.loads(path.read_text()) if path.exists() else {"tokens": []}
    book["tokens"].append({"name": args.name, "roles": roles, "sha256": digest(token).hex()})
    path.write_text(json.dumps(book, indent=2) + "\n")
    path.chmod(0o600)
    print(token)
    print(
        f"(added {args.name} with roles {', '.join(roles)} to {path}; the token is not stored)",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="make a token, print it once, store its hash")
    new.add_argument("--name", required=True)
    new.add_argument("--roles", required=True, help="comma-separated: " + ", ".join(ROLES))
    new.add_argument("--file", default="tokens.json")
    args = parser.parse_args(argv)
    return _new(args)


if __name__ == "__main__":
    sys.exit(main())

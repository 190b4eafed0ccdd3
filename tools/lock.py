"""requirements.lock: every Python package of .venv, transitive ones included, pinned with
their hashes, made from pyproject.toml by uv, and the check that it is still up to date.

``python -m tools.lock`` (``make lock``) re-makes the lock after a change to pyproject.toml's
dependencies, keeping every other package at the version the lock had (``python -m tools.lock
--upgrade-package NAME`` moves one on); ``python -m tools.lock --check`` (``make lint``, and
deploy/bin/setup.sh after an install) exits 1 and says what differs when pyproject.toml pins
something the lock lacks or has at another version, or when pyproject.toml's dependency lists
changed since the lock was made. The check reads files only (no network, no uv) and needs
nothing but the standard library, so setup.sh can run it before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
# The one platform the lock installs on (every machine of the project, and CI).
PYTHON = "3.11"
PLATFORM = "x86_64-unknown-linux-gnu"
DIGEST = "# pyproject-sha256: "
HEADER = (
    "# requirements.lock: every Python package of .venv, pinned with its hashes "
    f"(CPython {PYTHON}, Linux x86_64).\n"
    "# Made from pyproject.toml by `make lock` (tools/lock.py), never by hand; "
    "`make lint` fails when it is stale.\n"
)
UPDATE = "run `make lock` to update requirements.lock (README: Install)"

# PEP 508: a name, optional [extras], then the version specifiers and an optional marker.
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?$")
# A pin in the lock starts at column 0: ``name==version`` (hash lines and comments follow).
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    """The name as PyPI compares names (PEP 503): ``Types_PyYAML`` is ``types-pyyaml``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: dict[str, Any]) -> list[str]:
    """Every requirement the lock must satisfy: the runtime dependencies, every extra's, and
    the build backend's (the project is installed without build isolation)."""
    project = pyproject.get("project", {})
    found = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        found += extra
    found += pyproject.get("build-system", {}).get("requires", [])
    return found


def digest(pyproject: dict[str, Any]) -> str:
    """A hash of what the lock is made from: the dependency lists (their order, comments and
    spacing aside) and requires-python."""
    reqs = sorted("".join(r.split()) for r in requirements(pyproject))
    python = pyproject.get("project", {}).get("requires-python", "")
    text = json.dumps({"requirements": reqs, "requires-python": python})
    return hashlib.sha256(text.encode()).hexdigest()


def pins(lock_text: str) -> dict[str, tuple[str, int]]:
    """Each package of the lock: its version and how many hashes it has."""
    found: dict[str, tuple[str, int]] = {}
    current = ""
    for line in lock_text.splitlines():
        pin = _PIN.match(line)
        if pin:
            current = canonical(pin.group(1))
            found[current] = (pin.group(2), 0)
        elif current and line.strip().startswith("--hash="):
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
        elif line and not line[0].isspace():
            current = ""
    return found


def recorded_digest(lock_text: str) -> str | None:
    for line in lock_text.splitlines():
        if line.startswith(DIGEST):
            return line.removeprefix(DIGEST).strip()
    return None


def _pinned(requirement: str) -> tuple[str, str | None]:
    """(name, version) of ``name[extras]==version ; marker``; version None when not ``==``."""
    parsed = _REQUIREMENT.match(requirement)
    if not parsed:
        raise ValueError(f"pyproject.toml: cannot read the requirement {requirement!r}")
    spec = parsed.group(3).strip()
    exact = re.fullmatch(r"===?\s*([^\s,]+)", spec)
    return canonical(parsed.group(1)), exact.group(1) if exact else None


def _pin_problems(pyproject: dict[str, Any], locked: dict[str, tuple[str, int]]) -> list[str]:
    found: list[str] = []
    for requirement in requirements(pyproject):
        name, version = _pinned(requirement)
        if version is None:
            found.append(f"pyproject.toml: pin {requirement!r} with == (like every dependency)")
        elif name not in locked:
            found.append(f"{name}=={version} is in pyproject.toml but not in requirements.lock")
        elif locked[name][0] != version:
            have = locked[name][0]
            found.append(f"pyproject.toml pins {name}=={version}, requirements.lock has =={have}")
    return found


def problems(pyproject_text: str, lock_text: str) -> list[str]:
    """What makes the lock out of date with pyproject.toml, in words; empty when it is not."""
    pyproject = tomllib.loads(pyproject_text)
    locked = pins(lock_text)
    found = _pin_problems(pyproject, locked)
    found += [
        f"{name} has no --hash in requirements.lock" for name, (_, n) in locked.items() if not n
    ]
    recorded = recorded_digest(lock_text)
    if recorded is None:
        found.append(f"requirements.lock has no {DIGEST.strip()!r} line: make lock did not make it")
    elif not found and recorded != digest(pyproject):
        found.append(
            "pyproject.toml's dependency lists changed since requirements.lock was made "
            "(a dependency removed, or an extra, marker or requires-python changed)"
        )
    return found


def check(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> int:
    if not lock.exists():
        print(f"{lock.name} is missing: {UPDATE}", file=sys.stderr)
        return 1
    try:
        found = problems(pyproject.read_text(), lock.read_text())
    except ValueError as exc:  # tomllib.TOMLDecodeError too
        found = [str(exc)]
    for problem in found:
        print(f"lock: {problem}", file=sys.stderr)
    if found:
        print(f"lock: {lock.name} is out of date with {pyproject.name}: {UPDATE}", file=sys.stderr)
        return 1
    return 0


def _uv() -> list[str]:
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return [str(beside)]
    sys.exit("make lock needs uv (a dev dependency in pyproject.toml): run `make install` first")


def make(extra_args: list[str], pyproject: Path = PYPROJECT, lock: Path = LOCK) -> None:
    """Re-make the lock with uv. uv keeps every package the old lock has at its version
    unless pyproject.toml needs another (or ``--upgrade-package`` asks for one)."""
    data = tomllib.loads(pyproject.read_text())
    tmp = lock.with_name(f".{lock.name}.tmp")
    tmp.write_text(lock.read_text() if lock.exists() else "")
    build = "\n".join(data.get("build-system", {}).get("requires", [])) + "\n"
    # pyproject.toml's dependencies and extras, and (on stdin) the build backend's
    command = [*_uv(), "pip", "compile", pyproject.name, "-", "--all-extras", "--generate-hashes"]
    command += ["--python-version", PYTHON, "--python-platform", PLATFORM]
    command += ["--custom-compile-command", "make lock", "--quiet", "-o", str(tmp), *extra_args]
    try:
        subprocess.run(command, input=build, text=True, check=True, cwd=pyproject.parent)  # noqa: S603
        made = tmp.read_text()
        tmp.write_text(f"{HEADER}{DIGEST}{digest(data)}\n{made}")
        os.replace(tmp, lock)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"uv pip compile failed (exit {exc.returncode}); {lock.name} is unchanged")
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        return check()
    make(argv)
    return check()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

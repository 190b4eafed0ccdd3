"""requirements.lock follows pyproject.toml: `make lint` (tools/lock.py --check) fails, saying
what differs, when pyproject.toml gains, moves or drops a dependency the lock was not made for.
Fixture texts, no network: uv only makes the lock (a stand-in for it below)."""

from __future__ import annotations

import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tools import lock

PYPROJECT = textwrap.dedent(
    """\
    [project]
    name = "demo"
    requires-python = ">=3.11,<3.12"
    dependencies = [
        "aiokafka==0.14.0",
        # extras and odd spellings are fine
        "uvicorn[standard]==0.54.0",
        "types-PyYAML==6.0.12",
    ]

    [project.optional-dependencies]
    dev = ["pytest==9.2.0"]

    [build-system]
    requires = ["setuptools==84.2.1"]
    """
)
PINS = {
    "aiokafka": "0.14.0",
    "uvicorn": "0.54.0",
    "types-pyyaml": "6.0.12",
    "pytest": "9.2.0",
    "setuptools": "84.2.1",
    "httptools": "0.9.0",  # a transitive one
}


def lock_for(pyproject: str, pins: dict[str, str]) -> str:
    """A lock as `make lock` writes it: the header with pyproject's digest, then the pins."""
    digest = lock.digest(tomllib.loads(pyproject))
    body = "".join(
        f"{name}=={version} \\\n    --hash=sha256:{'0' * 64} \\\n    --hash=sha256:{'1' * 64}\n"
        "    # via demo (pyproject.toml)\n"
        for name, version in pins.items()
    )
    return f"{lock.HEADER}{lock.DIGEST}{digest}\n{body}"


def test_the_repository_lock_is_up_to_date_with_pyproject() -> None:
    problems = lock.problems(lock.PYPROJECT.read_text(), lock.LOCK.read_text())
    assert problems == [], problems


def test_a_lock_made_from_pyproject_is_up_to_date() -> None:
    assert lock.problems(PYPROJECT, lock_for(PYPROJECT, PINS)) == []


def test_a_dependency_the_lock_lacks_fails_the_check_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "requirements.lock").write_text(lock_for(PYPROJECT, PINS))
    grown = PYPROJECT.replace('    "aiokafka', '    "Cryptography==50.0.2",\n    "aiokafka')
    (tmp_path / "pyproject.toml").write_text(grown)

    assert lock.check(tmp_path / "pyproject.toml", tmp_path / "requirements.lock") == 1
    err = capsys.readouterr().err
    assert "cryptography==50.0.2 is in pyproject.toml but not in requirements.lock" in err
    assert "run `make lock`" in err


def test_a_new_dependency_of_an_extra_or_the_build_is_missed_too() -> None:
    dev = PYPROJECT.replace('dev = ["pytest==9.2.0"]', 'dev = ["pytest==9.2.0", "mypy==2.4.1"]')
    build = PYPROJECT.replace('"setuptools==84.2.1"', '"setuptools==84.2.1", "wheel==0.46.0"')
    assert lock.problems(dev, lock_for(PYPROJECT, PINS)) == [
        "mypy==2.4.1 is in pyproject.toml but not in requirements.lock"
    ]
    assert lock.problems(build, lock_for(PYPROJECT, PINS)) == [
        "wheel==0.46.0 is in pyproject.toml but not in requirements.lock"
    ]


def test_a_pin_moved_in_pyproject_but_not_in_the_lock_fails_with_both_versions() -> None:
    moved = PYPROJECT.replace("aiokafka==0.14.0", "aiokafka==0.15.0")
    assert lock.problems(moved, lock_for(PYPROJECT, PINS)) == [
        "pyproject.toml pins aiokafka==0.15.0, requirements.lock has ==0.14.0"
    ]


def test_a_dependency_dropped_or_an_extra_changed_fails_through_the_digest() -> None:
    made = lock_for(PYPROJECT, PINS)
    dropped = PYPROJECT.replace('    "types-PyYAML==6.0.12",\n', "")
    extra = PYPROJECT.replace("uvicorn[standard]", "uvicorn")
    for changed in (dropped, extra):
        (problem,) = lock.problems(changed, made)
        assert "dependency lists changed since requirements.lock was made" in problem


def test_comments_order_and_spacing_of_pyproject_do_not_matter() -> None:
    reordered = (
        PYPROJECT.replace("    # extras and odd spellings are fine\n", "")
        .replace('    "aiokafka==0.14.0",\n', "")
        .replace('"types-PyYAML==6.0.12",', '"types-PyYAML == 6.0.12",\n    "aiokafka==0.14.0",')
    )
    assert reordered != PYPROJECT
    assert lock.problems(reordered, lock_for(PYPROJECT, PINS)) == []


def test_a_lock_without_hashes_or_digest_and_an_unpinned_dependency_are_refused() -> None:
    made = lock_for(PYPROJECT, PINS)
    no_hash = made + "idna==3.10\n    # via httpx\n"
    assert lock.problems(PYPROJECT, no_hash) == ["idna has no --hash in requirements.lock"]
    no_digest = made.replace(lock.DIGEST, "# something else: ")
    assert lock.problems(PYPROJECT, no_digest) == [
        "requirements.lock has no '# pyproject-sha256:' line: make lock did not make it"
    ]
    loose = PYPROJECT.replace("pytest==9.2.0", "pytest>=9")
    assert lock.problems(loose, made) == [
        "pyproject.toml: pin 'pytest>=9' with == (like every dependency)"
    ]


def test_a_missing_lock_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    assert lock.check(tmp_path / "pyproject.toml", tmp_path / "requirements.lock") == 1
    assert "requirements.lock is missing: run `make lock`" in capsys.readouterr().err


FAKE_UV = """\
import sys
args = sys.argv[1:]
assert args[:3] == ["pip", "compile", "pyproject.toml"], args
assert "setuptools==84.2.1" in sys.stdin.read()  # the build backend, on stdin
if "--fail" in args:
    sys.exit(2)
out = open(args[args.index("-o") + 1], "w")
out.write({body!r})
"""


def fake_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = lock_for(PYPROJECT, PINS).split("\n", 3)[3]  # the pins without our header
    script = tmp_path / "uv"
    script.write_text(FAKE_UV.format(body=body))
    monkeypatch.setattr(lock, "_uv", lambda: [sys.executable, str(script)])


def test_make_writes_the_header_check_reads_and_keeps_the_lock_when_uv_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_uv(tmp_path, monkeypatch)
    pyproject, made = tmp_path / "pyproject.toml", tmp_path / "requirements.lock"
    pyproject.write_text(PYPROJECT)

    lock.make([], pyproject, made)
    assert made.read_text().startswith(lock.HEADER)
    assert lock.check(pyproject, made) == 0

    before = made.read_text()
    with pytest.raises(SystemExit, match="uv pip compile failed"):
        lock.make(["--fail"], pyproject, made)
    assert made.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pyproject.toml",
        "requirements.lock",
        "uv",
    ]

"""PhiCipher: PHI at rest, encrypted with configured Fernet keys, rotatable."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from services.intake.settings import IntakeSettings
from shared.crypto import (
    PhiCipher,
    PhiDecryptError,
    PhiKeyError,
    key_id,
    load_cipher,
    new_key,
    parse_keys,
)

OLD, NEW = new_key(), new_key()


def test_round_trip() -> None:
    cipher = PhiCipher([OLD])
    for value in ("Ada Example", "", "é ✓ 日本", "x" * 5000):
        token = cipher.encrypt(value)
        assert isinstance(token, bytes)
        assert cipher.decrypt(token) == value


def test_a_date_is_stored_as_its_iso_form() -> None:
    cipher = PhiCipher([OLD])
    assert cipher.decrypt(cipher.encrypt(date(1981, 4, 2))) == "1981-04-02"


def test_none_passes_through() -> None:
    cipher = PhiCipher([OLD])
    assert cipher.encrypt(None) is None
    assert cipher.decrypt(None) is None


def test_the_token_holds_no_plaintext_and_differs_every_time() -> None:
    cipher = PhiCipher([OLD])
    a, b = cipher.encrypt("ada@example.org"), cipher.encrypt("ada@example.org")
    assert a != b  # a random IV each time: equal values are not recognisable
    assert a is not None
    assert b"ada" not in a
    assert b"ada" not in base64.urlsafe_b64decode(a)


def test_rotation_moves_a_value_to_the_first_key() -> None:
    token = PhiCipher([OLD]).encrypt("Ada Example")
    assert token is not None
    both = PhiCipher([NEW, OLD])  # new key added first: it encrypts, both decrypt
    assert both.decrypt(token) == "Ada Example"
    assert not both.is_current(token)
    rotated = both.rotate(token)
    assert both.is_current(rotated)
    assert PhiCipher([NEW]).decrypt(rotated) == "Ada Example"  # old key can go now
    with pytest.raises(PhiDecryptError):
        PhiCipher([OLD]).decrypt(rotated)
    fresh = both.encrypt("Bo")
    assert fresh is not None
    assert both.is_current(fresh)
    assert PhiCipher([NEW]).decrypt(fresh) == "Bo"


def test_a_wrong_key_is_a_clear_error_that_names_no_key() -> None:
    token = PhiCipher([OLD]).encrypt("Ada Example")
    other = PhiCipher([NEW])
    with pytest.raises(PhiDecryptError) as caught:
        other.decrypt(token)
    message = str(caught.value)
    assert "cannot be decrypted" in message
    assert key_id(NEW) in message
    assert NEW not in message
    assert OLD not in message
    with pytest.raises(PhiDecryptError):
        other.rotate(token or b"")


def test_an_altered_value_is_refused() -> None:
    cipher = PhiCipher([OLD])
    token = bytearray(base64.urlsafe_b64decode(cipher.encrypt("Ada Example") or b""))
    token[-40] ^= 1
    with pytest.raises(PhiDecryptError):
        cipher.decrypt(base64.urlsafe_b64encode(bytes(token)))


def test_bad_keys_are_refused_without_echoing_them() -> None:
    with pytest.raises(PhiKeyError, match="no PHI key"):
        PhiCipher([])
    with pytest.raises(PhiKeyError, match="#2 is not a Fernet key") as caught:
        PhiCipher([OLD, "not-a-key-s3cret"])
    assert "s3cret" not in str(caught.value)


def test_parse_keys_takes_commas_lines_and_comments() -> None:
    text = f"# newest first\n{NEW}, {OLD}\n\n  {OLD}  \n"
    assert parse_keys(text) == [NEW, OLD, OLD]
    assert PhiCipher(parse_keys(text)).key_ids == (key_id(NEW), key_id(OLD))


def test_phi_keys_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "phi.key"
    path.write_text(f"# a comment\n{OLD}\n")
    path.chmod(0o600)
    assert load_cipher(SecretStr(f"{NEW},{OLD}"), path).primary_key_id == key_id(NEW)
    assert load_cipher(None, path).key_ids == (key_id(OLD),)
    assert load_cipher(SecretStr("  "), path).key_ids == (key_id(OLD),)  # blank: unset


def test_no_key_anywhere_stops_the_service(tmp_path: Path) -> None:
    with pytest.raises(PhiKeyError, match="set PHI_KEYS"):
        load_cipher(None, tmp_path / "missing.key")
    empty = tmp_path / "empty.key"
    empty.write_text("# nothing yet\n")
    with pytest.raises(PhiKeyError, match="no PHI key in PHI_KEYS_FILE"):
        load_cipher(None, empty)


def test_keys_are_never_logged(tmp_path: Path) -> None:
    path = tmp_path / "phi.key"
    path.write_text(OLD)
    path.chmod(0o644)
    with capture_logs() as logs:
        load_cipher(None, path)
        load_cipher(SecretStr(f"{NEW},{OLD}"), path)
    assert logs, "loading keys says which (by fingerprint)"
    assert any(e["event"] == "phi_keys_file_too_open" for e in logs)
    assert OLD not in repr(logs)
    assert NEW not in repr(logs)


def test_settings_keep_the_keys_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHI_KEYS", f"{NEW},{OLD}")
    monkeypatch.setenv("PHI_KEYS_FILE", str(tmp_path / "unused.key"))
    settings = IntakeSettings()
    assert NEW not in repr(settings)
    assert NEW not in str(settings.model_dump())
    assert settings.phi_cipher().key_ids == (key_id(NEW), key_id(OLD))
    assert NEW not in repr(settings.phi_cipher())

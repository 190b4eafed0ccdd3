"""PHI at rest, for every service that stores any: values encrypted with keys from
configuration (the intake service's patient data and notes, the alerts service's
acknowledge/resolve notes). One key story for the whole stack: the same PHI_KEYS /
PHI_KEYS_FILE, the same rotation (shared/encrypted.py).

Fernet (``cryptography``): AES-128-CBC with a random IV, authenticated with HMAC-SHA256,
so a value cannot be read nor altered without the key. ``MultiFernet`` gives rotation:
the first configured key encrypts, every configured key decrypts, and ``rotate``
re-encrypts a value under the first key.

Keys come from ``PHI_KEYS`` (comma-separated, newest first) or else from the file
``PHI_KEYS_FILE`` (one key a line, newest first; ``#`` comments; default
``.state/phi.key``, which ``deploy/bin/setup.sh`` creates for local development). A
service never makes a key of its own and never logs one: only a short fingerprint.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import Field, SecretStr

from shared.logging import get_logger
from shared.settings import CommonSettings

log = get_logger(__name__)

# Where local development keeps its PHI key (created by deploy/bin/setup.sh, never by a
# service): the default of PHI_KEYS_FILE, for every service.
DEV_PHI_KEYS_FILE = Path(__file__).resolve().parents[1] / ".state" / "phi.key"

HOW_TO_MAKE_A_KEY = "make one with `python -m services.intake new-phi-key`"


class PhiKeyError(Exception):
    """The PHI keys are missing or malformed (a configuration error: the service stops)."""


class PhiDecryptError(Exception):
    """A stored value was not encrypted with any configured key (or was altered)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def key_id(key: str | bytes) -> str:
    """A short, non-secret fingerprint of a key, for logs and the rotation report."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(b"interval-phi-key-id:" + raw.strip()).hexdigest()[:8]


def parse_keys(text: str) -> list[str]:
    """Keys from ``PHI_KEYS`` or a key file: separated by commas or new lines, newest
    first; blank lines and ``#`` comment lines ignored."""
    keys: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keys += [k.strip() for k in line.split(",") if k.strip()]
    return keys


class PhiCipher:
    """Encrypts and decrypts PHI values (text) to and from Fernet tokens (bytes)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        unique: list[bytes] = []
        for k in keys:
            raw = (k.encode() if isinstance(k, str) else k).strip()
            if raw not in unique:
                unique.append(raw)
        if not unique:
            raise PhiKeyError(f"no PHI key configured ({HOW_TO_MAKE_A_KEY})")
        fernets: list[Fernet] = []
        for i, raw in enumerate(unique, 1):
            try:
                fernets.append(Fernet(raw))
            except (ValueError, TypeError):
                # never echo the key itself
                raise PhiKeyError(
                    f"PHI key #{i} is not a Fernet key (32 url-safe base64-encoded bytes; "
                    f"{HOW_TO_MAKE_A_KEY})"
                ) from None
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self.key_ids = tuple(key_id(raw) for raw in unique)

    @property
    def primary_key_id(self) -> str:
        return self.key_ids[0]

    def encrypt(self, value: str | date | None) -> bytes | None:
        """A Fernet token under the first key; None stays None. A date is its ISO form."""
        if value is None:
            return None
        text = value.isoformat() if isinstance(value, date) else value
        return self._primary.encrypt(text.encode())

    def decrypt(self, token: bytes | None) -> str | None:
        if token is None:
            return None
        try:
            return self._all.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise self._undecryptable() from None

    def is_current(self, token: bytes) -> bool:
        """Whether the value is encrypted under the first (current) key."""
        try:
            self._primary.decrypt(bytes(token))
        except InvalidToken:
            return False
        return True

    def rotate(self, token: bytes) -> bytes:
        """The same value encrypted under the first key (whichever configured key it was
        under before)."""
        try:
            return self._all.rotate(bytes(token))
        except InvalidToken:
            raise self._undecryptable() from None

    def _undecryptable(self) -> PhiDecryptError:
        return PhiDecryptError(
            f"a stored PHI value cannot be decrypted with any of the {len(self.key_ids)} "
            f"configured PHI key(s) ({', '.join(self.key_ids)}): its key is missing from "
            "PHI_KEYS / PHI_KEYS_FILE (removed before `rotate-phi-keys` finished?), or the "
            "value was altered"
        )

    def __repr__(self) -> str:
        return f"PhiCipher(key_ids={self.key_ids!r})"


def load_cipher(keys: SecretStr | None, keys_file: Path) -> PhiCipher:
    """The cipher from ``PHI_KEYS`` when set (and not blank), else from ``PHI_KEYS_FILE``."""
    if keys is not None and keys.get_secret_value().strip():
        source = "PHI_KEYS"
        parsed = parse_keys(keys.get_secret_value())
    else:
        source = f"PHI_KEYS_FILE {keys_file}"
        try:
            text = keys_file.read_text()
        except FileNotFoundError:
            raise PhiKeyError(
                "no PHI key: set PHI_KEYS (comma-separated Fernet keys, newest first) or "
                f"PHI_KEYS_FILE (one a line); {keys_file} does not exist (for local "
                f"development `make install` creates it; else {HOW_TO_MAKE_A_KEY})"
            ) from None
        except OSError as exc:
            raise PhiKeyError(f"cannot read PHI_KEYS_FILE {keys_file}: {exc.strerror}") from None
        mode = keys_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("phi_keys_file_too_open", path=str(keys_file), mode=oct(stat.S_IMODE(mode)))
        parsed = parse_keys(text)
    if not parsed:
        raise PhiKeyError(f"no PHI key in {source} ({HOW_TO_MAKE_A_KEY})")
    try:
        cipher = PhiCipher(parsed)
    except PhiKeyError as exc:
        raise PhiKeyError(f"{source}: {exc}") from None
    log.info(
        "phi_keys_loaded",
        source=source.split()[0],
        primary=cipher.primary_key_id,
        keys=len(cipher.key_ids),
    )
    return cipher


class PhiKeySettings(CommonSettings):
    """The settings of a service that stores PHI: its keys and its batch size."""

    # Fernet keys, newest first; the first encrypts, all decrypt. PHI_KEYS
    # (comma-separated) wins over PHI_KEYS_FILE (one a line).
    phi_keys: SecretStr | None = None
    phi_keys_file: Path = DEV_PHI_KEYS_FILE
    # rows per transaction when PHI is encrypted at start or re-encrypted by rotate-phi-keys
    phi_batch_size: int = Field(default=500, ge=1, le=100_000)

    def phi_cipher(self) -> PhiCipher:
        """The PHI cipher; PhiKeyError when no usable key is configured."""
        return load_cipher(self.phi_keys, self.phi_keys_file)

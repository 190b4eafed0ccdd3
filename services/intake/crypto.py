"""The intake service's PHI cipher: the stack's one, shared/crypto.py (kept under this
name for the intake code and tests that import it from here)."""

from __future__ import annotations

from shared.crypto import (
    HOW_TO_MAKE_A_KEY,
    PhiCipher,
    PhiDecryptError,
    PhiKeyError,
    key_id,
    load_cipher,
    new_key,
    parse_keys,
)

__all__ = [
    "HOW_TO_MAKE_A_KEY",
    "PhiCipher",
    "PhiDecryptError",
    "PhiKeyError",
    "key_id",
    "load_cipher",
    "new_key",
    "parse_keys",
]

"""Errors that handlers raise; the HTTP status mapping lives in shared.web only."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base class: ``code`` is the machine-readable error code in the JSON body."""

    code = "error"

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AppError):
    code = "not_found"


class Conflict(AppError):
    code = "conflict"


class Gone(AppError):
    """A one-use capability already used, or whose object is closed (an ack link)."""

    code = "gone"


class InvalidInput(AppError):
    """A semantic validation failure found after parsing: names the bad fields."""

    code = "validation_error"

    def __init__(self, errors: list[dict[str, str]], detail: Any = "invalid request") -> None:
        super().__init__(detail)
        self.errors = errors


class Unavailable(AppError):
    code = "unavailable"

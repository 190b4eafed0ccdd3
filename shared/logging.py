"""structlog JSON logging with no PHI.

Context (request id, event id, topic) is bound once where a request or message
enters; a last processor drops any key that names personal data, so a careless
``log.info(..., name=...)`` can never print it.
"""

from __future__ import annotations

import logging
import sys
from datetime import date, datetime
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

PHI_KEYS = frozenset(
    {
        "name",
        "patient_name",
        "date_of_birth",
        "birth_date",
        "dob",
        "phone",
        "email",
        "note",
        "notes",
    }
)


def drop_phi(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in PHI_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def _json_default(value: Any) -> str:
    """Times as ISO 8601 (a retry time, a due time), anything else by its repr."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return repr(value)


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, aiokafka, faust) to one stream."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_phi,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(default=_json_default)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        # below the level, a call returns before any processor runs (one check)
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access logs are replaced by our own request log line (with the route, not the URL).
    logging.getLogger("uvicorn.access").disabled = True
    # (httpx logs every request at INFO; a page's delivery has its own line)
    for noisy in ("aiokafka", "faust", "mode", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)

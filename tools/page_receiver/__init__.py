"""A local webhook receiver for pages: integration tests, the benchmark, and the README.

``PageReceiver`` (receiver.py) is an in-process HTTP server on 127.0.0.1 that answers POST
on any path, records every request (a ``Received``, received.py: headers, body, parsed
JSON, when it arrived, what it answered, whether its signatures verify: X-Interval-Signature
and the Standard Webhooks headers) and can be scripted to fail, so a test can watch
the alerts service retry and deduplicate::

    async with PageReceiver(signing_secret="s3cret") as rx:
        rx.fail("/page", times=2)            # 500, 500, then 200
        ...point the service at rx.url("/page")...
        await rx.wait_for(lambda r: len(r.delivered("/page")) >= 1, timeout=5)

Run it by hand to watch pages arrive (__main__.py)::

    python -m tools.page_receiver --port 9900 [--secret S] [--fail-first N]
"""

from __future__ import annotations

from tools.page_receiver.received import (
    IDEMPOTENCY_HEADER,
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    SIGNATURE_V2_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    Received,
    sign,
    summary,
)
from tools.page_receiver.receiver import PageReceiver

__all__ = [
    "IDEMPOTENCY_HEADER",
    "REPLAY_WINDOW_S",
    "SIGNATURE_HEADER",
    "SIGNATURE_V2_HEADER",
    "TIMESTAMP_HEADER",
    "WEBHOOK_ID_HEADER",
    "WEBHOOK_SIGNATURE_HEADER",
    "WEBHOOK_TIMESTAMP_HEADER",
    "PageReceiver",
    "Received",
    "sign",
    "summary",
]

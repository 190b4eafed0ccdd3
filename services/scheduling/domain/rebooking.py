"""Where a replacement dose may go, and when the induction is complete.

Source: docs/domain.md ("Lifecycle": a cancelled, missed or deferred dose gets a
replacement pair, from now until the later of the original start plus a third of the
protocol window and now plus 7 days; "Maintenance": the first maintenance follows
once every induction dose is completed). The spans are scheduling choices, named here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scheduling.domain.model import Protocol


@dataclass(frozen=True)
class RebookPolicy:
    """``min_span`` 7 days: a replacement (or a retry from the waitlist) is searched
    for at least this long; ``window_share`` 1/3: of the protocol's window, how far
    after the original time a replacement may land (7 of the standard 21 days)."""

    min_span: timedelta = timedelta(days=7)
    window_share: float = 1 / 3


def rebook_window(
    original_start: datetime,
    now: datetime,
    protocol: Protocol,
    policy: RebookPolicy = RebookPolicy(),
) -> tuple[datetime, datetime]:
    """(not_before, not_after) for the replacement of a dose that will not happen."""
    not_after = max(original_start + protocol.window * policy.window_share, now + policy.min_span)
    return now, not_after


def retry_window(
    not_before: datetime | None, now: datetime, policy: RebookPolicy = RebookPolicy()
) -> tuple[datetime, datetime]:
    """(not_before, not_after) for a waiting single session tried again now."""
    start = max(not_before or now, now)
    return start, start + policy.min_span


def induction_complete(
    completed_sequences: Collection[int],
    protocol: Protocol,
    ended_sequences: Collection[int] = (),
) -> bool:
    """Every dose of the induction series has been completed, or ended by the clinic
    (cancelled without a replacement: ``ended_sequences``), and at least one completed."""
    completed = set(completed_sequences)
    return bool(completed) and len(completed | set(ended_sequences)) >= protocol.doses

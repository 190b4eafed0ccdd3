"""A fake clock and small builders for the alerts domain tests (no real time anywhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.alerts.domain.model import OncallPolicy, Recipient, Tier

# The fake clock: a fixed aware UTC instant; every other time is T0 + a timedelta.
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def sec(n: float) -> timedelta:
    return timedelta(seconds=n)


def at(seconds: float) -> datetime:
    """T0 + ``seconds``."""
    return T0 + sec(seconds)


def recipient(name: str) -> Recipient:
    return Recipient(name=name, webhook_url=f"http://127.0.0.1:9900/{name.replace(' ', '-')}")


def oncall(*escalate_after_s: int) -> OncallPolicy:
    """One recipient per tier, named ``tier1``, ``tier2``, ..."""
    return OncallPolicy(
        tuple(
            Tier(recipients=(recipient(f"tier{i + 1}"),), escalate_after_s=s)
            for i, s in enumerate(escalate_after_s)
        )
    )

"""Acknowledge and resolve: who may move an alert where (docs/domain.md, "On-call tiers
and escalation").

open -> acknowledged -> resolved, or open -> resolved directly. Repeating a step by
the same person is a no-op (a retried request is harmless); the same step by someone
else, or acknowledging a resolved alert, is illegal (HTTP 409).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from services.alerts.domain.model import Kind, Status


class Step(StrEnum):
    acknowledge = "acknowledge"
    resolve = "resolve"


# The change a step announces (``alert.changed``'s ``change``) and logs (``alert_<change>``).
CHANGE_OF: Mapping[Step, str] = MappingProxyType(
    {Step.acknowledge: "acknowledged", Step.resolve: "resolved"}
)


class IllegalStep(Exception):
    pass


def releases_held(step: Step, kind: Kind) -> bool:
    """Resolving a suicide_risk alert releases the alerts it held back
    (services/alerts/domain/dedup.py ``released_by``)."""
    return step is Step.resolve and kind is Kind.suicide_risk


def _same(a: str | None, b: str) -> bool:
    return a is not None and " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def step(
    step: Step,
    status: Status,
    *,
    by: str,
    acknowledged_by: str | None,
    resolved_by: str | None,
) -> Literal["apply", "noop"]:
    """``apply`` to take the step, ``noop`` when it was already taken by ``by``;
    raises IllegalStep otherwise."""
    if step is Step.acknowledge:
        if status is Status.open:
            return "apply"
        if status is Status.acknowledged:
            if _same(acknowledged_by, by):
                return "noop"
            raise IllegalStep(f"already acknowledged by {acknowledged_by}")
        raise IllegalStep("the alert is resolved")
    if status is Status.resolved:
        if _same(resolved_by, by):
            return "noop"
        raise IllegalStep(f"already resolved by {resolved_by}")
    return "apply"

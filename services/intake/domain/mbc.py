"""Measurement-based care: response, remission and worsening of a check-in's PHQ-9.

Source: docs/domain.md ("Measurement-based care", "Check-in order"). The assessment travels on the
``checkin.recorded`` event so that alerts and scheduling share one verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from services.intake.domain.scoring import PHQ9


class WorseningReason(StrEnum):
    """Why a check-in counts as worsening; listed in this order."""

    rise_from_lowest = "rise_from_lowest"
    relapse_after_remission = "relapse_after_remission"


@dataclass(frozen=True)
class MbcPolicy:
    """Thresholds of measurement-based care, each with its default (docs/domain.md,
    "Measurement-based care").

    - ``response_fraction`` 0.5: response is a total down by at least 50% from
      the baseline (the intake total).
    - ``remission_below`` 5: remission is a total below 5 (the PHQ-9's
      "none/minimal" band).
    - ``worsening_rise`` 5: worsening is a total at least 5 points above the
      lowest total since treatment began, intake included.
    - ``relapse_total`` 10: worsening is also a rise back to 10 or more after
      any total in remission.

    ``response_fraction`` is read through its decimal spelling (``0.3`` means
    exactly 3/10), so the comparison is exact integer arithmetic.
    """

    response_fraction: float = 0.5
    remission_below: int = 5
    worsening_rise: int = 5
    relapse_total: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.response_fraction <= 1:
            raise ValueError(f"response_fraction must be in (0, 1], got {self.response_fraction}")


@dataclass(frozen=True)
class CheckinAssessment:
    """The verdict on one check-in; every flag is False for a mood-only check-in."""

    phq9_total: int | None
    response: bool
    remission: bool
    worsening: bool
    worsening_reasons: tuple[str, ...]
    baseline_total: int
    lowest_total: int  # the lowest total before this check-in, intake included


def _check_total(total: int, what: str) -> None:
    if not PHQ9.min_total <= total <= PHQ9.max_total:
        raise ValueError(f"{what} must be {PHQ9.min_total}..{PHQ9.max_total}, got {total}")


def is_response(baseline_total: int, total: int, policy: MbcPolicy = MbcPolicy()) -> bool:
    """Total at most ``baseline * (1 - response_fraction)``, compared exactly.

    A baseline of 0 leaves nothing to fall from: a percentage change from 0 is
    undefined, so there is no response (remission still reports the state).
    """
    if baseline_total <= 0:
        return False
    fraction = Fraction(str(policy.response_fraction))
    return total <= baseline_total * (1 - fraction)


def assess_checkin(
    baseline_total: int,
    prior_totals: Sequence[int],
    phq9_total: int | None,
    policy: MbcPolicy = MbcPolicy(),
) -> CheckinAssessment:
    """Assess a check-in against the intake baseline and earlier check-ins.

    ``prior_totals`` are the PHQ-9 totals of earlier check-ins since treatment
    began, oldest first, without the intake (that is ``baseline_total``).
    Worsening (docs/domain.md, "Measurement-based care") is either or both of:

    - ``rise_from_lowest``: total >= lowest(baseline, prior) + ``worsening_rise``;
    - ``relapse_after_remission``: some earlier total (baseline or prior) was
      below ``remission_below`` and this total is at least ``relapse_total``.

    A mood-only check-in (``phq9_total`` None) has no score: every flag False.
    Raises ``ValueError`` for a total outside the PHQ-9's 0-27.
    """
    _check_total(baseline_total, "baseline total")
    for prior in prior_totals:
        _check_total(prior, "prior total")
    earlier = (baseline_total, *prior_totals)
    lowest = min(earlier)
    if phq9_total is None:
        return CheckinAssessment(
            phq9_total=None,
            response=False,
            remission=False,
            worsening=False,
            worsening_reasons=(),
            baseline_total=baseline_total,
            lowest_total=lowest,
        )
    _check_total(phq9_total, "PHQ-9 total")

    reasons: list[str] = []
    if phq9_total >= lowest + policy.worsening_rise:
        reasons.append(WorseningReason.rise_from_lowest.value)
    was_in_remission = any(total < policy.remission_below for total in earlier)
    if was_in_remission and phq9_total >= policy.relapse_total:
        reasons.append(WorseningReason.relapse_after_remission.value)
    return CheckinAssessment(
        phq9_total=phq9_total,
        response=is_response(baseline_total, phq9_total, policy),
        remission=phq9_total < policy.remission_below,
        worsening=bool(reasons),
        worsening_reasons=tuple(reasons),
        baseline_total=baseline_total,
        lowest_total=lowest,
    )

"""Scoring of the intake instruments: PHQ-9 total and band, C-SSRS triage, age.

Sources: docs/domain.md ("PHQ-9 score and severity band", "C-SSRS triage", "Age");
the PHQ-9 as published by Kroenke, Spitzer & Williams (J Gen Intern Med 2001;16:606-613); the C-SSRS
screener (Posner et al., Columbia Lighthouse Project).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from services.intake.domain.model import Cssrs, Phq9Severity, SuicideRisk


@dataclass(frozen=True)
class Phq9Scale:
    """The PHQ-9's own definition: these are the scale's numbers, not protocol choices.

    Nine items scored 0-3 (total 0-27); each ``*_from`` is the lowest total of a
    severity band (0-4 none/minimal, 5-9 mild, 10-14 moderate, 15-19 moderately
    severe, 20-27 severe). Item 9 ("better off dead, or of hurting yourself")
    is positive when answered above ``item9_positive_above`` (any answer other
    than "not at all"), whatever the total.
    """

    item_count: int = 9
    item_min: int = 0
    item_max: int = 3
    suicide_item: int = 9  # 1-based, as printed on the form
    item9_positive_above: int = 0
    mild_from: int = 5
    moderate_from: int = 10
    moderately_severe_from: int = 15
    severe_from: int = 20

    @property
    def max_total(self) -> int:
        return self.item_count * self.item_max

    @property
    def min_total(self) -> int:
        return self.item_count * self.item_min


PHQ9 = Phq9Scale()


@dataclass(frozen=True)
class Phq9Score:
    """A scored PHQ-9."""

    total: int
    severity: Phq9Severity
    item9_positive: bool


def severity_for_total(total: int, scale: Phq9Scale = PHQ9) -> Phq9Severity:
    """The severity band of a PHQ-9 total (bands per Kroenke et al. 2001; docs/domain.md,
    "PHQ-9 score and severity band")."""
    if not scale.min_total <= total <= scale.max_total:
        raise ValueError(f"PHQ-9 total must be {scale.min_total}..{scale.max_total}, got {total}")
    if total >= scale.severe_from:
        return Phq9Severity.severe
    if total >= scale.moderately_severe_from:
        return Phq9Severity.moderately_severe
    if total >= scale.moderate_from:
        return Phq9Severity.moderate
    if total >= scale.mild_from:
        return Phq9Severity.mild
    return Phq9Severity.none_minimal


def score_phq9(items: Sequence[int], scale: Phq9Scale = PHQ9) -> Phq9Score:
    """Total, band and item-9 flag of a PHQ-9.

    Raises ``ValueError`` unless there are exactly nine integer items, each 0-3
    (booleans are rejected although Python counts them as integers).
    """
    if len(items) != scale.item_count:
        raise ValueError(f"PHQ-9 needs exactly {scale.item_count} items, got {len(items)}")
    for number, item in enumerate(items, start=1):
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValueError(f"PHQ-9 item {number} must be an integer, got {item!r}")
        if not scale.item_min <= item <= scale.item_max:
            raise ValueError(
                f"PHQ-9 item {number} must be {scale.item_min}..{scale.item_max}, got {item}"
            )
    total = sum(items)
    return Phq9Score(
        total=total,
        severity=severity_for_total(total, scale),
        item9_positive=items[scale.suicide_item - 1] > scale.item9_positive_above,
    )


def triage_cssrs(c: Cssrs) -> SuicideRisk:
    """Risk level of a C-SSRS screener (docs/domain.md, "C-SSRS triage"; Posner et al.).

    - **high**: item 4 (intent) or 5 (plan), or item 6 behaviour in the past 3 months;
    - **moderate**: item 3 (method), or item 6 behaviour only longer than 3 months ago;
    - **low**: only item 1 (wish to be dead) and/or item 2 (suicidal thoughts);
    - **none**: no yes at all.

    The highest level that applies wins, so the checks run from high to low.
    Items are judged independently (the paper form skips 3-5 when 2 is "no"; a
    yes there still counts). Behaviour in the past 3 months implies behaviour
    ever, so ``behavior_past_3_months`` alone is high even if ``behavior_ever``
    was left false.
    """
    if c.intent or c.plan or c.behavior_past_3_months:
        return SuicideRisk.high
    if c.method or c.behavior_ever:
        return SuicideRisk.moderate
    if c.wish_to_be_dead or c.suicidal_thoughts:
        return SuicideRisk.low
    return SuicideRisk.none


def age_on(birth_date: date, on: date) -> int:
    """Completed years of age on ``on``, to the day.

    The birthday counts from its own date; someone born on 29 February turns a
    year older on 1 March in a non-leap year (28 February is still before it).
    Raises ``ValueError`` when ``on`` is before ``birth_date``.
    """
    if on < birth_date:
        raise ValueError(f"date {on.isoformat()} is before birth date {birth_date.isoformat()}")
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - int(before_birthday)

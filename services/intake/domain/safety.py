"""What makes a check-in or an intake a safety signal (docs/domain.md, "Safety signals
first"): suicidal ideation or PHQ-9 item 9 > 0 in a check-in; high C-SSRS triage or item
9 > 0 at intake. A signal goes through the safety lane, ahead of routine events; the
reasons are in this order whenever several apply."""

from __future__ import annotations


def checkin_safety_reasons(suicidal_ideation: bool, item9_positive: bool) -> tuple[str, ...]:
    """The reasons a check-in is a safety signal; empty when it is not one."""
    return tuple(
        reason
        for reason, present in (
            ("suicidal_ideation", suicidal_ideation),
            ("phq9_item9_positive", item9_positive),
        )
        if present
    )


def intake_safety_reasons(suicide_risk: str, item9_positive: bool) -> tuple[str, ...]:
    """The reasons an intake is a safety signal; empty when it is not one."""
    return tuple(
        reason
        for reason, present in (
            ("cssrs_high", suicide_risk == "high"),
            ("phq9_item9_positive", item9_positive),
        )
        if present
    )

"""What makes a check-in or an intake a safety signal (docs/domain.md, "Safety signals first")."""

from __future__ import annotations

import pytest

from services.intake.domain.safety import checkin_safety_reasons, intake_safety_reasons


@pytest.mark.parametrize(
    ("ideation", "item9", "reasons"),
    [
        (False, False, ()),
        (True, False, ("suicidal_ideation",)),
        (False, True, ("phq9_item9_positive",)),
        (True, True, ("suicidal_ideation", "phq9_item9_positive")),
    ],
)
def test_ideation_or_item9_in_a_checkin_is_a_safety_signal(
    ideation: bool, item9: bool, reasons: tuple[str, ...]
) -> None:
    assert checkin_safety_reasons(ideation, item9) == reasons


@pytest.mark.parametrize(
    ("risk", "item9", "reasons"),
    [
        ("none", False, ()),
        ("low", False, ()),
        ("moderate", False, ()),  # needs review, but not a page
        ("high", False, ("cssrs_high",)),
        ("moderate", True, ("phq9_item9_positive",)),
        ("high", True, ("cssrs_high", "phq9_item9_positive")),
    ],
)
def test_high_cssrs_or_item9_at_intake_is_a_safety_signal(
    risk: str, item9: bool, reasons: tuple[str, ...]
) -> None:
    assert intake_safety_reasons(risk, item9) == reasons

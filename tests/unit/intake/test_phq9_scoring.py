"""PHQ-9 scoring: totals, the five severity bands at every boundary, item 9, bad input."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain.model import Phq9Severity
from services.intake.domain.scoring import score_phq9, severity_for_total
from tests.unit.intake.builders import phq9_with_total

FAST = settings(max_examples=200, deadline=None)
SEVERITY_RANK = list(Phq9Severity)
valid_items = st.lists(st.integers(min_value=0, max_value=3), min_size=9, max_size=9)


@pytest.mark.parametrize(
    ("total", "severity"),
    [
        (0, Phq9Severity.none_minimal),
        (4, Phq9Severity.none_minimal),
        (5, Phq9Severity.mild),
        (9, Phq9Severity.mild),
        (10, Phq9Severity.moderate),
        (14, Phq9Severity.moderate),
        (15, Phq9Severity.moderately_severe),
        (19, Phq9Severity.moderately_severe),
        (20, Phq9Severity.severe),
        (27, Phq9Severity.severe),
    ],
)
def test_severity_band_boundaries_follow_the_published_cut_points(
    total: int, severity: Phq9Severity
) -> None:
    item9 = 3 if total > 24 else 0
    score = score_phq9(phq9_with_total(total, item9=item9))
    assert score.total == total
    assert score.severity is severity


def test_all_zero_scores_zero_and_all_three_scores_twenty_seven() -> None:
    assert score_phq9([0] * 9).total == 0
    assert score_phq9([3] * 9).total == 27


@pytest.mark.parametrize(
    ("item9", "positive"),
    [(0, False), (1, True), (2, True), (3, True)],
)
def test_item9_is_positive_for_any_answer_above_zero(item9: int, positive: bool) -> None:
    assert score_phq9([0] * 8 + [item9]).item9_positive is positive


def test_item9_positive_is_flagged_whatever_the_total() -> None:
    score = score_phq9([0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert (score.total, score.severity, score.item9_positive) == (
        1,
        Phq9Severity.none_minimal,
        True,
    )


def test_only_item9_counts_for_the_suicide_flag() -> None:
    assert score_phq9([3, 3, 3, 3, 3, 3, 3, 3, 0]).item9_positive is False


@pytest.mark.parametrize(
    "items",
    [
        [],
        [0] * 8,
        [0] * 10,
        [1] * 27,
    ],
)
def test_wrong_number_of_items_raises(items: Sequence[int]) -> None:
    with pytest.raises(ValueError, match="exactly 9 items"):
        score_phq9(items)


@pytest.mark.parametrize(
    "items",
    [
        [-1, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 4, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 4],
        [0, 0, 0, 0, 0, 0, 0, 0, -1],
    ],
)
def test_item_out_of_range_raises(items: Sequence[int]) -> None:
    with pytest.raises(ValueError, match=r"must be 0\.\.3"):
        score_phq9(items)


@pytest.mark.parametrize("bad", [True, 1.0, "1", None])
def test_non_integer_item_raises(bad: object) -> None:
    items: list[object] = [0] * 8 + [bad]
    with pytest.raises(ValueError, match="must be an integer"):
        score_phq9(items)  # type: ignore[arg-type]


@pytest.mark.parametrize("total", [-1, 28])
def test_severity_of_an_impossible_total_raises(total: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.27"):
        severity_for_total(total)


@FAST
@given(valid_items)
def test_total_is_the_sum_and_within_zero_to_twenty_seven(items: list[int]) -> None:
    score = score_phq9(items)
    assert score.total == sum(items)
    assert 0 <= score.total <= 27
    assert score.item9_positive is (items[8] > 0)


@FAST
@given(valid_items, valid_items)
def test_severity_band_never_falls_as_the_total_rises(a: list[int], b: list[int]) -> None:
    low, high = sorted((score_phq9(a), score_phq9(b)), key=lambda s: s.total)
    assert SEVERITY_RANK.index(low.severity) <= SEVERITY_RANK.index(high.severity)


def test_every_total_has_a_band_and_bands_change_exactly_at_the_cut_points() -> None:
    bands = [severity_for_total(total) for total in range(28)]
    changes = [t for t in range(1, 28) if bands[t] != bands[t - 1]]
    assert changes == [5, 10, 15, 20]

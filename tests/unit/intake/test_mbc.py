"""Measurement-based care: response, remission, worsening, relapse, mood-only check-ins."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain.mbc import MbcPolicy, assess_checkin

FAST = settings(max_examples=200, deadline=None)
totals = st.integers(min_value=0, max_value=27)


def test_policy_defaults_are_domain_md_defaults() -> None:
    policy = MbcPolicy()
    assert (
        policy.response_fraction,
        policy.remission_below,
        policy.worsening_rise,
        policy.relapse_total,
    ) == (0.5, 5, 5, 10)


@pytest.mark.parametrize(
    ("baseline", "total", "response"),
    [
        (20, 10, True),
        (20, 11, False),
        (21, 10, True),
        (21, 11, False),
        (10, 5, True),
        (10, 6, False),
        (1, 0, True),
        (0, 0, False),
    ],
    ids=[
        "exactly_half_of_20_is_response",
        "just_above_half_of_20_is_not",
        "10_of_21_is_down_more_than_half",
        "11_of_21_is_not",
        "exactly_half_of_10_is_response",
        "just_above_half_of_10_is_not",
        "from_1_to_0_is_response",
        "baseline_0_cannot_fall_so_no_response",
    ],
)
def test_response_is_a_fall_of_at_least_half_from_baseline(
    baseline: int, total: int, response: bool
) -> None:
    assert assess_checkin(baseline, [], total).response is response


@pytest.mark.parametrize(
    ("fraction", "baseline", "total", "response"),
    [
        (0.3, 10, 7, True),
        (0.3, 10, 8, False),
        (0.25, 20, 15, True),
        (0.25, 20, 16, False),
        (1.0, 20, 0, True),
        (1.0, 20, 1, False),
    ],
)
def test_response_fraction_is_compared_exactly(
    fraction: float, baseline: int, total: int, response: bool
) -> None:
    policy = MbcPolicy(response_fraction=fraction)
    assert assess_checkin(baseline, [], total, policy).response is response


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5, float("nan")])
def test_response_fraction_outside_zero_to_one_is_rejected(fraction: float) -> None:
    with pytest.raises(ValueError, match="response_fraction"):
        MbcPolicy(response_fraction=fraction)


@pytest.mark.parametrize(("total", "remission"), [(0, True), (4, True), (5, False), (27, False)])
def test_remission_is_a_total_below_5(total: int, remission: bool) -> None:
    assert assess_checkin(20, [], total).remission is remission


@pytest.mark.parametrize(
    ("baseline", "prior", "total", "lowest", "worsening"),
    [
        (20, [12, 8, 11], 13, 8, True),
        (20, [12, 8, 11], 12, 8, False),
        (12, [14, 15], 17, 12, True),
        (12, [14, 15], 16, 12, False),
        (12, [], 17, 12, True),
        (12, [], 16, 12, False),
        (20, [6, 9], 11, 6, True),
        (20, [6, 9], 10, 6, False),
    ],
    ids=[
        "plus_5_from_a_lower_earlier_checkin",
        "plus_4_from_a_lower_earlier_checkin",
        "plus_5_from_the_intake_when_it_is_lowest",
        "plus_4_from_the_intake_when_it_is_lowest",
        "first_checkin_plus_5_from_intake",
        "first_checkin_plus_4_from_intake",
        "plus_5_from_lowest_not_from_latest",
        "plus_4_from_lowest_not_from_latest",
    ],
)
def test_worsening_is_5_or_more_above_the_lowest_total_since_intake(
    baseline: int, prior: Sequence[int], total: int, lowest: int, worsening: bool
) -> None:
    assessment = assess_checkin(baseline, prior, total)
    assert assessment.lowest_total == lowest
    assert assessment.worsening is worsening
    assert assessment.worsening_reasons == (("rise_from_lowest",) if worsening else ())


@pytest.mark.parametrize(
    ("baseline", "prior", "total", "reasons"),
    [
        (20, [7, 4, 6], 10, ("rise_from_lowest", "relapse_after_remission")),
        (20, [7, 4, 6], 9, ("rise_from_lowest",)),
        (20, [7, 4, 6], 8, ()),
        (20, [7, 5, 6], 10, ("rise_from_lowest",)),
        (20, [7, 6, 8], 10, ()),
        (3, [], 10, ("rise_from_lowest", "relapse_after_remission")),
        (20, [3], 10, ("rise_from_lowest", "relapse_after_remission")),
    ],
    ids=[
        "back_to_10_after_remission_is_relapse_and_a_rise",
        "back_to_9_after_remission_is_not_relapse_but_rises_5",
        "back_to_8_after_remission_is_nothing",
        "a_5_was_not_remission",
        "10_without_earlier_remission_is_not_relapse",
        "intake_in_remission_counts_and_both_reasons_listed",
        "both_reasons_in_fixed_order",
    ],
)
def test_a_rise_back_to_10_after_remission_is_worsening(
    baseline: int, prior: Sequence[int], total: int, reasons: tuple[str, ...]
) -> None:
    assessment = assess_checkin(baseline, prior, total)
    assert assessment.worsening_reasons == reasons
    assert assessment.worsening is bool(reasons)


def test_mood_only_checkin_has_no_flags_and_no_reasons() -> None:
    assessment = assess_checkin(3, [2, 15], None)
    assert assessment.phq9_total is None
    assert (assessment.response, assessment.remission, assessment.worsening) == (
        False,
        False,
        False,
    )
    assert assessment.worsening_reasons == ()
    assert (assessment.baseline_total, assessment.lowest_total) == (3, 2)


def test_assessment_carries_baseline_and_lowest_before_this_checkin() -> None:
    assessment = assess_checkin(18, [9, 4, 7], 2)
    assert (assessment.phq9_total, assessment.baseline_total, assessment.lowest_total) == (
        2,
        18,
        4,
    )
    assert (assessment.response, assessment.remission, assessment.worsening) == (
        True,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("baseline", "prior", "total"),
    [(28, [], 10), (-1, [], 10), (20, [30], 10), (20, [], 28), (20, [], -1)],
)
def test_impossible_totals_raise(baseline: int, prior: Sequence[int], total: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.27"):
        assess_checkin(baseline, prior, total)


@FAST
@given(totals, st.lists(totals, max_size=8), totals)
def test_flags_agree_with_the_rules_for_any_history(
    baseline: int, prior: list[int], total: int
) -> None:
    assessment = assess_checkin(baseline, prior, total)
    lowest = min([baseline, *prior])
    assert assessment.lowest_total == lowest
    assert assessment.response is (baseline > 0 and 2 * total <= baseline)
    assert assessment.remission is (total < 5)
    rise = total - lowest >= 5
    relapse = total >= 10 and any(t < 5 for t in [baseline, *prior])
    assert assessment.worsening is (rise or relapse)
    assert not (assessment.remission and assessment.worsening)


def test_with_defaults_every_relapse_is_also_a_rise_from_lowest() -> None:
    # A total in remission is at most 4 and 4 + 5 <= 10, so relapse never stands alone.
    for remitted in range(5):
        assessment = assess_checkin(20, [remitted], 10)
        assert assessment.worsening_reasons == ("rise_from_lowest", "relapse_after_remission")


@pytest.mark.parametrize(("total", "worsening"), [(9, False), (10, True)])
def test_relapse_after_remission_alone_when_the_rise_threshold_is_larger(
    total: int, worsening: bool
) -> None:
    policy = MbcPolicy(worsening_rise=8)
    assessment = assess_checkin(20, [12, 4, 7], total, policy)
    assert assessment.worsening is worsening
    assert assessment.worsening_reasons == (("relapse_after_remission",) if worsening else ())

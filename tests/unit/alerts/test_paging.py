"""Pages: idempotency keys, the PHI-free body, its signature, and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.domain.paging import (
    PAGE_FIELDS,
    backoff,
    delivered,
    idempotency_key,
    page_body,
    signature,
)
from tests.unit.alerts.builders import T0, at

FAST = settings(max_examples=300, deadline=None)

# --- idempotency keys ----------------------------------------------------------------


def test_idempotency_key_names_alert_one_based_tier_and_recipient() -> None:
    assert idempotency_key("a-1", 0, 0, 0) == "a-1:t1:r0"
    assert idempotency_key("a-1", 2, 1, 0) == "a-1:t3:r1"
    assert idempotency_key("a-1", 2, 1, 3) == "a-1:t3:r1:repage3"


def test_idempotency_key_is_stable() -> None:
    assert idempotency_key("a-1", 1, 2, 3) == idempotency_key("a-1", 1, 2, 3)


def test_idempotency_keys_differ_for_every_alert_tier_recipient_and_round() -> None:
    combos = list(itertools.product(["a-1", "a-2", "a-1:t1"], range(3), range(3), range(4)))
    keys = {idempotency_key(*c) for c in combos}
    assert len(keys) == len(combos)


def test_a_stand_in_on_calls_pages_are_new_pages_to_the_sites_own() -> None:
    """The network's tier 1, paged for a site with nobody on call, then the site's own
    tier 1 once it has one: two pages, not one delivered twice (same tier and round)."""
    assert idempotency_key("a-1", 0, 0, 0, "_network") == "a-1:_network:t1:r0"
    assert idempotency_key("a-1", 0, 0, 2, "_network") == "a-1:_network:t1:r0:repage2"
    combos = list(
        itertools.product(["a-1", "a-2"], range(3), range(3), range(3), [None, "_network"])
    )
    assert len({idempotency_key(*c) for c in combos}) == len(combos)


ids = st.text(min_size=1, max_size=20)
small = st.integers(0, 50)


@FAST
@given(st.tuples(ids, small, small, small), st.tuples(ids, small, small, small))
def test_idempotency_keys_are_distinct_per_alert_tier_recipient_and_round(
    one: tuple[str, int, int, int], two: tuple[str, int, int, int]
) -> None:
    assert (idempotency_key(*one) == idempotency_key(*two)) is (one == two)


# --- the body ------------------------------------------------------------------------


def body(tier: int = 1, recipient: int = 0, round_: int = 0, reason: str = "escalation") -> bytes:
    return page_body(
        page_id="pg-1",
        alert_id="al-1",
        patient_id="p-0042",
        site_id="site-a",
        kind="suicide_risk",
        severity="critical",
        status="open",
        tier=tier,
        recipient=recipient,
        round_=round_,
        reason=reason,
        raised_at=T0,
        paged_at=at(900),
        ack_url="http://127.0.0.1:8003/v1/ack/tok",
    )


def test_the_body_is_json_with_exactly_the_page_fields_in_order() -> None:
    page = json.loads(body())
    assert list(page) == list(PAGE_FIELDS)
    assert len(set(PAGE_FIELDS)) == len(PAGE_FIELDS)


def test_the_body_carries_the_contract_fields_and_their_values() -> None:
    page = json.loads(body(tier=1, recipient=2, round_=0))
    assert page == {
        "page_id": "pg-1",
        "idempotency_key": "al-1:t2:r2",
        "alert_id": "al-1",
        "patient_id": "p-0042",
        "site_id": "site-a",
        "kind": "suicide_risk",
        "severity": "critical",
        "status": "open",
        "escalation_level": 1,
        "tier": 2,
        "round": 0,
        "reason": "escalation",
        "raised_at": "2025-03-03T09:00:00+00:00",
        "paged_at": "2025-03-03T09:15:00+00:00",
        "ack_url": "http://127.0.0.1:8003/v1/ack/tok",
    }
    # docs/domain.md "Pages" (PAGE_FIELDS): at least these
    assert {"alert_id", "patient_id", "site_id", "kind", "severity", "escalation_level"} <= set(
        page
    )


@pytest.mark.parametrize("tier", [0, 1, 2, 5])
def test_escalation_level_is_the_zero_based_tier_and_tier_is_one_based(tier: int) -> None:
    page = json.loads(body(tier=tier))
    assert page["escalation_level"] == tier
    assert page["tier"] == tier + 1


def test_a_repage_body_has_its_round_and_repage_key() -> None:
    page = json.loads(body(tier=2, recipient=0, round_=4, reason="ack_timeout"))
    assert page["round"] == 4
    assert page["reason"] == "ack_timeout"
    assert page["idempotency_key"] == "al-1:t3:r0:repage4"


def test_the_body_is_the_same_bytes_every_time() -> None:
    assert body() == body()


PHI = {
    "name",
    "first_name",
    "last_name",
    "patient_name",
    "birth_date",
    "date_of_birth",
    "dob",
    "phone",
    "phone_number",
    "email",
    "e_mail",
    "notes",
    "note",
    "address",
}


def test_a_page_has_no_field_that_could_carry_phi() -> None:
    assert not PHI & set(PAGE_FIELDS)
    assert not PHI & set(json.loads(body()))
    # and page_body takes no such input at all
    params = set(page_body.__code__.co_varnames[: page_body.__code__.co_kwonlyargcount])
    assert not PHI & params


# --- the signature -------------------------------------------------------------------


def test_the_signature_is_the_hex_hmac_sha256_of_the_body() -> None:
    b = body()
    expected = hmac.new(b"s3cret", b, hashlib.sha256).hexdigest()
    assert signature("s3cret", b) == f"sha256={expected}"


@FAST
@given(st.text(), st.binary())
def test_the_signature_matches_hmac_for_any_secret_and_body(secret: str, data: bytes) -> None:
    sig = signature(secret, data)
    assert sig.startswith("sha256=")
    assert hmac.compare_digest(
        sig, "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    )


def test_the_signature_changes_with_the_body_and_the_secret() -> None:
    b = body()
    assert signature("s3cret", b) != signature("s3cret", body(tier=2))
    assert signature("s3cret", b) != signature("other", b)


# --- retries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "jitter", "seconds"),
    [
        (1, 0.0, 0.5),
        (1, 0.5, 0.75),
        (2, 0.0, 1.0),
        (3, 0.0, 2.0),
        (4, 0.0, 4.0),
        (7, 0.0, 30.0),  # 64 capped at 60
        (100, 0.0, 30.0),
        (100, 0.5, 45.0),
        (0, 0.0, 0.5),  # before the first failure: as the first retry
        (-3, 0.0, 0.5),
    ],
)
def test_backoff_examples(attempt: int, jitter: float, seconds: float) -> None:
    assert backoff(attempt, initial_s=1.0, max_s=60.0, jitter=jitter) == seconds


def test_backoff_never_overflows_for_a_delivery_retried_for_days() -> None:
    for attempt in (1024, 1025, 5000, 10**9):
        assert backoff(attempt, initial_s=1.0, max_s=60.0, jitter=0.0) == 30.0


def step_of(attempt: int, initial_s: float, max_s: float) -> float:
    exponent = max(attempt - 1, 0)
    return max_s if exponent > 1000 else min(max_s, initial_s * 2.0**exponent)


attempts = st.integers(-2, 5000)
initials = st.floats(0.01, 60.0)
maxima = st.floats(0.01, 3600.0)
jitters = st.floats(0.0, 1.0, exclude_max=True)


@FAST
@given(attempts, initials, maxima, jitters)
def test_backoff_is_within_half_a_step_and_a_step_and_capped(
    attempt: int, initial_s: float, max_s: float, jitter: float
) -> None:
    step = step_of(attempt, initial_s, max_s)
    seconds = backoff(attempt, initial_s=initial_s, max_s=max_s, jitter=jitter)
    assert step / 2 <= seconds <= step
    assert seconds <= max_s


@FAST
@given(attempts, initials, maxima, jitters)
def test_backoff_never_shrinks_from_one_attempt_to_the_next(
    attempt: int, initial_s: float, max_s: float, jitter: float
) -> None:
    this = backoff(attempt, initial_s=initial_s, max_s=max_s, jitter=jitter)
    following = backoff(attempt + 1, initial_s=initial_s, max_s=max_s, jitter=jitter)
    assert following >= this


@FAST
@given(st.integers(1, 5000), initials, maxima, jitters, jitters)
def test_more_jitter_never_means_a_shorter_wait(
    attempt: int, initial_s: float, max_s: float, j1: float, j2: float
) -> None:
    lo, hi = sorted((j1, j2))
    assert backoff(attempt, initial_s=initial_s, max_s=max_s, jitter=lo) <= backoff(
        attempt, initial_s=initial_s, max_s=max_s, jitter=hi
    )


@pytest.mark.parametrize(
    ("status_code", "ok"),
    [
        (100, False),
        (199, False),
        (200, True),
        (201, True),
        (202, True),
        (204, True),
        (299, True),
        (300, False),
        (301, False),
        (400, False),
        (404, False),
        (409, False),
        (429, False),
        (500, False),
        (503, False),
        (0, False),
    ],
)
def test_only_a_2xx_answer_is_delivered(status_code: int, ok: bool) -> None:
    assert delivered(status_code) is ok


def test_the_timestamped_signature_covers_the_time_and_the_body() -> None:
    import hashlib
    import hmac

    from services.alerts.domain.paging import timestamped_signature

    body = b'{"alert_id": "a"}'
    sig = timestamped_signature("s3cret", 1795500000, body)
    expected = hmac.new(b"s3cret", b"1795500000." + body, hashlib.sha256).hexdigest()
    assert sig == "sha256=" + expected
    assert timestamped_signature("s3cret", 1795500001, body) != sig


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        ("http://127.0.0.1:9900/page", (), True),
        ("http://127.0.0.1:9900/page", ("127.0.0.1",), True),
        ("http://169.254.169.254/latest", ("127.0.0.1",), False),
        ("https://pager.example.org/hook", ("*.example.org",), True),
        ("https://example.org/hook", ("*.example.org",), False),
        ("https://evil-example.org/hook", ("*.example.org",), False),
        ("https://PAGER.Example.org./hook", ("pager.example.org",), True),
        ("http://localhost/x", ("127.0.0.1",), False),
    ],
)
def test_webhook_hosts_against_the_allow_list(url: str, allowed: tuple[str, ...], ok: bool) -> None:
    from services.alerts.domain.paging import host_allowed

    assert host_allowed(url, allowed) is ok

"""The signatures pages and texts carry: the Standard Webhooks headers agree with the
``standardwebhooks`` package and with a hand-computed HMAC, for plain and ``whsec_``
secrets; Twilio's signature is the base64 HMAC-SHA1 of the URL and the sorted fields."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.alerts.channels import (
    standard_webhook_headers,
    twilio_signature,
    verify_twilio_signature,
)
from services.alerts.channels.standard_webhooks import has_key

BODY = b'{"alert_id":"a-1","kind":"suicide_risk","severity":"critical"}'


def hand_signature(key: bytes, msg_id: str, stamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{stamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_plain_secret_signs_with_its_utf8_bytes() -> None:
    headers = standard_webhook_headers("s3cret", "a-1:t1:r0", 1_700_000_000, BODY)
    assert headers == {
        "webhook-id": "a-1:t1:r0",
        "webhook-timestamp": "1700000000",
        "webhook-signature": hand_signature(b"s3cret", "a-1:t1:r0", 1_700_000_000, BODY),
    }


def test_known_vector() -> None:
    # printf '%s' 'msg_1.1700000000.{}' | openssl dgst -sha256 -hmac s3cret -binary | base64
    headers = standard_webhook_headers("s3cret", "msg_1", 1_700_000_000, b"{}")
    assert headers["webhook-signature"] == "v1,uNtIplUOMTIs6G1RRPpb6NsRUZZLxUiBZsZiXV3ycuM="


def test_whsec_secret_signs_with_the_decoded_base64() -> None:
    key = b"\x00\x01binary key\xff"
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = standard_webhook_headers(secret, "m", 1_700_000_000, BODY)
    assert headers["webhook-signature"] == hand_signature(key, "m", 1_700_000_000, BODY)


@pytest.mark.parametrize("secret", ["s3cret", "not base64 at all!", "whsec_c2VjcmV0LWJ5dGVz"])
def test_the_package_verifies_what_is_sent(secret: str) -> None:
    stamp = int(time.time())
    headers = standard_webhook_headers(secret, "a-1:t1:r0", stamp, BODY)
    verifier = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    assert verifier.verify(BODY, headers) == {
        "alert_id": "a-1",
        "kind": "suicide_risk",
        "severity": "critical",
    }
    with pytest.raises(WebhookVerificationError):
        verifier.verify(BODY.replace(b"critical", b"warning"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another secret").verify(BODY, headers)


def test_the_same_page_keeps_its_id_and_only_the_time_changes_the_signature() -> None:
    first = standard_webhook_headers("s", "a-1:t1:r0", 1_700_000_000, BODY)
    retry = standard_webhook_headers("s", "a-1:t1:r0", 1_700_000_060, BODY)
    assert first["webhook-id"] == retry["webhook-id"]
    assert first["webhook-signature"] != retry["webhook-signature"]


def test_an_empty_key_signs_nothing() -> None:
    assert not has_key("whsec_")
    assert not has_key("")
    assert has_key("s")


URL = "https://alerts.example.org/v1/sms/inbound"
PARAMS = {"From": "+15551230001", "To": "+15557654321", "Body": "4a", "MessageSid": "SM1"}


def test_twilio_signature_is_hmac_sha1_over_url_and_sorted_fields() -> None:
    data = URL + "".join(k + PARAMS[k] for k in sorted(PARAMS))
    expected = base64.b64encode(hmac.new(b"tok", data.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature("tok", URL, PARAMS) == expected


def test_twilio_signature_verifies_and_anything_changed_does_not() -> None:
    good = twilio_signature("tok", URL, PARAMS)
    assert verify_twilio_signature("tok", URL, PARAMS, good)
    assert not verify_twilio_signature("other", URL, PARAMS, good)
    assert not verify_twilio_signature("tok", URL, {**PARAMS, "Body": "4b"}, good)
    assert not verify_twilio_signature("tok", URL.replace("https", "http"), PARAMS, good)
    assert not verify_twilio_signature("tok", URL, PARAMS, None)
    assert not verify_twilio_signature("tok", URL, PARAMS, "")
    assert not verify_twilio_signature("", URL, PARAMS, good)


def test_twilio_signature_verifies_with_or_without_the_default_port() -> None:
    good = twilio_signature("tok", URL, PARAMS)
    with_port = URL.replace("example.org", "example.org:443")
    assert verify_twilio_signature("tok", with_port, PARAMS, good)


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=6), st.text(min_size=1))
def test_any_form_round_trips(params: dict[str, str], token: str) -> None:
    assert verify_twilio_signature(token, URL, params, twilio_signature(token, URL, params))

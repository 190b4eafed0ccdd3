"""The channels against local stand-ins for the outside world, all real servers on
loopback: texts through FakeTwilio, e-mail through MailSink, signed webhook pages through
PageReceiver, and Twilio's signed replies. No broker or database needed."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from services.alerts.alerting.delivery import post_page
from services.alerts.channels import (
    MailConfig,
    SmsConfig,
    send_email,
    send_sms,
    verify_twilio_signature,
)
from services.alerts.settings import AlertsSettings
from tools.fake_twilio import FakeTwilio
from tools.mail_sink import MailSink
from tools.page_receiver import PageReceiver

STAFF = "+15551230001"
FROM = "+15557654321"
TEXT = "Interval: critical alert a-1 at site-a. Reply 4a to acknowledge."


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def config(fake: FakeTwilio, token: str | None = None) -> SmsConfig:
    return SmsConfig(fake.api_url, fake.account_sid, token or fake.auth_token, FROM)


def leaks_nothing(error: str | None) -> bool:
    return error is not None and STAFF not in error and "+1555" not in error and "4a" not in error


async def test_a_text_reaches_twilio_with_its_fields(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    result = await send_sms(http, config(twilio), STAFF, TEXT)
    assert result.ok
    assert result.status == 201
    assert result.error is None
    sms = await twilio.wait_for(to=STAFF, timeout=2)
    assert (sms.to, sms.from_, sms.body, sms.auth_ok) == (STAFF, FROM, TEXT, True)
    assert result.provider_id == sms.sid
    assert sms.sid is not None
    assert sms.sid.startswith("SM")
    assert len(sms.sid) == 34
    assert result.duration_ms > 0
    assert twilio.auth_token not in repr(config(twilio))


async def test_bad_credentials_are_a_permanent_failure(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    result = await send_sms(http, config(twilio, token="wrong"), STAFF, TEXT)
    assert (result.ok, result.status, result.permanent) == (False, 401, True)
    assert result.error == "HTTP 401 (Twilio error 20003)"
    assert twilio.messages() == []
    [refused] = twilio.messages(include_refused=True)
    assert not refused.auth_ok


async def test_a_number_twilio_refuses_is_permanent_and_never_in_the_error(
    twilio: FakeTwilio, http: httpx.AsyncClient
) -> None:
    result = await send_sms(http, config(twilio), "5551230001", TEXT)  # no +country
    assert (result.ok, result.status, result.permanent) == (False, 400, True)
    assert result.error == "HTTP 400 (Twilio error 21211)"
    assert "5551230001" not in repr(result)
    assert twilio.messages() == []


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_an_outage_or_throttling_is_transient_and_the_retry_goes_through(
    twilio: FakeTwilio, http: httpx.AsyncClient, status: int
) -> None:
    twilio.fail_next(1, status=status)
    failed = await send_sms(http, config(twilio), STAFF, TEXT)
    assert (failed.ok, failed.status, failed.permanent, failed.transient) == (
        False,
        status,
        False,
        True,
    )
    assert leaks_nothing(failed.error)
    retried = await send_sms(http, config(twilio), STAFF, TEXT)
    assert retried.ok
    assert len(twilio.messages(to=STAFF)) == 1


async def test_nobody_listening_is_transient(http: httpx.AsyncClient) -> None:
    cfg = SmsConfig(f"http://127.0.0.1:{closed_port()}", "AC1", "tok", FROM)
    result = await send_sms(http, cfg, STAFF, TEXT)
    assert (result.ok, result.status, result.permanent) == (False, None, False)
    assert result.error == "ConnectError"


async def test_waiting_for_a_text_that_never_comes_says_so(twilio: FakeTwilio) -> None:
    with pytest.raises(TimeoutError, match=r"waiting for 1 text\(s\) to \*\*\*01"):
        await twilio.wait_for(to=STAFF, timeout=0.05)


# -- replies ------------------------------------------------------------------------------


async def test_a_reply_is_signed_as_twilio_signs_it(twilio: FakeTwilio) -> None:
    async with PageReceiver() as app:  # stands in for POST /v1/sms/inbound
        url = app.url("/v1/sms/inbound")
        ok = await twilio.reply(url, STAFF, FROM, "4a")
        tampered = await twilio.reply(url, STAFF, FROM, "4a", sign=False)
    assert (ok.status_code, tampered.status_code) == (200, 200)
    good, bad = app.received
    assert good.headers["content-type"] == "application/x-www-form-urlencoded"
    params = dict(httpx.QueryParams(good.body.decode()))
    assert (params["From"], params["To"], params["Body"]) == (STAFF, FROM, "4a")
    assert params["AccountSid"] == twilio.account_sid
    assert params["NumMedia"] == "0"
    assert params["MessageSid"].startswith("SM")
    token = twilio.auth_token
    assert verify_twilio_signature(token, url, params, good.headers["x-twilio-signature"])
    bad_params = dict(httpx.QueryParams(bad.body.decode()))
    assert not verify_twilio_signature(token, url, bad_params, bad.headers["x-twilio-signature"])
    # the signature covers the fields and the URL: a changed body or host fails
    edited = {**params, "Body": "5a"}
    assert not verify_twilio_signature(token, url, edited, good.headers["x-twilio-signature"])
    moved = url.replace("127.0.0.1", "localhost")
    assert not verify_twilio_signature(token, moved, params, good.headers["x-twilio-signature"])


# -- e-mail -------------------------------------------------------------------------------


async def test_an_email_reaches_the_smtp_server() -> None:
    async with MailSink() as sink:
        cfg = MailConfig(sink.smtp_url, "Interval <pages@interval.example>")
        result = await send_email(cfg, "oncall@example.org", "Critical alert a-1", TEXT)
        mail = await sink.wait_for(to="oncall@example.org", timeout=2)
    assert result.ok
    assert result.status == 250
    assert result.error is None
    assert mail.mail_from == "pages@interval.example"
    assert mail.rcpt_tos == ("oncall@example.org",)
    assert mail.subject == "Critical alert a-1"
    assert mail.text.strip() == TEXT
    assert mail.message["Message-ID"] == result.provider_id


async def test_a_mailbox_the_server_refuses_is_permanent() -> None:
    async with MailSink() as sink:
        sink.fail_next(1, "550 5.1.1 <oncall@example.org>: no such user")
        cfg = MailConfig(sink.smtp_url, "pages@interval.example")
        result = await send_email(cfg, "oncall@example.org", "Critical alert a-1", TEXT)
        assert sink.messages() == []
    assert (result.ok, result.status, result.permanent) == (False, 550, True)
    assert result.error == "SMTP 550"


async def test_try_again_later_is_transient_and_the_retry_goes_through() -> None:
    async with MailSink() as sink:
        sink.fail_next(1)  # 451
        cfg = MailConfig(sink.smtp_url, "pages@interval.example")
        failed = await send_email(cfg, "oncall@example.org", "s", TEXT)
        retried = await send_email(cfg, "oncall@example.org", "s", TEXT)
        assert len(sink.messages(to="oncall@example.org")) == 1
    assert (failed.ok, failed.status, failed.transient) == (False, 451, True)
    assert retried.ok


async def test_no_smtp_server_is_transient() -> None:
    cfg = MailConfig(f"smtp://127.0.0.1:{closed_port()}", "pages@interval.example")
    result = await send_email(cfg, "oncall@example.org", "s", TEXT)
    assert (result.ok, result.status, result.transient) == (False, None, True)
    assert result.error is not None
    assert "oncall" not in result.error


async def test_a_header_with_a_line_break_is_permanent_and_sends_nothing() -> None:
    async with MailSink() as sink:
        cfg = MailConfig(sink.smtp_url, "pages@interval.example")
        result = await send_email(cfg, "oncall@example.org", "s\r\nBcc: x@evil.example", "b")
        assert sink.messages() == []
    assert (result.ok, result.permanent, result.error) == (False, True, "invalid message header")


def test_a_bad_smtp_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="smtp:// or smtps://") as info:
        MailConfig("http://user:hunter2@mail.example", "pages@interval.example")
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(MailConfig("smtp://u:hunter2@h:25", "p@x.example"))


# -- Standard Webhooks on a page --------------------------------------------------------


@pytest.mark.parametrize("secret", ["s3cret", "whsec_c2VjcmV0LWJ5dGVz"])
async def test_a_signed_page_verifies_at_the_receiver(http: httpx.AsyncClient, secret: str) -> None:
    settings = AlertsSettings(page_signing_secret=SecretStr(secret))
    body = b'{"alert_id":"a-1","kind":"suicide_risk","severity":"critical"}'
    async with PageReceiver(signing_secret=secret, require_webhook_signature=True) as rx:
        rx.fail("/page", times=1)
        before = int(time.time())
        first = await post_page(http, settings, rx.url("/page"), body, "a-1:t1:r0")
        retry = await post_page(http, settings, rx.url("/page"), body, "a-1:t1:r0")
    assert (first[0], first[1], retry[0], retry[1]) == (500, "HTTP 500", 200, None)
    for page in rx.received:
        assert page.webhook_signature_ok is True
        assert page.signature_ok is True
        assert page.headers["webhook-id"] == "a-1:t1:r0"  # the same on every retry
        assert int(page.headers["webhook-timestamp"]) >= before
        assert page.headers["webhook-timestamp"] == page.headers["x-interval-timestamp"]
        assert page.headers["webhook-signature"].startswith("v1,")


async def test_a_page_can_name_its_own_webhook_id(http: httpx.AsyncClient) -> None:
    settings = AlertsSettings(page_signing_secret=SecretStr("s3cret"))
    async with PageReceiver(signing_secret="s3cret") as rx:
        await post_page(http, settings, rx.url(), b"{}", "a-1:t1:r0", webhook_id="page-7")
    [page] = rx.received
    assert page.headers["webhook-id"] == "page-7"
    assert page.webhook_signature_ok is True


async def test_a_page_signed_with_another_secret_is_refused(http: httpx.AsyncClient) -> None:
    settings = AlertsSettings(page_signing_secret=SecretStr("not the receiver's"))
    async with PageReceiver(signing_secret="s3cret") as rx:
        status, error, _ = await post_page(http, settings, rx.url(), b"{}", "a-1:t1:r0")
    assert (status, error) == (401, "HTTP 401")
    [page] = rx.received
    assert (page.webhook_signature_ok, page.signature_ok) == (False, False)


async def test_unsigned_pages_carry_no_signature_headers(http: httpx.AsyncClient) -> None:
    async with PageReceiver() as rx:
        await post_page(http, AlertsSettings(page_signing_secret=None), rx.url(), b"{}", "k")
    [page] = rx.received
    assert not {"webhook-id", "webhook-signature", "x-interval-signature"} & set(page.headers)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

"""The local webhook receiver records pages, follows its failure script, checks
signatures, deduplicates by idempotency key and times out helpfully."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from services.alerts.channels import standard_webhook_headers
from tools.page_receiver import PageReceiver, Received, sign, summary
from tools.page_receiver.process import ReceiverProcess


def page(alert_id: str = "a-1", key: str | None = "a-1:t1:r0") -> dict[str, object]:
    body: dict[str, object] = {
        "alert_id": alert_id,
        "patient_id": "p-1",
        "site_id": "site-a",
        "kind": "suicide_risk",
        "severity": "critical",
        "escalation_level": 0,
    }
    if key is not None:
        body["idempotency_key"] = key
    return body


async def test_records_pages() -> None:
    async with PageReceiver() as rx, httpx.AsyncClient() as client:
        assert rx.url("/page") == f"http://127.0.0.1:{rx.port}/page"
        before = time.time()
        r = await client.post(rx.url("/page"), json=page(), headers={"X-Custom": "yes"})
        assert r.status_code == 200
        other = await client.post(rx.url("/other"), content=b"not json")
        assert other.status_code == 200
        got = await client.get(rx.url("/page"))
        assert got.status_code == 405

    assert [x.path for x in rx.received] == ["/page", "/other"]
    first = rx.received[0]
    assert first.json == page()
    assert orjson.loads(first.body) == page()
    assert first.headers["x-custom"] == "yes"
    assert first.headers["content-type"] == "application/json"
    assert first.status == 200
    assert first.delivered
    assert first.signature_ok is None
    assert before <= first.received_at <= time.time()
    assert first.received_mono <= rx.received[1].received_mono
    assert rx.received[1].json is None
    assert rx.received[1].body == b"not json"
    assert rx.delivered("/page") == [first]
    assert len(rx.delivered()) == 2
    assert summary(first) == (
        "page  /page  alert=a-1 patient=p-1 site=site-a kind=suicide_risk severity=critical "
        "level=0 key=a-1:t1:r0 -> 200"
    )


async def test_failure_script_answers_500_n_times_then_200() -> None:
    async with PageReceiver() as rx, httpx.AsyncClient() as client:
        rx.fail("/page", times=3)
        rx.fail("/elsewhere", times=1, status=429)
        codes = [(await client.post(rx.url("/page"), json=page())).status_code for _ in range(5)]
        assert codes == [500, 500, 500, 200, 200]
        assert (await client.post(rx.url("/elsewhere"), json=page())).status_code == 429
        assert (await client.post(rx.url("/elsewhere"), json=page())).status_code == 200

        rx.down("/page")
        assert (await client.post(rx.url("/page"), json=page())).status_code == 503
        rx.up("/page")
        rx.set_status(None, 502)  # any path
        assert (await client.post(rx.url("/x"), json=page())).status_code == 502

    assert [r.status for r in rx.requests("/page")] == [500, 500, 500, 200, 200, 503]
    assert len(rx.delivered("/page")) == 2


@pytest.mark.parametrize(("secret_used", "ok"), [("s3cret", True), ("wrong", False)])
async def test_signature_verification(secret_used: str, ok: bool) -> None:
    body = orjson.dumps(page())
    async with PageReceiver(signing_secret="s3cret") as rx, httpx.AsyncClient() as client:
        r = await client.post(
            rx.url(),
            content=body,
            headers={"X-Interval-Signature": sign(secret_used, body)},
        )
        assert r.status_code == 200  # recorded, not rejected, unless asked to
        await client.post(rx.url(), content=body)  # unsigned
    assert [x.signature_ok for x in rx.received] == [ok, False]


async def test_bad_signatures_can_be_rejected() -> None:
    body = orjson.dumps(page())
    async with (
        PageReceiver(signing_secret=b"s3cret", reject_bad_signatures=True) as rx,
        httpx.AsyncClient() as client,
    ):
        good = await client.post(
            rx.url(), content=body, headers={"x-interval-signature": sign("s3cret", body)}
        )
        bad = await client.post(rx.url(), content=body, headers={"x-interval-signature": "x"})
    assert (good.status_code, bad.status_code) == (200, 401)


async def test_unique_deliveries_dedups_by_key() -> None:
    async with PageReceiver() as rx, httpx.AsyncClient() as client:
        rx.fail("/page", times=1)
        await client.post(rx.url(), json=page("a-1", "k1"))  # 500: not a delivery
        await client.post(rx.url(), json=page("a-1", "k1"))
        await client.post(rx.url(), json=page("a-1", "k1"))  # a repeat
        await client.post(rx.url(), json=page("a-2", None), headers={"Idempotency-Key": "k2"})
        await client.post(rx.url(), json=page("a-3", None))  # no key at all

    unique = rx.unique_deliveries("/page")
    assert list(unique) == ["k1", "k2"]
    assert unique["k1"] is rx.received[1]
    assert unique["k2"].json["alert_id"] == "a-2"
    assert len(rx.delivered()) == 4
    assert rx.unique_deliveries("/nowhere") == {}


async def test_wait_for_wakes_on_a_request() -> None:
    async with PageReceiver() as rx, httpx.AsyncClient() as client:
        waiter = asyncio.create_task(rx.wait_for_deliveries(2, "/page", timeout=5))
        await asyncio.sleep(0)
        assert not waiter.done()
        await client.post(rx.url(), json=page("a-1"))
        await client.post(rx.url(), json=page("a-2"))
        delivered = await waiter
        found = await rx.wait_for_request(lambda r: r.json["alert_id"] == "a-2", timeout=1)
    assert [r.json["alert_id"] for r in delivered] == ["a-1", "a-2"]
    assert isinstance(found, Received)
    assert found is delivered[1]


async def test_wait_for_times_out_with_a_useful_message() -> None:
    async with PageReceiver() as rx, httpx.AsyncClient() as client:
        rx.fail("/page", times=1)
        await client.post(rx.url(), json=page())
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"timed out after 0.2 s waiting for 1 delivered"):
            await rx.wait_for(
                lambda r: len(r.delivered()) >= 1, timeout=0.2, what="1 delivered page"
            )
        assert time.monotonic() - start < 2
        with pytest.raises(TimeoutError, match=r"(?s)1 request\(s\) received.*-> 500"):
            await rx.wait_for_deliveries(1, timeout=0.05)


async def test_port_in_use_is_an_error() -> None:
    async with PageReceiver() as rx:
        with pytest.raises(OSError, match="could not listen"):
            await PageReceiver(rx.port).start()


async def test_standard_webhook_headers_that_do_not_verify_are_refused() -> None:
    body = orjson.dumps(page())
    stamp = int(time.time())
    good = standard_webhook_headers("s3cret", "a-1:t1:r0", stamp, body)
    forged = {
        **good,
        "webhook-signature": standard_webhook_headers("x", "a-1:t1:r0", stamp, body)[
            "webhook-signature"
        ],
    }
    stale = standard_webhook_headers("s3cret", "a-1:t1:r0", stamp - 3600, body)
    garbage = {**good, "webhook-signature": "v1"}
    async with PageReceiver(signing_secret="s3cret") as rx, httpx.AsyncClient() as client:
        statuses = [
            (await client.post(rx.url(), content=body, headers=h)).status_code
            for h in (good, forged, stale, garbage, {})
        ]
    assert statuses == [200, 401, 401, 401, 200]  # none sent: not required by default
    assert [r.webhook_signature_ok for r in rx.received] == [True, False, False, False, None]
    assert "webhook-sig=BAD" in summary(rx.received[1])


async def test_standard_webhook_headers_can_be_required() -> None:
    body = orjson.dumps(page())
    async with (
        PageReceiver(signing_secret=b"s3cret", require_webhook_signature=True) as rx,
        httpx.AsyncClient() as client,
    ):
        unsigned = await client.post(rx.url(), content=body)
        signed = await client.post(
            rx.url(),
            content=body,
            headers=standard_webhook_headers("s3cret", "k", int(time.time()), body),
        )
    assert (unsigned.status_code, signed.status_code) == (401, 200)


async def test_a_receiver_in_its_own_process_records_what_it_was_sent() -> None:
    """ReceiverProcess (tools/page_receiver/process.py): pages posted to it come back as
    the same Received requests an in-process receiver records, stamped on arrival in
    its own process (time.monotonic is system-wide, so comparable with ours)."""
    body = orjson.dumps({"patient_id": "p-1", "idempotency_key": "k-1"})
    async with ReceiverProcess() as rx:
        assert rx.received == []
        before = time.monotonic()
        async with httpx.AsyncClient() as http:
            for _ in range(2):
                r = await http.post(rx.url("/page"), content=body)
                assert r.status_code == 200
            r = await http.post(rx.url("/other"), content=b"not json")
        after = time.monotonic()
        pages = rx.requests("/page")
        assert [p.json for p in pages] == [{"patient_id": "p-1", "idempotency_key": "k-1"}] * 2
        assert all(before <= p.received_mono <= after for p in pages)
        assert list(rx.unique_deliveries("/page")) == ["k-1"]
        (other,) = rx.requests("/other")
        assert other.body == b"not json"
        assert other.json is None
    assert rx.proc is not None
    assert rx.proc.poll() is not None  # stopped with the block

"""After an acknowledgement, each other person who was paged for the alert gets exactly one
notice naming who took it (docs/domain.md "On-call people"): a page with reason
``ack_notice`` on the channel they were reached on, keyed per alert and person, so a
second acknowledgement (after a re-page) sends nobody a second notice."""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson

from services.alerts import repository as repo
from services.alerts.alerting.store import AlertStore
from services.alerts.domain.paging import notice_text, page_body
from services.alerts.rows import AlertRow, NewPage, PageRow
from shared.db import Conn


def _person(p: PageRow) -> str:
    """Who a page went to: a clinician, or a tier's static recipient."""
    return f"c:{p.clinician_id}" if p.clinician_id else f"t{p.tier}r{p.recipient_index}"


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _body(p: PageRow, row: AlertRow, by: str, at: datetime, page_id: str, key: str) -> bytes:
    text = notice_text(alert_id=str(row.alert_id), kind=row.kind, site_id=row.site_id, by=by)
    if p.channel == "sms":
        return text.encode()
    if p.channel == "email":
        subject = f"[Interval] {row.kind} alert at {row.site_id} acknowledged by {by}"
        return orjson.dumps({"subject": subject, "text": text + "\n"})
    # a webhook notice has every field a page has (a receiver reads it as one), reason
    # "ack_notice", and who acknowledged
    doc = orjson.loads(
        page_body(
            page_id=page_id,
            alert_id=str(row.alert_id),
            patient_id=row.patient_id,
            site_id=row.site_id,
            kind=row.kind,
            severity=row.severity,
            status=row.status,
            tier=p.tier,
            recipient=p.recipient_index,
            round_=p.round,
            reason="ack_notice",
            raised_at=row.raised_at,
            paged_at=at,
        )
    )
    doc.update(idempotency_key=key, notice="acknowledged", acknowledged_by=by)
    return orjson.dumps(doc)


async def notify_others(
    conn: Conn,
    row: AlertRow,
    by: str,
    acker: PageRow | None,
    now: datetime,
    store: AlertStore = repo,
) -> int:
    """Queue the notices (delivered by the timers); how many. ``acker``: the page the
    acknowledgement came from (a link, an SMS reply), else the acknowledger is whoever
    was paged under the name ``by``."""
    firsts: dict[str, PageRow] = {}
    for p in await store.paged_of(conn, row.alert_id):
        firsts.setdefault(_person(p), p)
    taker = _person(acker) if acker is not None else None
    pages = [
        NewPage(
            page_id=(page_id := str(uuid.uuid4())),
            alert_id=row.alert_id,
            idempotency_key=(key := f"{row.alert_id}:notice:{person}"),
            tier=p.tier,
            round=p.round,
            reason="ack_notice",
            recipient_index=p.recipient_index,
            recipient_name=p.recipient_name,
            body=_body(p, row, by, now, page_id, key),
            created_at=now,
            due=now,
            channel=p.channel,
            webhook_url=p.webhook_url,
            address=p.address,
            clinician_id=p.clinician_id,
            contact_method=p.contact_method,
        )
        for person, p in firsts.items()
        if person != taker and not (taker is None and _same_name(p.recipient_name, by))
    ]
    if pages:
        await store.insert_pages(conn, pages)
        await store.wake_timers(conn)
    return len(pages)

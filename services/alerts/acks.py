"""Acknowledging from the page itself (docs/domain.md "On-call people"): a page's one-use
link, and a clinician's SMS reply with the page's code ("4a"). Either acknowledges as the
page's recipient, audited under their name, in one transaction with the alert's change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from services.alerts import repository as repo
from services.alerts.commands import act_in
from services.alerts.deps import Deps
from services.alerts.domain import lifecycle
from services.alerts.domain.model import Status
from services.alerts.domain.rosters import parse_reply
from services.alerts.rows import AlertRow, PageRow
from services.alerts.schemas import ActorIn, AlertOut
from shared import metrics
from shared.db import Conn
from shared.errors import Conflict, Gone, NotFound
from shared.logging import get_logger

log = get_logger(__name__)

LINK_ROUTE = "/v1/ack/{token}"
SMS_ROUTE = "/v1/sms/inbound"


def _actor(page: PageRow) -> str:
    """The audit trail's actor for a page's recipient."""
    return f"clinician:{page.clinician_id}" if page.clinician_id else page.recipient_name


async def _acknowledge(
    conn: Conn, deps: Deps, page: PageRow, via: str, route: str, now: datetime
) -> AlertRow:
    """Acknowledge the page's alert as its recipient; Gone when the page's link was used
    or the alert is resolved (an alert someone else acknowledged already: unchanged)."""

    async def guard(conn: Conn, alert: AlertRow) -> None:
        locked = await repo.lock_page(conn, page.page_id)
        if locked.ack_used_at is not None:
            raise Gone("this page's acknowledgement was used already")
        if alert.status == Status.resolved.value:
            raise Gone("the alert is resolved")
        await repo.use_ack_token(conn, page.page_id, now)

    body = ActorIn(by=page.recipient_name, note=f"acknowledged from the page ({via})")
    row = await act_in(
        conn,
        deps,
        str(page.alert_id),
        lifecycle.Step.acknowledge,
        body,
        now,
        guard=guard,
        acker=page,
    )
    await repo.audit(
        conn, _actor(page), "POST", route, {"alert_id": str(page.alert_id), "via": via}
    )
    return row


@metrics.counted_on_commit
async def by_link(deps: Deps, token: str) -> AlertOut:
    now = deps.clock()
    async with deps.pool.acquire() as conn, conn.transaction():
        page = await repo.page_by_token(conn, token)
        if page is None:
            raise NotFound("no such acknowledgement link")
        row = await _acknowledge(conn, deps, page, "link", LINK_ROUTE, now)
    return AlertOut.from_row(row)


async def link_state(deps: Deps, token: str) -> tuple[PageRow, AlertRow]:
    """The link's page and alert, for the confirmation page a GET shows (a GET never
    acknowledges: link previews in messaging apps fetch links on their own)."""
    async with deps.pool.acquire() as conn:
        page = await repo.page_by_token(conn, token)
        alert = await repo.get_alert(conn, str(page.alert_id)) if page else None
    if page is None or alert is None:
        raise NotFound("no such acknowledgement link")
    return page, alert


@dataclass(frozen=True)
class Reply:
    """What an SMS reply did, and the text answered to it."""

    text: str
    acknowledged: str | None = None  # the alert id


UNKNOWN_NUMBER = "Interval: this number is not on an on-call roster, so the reply changed nothing."
HOW_TO = "Interval: to acknowledge a page, reply with its code, such as 4a."


@metrics.counted_on_commit
async def by_sms(deps: Deps, form: Mapping[str, str]) -> Reply:
    """A staff SMS reply (its Twilio signature already checked)."""
    sender = form.get("From", "")
    parsed = parse_reply(form.get("Body", ""))
    now = deps.clock()
    async with deps.pool.acquire() as conn, conn.transaction():
        clinician = await repo.clinician_by_phone(conn, sender)
        if clinician is None:
            log.info("sms_reply_ignored", reason="unknown number")
            return Reply(UNKNOWN_NUMBER)
        if parsed is None:
            log.info("sms_reply_ignored", reason="no code", clinician_id=clinician.clinician_id)
            return Reply(HOW_TO)
        n, _ = parsed
        page = await repo.page_by_reply(conn, clinician.clinician_id, n)
        if page is None:
            return Reply(f"Interval: no page of yours has the code {n}a. Nothing changed.")
        try:
            async with conn.transaction():  # a savepoint: a refusal leaves nothing behind
                row = await _acknowledge(conn, deps, page, "sms", SMS_ROUTE, now)
        except (Gone, Conflict) as exc:
            return Reply(f"Interval: code {n}a: {exc.detail}. Nothing changed.")
    return Reply(
        f"Interval: {row.acknowledged_by} acknowledged the {row.kind} alert at {row.site_id}.",
        acknowledged=str(row.alert_id),
    )

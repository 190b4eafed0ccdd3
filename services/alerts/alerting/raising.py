"""Alert book-keeping shared by the reactions, the timers and the commands: open or fold a
signal into an alert, apply the escalation decision (pages, timer), release held
alerts, and announce every change through the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from services.alerts import repository as repo
from services.alerts.alerting.people import Roster, load_roster
from services.alerts.alerting.store import AlertStore
from services.alerts.deps import Deps
from services.alerts.domain import policy
from services.alerts.domain.dedup import (
    Admission,
    admit,
    falls_back_to_network,
    opening,
    released_by,
)
from services.alerts.domain.escalation import (
    Decision,
    PageOrder,
    decide,
    escalation_level,
    stand_in,
    stand_in_via,
)
from services.alerts.domain.model import NETWORK_SITE, OncallPolicy, Severity, Status
from services.alerts.domain.paging import (
    email_message,
    idempotency_key,
    new_ack_token,
    page_body,
    sms_text,
)
from services.alerts.domain.rosters import reply_code
from services.alerts.rows import AlertRow, NewPage, OncallRow
from services.alerts.settings import SOURCE
from shared import events, metrics, outbox
from shared.db import Conn
from shared.logging import get_logger

log = get_logger(__name__)

# Counted once the transaction committed (shared.metrics.after_commit).
RAISED = Counter("alerts_raised_total", "Alerts opened", ["kind", "severity"])
REPEATED = Counter("alerts_repeated_total", "Repeats folded into an open alert", ["kind"])
PAGES_QUEUED = Counter("pages_queued_total", "Pages queued for delivery", ["reason"])
REACHED_NOBODY = Counter(
    "alerts_paged_nobody_total",
    "Escalation decisions whose tiers all resolved to nobody reachable",
    ["severity"],
)
NOBODY_ON_CALL = Counter(
    "alerts_unpaged_no_oncall_total", "Paging alerts opened at a site with nobody on call"
)
NETWORK_FALLBACK = Counter(
    "alerts_paged_network_fallback_total",
    "Critical alerts opened at a site with nobody on call that paged the network ops on-call",
)


# --- events ---------------------------------------------------------------------------


def _alert_fields(row: AlertRow) -> dict[str, Any]:
    return {
        "alert_id": str(row.alert_id),
        "patient_id": row.patient_id,
        "site_id": row.site_id,
        "kind": row.kind,
        "severity": row.severity,
        "status": row.status,
        "escalation_level": row.escalation_level,
        "occurrences": row.occurrences,
        "reasons": tuple(row.reasons),
        "raised_at": row.raised_at,
        "inhibited_by": str(row.inhibited_by) if row.inhibited_by else None,
    }


async def announce_raised(conn: Conn, row: AlertRow, pages_on_call: bool) -> None:
    payload = events.AlertRaised(**_alert_fields(row), pages_on_call=pages_on_call)
    await outbox.enqueue(
        conn,
        events.new_event(payload, source=SOURCE, subject=row.patient_id, time=row.raised_at),
    )


async def announce_changed(
    conn: Conn,
    row: AlertRow,
    change: str,
    previous_status: str,
    at: datetime,
    by: str | None = None,
) -> None:
    payload = events.AlertChanged(
        **_alert_fields(row),
        change=change,
        previous_status=previous_status,
        changed_at=at,
        by=by,
    )
    await outbox.enqueue(
        conn, events.new_event(payload, source=SOURCE, subject=row.patient_id, time=at)
    )


# --- escalation -----------------------------------------------------------------------


def ack_url(deps: Deps, token: str) -> str:
    return f"{deps.public_url}/v1/ack/{token}"


async def _page_rows(
    conn: Conn,
    deps: Deps,
    row: AlertRow,
    tiers: OncallPolicy,
    roster: Roster,
    order: PageOrder,
    now: datetime,
    via: str | None = None,
) -> list[NewPage]:
    """The order's tier's pages: one per static recipient (a webhook), then one per
    notification rule of each clinician on call whom the page reaches (its channel, due
    after the rule's delay). Each carries a one-use acknowledgement link. ``via``: whose
    tiers these are when not the alert's site's (in the idempotency key)."""
    tier = tiers.tiers[order.tier]
    alert_id = str(row.alert_id)
    out: list[NewPage] = []

    def common(i: int, name: str, body: bytes, token: str, due: datetime) -> dict[str, Any]:
        return {
            "alert_id": row.alert_id,
            "idempotency_key": idempotency_key(alert_id, order.tier, i, order.round, via),
            "tier": order.tier,
            "round": order.round,
            "reason": order.reason,
            "recipient_index": i,
            "recipient_name": name,
            "body": body,
            "created_at": now,
            "due": due,
            "ack_token": token,
        }

    def webhook_body(page_id: str, i: int, token: str) -> bytes:
        return page_body(
            page_id=page_id,
            alert_id=alert_id,
            patient_id=row.patient_id,
            site_id=row.site_id,
            kind=row.kind,
            severity=row.severity,
            status=row.status,
            tier=order.tier,
            recipient=i,
            round_=order.round,
            reason=order.reason,
            raised_at=row.raised_at,
            paged_at=now,
            ack_url=ack_url(deps, token),
            via=via,
        )

    for i, recipient in enumerate(tier.recipients):
        page_id, token = str(uuid.uuid4()), new_ack_token()
        out.append(
            NewPage(
                page_id=page_id,
                webhook_url=recipient.webhook_url,
                **common(i, recipient.name, webhook_body(page_id, i, token), token, now),
            )
        )
    for k, d in enumerate(roster.deliveries(tier, row.severity, now)):
        i = len(tier.recipients) + k
        page_id, token = str(uuid.uuid4()), new_ack_token()
        link = ack_url(deps, token)
        name = roster.rows[d.clinician_id].name
        due = now + timedelta(seconds=d.after_s)
        code: int | None = None
        if d.channel == "sms":
            code = await repo.next_reply_code(conn, d.clinician_id)
            body = sms_text(
                alert_id=alert_id,
                site_id=row.site_id,
                kind=row.kind,
                severity=row.severity,
                tier=order.tier,
                code=reply_code(code),
                ack_url=link,
            ).encode()
        elif d.channel == "email":
            body = email_message(
                alert_id=alert_id,
                patient_id=row.patient_id,
                site_id=row.site_id,
                kind=row.kind,
                severity=row.severity,
                tier=order.tier,
                raised_at=row.raised_at,
                ack_url=link,
            )
        else:
            body = webhook_body(page_id, i, token)
        out.append(
            NewPage(
                page_id=page_id,
                channel=d.channel,
                webhook_url=d.address if d.channel == "webhook" else None,
                address=None if d.channel == "webhook" else d.address,
                clinician_id=d.clinician_id,
                contact_method=d.contact_method,
                reply_code=code,
                **common(i, name, body, token, due),
            )
        )
    return out


async def apply_decision(
    conn: Conn, deps: Deps, row: AlertRow, now: datetime, store: AlertStore = repo
) -> AlertRow:
    """Ask ``decide`` about an alert (locked by the caller) and write what it says:
    pages to deliver now, the new escalation state, and when to look again."""
    before = row.escalation()
    tiers = row.oncall_policy()
    roster = await load_roster(conn, tiers, now)
    d: Decision = decide(
        before,
        tiers,
        now,
        ack_repage_after=deps.ack_repage_after,
        unreachable=roster.unreachable_tiers(tiers, row.severity, now),
    )
    via = row.policy_site
    page_rows = [
        p
        for order in d.pages
        for p in await _page_rows(conn, deps, row, tiers, roster, order, now, via)
    ]
    for order in d.pages:
        metrics.after_commit(PAGES_QUEUED.labels(order.reason).inc)
    reached = bool(page_rows)
    instead = stand_in(
        Severity(row.severity),
        d.pages,
        reached=reached,
        own_policy=row.policy_site is None and row.site_id != NETWORK_SITE,
    )
    if instead is not None:  # a critical alert's tiers reached nobody: the network's
        page_rows = await _network_pages(conn, deps, row, instead, d.pages, now, store)
    if d.pages and not reached:
        # every tier this decision paged resolved to nobody reachable: the worst case
        # for a paging alert, said loudly (the coverage gaps list shows it ahead)
        metrics.after_commit(REACHED_NOBODY.labels(row.severity).inc)
        log.error(
            "alert_reached_nobody",
            alert_id=str(row.alert_id),
            site_id=row.site_id,
            kind=row.kind,
            severity=row.severity,
            tiers=[o.tier + 1 for o in d.pages],
            network_paged=bool(page_rows),
        )
    if page_rows:
        # in the safety lane (Deps.first_attempt) leased to it, which POSTs them itself
        lane = deps.first_attempt
        lease = now + deps.first_attempt_lease if lane is not None else None
        queued = await store.insert_pages(conn, page_rows, lease)
        if lane is not None:
            metrics.after_commit(lane, queued)
        await store.wake_timers(conn)  # leased ones: they look again when the lease ends
    s = d.state
    updated = await store.update_alert(
        conn,
        row.alert_id,
        {
            "tiers_paged": s.tiers_paged,
            "last_escalated_at": s.last_escalated_at,
            "repages": s.repages,
            "last_repaged_at": s.last_repaged_at,
            "next_check_at": d.next_check_at,
            "updated_at": now,
        },
    )
    if d.next_check_at is not None and d.next_check_at - now < timedelta(
        seconds=deps.timer_idle_poll_s
    ):
        await store.wake_timers(conn)
    if escalation_level(s) > escalation_level(before):
        await announce_changed(conn, updated, "escalated", row.status, now)
        log.info(
            "alert_escalated",
            alert_id=str(row.alert_id),
            site_id=row.site_id,
            escalation_level=escalation_level(s),
        )
    if s.repages > before.repages:
        await announce_changed(conn, updated, "repaged", row.status, now)
    return updated


async def _network_pages(
    conn: Conn,
    deps: Deps,
    row: AlertRow,
    order: PageOrder,
    stood_in_for: tuple[PageOrder, ...],
    now: datetime,
    store: AlertStore,
) -> list[NewPage]:
    """The network ops on-call's pages of ``order`` (``stand_in``), standing in for the
    site's orders that reached nobody; none when the network has no on-call either."""
    network = await store.get_oncall(conn, NETWORK_SITE)
    if network is None:
        return []
    tiers = network.policy()
    roster = await load_roster(conn, tiers, now)
    via = stand_in_via(NETWORK_SITE, stood_in_for)
    return await _page_rows(conn, deps, row, tiers, roster, order, now, via)


# --- raising ----------------------------------------------------------------------------


async def _open(
    conn: Conn,
    patient_id: str,
    site_id: str,
    signal: policy.Signal,
    source_event_id: str | None,
    oncall: OncallRow | None,
    admission: Admission,
    now: datetime,
    store: AlertStore,
) -> AlertRow:
    """The new alert's row, with its on-call policy snapshotted: the site's, or the
    network's when it falls back to it (``oncall.site_id`` says which)."""
    row = await store.insert_alert(
        conn,
        {
            "alert_id": uuid.uuid4(),
            "patient_id": patient_id,
            "site_id": site_id,
            "kind": signal.kind.value,
            "severity": signal.severity.value,
            "status": Status.open.value,
            "reasons": list(signal.reasons),
            "raised_at": now,
            "first_seen_at": signal.observed_at,
            "last_seen_at": signal.observed_at,
            "source_event_id": source_event_id,
            "policy": oncall.tiers if oncall else None,
            "policy_version": oncall.version if oncall else None,
            "policy_site": oncall.site_id if oncall and oncall.site_id != site_id else None,
            "inhibited_by": uuid.UUID(admission.inhibited_by) if admission.inhibited_by else None,
            "updated_at": now,
        },
    )
    metrics.after_commit(RAISED.labels(signal.kind.value, signal.severity.value).inc)
    return row


async def _inhibit(
    conn: Conn, held: list[AlertRow], by: AlertRow, now: datetime, store: AlertStore
) -> None:
    """The alerts a new critical suicide_risk alert holds back: pages cancelled, no timer."""
    for alert in held:
        await store.cancel_pending_pages(conn, alert.alert_id, now)
        h = await store.update_alert(
            conn,
            alert.alert_id,
            {"inhibited_by": by.alert_id, "next_check_at": None, "updated_at": now},
        )
        await announce_changed(conn, h, "inhibited", h.status, now)


async def raise_alert(
    conn: Conn,
    deps: Deps,
    *,
    patient_id: str,
    site_id: str,
    signal: policy.Signal,
    source_event_id: str | None,
    now: datetime,
    store: AlertStore = repo,
) -> AlertRow:
    """Open an alert for the signal, or fold it into the patient's open one of that kind.
    The caller holds the patient's lock (``repo.lock_patient``)."""
    unresolved = await store.unresolved_alerts(conn, patient_id)
    admission = admit(signal, [r.open_alert() for r in unresolved])
    if admission.action == "repeat":
        assert admission.alert_id is not None
        row = await store.repeat_alert(
            conn, admission.alert_id, signal.reasons, signal.observed_at, now
        )
        metrics.after_commit(REPEATED.labels(signal.kind.value).inc)
        await announce_changed(conn, row, "repeated", row.status, now)
        return row
    oncall = await store.get_oncall(conn, site_id)
    network = None
    if oncall is None and falls_back_to_network(signal.severity):
        network = await store.get_oncall(conn, NETWORK_SITE)
    outcome = opening(
        signal.severity, admission, oncall=oncall is not None, network_oncall=network is not None
    )
    snapshot = network if outcome.paging == "page_network" else oncall
    row = await _open(
        conn, patient_id, site_id, signal, source_event_id, snapshot, admission, now, store
    )
    held = [r for r in unresolved if str(r.alert_id) in admission.inhibit]
    await _inhibit(conn, held, row, now, store)
    await announce_raised(conn, row, outcome.pages_on_call)
    fields = {
        "alert_id": str(row.alert_id),
        "patient_id": patient_id,
        "site_id": site_id,
        "kind": signal.kind.value,
        "severity": signal.severity.value,
    }
    if outcome.paging == "nobody_on_call":
        metrics.after_commit(NOBODY_ON_CALL.inc)
        log.warning("alert_nobody_on_call", **fields, detail="no on-call policy for the site")
    elif outcome.paging == "page_network":
        metrics.after_commit(NETWORK_FALLBACK.inc)
        log.warning(
            "alert_nobody_on_call",
            **fields,
            detail="no on-call policy for the site: paging the network ops on-call",
        )
    else:
        log.info("alert_raised", **fields, inhibited_by=admission.inhibited_by)
    if outcome.pages_on_call:
        row = await apply_decision(conn, deps, row, now, store)
    return row


async def raise_all(
    conn: Conn,
    deps: Deps,
    patient_id: str,
    site_id: str,
    signals: list[policy.Signal],
    event_id: str | None,
    now: datetime,
    store: AlertStore = repo,
) -> None:
    for signal in signals:
        await raise_alert(
            conn,
            deps,
            patient_id=patient_id,
            site_id=site_id,
            signal=signal,
            source_event_id=event_id,
            now=now,
            store=store,
        )


async def release(
    conn: Conn, deps: Deps, resolved: AlertRow, now: datetime, store: AlertStore = repo
) -> None:
    """The alerts a resolved suicide_risk alert held back page on their own now."""
    unresolved = await store.unresolved_alerts(conn, resolved.patient_id)
    ids = set(released_by(str(resolved.alert_id), [r.open_alert() for r in unresolved]))
    for r in unresolved:
        if str(r.alert_id) in ids:
            freed = await store.update_alert(
                conn, r.alert_id, {"inhibited_by": None, "updated_at": now}
            )
            await announce_changed(conn, freed, "released", freed.status, now)
            await apply_decision(conn, deps, freed, now, store)

"""The pages the watchdog POSTs from memory while the database is away
(services/alerts/domain/watchdog.py ``first_pages``): tier 1 of the network on-call, one
page per recipient, keyed as the escalation rule keys a first page."""

from __future__ import annotations

import itertools
import json
import uuid

from services.alerts.domain import watchdog as rule
from services.alerts.domain.model import OncallPolicy, Recipient, Tier
from services.alerts.domain.paging import idempotency_key
from tests.unit.alerts.builders import T0

ALERT = uuid.UUID("00000000-0000-0000-0000-000000000001")
POLICY = OncallPolicy(
    (
        Tier(
            (
                Recipient("ops-a", "https://a.example/hook"),
                Recipient("ops-b", "https://b.example/hook"),
            ),
            60,
        ),
        Tier((Recipient("ops-lead", "https://c.example/hook"),), 60),
    )
)


def ids() -> itertools.count[int]:
    return itertools.count(1)


def test_tier_1_is_paged_one_page_per_recipient_due_now() -> None:
    counter = ids()
    stall = rule.Stall(ALERT, T0, {"heartbeat_stale"}, recorded=False)
    pages = rule.first_pages(stall, POLICY, T0, lambda: f"page-{next(counter)}")
    assert [(p.tier, p.recipient, p.name, p.url) for p in pages] == [
        (0, 0, "ops-a", "https://a.example/hook"),
        (0, 1, "ops-b", "https://b.example/hook"),
    ]
    assert [p.page_id for p in pages] == ["page-1", "page-2"]
    assert [p.key for p in pages] == [idempotency_key(str(ALERT), 0, i, 0) for i in (0, 1)]
    assert all(p.next_at == T0 and p.attempts == 0 and p.delivered_at is None for p in pages)


def test_each_body_names_the_pipeline_stalled_alert() -> None:
    stall = rule.Stall(ALERT, T0, set(), recorded=False)
    (page, _) = rule.first_pages(stall, POLICY, T0, lambda: "p")
    body = json.loads(page.body)
    assert body["alert_id"] == str(ALERT)
    assert body["kind"] == "pipeline_stalled"
    assert body["severity"] == "critical"


def test_nobody_on_call_pages_nobody() -> None:
    stall = rule.Stall(ALERT, T0, set(), recorded=False)
    assert rule.first_pages(stall, OncallPolicy(), T0, lambda: "p") == []

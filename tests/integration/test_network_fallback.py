"""The network ops on-call standing in for a site with nobody on call (docs/domain.md "On-call
tiers and escalation"), through the alerts shell against a real PostgreSQL: who a
critical alert pages when its site has no on-call, or has one that reaches nobody now,
and what each on-call PUT takes over.
The end-to-end case (a check-in through the safety lane to a receiver) is in
tests/integration/test_pipeline_watchdog.py, whose stack has a network on-call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.alerts import commands, rosters
from services.alerts import repository as repo
from services.alerts.alerting.raising import raise_all
from services.alerts.deps import Deps
from services.alerts.domain import policy
from services.alerts.domain.model import NETWORK_SITE
from services.alerts.roster_schemas import ClinicianIn, ScheduleIn
from services.alerts.rows import AlertRow
from services.alerts.schemas import OncallIn
from tests.support.alerts import alerts_deps

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def deps() -> AsyncIterator[Deps]:
    async with alerts_deps(NOW, "care_fallback") as d:
        yield d


def oncall(*names: str) -> OncallIn:
    """One tier per name, each a webhook recipient."""
    return OncallIn.model_validate(
        {
            "tiers": [
                {"recipients": [{"name": n, "webhook_url": f"http://pager.test/{n}"}]}
                for n in names
            ]
        }
    )


async def signal(deps: Deps, pid: str, site: str, *signals: policy.Signal) -> None:
    async with deps.pool.acquire() as conn, conn.transaction():
        await repo.lock_patient(conn, pid, site, NOW)
        await raise_all(conn, deps, pid, site, list(signals), None, NOW)


def ideation() -> policy.Signal:
    return policy.from_checkin(
        suicidal_ideation=True,
        phq9_item9_positive=False,
        worsening=False,
        worsening_reasons=(),
        at=NOW,
    )[0]


def worsening() -> policy.Signal:
    return policy.from_checkin(
        suicidal_ideation=False,
        phq9_item9_positive=False,
        worsening=True,
        worsening_reasons=("rise_from_lowest",),
        at=NOW,
    )[0]


async def alert_of(deps: Deps, pid: str) -> AlertRow:
    async with deps.pool.acquire() as conn:
        [row] = await repo.unresolved_alerts(conn, pid)
        return row


async def pages(deps: Deps, alert: AlertRow) -> list[tuple[str, str, str]]:
    """(recipient, reason, idempotency key) of every page of the alert, oldest first."""
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT recipient_name, reason, idempotency_key FROM pages WHERE alert_id = $1 "
            "ORDER BY created_at, tier, recipient_index",
            alert.alert_id,
        )
    return [(r["recipient_name"], r["reason"], r["idempotency_key"]) for r in rows]


async def test_with_a_network_on_call_a_critical_alert_pages_it_until_the_site_has_one(
    deps: Deps,
) -> None:
    await commands.put_oncall(deps, NETWORK_SITE, oncall("ops"))
    await signal(deps, "p-1", "s-1", ideation())
    risk = await alert_of(deps, "p-1")
    assert risk.policy_site == NETWORK_SITE
    assert [p[:2] for p in await pages(deps, risk)] == [("ops", "initial")]

    # a later network PUT leaves it as it is (alerts in flight keep their policy)
    await commands.put_oncall(deps, NETWORK_SITE, oncall("ops2"))
    assert [p[:2] for p in await pages(deps, risk)] == [("ops", "initial")]

    # the site's own on-call takes it back and pages its tier 1: a new page, a new key
    await commands.put_oncall(deps, "s-1", oncall("ann", "bob"))
    now = await alert_of(deps, "p-1")
    assert now.policy_site is None
    assert (now.tiers_paged, now.repages) == (1, 0)
    [ops, ann] = await pages(deps, risk)
    assert ann[:2] == ("ann", "initial")
    assert ops[2] != ann[2]
    # once the site's, a network PUT never takes it again
    await commands.put_oncall(deps, NETWORK_SITE, oncall("ops3"))
    assert len(await pages(deps, risk)) == 2


async def test_a_critical_alert_that_found_nobody_at_all_pages_the_first_on_call_put(
    deps: Deps,
) -> None:
    await signal(deps, "p-1", "s-1", ideation())
    await signal(deps, "p-2", "s-2", worsening())
    risk, worse = await alert_of(deps, "p-1"), await alert_of(deps, "p-2")
    assert (risk.policy, risk.policy_site) == (None, None)
    assert await pages(deps, risk) == []

    # the network's on-call is put first: it takes the critical alert, not the high one
    await commands.put_oncall(deps, NETWORK_SITE, oncall("ops"))
    assert [p[:2] for p in await pages(deps, risk)] == [("ops", "initial")]
    assert (await alert_of(deps, "p-1")).policy_site == NETWORK_SITE
    assert await pages(deps, worse) == []
    assert (await alert_of(deps, "p-2")).policy is None

    # each site's own on-call then takes its alerts
    await commands.put_oncall(deps, "s-1", oncall("ann"))
    await commands.put_oncall(deps, "s-2", oncall("cy"))
    assert [p[:2] for p in await pages(deps, risk)] == [("ops", "initial"), ("ann", "initial")]
    assert [p[:2] for p in await pages(deps, worse)] == [("cy", "initial")]


async def test_a_site_with_on_call_never_reaches_the_network(deps: Deps) -> None:
    await commands.put_oncall(deps, NETWORK_SITE, oncall("ops"))
    await commands.put_oncall(deps, "s-1", oncall("ann"))
    await signal(deps, "p-1", "s-1", ideation())
    risk = await alert_of(deps, "p-1")
    assert risk.policy_site is None
    assert [p[:2] for p in await pages(deps, risk)] == [("ann", "initial")]


async def nobody_on_shift(deps: Deps) -> OncallIn:
    """A site's on-call of one tier naming a schedule whose first shift is next year: it
    reaches nobody now (a coverage gap)."""
    await rosters.put_clinician(
        deps,
        "c-later",
        ClinicianIn.model_validate(
            {
                "name": "Later",
                "timezone": "UTC",
                "contact_methods": [{"id": "hook", "type": "webhook", "address": "http://x.test/"}],
                "notification_rules": [{"contact_method": "hook", "after_s": 0}],
            }
        ),
    )
    await rosters.put_schedule(
        deps,
        "s-later",
        ScheduleIn.model_validate(
            {
                "name": "Next year",
                "timezone": "UTC",
                "rotations": [
                    {
                        "participants": ["c-later"],
                        "shift": "weekly",
                        "handoff": "09:00",
                        "start": f"{NOW.year + 1}-01-04",
                    }
                ],
            }
        ),
    )
    return OncallIn.model_validate({"tiers": [{"targets": [{"schedule_id": "s-later"}]}]})


async def test_a_critical_alert_whose_site_tiers_reach_nobody_pages_the_network(
    deps: Deps,
) -> None:
    await commands.put_oncall(deps, NETWORK_SITE, oncall("ops"))
    await commands.put_oncall(deps, "s-1", await nobody_on_shift(deps))
    await signal(deps, "p-1", "s-1", ideation())
    await signal(deps, "p-2", "s-1", worsening())
    risk, worse = await alert_of(deps, "p-1"), await alert_of(deps, "p-2")

    assert risk.policy_site is None  # the site's tiers stay its policy
    [(who, reason, key)] = await pages(deps, risk)
    assert (who, reason) == ("ops", "initial")
    assert key == f"{risk.alert_id}:_network-for-t1:t1:r0"
    assert await pages(deps, worse) == []  # a high alert is logged and counted only

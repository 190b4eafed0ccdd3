"""The alerts shell's orchestration of raising, inhibiting and releasing alerts
(services/alerts/alerting/raising.py ``raise_all``, services/alerts/commands.py ``act``)
against an in-memory repository and outbox (tests/unit/alerts/fakes.py): who gets paged,
which alert is only recorded, and what the rest of the system is told."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from prometheus_client import REGISTRY

from services.alerts import commands
from services.alerts.alerting.raising import raise_all
from services.alerts.domain import lifecycle, policy
from services.alerts.domain.model import NETWORK_SITE, OncallPolicy, Tier
from services.alerts.rows import AlertRow, ClaimedPage
from services.alerts.schemas import ActorIn
from tests.unit.alerts.builders import T0, at, recipient
from tests.unit.alerts.fakes import FakeAlertStore, FakeConn, fake_deps

PATIENT, SITE = "p-1", "site-a"
# tier 1: ann and bob; tier 2: carol; 900 s each
ON_CALL = OncallPolicy(
    (
        Tier((recipient("ann"), recipient("bob")), escalate_after_s=900),
        Tier((recipient("carol"),), escalate_after_s=900),
    )
)


def checkin(
    *, ideation: bool = False, item9: bool = False, worsening: bool = False, seconds: float = 0
) -> list[policy.Signal]:
    """The signals of a check-in, as the worker's reaction derives them."""
    return policy.from_checkin(
        suicidal_ideation=ideation,
        phq9_item9_positive=item9,
        worsening=worsening,
        worsening_reasons=("rise_from_lowest",) if worsening else (),
        at=at(seconds),
    )


class Shell:
    """One patient's alerts, raised and acted on through the shell."""

    def __init__(self, *, on_call: bool = True) -> None:
        self.store = FakeAlertStore()
        self.conn = FakeConn()
        self.deps = fake_deps(self.conn)
        if on_call:
            self.store.put_oncall(SITE, ON_CALL)

    async def signal(self, signals: list[policy.Signal], event_id: str = "e-1") -> None:
        await raise_all(
            self.conn.as_conn(), self.deps, PATIENT, SITE, signals, event_id, T0, store=self.store
        )

    async def step(self, alert: AlertRow, step: lifecycle.Step, by: str = "ann") -> None:
        await commands.act(self.deps, str(alert.alert_id), step, ActorIn(by=by), store=self.store)

    def alert(self, kind: str) -> AlertRow:
        (found,) = self.store.of_kind(PATIENT, kind)
        return found

    def paged(self, alert: AlertRow) -> list[tuple[int, str, str]]:
        """(tier, recipient, reason) of the alert's pages still to be delivered."""
        return [
            (p.tier, p.recipient, p.reason) for p in self.store.pages_of(alert.alert_id, "pending")
        ]

    def changes(self, alert: AlertRow) -> list[str]:
        return [
            e["change"]
            for e in self.conn.events("alert.changed")
            if e["alert_id"] == str(alert.alert_id)
        ]

    def raised(self, alert: AlertRow) -> dict[str, object]:
        (event,) = [
            e for e in self.conn.events("alert.raised") if e["alert_id"] == str(alert.alert_id)
        ]
        return event


async def test_a_critical_suicide_risk_pages_every_tier_1_recipient_at_once() -> None:
    shell = Shell()
    await shell.signal(checkin(ideation=True))

    risk = shell.alert("suicide_risk")
    assert (risk.severity, risk.status) == ("critical", "open")
    assert shell.paged(risk) == [(0, "ann", "initial"), (0, "bob", "initial")]
    assert shell.raised(risk)["pages_on_call"] is True
    # tier 2 is asked next if nobody acknowledges within tier 1's 900 s
    assert risk.next_check_at == at(900)
    assert shell.store.wakes >= 1


async def test_in_the_safety_lane_the_alerts_transaction_leases_its_pages_for_the_first_post() -> (
    None
):
    """services/alerts/safety.py: the lane's Deps carry ``first_attempt``; the pages are
    inserted already leased to it and handed over (after the commit) for their POST."""
    shell = Shell()
    handed: list[ClaimedPage] = []
    shell.deps = dataclasses.replace(
        shell.deps, first_attempt=handed.extend, first_attempt_lease=timedelta(seconds=20)
    )
    await shell.signal(checkin(ideation=True))

    risk = shell.alert("suicide_risk")
    assert [(p.tier, p.attempts) for p in handed] == [(0, 1), (0, 1)]
    assert {p.alert_id for p in handed} == {risk.alert_id}
    # the timers leave them to the lane until the lease ends, then retry what is left
    assert [(p.recipient, p.attempts, p.leased_until) for p in shell.store.pages] == [
        ("ann", 1, at(20)),
        ("bob", 1, at(20)),
    ]
    # a repeat of the signal queues no page, so nothing more is handed over
    await shell.signal(checkin(item9=True, seconds=60), event_id="e-2")
    assert len(handed) == 2


async def test_a_second_signal_of_the_patient_folds_into_the_open_alert_and_pages_nobody() -> None:
    shell = Shell()
    await shell.signal(checkin(ideation=True), event_id="e-1")
    await shell.signal(checkin(item9=True, seconds=60), event_id="e-2")

    risk = shell.alert("suicide_risk")  # one alert, not two
    assert risk.occurrences == 2
    assert risk.reasons == ["phq9_item9_positive", "suicidal_ideation"]
    assert risk.last_seen_at == at(60)
    assert len(shell.store.pages) == 2  # the first signal's tier-1 pages only
    assert len(shell.conn.events("alert.raised")) == 1
    assert shell.changes(risk) == ["repeated"]


async def test_a_lower_alert_under_an_open_critical_one_is_recorded_but_not_paged() -> None:
    shell = Shell()
    await shell.signal(checkin(ideation=True))
    await shell.signal(checkin(worsening=True, seconds=60), event_id="e-2")

    risk, worse = shell.alert("suicide_risk"), shell.alert("worsening")
    assert worse.status == "open"
    assert worse.inhibited_by == risk.alert_id
    assert shell.paged(worse) == []
    assert worse.next_check_at is None  # no escalation timer either
    raised = shell.raised(worse)
    assert raised["pages_on_call"] is False
    assert raised["inhibited_by"] == str(risk.alert_id)


async def test_a_new_critical_alert_holds_back_the_lower_alert_already_paging() -> None:
    shell = Shell()
    await shell.signal(checkin(worsening=True))
    worse = shell.alert("worsening")
    assert shell.paged(worse) == [(0, "ann", "initial"), (0, "bob", "initial")]

    await shell.signal(checkin(ideation=True, seconds=60), event_id="e-2")

    risk, worse = shell.alert("suicide_risk"), shell.alert("worsening")
    assert shell.paged(worse) == []  # its undelivered pages are cancelled
    assert worse.inhibited_by == risk.alert_id
    assert worse.next_check_at is None
    assert shell.changes(worse) == ["inhibited"]
    assert shell.paged(risk) == [(0, "ann", "initial"), (0, "bob", "initial")]


async def test_one_check_in_with_ideation_and_worsening_pages_only_the_critical_alert() -> None:
    shell = Shell()
    await shell.signal(checkin(ideation=True, worsening=True))

    risk, worse = shell.alert("suicide_risk"), shell.alert("worsening")
    assert len(shell.paged(risk)) == 2
    assert shell.paged(worse) == []
    assert worse.inhibited_by == risk.alert_id


def unpaged_total() -> float:
    return REGISTRY.get_sample_value("alerts_unpaged_no_oncall_total") or 0.0


async def test_nobody_on_call_records_the_alert_unpaged_and_counts_it() -> None:
    shell = Shell(on_call=False)
    before = unpaged_total()
    await shell.signal(checkin(ideation=True))

    risk = shell.alert("suicide_risk")
    assert risk.status == "open"
    assert risk.policy is None  # what a later on-call PUT adopts and pages
    assert shell.store.pages == []
    assert shell.raised(risk)["pages_on_call"] is False
    assert unpaged_total() == before + 1


def network_total() -> float:
    return REGISTRY.get_sample_value("alerts_paged_network_fallback_total") or 0.0


# the network ops on-call (PUT /v1/oncall/network): one tier, the ops lead
NETWORK_ON_CALL = OncallPolicy((Tier((recipient("ops"),), escalate_after_s=600),))


async def test_a_critical_alert_with_nobody_on_call_pages_the_network_ops_on_call() -> None:
    shell = Shell(on_call=False)
    shell.store.put_oncall(NETWORK_SITE, NETWORK_ON_CALL)
    before, unpaged = network_total(), unpaged_total()
    await shell.signal(checkin(ideation=True, worsening=True))

    risk, worse = shell.alert("suicide_risk"), shell.alert("worsening")
    assert shell.paged(risk) == [(0, "ops", "initial")]
    assert risk.policy_site == NETWORK_SITE  # what the site's own on-call PUT takes back
    assert risk.policy is not None
    assert risk.site_id == SITE
    assert risk.next_check_at == at(600)  # escalates on the network's tiers
    assert shell.raised(risk)["pages_on_call"] is True
    assert network_total() == before + 1
    assert unpaged_total() == unpaged
    # the worsening alert is held back by the critical one, as anywhere
    assert worse.inhibited_by == risk.alert_id
    assert shell.paged(worse) == []


async def test_a_high_alert_with_nobody_on_call_waits_for_the_site() -> None:
    shell = Shell(on_call=False)
    shell.store.put_oncall(NETWORK_SITE, NETWORK_ON_CALL)
    before = unpaged_total()
    await shell.signal(checkin(worsening=True))

    worse = shell.alert("worsening")
    assert shell.store.pages == []
    assert worse.policy is None
    assert worse.policy_site is None
    assert unpaged_total() == before + 1


async def test_a_site_with_on_call_never_pages_the_network() -> None:
    shell = Shell()
    shell.store.put_oncall(NETWORK_SITE, NETWORK_ON_CALL)
    await shell.signal(checkin(ideation=True))

    risk = shell.alert("suicide_risk")
    assert [r for _, r, _ in shell.paged(risk)] == ["ann", "bob"]
    assert risk.policy_site is None


async def test_a_warning_is_recorded_and_never_paged() -> None:
    shell = Shell()
    before = unpaged_total()
    await shell.signal(policy.from_deferral(("blood_pressure_high",), T0))

    deferred = shell.alert("dose_deferred")
    assert deferred.severity == "warning"
    assert shell.store.pages == []
    assert deferred.next_check_at is None
    assert shell.raised(deferred)["pages_on_call"] is False
    assert unpaged_total() == before


async def test_resolving_the_critical_alert_releases_the_one_it_held_back() -> None:
    shell = Shell()
    await shell.signal(checkin(ideation=True))
    await shell.signal(checkin(worsening=True, seconds=60), event_id="e-2")
    risk = shell.alert("suicide_risk")

    await shell.step(risk, lifecycle.Step.resolve)

    worse = shell.alert("worsening")
    assert shell.store.alerts[risk.alert_id].status == "resolved"
    assert shell.paged(shell.store.alerts[risk.alert_id]) == []  # its own pages stop
    assert worse.inhibited_by is None
    assert shell.paged(worse) == [(0, "ann", "initial"), (0, "bob", "initial")]
    assert worse.next_check_at == at(900)
    assert shell.changes(worse) == ["released"]


async def test_acknowledging_the_critical_alert_keeps_the_lower_one_held() -> None:
    shell = Shell()
    await shell.signal(checkin(ideation=True))
    await shell.signal(checkin(worsening=True, seconds=60), event_id="e-2")
    risk = shell.alert("suicide_risk")

    await shell.step(risk, lifecycle.Step.acknowledge)

    worse = shell.alert("worsening")
    assert shell.store.alerts[risk.alert_id].status == "acknowledged"
    assert worse.inhibited_by == risk.alert_id
    assert shell.paged(worse) == []
    assert shell.changes(worse) == []


async def test_resolving_a_lower_alert_releases_nothing() -> None:
    shell = Shell()
    await shell.signal(checkin(worsening=True))
    await shell.signal(policy.from_misses(3, 2, at(30)), event_id="e-2")
    worse = shell.alert("worsening")

    await shell.step(worse, lifecycle.Step.resolve)

    missed = shell.alert("missed_checkins")  # paged on its own, untouched by the resolve
    assert missed.inhibited_by is None
    assert shell.paged(missed) == [(0, "ann", "initial"), (0, "bob", "initial")]
    assert shell.changes(missed) == []

"""The demo run: every flow at once on the moving clock, and what it did."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from tools.demo.api import Api, Clock, Settle, Urls, check_reachable, gather_all
from tools.demo.flows import (
    Outcome,
    Tally,
    acknowledge_one,
    act,
    check_in_rounds,
    checkin_steps,
    live_through,
    patient_flow,
    run_alerts,
    time_of,
    wait_for_alerts,
)
from tools.demo.network import (
    CONCURRENCY,
    IN_CARE,
    MONITORED,
    PAGE_RECEIVER,
    SITES,
    DemoError,
    Patient,
    Stage,
    expected_decision,
    patients_for,
)

# --- the run -------------------------------------------------------------------------------


SEVERITIES = ("critical", "high", "warning")


@dataclass
class Summary:
    run: str
    seconds: float
    sites: list[dict[str, Any]]
    outcomes: list[Outcome]
    tally: Tally
    appointments: Counter[str]
    alerts: list[dict[str, Any]]
    acknowledged: dict[str, Any] | None
    dashboard_url: str
    clock_from: datetime | None = None
    clock_to: datetime | None = None

    @property
    def decisions(self) -> Counter[str]:
        return Counter(o.decision for o in self.outcomes)

    def patients(self, *stages: Stage) -> list[str]:
        return [o.patient.patient_id for o in self.outcomes if o.patient.stage in stages]

    def _count(self, site: str | None, sev: str, status: str) -> int:
        """This run's alerts of a severity in a status (at one site, or everywhere)."""
        return sum(
            a["severity"] == sev and a["status"] == status and site in (None, a["site_id"])
            for a in self.alerts
        )

    def _site_table(self) -> list[str]:
        table = [
            f"    {'site':<14} {'time zone':<17} {'rooms':>5} {'ther.':>5} {'pts':>4}"
            "  open: crit high warn   ack: crit high warn"
        ]
        for s in self.sites:
            site = s["site_id"]
            pts = sum(o.patient.site.site_id == site for o in self.outcomes)
            opened = " ".join(f"{self._count(site, sev, 'open'):>4}" for sev in SEVERITIES)
            acked = " ".join(f"{self._count(site, sev, 'acknowledged'):>4}" for sev in SEVERITIES)
            table.append(
                f"    {site:<14} {s['timezone']:<17} {s['treatment_rooms']:>5} "
                f"{s['therapists']:>5} {pts:>4}        {opened}        {acked}"
            )
        return table

    def _by_status(self) -> str:
        parts = []
        for status in ("open", "acknowledged", "resolved"):
            counts = [(sev, self._count(None, sev, status)) for sev in SEVERITIES]
            if any(c for _, c in counts):
                parts.append(f"{status} " + ", ".join(f"{sev} {c}" for sev, c in counts if c))
        return "; ".join(parts)

    def _surprises(self) -> list[str]:
        surprises = [
            f"  note: {o.patient.patient_id} ({o.patient.stage}) was {o.decision} "
            f"({', '.join(o.reasons) or 'no reasons'}), not "
            f"{expected_decision(o.patient.stage)}: is the clinic configured differently?"
            for o in self.outcomes
            if o.decision != expected_decision(o.patient.stage)
        ]
        waitlisted = Counter(o.waitlisted for o in self.outcomes if o.waitlisted)
        if waitlisted:
            surprises += [
                f"  note: {sum(waitlisted.values())} patients waitlisted by scheduling ("
                + ", ".join(f"{k} {v}" for k, v in waitlisted.items())
                + "):",
                "        the demo sites fill up after about ten runs; a fresh stack has room",
            ]
        return surprises

    def lines(self) -> list[str]:
        d = self.decisions
        approved = sum(o.approved for o in self.outcomes)
        n = len(self.outcomes)
        t = self.tally
        appts = self.appointments
        statuses = ("proposed", "confirmed", "completed", "no_show", "cancelled")
        table, by_status, surprises = self._site_table(), self._by_status(), self._surprises()
        kinds = Counter(a["kind"] for a in self.alerts)
        monitored = sum(1 for o in self.outcomes if o.checkins)
        ack = self.acknowledged
        return [
            "",
            f"Interval demo, run {self.run}: loaded in {self.seconds:.1f} s",
            f"  sites        {len(self.sites)}, each with two on-call tiers "
            f"({PAGE_RECEIVER}/page, then /page2 after 15 min)",
            *table,
            f"  patients     {n} (demo-{self.run}-01..{n:02d}): eligible {d['eligible']}, "
            f"needs_review {d['needs_review']} ({approved} approved), "
            f"ineligible {d['ineligible']}",
            f"  appointments {sum(appts.values())}: "
            + ", ".join(f"{k} {appts[k]}" for k in statuses if appts[k]),
            f"               this run: confirmed {t.confirmed}, completed {t.completed}, "
            f"no-shows {t.no_shows}, doses deferred for blood pressure {t.deferred}",
            f"  check-ins    {t.checkins} from {monitored} monitored patients",
            f"  alerts       {len(self.alerts)} (this run): "
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
            f"               {by_status}",
            (
                f"  acknowledged {ack['kind']} ({ack['severity']}) of {ack['patient_id']} "
                f"at {ack['site_id']}, by {ack['acknowledged_by']}"
                if ack
                else "  acknowledged nothing (no open alert)"
            ),
            (
                f"  clock        moved {_span(self.clock_to - self.clock_from)} forward, to "
                f"{self.clock_to:%Y-%m-%d %H:%M} UTC (GET /v1/dev/clock)"
                if self.clock_from and self.clock_to
                else "  clock        not moved"
            ),
            f"  dashboard    {self.dashboard_url}",
            "  pages        .venv/bin/python -m tools.page_receiver --port 9900  (to watch them)",
            *surprises,
        ]


def _span(d: timedelta) -> str:
    hours = round(d.total_seconds() / 3600)
    return f"{hours // 24} days {hours % 24} h"


def _default_url(env: str, port: int) -> str:
    return f"http://127.0.0.1:{os.environ.get(env) or port}"


def dashboard_url() -> str:
    return _default_url("DASHBOARD_PORT", 8000) + "/"


async def main(
    intake_url: str,
    scheduling_url: str,
    alerts_url: str,
    *,
    run: str | None = None,
    echo: Callable[[str], object] = print,
) -> Summary:
    """Load one batch of demo data through the public APIs; returns what it did."""
    started = time.monotonic()
    run = run or secrets.token_hex(3)
    urls = Urls(intake_url.rstrip("/"), scheduling_url.rstrip("/"), alerts_url.rstrip("/"))
    limits = httpx.Limits(max_connections=3 * CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        await check_reachable(client, urls)
        api = Api(client, urls)
        clock = Clock(api)
        await clock.now()  # before anything is written: a stack without the clock is refused
        echo(f"demo run {run}: {len(SITES)} sites, loading patients...")

        await _put_sites(api)
        now = await clock.now()
        tally = Tally()
        gate = asyncio.Semaphore(CONCURRENCY)
        everyone = patients_for(run)
        in_care, now = await _in_care(api, clock, run, tally, now, gate, everyone)
        # the others have their intake today: their sessions lie ahead
        rest: list[Outcome] = await gather_all(
            [
                patient_flow(api, p, run, tally, now, gate)
                for p in everyone
                if p.stage not in IN_CARE
            ]
        )
        by_id = {o.patient.patient_id: o for o in (*in_care, *rest)}
        outcomes = [by_id[p.patient_id] for p in everyone]
        alerts = await wait_for_alerts(api, run, outcomes)
        acked = await acknowledge_one(api, alerts)
        alerts = await run_alerts(api, run)

        appointments, sites = await _where_they_stand(api, outcomes)
    summary = Summary(
        run=run,
        seconds=time.monotonic() - started,
        sites=sites,
        outcomes=outcomes,
        tally=tally,
        appointments=appointments,
        alerts=alerts,
        acknowledged=acked,
        dashboard_url=dashboard_url(),
        clock_from=clock.started,
        clock_to=now,
    )
    for line in summary.lines():
        echo(line)
    return summary


async def _put_sites(api: Api) -> None:
    await gather_all(
        [api.scheduling("PUT", f"/v1/sites/{s.site_id}", json=s.body()) for s in SITES]
        + [api.alerts("PUT", f"/v1/sites/{s.site_id}/oncall", json=s.oncall_body()) for s in SITES]
    )


async def _in_care(
    api: Api,
    clock: Clock,
    run: str,
    tally: Tally,
    now: datetime,
    gate: asyncio.Semaphore,
    everyone: list[Patient],
) -> tuple[list[Outcome], datetime]:
    """The patients in care: intake now, then the days pass (the clock moves) through
    their sessions and check-ins; their next dose confirmed when it is still ahead.
    Their outcomes, and the stack's time at the end."""
    settle = Settle(api)
    in_care: list[Outcome] = await gather_all(
        [
            patient_flow(api, p, run, tally, now, gate, settle)
            for p in everyone
            if p.stage in IN_CARE
        ]
    )
    rounds = check_in_rounds(now, in_care)
    steps = [s for o in in_care for s in o.steps]
    for o in in_care:
        if o.patient.stage in MONITORED and o.steps:
            steps += checkin_steps(api, o, tally, rounds, settle)
    now = await live_through(clock, steps, gate, settle)
    for o in in_care:  # the next dose, when it is still ahead
        if o.next_dose is not None and time_of(o.next_dose, "start") > now:
            await act(api, o.next_dose, "confirm")
            tally.confirmed += 1
    return in_care, now


async def _where_they_stand(
    api: Api, outcomes: list[Outcome]
) -> tuple[Counter[str], list[dict[str, Any]]]:
    """The scheduled patients' appointments by status, and the sites as stored."""
    scheduled = [o.patient.patient_id for o in outcomes if o.scheduled]
    lists: list[list[dict[str, Any]]] = await gather_all(
        [api.scheduling("GET", f"/v1/patients/{pid}/appointments") for pid in scheduled]
    )
    sites: list[dict[str, Any]] = await gather_all(
        [api.scheduling("GET", f"/v1/sites/{s.site_id}") for s in SITES]
    )
    return Counter(a["status"] for appts in lists for a in appts), sites


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo",
        description="Load a small living demo network through the public APIs.",
    )
    parser.add_argument("--intake", default=_default_url("INTAKE_PORT", 8001))
    parser.add_argument("--scheduling", default=_default_url("SCHEDULING_PORT", 8002))
    parser.add_argument("--alerts", default=_default_url("ALERTS_PORT", 8003))
    args = parser.parse_args(argv)
    try:
        asyncio.run(main(args.intake, args.scheduling, args.alerts))
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0

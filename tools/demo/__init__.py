"""Load a small, living demo network into a running stack, through the public HTTP APIs only.

    make demo
    .venv/bin/python -m tools.demo [--intake URL] [--scheduling URL] [--alerts URL]

It creates three sites in three time zones (opening hours, rooms, therapists, and a
two-tier on-call policy paging ``http://127.0.0.1:9900/page`` and ``/page2``: watch the
pages with ``.venv/bin/python -m tools.page_receiver --port 9900``), then 40 patients
at different stages of their care:

- most are eligible and get an induction series proposed by the scheduling worker;
  some are left proposed, some have their first session(s) confirmed, others have
  dosing and integration sessions completed (which starts check-in monitoring) and
  send between-session check-ins: improving (response, remission), worsening (a
  ``worsening`` alert) or reporting suicidal ideation (a critical ``suicide_risk``);
- two no-shows and one dose deferred for high pre-dose blood pressure (warnings);
- a few ``needs_review`` intakes (PHQ-9 item 9 positive, which also raises a critical
  alert; C-SSRS moderate; high blood pressure; a relative contraindication that a
  clinician approves) and a few ``ineligible`` ones (contraindications, not TRD).

It needs the stack's dev clock (``DEV_CLOCK=1``, on by default for ``make up``; README
"Moving time: the dev clock") and moves it forward, about a week: the patients in care have
their intake now, then days pass; each session is completed (or missed) once it has
really ended, a pre-dose blood pressure is taken on the session's day, and every
check-in is stamped with the stack's time, one every 20 hours from the first completed
dose (the production cadence is a day, so nobody's check-in is missed). The patients
not yet in care have their intake at the end, so their sessions lie ahead.

One alert is acknowledged, so the board shows open and acknowledged alerts. Ids are
unique per run (patients ``demo-<run>-NN``, random ``run``): a second run adds a second
batch of patients to the same three sites. Nothing here touches the database or Kafka.
"""

from tools.demo.network import MONITORED, SITES, DemoError, expected_decision
from tools.demo.run import cli, dashboard_url, main

__all__ = ["MONITORED", "SITES", "DemoError", "cli", "dashboard_url", "expected_decision", "main"]

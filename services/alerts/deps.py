"""``Deps``: what a command, reaction or timer of the alerts service needs: the pool, the
clock, the policies (services/alerts/domain/) and, in the API only, the notes' cipher.
Built from the settings by services/alerts/alerting/__init__.py ``make_deps``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from services.alerts.domain.monitoring import MonitoringRule
from services.alerts.rows import ClaimedPage
from shared.crypto import PhiCipher


@dataclass(frozen=True)
class Deps:
    pool: asyncpg.Pool
    clock: Callable[[], datetime]
    # check-in monitoring (docs/domain.md, "Monitoring between sessions")
    monitoring: MonitoringRule
    # a tier's escalate_after_s when the on-call PUT leaves it out (ESCALATE_AFTER_S)
    escalate_after_s: int
    # a critical alert acknowledged but not resolved re-pages after this
    ack_repage_after: timedelta
    # the hosts a webhook may point at (empty: any; PAGE_ALLOWED_HOSTS)
    allowed_hosts: tuple[str, ...]
    # something due sooner than this wakes the timers (NOTIFY; TIMER_IDLE_POLL_S)
    timer_idle_poll_s: float
    # due rows taken per timer transaction (TIMER_BATCH)
    timer_batch: int
    # acknowledgement links start with it (ALERTS_PUBLIC_URL)
    public_url: str = "http://127.0.0.1:8003"
    # checks staff SMS replies' X-Twilio-Signature (SMS_AUTH_TOKEN); empty: replies refused
    sms_auth_token: str = field(default="", repr=False)
    # the API's: notes are encrypted with it before they are stored (services/alerts/
    # alerting/notes.py); the worker and the timers never touch a note and have none
    cipher: PhiCipher | None = None
    # the safety lane's (services/alerts/safety.py): pages queued by its transaction are
    # inserted leased to it until ``first_attempt_lease`` from their creation, and handed
    # to ``first_attempt`` once the transaction committed, for their first POST at once
    first_attempt: Callable[[list[ClaimedPage]], None] | None = None
    first_attempt_lease: timedelta = timedelta(seconds=20)

    def notes_cipher(self) -> PhiCipher:
        if self.cipher is None:
            raise RuntimeError("this alerts process has no PHI cipher: notes are the API's")
        return self.cipher

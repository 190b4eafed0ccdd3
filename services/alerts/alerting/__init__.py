"""Use cases shared by the commands, the reactions and the process roles of the alerts
service: raising and escalating alerts (raising.py, over the repository calls named in
store.py), delivering pages (delivery.py); and ``make_deps``, the settings turned into
``Deps`` (services/alerts/deps.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.alerts.deps import Deps
from services.alerts.settings import AlertsSettings
from shared.crypto import PhiCipher


def make_deps(
    settings: AlertsSettings,
    pool: asyncpg.Pool,
    clock: Callable[[], datetime],
    cipher: PhiCipher | None = None,
) -> Deps:
    return Deps(
        pool=pool,
        clock=clock,
        monitoring=settings.monitoring,
        escalate_after_s=settings.escalate_after_s,
        ack_repage_after=settings.ack_repage_after,
        allowed_hosts=settings.allowed_hosts,
        timer_idle_poll_s=settings.timer_idle_poll_s,
        timer_batch=settings.timer_batch,
        public_url=settings.public_url,
        sms_auth_token=settings.sms_auth_token.get_secret_value(),
        cipher=cipher,
    )

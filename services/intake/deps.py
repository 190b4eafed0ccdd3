"""What intake's commands and queries need: built once by services/intake/app.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.intake.domain.eligibility import EligibilityPolicy
from services.intake.domain.mbc import MbcPolicy
from shared.crypto import PhiCipher


@dataclass(frozen=True)
class Deps:
    pool: asyncpg.Pool
    eligibility: EligibilityPolicy
    mbc: MbcPolicy
    clock: Callable[[], datetime]
    cipher: PhiCipher  # PHI at rest: every PHI value is encrypted with it before it is stored
    # The safety lane's own connections (docs/domain.md, "Safety signals first"): a
    # check-in or intake that signals suicide risk never waits behind routine requests
    # for a connection. Opened at the app's start (services/intake/app.py); None before.
    safety_pool: asyncpg.Pool | None = None

    def pool_for(self, urgent: bool) -> asyncpg.Pool:
        return self.safety_pool if urgent and self.safety_pool is not None else self.pool

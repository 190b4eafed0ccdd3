"""Intake configuration, read once from the environment."""

from __future__ import annotations

from pydantic import Field

from services.intake.domain.eligibility import EligibilityPolicy
from services.intake.domain.mbc import MbcPolicy
from shared.crypto import PhiKeySettings
from shared.events import service_source

SCHEMA = "intake"
SOURCE = service_source("intake")  # urn:interval:intake (docs/events.md)


class IntakeSettings(PhiKeySettings):
    """PHI at rest (shared/crypto.py): PHI_KEYS / PHI_KEYS_FILE, PHI_BATCH_SIZE."""

    intake_port: int = Field(default=8001, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # Clinical thresholds a network may change: each default is the policy's own
    # (services/intake/domain/eligibility.py, mbc.py; docs/domain.md, "Intake screen").
    eligibility_min_age: int = EligibilityPolicy.min_age
    eligibility_min_phq9_total: int = EligibilityPolicy.min_phq9_total
    eligibility_min_failed_trials: int = EligibilityPolicy.min_failed_trials
    eligibility_min_trial_weeks: float = EligibilityPolicy.min_trial_weeks
    review_systolic: int = EligibilityPolicy.review_systolic
    review_diastolic: int = EligibilityPolicy.review_diastolic
    review_heart_rate_above: int = EligibilityPolicy.review_heart_rate_above
    mbc_worsening_rise: int = MbcPolicy.worsening_rise
    mbc_relapse_total: int = MbcPolicy.relapse_total

    # The API's pool opens whole at start (DB_POOL_MAX connections, each session warmed:
    # services/intake/app.py) unless DB_POOL_MIN says otherwise: patients' requests come
    # in bursts, and a burst that needed new connections waited 40-160 ms for them (each
    # session set up and warmed) where connections kept open answer in 3; one above the
    # minimum closes again after 5 idle minutes, and the next burst would wait again
    # (docs/performance.md, "Cold start").
    pool_opened_whole = True

    # The API is where a suicide-risk signal enters: it raises its own CPU priority at
    # start to this niceness where the system allows it (shared/priority.py
    # lead_the_cpu; 0 leaves it as started). On a saturated machine it otherwise gets one
    # share among PostgreSQL's many backends, and new connections waited seconds to be
    # accepted (docs/performance.md, "Two minutes at 100%").
    safety_entry_nice: int = Field(default=-5, ge=-20, le=0)

    # Connections kept for the safety lane alone (services/intake/deps.py): a
    # check-in or intake signalling suicide risk never waits for one behind routine work.
    safety_db_pool_size: int = Field(default=2, ge=1)

    # The pipeline heartbeat (services/intake/heartbeat.py): a beat through the safety
    # lane this often, from the relay process; 0 turns it off.
    pipeline_heartbeat_interval_s: float = Field(default=5.0, ge=0)

    def eligibility_policy(self) -> EligibilityPolicy:
        return EligibilityPolicy(
            min_age=self.eligibility_min_age,
            min_phq9_total=self.eligibility_min_phq9_total,
            min_failed_trials=self.eligibility_min_failed_trials,
            min_trial_weeks=self.eligibility_min_trial_weeks,
            review_systolic=self.review_systolic,
            review_diastolic=self.review_diastolic,
            review_heart_rate_above=self.review_heart_rate_above,
        )

    def mbc_policy(self) -> MbcPolicy:
        return MbcPolicy(
            worsening_rise=self.mbc_worsening_rise, relapse_total=self.mbc_relapse_total
        )

"""Intake configuration, read once from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from services.intake.crypto import PhiCipher, load_cipher
from services.intake.domain.eligibility import EligibilityPolicy
from services.intake.domain.mbc import MbcPolicy
from shared.settings import CommonSettings

SCHEMA = "intake"
SOURCE = "interval/intake"
# Where local development keeps its PHI key (created by deploy/bin/setup.sh, never by
# the service): the default of PHI_KEYS_FILE.
DEV_PHI_KEYS_FILE = Path(__file__).resolve().parents[2] / ".state" / "phi.key"


class IntakeSettings(CommonSettings):
    intake_port: int = Field(default=8001, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # PHI at rest (services/intake/crypto.py): Fernet keys, newest first; the first
    # encrypts, all decrypt. PHI_KEYS (comma-separated) wins over PHI_KEYS_FILE (one a line).
    phi_keys: SecretStr | None = None
    phi_keys_file: Path = DEV_PHI_KEYS_FILE
    # rows per transaction when PHI is encrypted at start or re-encrypted by rotate-phi-keys
    phi_batch_size: int = Field(default=500, ge=1, le=100_000)

    # Protocol choices a network may change (DOMAIN.md defaults).
    eligibility_min_age: int = 18
    eligibility_min_phq9_total: int = 10
    eligibility_min_failed_trials: int = 2
    eligibility_min_trial_weeks: float = 6
    review_systolic: int = 160
    review_diastolic: int = 100
    review_heart_rate_above: int = 110
    mbc_worsening_rise: int = 5
    mbc_relapse_total: int = 10

    def phi_cipher(self) -> PhiCipher:
        """The PHI cipher; PhiKeyError when no usable key is configured."""
        return load_cipher(self.phi_keys, self.phi_keys_file)

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

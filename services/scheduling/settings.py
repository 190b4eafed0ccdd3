"""Scheduling configuration, read once from the environment."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from services.scheduling.domain.maintenance import DosingVitalsPolicy, MaintenancePolicy
from shared.events import service_source
from shared.settings import CommonSettings

SCHEMA = "scheduling"
SOURCE = service_source("scheduling")  # urn:interval:scheduling (docs/events.md)


class SchedulingSettings(CommonSettings):
    scheduling_consumer_group: str = "scheduling"
    scheduling_port: int = Field(default=8002, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # How far ahead a series may be placed before the patient is waitlisted.
    scheduling_horizon_days: int = Field(default=90, ge=7, le=365)
    # How long a preference is honoured at the cost of a later start.
    preference_patience_days: int = Field(default=14, ge=0, le=90)
    # Attempts to re-plan after losing a race for a slot to another worker.
    replan_attempts: int = Field(default=10, ge=1)
    # The worker retries every site's waitlist this often (besides on each release).
    waitlist_retry_interval_s: float = Field(default=60.0, gt=0)
    # Waitlisted patients retried per site when capacity frees up.
    waitlist_retry_batch: int = Field(default=20, ge=1)
    # The maintenance interval itself is a per-site protocol number (domain/model.py).
    # How long after its due date a maintenance session may still be placed:
    # (each default is the policy's own: services/scheduling/domain/maintenance.py)
    maintenance_slack_days: int = Field(default=MaintenancePolicy.slack.days, ge=1, le=90)
    # A worsening patient is seen within this many days (docs/domain.md, "Maintenance"):
    maintenance_worsening_within_days: int = Field(
        default=MaintenancePolicy.worsening_within.days, ge=1
    )
    defer_systolic: int = DosingVitalsPolicy.defer_systolic
    defer_diastolic: int = DosingVitalsPolicy.defer_diastolic

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.scheduling_horizon_days)

    @property
    def pref_patience(self) -> timedelta:
        return timedelta(days=self.preference_patience_days)

    def maintenance_policy(self) -> MaintenancePolicy:
        return MaintenancePolicy(
            worsening_within=timedelta(days=self.maintenance_worsening_within_days),
            slack=timedelta(days=self.maintenance_slack_days),
        )

    def vitals_policy(self) -> DosingVitalsPolicy:
        return DosingVitalsPolicy(
            defer_systolic=self.defer_systolic, defer_diastolic=self.defer_diastolic
        )

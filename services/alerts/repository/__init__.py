"""All SQL of the alerts service, by table: on-call (oncall.py), patients (patients.py),
alerts and signal claims (alerts.py), pages and their attempts (pages.py), the timers'
wake-up and the watchdog's marks (pipeline.py), notes at rest (notes.py). Plain values
in, frozen rows (services/alerts/rows.py) out.

Lock order, everywhere: patient row, then alerts, then pages.
"""

from __future__ import annotations

from services.alerts.repository.alerts import (
    ack_times,
    claim_signal,
    counts,
    due_alerts,
    get_alert,
    insert_alert,
    list_alerts,
    lock_alert,
    lock_due_alert,
    orphan_alerts,
    repeat_alert,
    unresolved_alert,
    unresolved_alerts,
    update_alert,
)
from services.alerts.repository.notes import (
    count_legacy_notes,
    delete_legacy_notes,
    fill_notes,
    has_legacy_notes,
    lock_legacy_notes,
    newest_note,
)
from services.alerts.repository.oncall import (
    get_oncall,
    put_oncall,
)
from services.alerts.repository.pages import (
    attempts_of,
    cancel_pending_pages,
    claim_pages,
    claim_patient_pages,
    insert_attempted_pages,
    insert_pages,
    pages_of,
    record_attempt,
    refuse_page,
)
from services.alerts.repository.patients import (
    due_patients,
    get_patient,
    lock_patient,
    monitor_args,
    monitoring_counts,
    save_monitor,
    save_monitors,
)
from services.alerts.repository.pipeline import (
    WAKE_CHANNEL,
    next_due,
    outbox_age,
    prune_heartbeats,
    record_heartbeat,
    stage_ages,
    touch_progress,
    wake_timers,
)

__all__ = [
    "WAKE_CHANNEL",
    "ack_times",
    "attempts_of",
    "cancel_pending_pages",
    "claim_pages",
    "claim_patient_pages",
    "claim_signal",
    "count_legacy_notes",
    "counts",
    "delete_legacy_notes",
    "due_alerts",
    "due_patients",
    "fill_notes",
    "get_alert",
    "get_oncall",
    "get_patient",
    "has_legacy_notes",
    "insert_alert",
    "insert_attempted_pages",
    "insert_pages",
    "list_alerts",
    "lock_alert",
    "lock_due_alert",
    "lock_legacy_notes",
    "lock_patient",
    "monitor_args",
    "monitoring_counts",
    "newest_note",
    "next_due",
    "orphan_alerts",
    "outbox_age",
    "pages_of",
    "prune_heartbeats",
    "put_oncall",
    "record_attempt",
    "record_heartbeat",
    "refuse_page",
    "repeat_alert",
    "save_monitor",
    "save_monitors",
    "stage_ages",
    "touch_progress",
    "unresolved_alert",
    "unresolved_alerts",
    "update_alert",
    "wake_timers",
]

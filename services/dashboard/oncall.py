"""The on-call page (docs/domain.md "On-call people"): each site's tiers resolved to people
now, coverage gaps, each schedule's next handoffs and each clinician's contact methods and
rules, shaped from the alerts API; and the page's forms read back into the API's bodies.

Pure: no I/O. A form that cannot be read gives errors in the API's own shape
(``[{field, message}]``), shown beside the form, and nothing is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.validation import ID_MAX_LENGTH, ID_PATTERN

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Errors = list[dict[str, str]]


def is_id(text: str) -> bool:
    """An id the services accept (shared/validation.py): never a path of its own."""
    return len(text) <= ID_MAX_LENGTH and re.fullmatch(ID_PATTERN, text) is not None


def site_ids(text: str | None) -> list[str]:
    """``?sites=a,b``: the ids in it (at most 50), anything else dropped."""
    return [s for s in (p.strip() for p in (text or "").split(",")) if is_id(s)][:50]


# --- showing ------------------------------------------------------------------------------


def zone(name: str | None) -> ZoneInfo:
    """The named zone, UTC when unknown (a site scheduling does not know)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local(at: str | datetime, tz: ZoneInfo) -> str:
    """An instant as ``Mon 07 Dec 09:00`` in ``tz``."""
    t = datetime.fromisoformat(at) if isinstance(at, str) else at
    return t.astimezone(tz).strftime("%a %d %b %H:%M")


def window(start: str, end: str, tz: ZoneInfo) -> str:
    return f"{local(start, tz)} to {local(end, tz)}"


def name_of(names: Mapping[str, str], clinician_id: str) -> str:
    return names.get(clinician_id, clinician_id)


@dataclass
class TierView:
    number: int  # 1 = first tier
    targets: list[str]  # "schedule Psychiatry", "Dr. Rivera"
    on_now: list[dict[str, Any]]  # {clinician_id, name, reachable}
    recipients: list[str]  # the static webhook recipients' names
    gaps: list[str] = field(default_factory=list)  # "Mon 07 Dec 09:00 to Thu 10 Dec 09:00"

    @property
    def nobody(self) -> bool:
        return not self.on_now and not self.recipients


def site_tiers(
    policy: Mapping[str, Any],
    now: Mapping[str, Any],
    gaps: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    schedule_names: Mapping[str, str],
    tz: ZoneInfo,
) -> list[TierView]:
    """A site's tiers: their targets by name, who is on call now, and their gaps in ``tz``."""
    out = []
    now_tiers = now.get("tiers", [])
    for i, tier in enumerate(policy.get("tiers", [])):
        targets = [
            f"schedule {schedule_names.get(t['schedule_id'], t['schedule_id'])}"
            if "schedule_id" in t
            else name_of(names, t["clinician_id"])
            for t in tier.get("targets", [])
        ]
        resolved = now_tiers[i] if i < len(now_tiers) else {}
        reachable = set(resolved.get("reachable", []))
        on_now = [
            {"clinician_id": c, "name": name_of(names, c), "reachable": c in reachable}
            for c in resolved.get("clinician_ids", [])
        ]
        view = TierView(
            number=i + 1,
            targets=targets,
            on_now=on_now,
            recipients=[r["name"] for r in tier.get("recipients", [])],
        )
        view.gaps = [window(g["from"], g["to"], tz) for g in gaps if g["tier"] == i + 1]
        out.append(view)
    return out


def handoff_lines(
    handoffs: Sequence[Mapping[str, Any]], names: Mapping[str, str], tz: ZoneInfo
) -> list[dict[str, str]]:
    """Each handoff as ``{at, before, after}`` in words, in the schedule's zone."""

    def who(ids: Sequence[str]) -> str:
        return ", ".join(name_of(names, c) for c in ids) or "nobody"

    return [
        {"at": local(h["at"], tz), "before": who(h["before"]), "after": who(h["after"])}
        for h in handoffs
    ]


def rotation_line(r: Mapping[str, Any], names: Mapping[str, str]) -> str:
    who = ", ".join(name_of(names, c) for c in r["participants"])
    when = f"{r['handoff_weekday']} {r['handoff']}" if r["shift"] == "weekly" else r["handoff"]
    return f"{r['shift']} at {when} from {r['start']}: {who}"


def rule_lines(clinician: Mapping[str, Any]) -> list[str]:
    """The clinician's notification rules in words: ``sms (cell) at 0 s``."""
    types = {m["id"]: m["type"] for m in clinician.get("contact_methods", [])}
    return [
        f"{types.get(r['contact_method'], '?')} ({r['contact_method']}) at {r['after_s']} s"
        for r in clinician.get("notification_rules", [])
    ]


# --- the forms, prefilled -----------------------------------------------------------------


def methods_text(clinician: Mapping[str, Any]) -> str:
    return "\n".join(
        f"{m['id']} {m['type']} {m['address']}" for m in clinician.get("contact_methods", [])
    )


def rules_text(clinician: Mapping[str, Any]) -> str:
    return "\n".join(
        f"{r['contact_method']} {r['after_s']}" for r in clinician.get("notification_rules", [])
    )


def rotations_text(schedule: Mapping[str, Any]) -> str:
    return "\n".join(
        f"{','.join(r['participants'])} {r['shift']} {r['handoff']} {r['handoff_weekday']} "
        f"{r['start']}"
        for r in schedule.get("rotations", [])
    )


# --- the forms, read ----------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def clinician_body(form: Mapping[str, str]) -> tuple[dict[str, Any], Errors]:
    """``PUT /v1/clinicians/{id}``'s body from the form: contact methods one a line
    (``id type address``), rules one a line (``method seconds``), quiet hours optional."""
    errors: Errors = []
    methods = []
    for i, line in enumerate(_lines(form.get("contact_methods", ""))):
        parts = line.split(None, 2)
        if len(parts) != 3:
            errors.append({"field": f"contact_methods[{i}]", "message": "write `id type address`"})
            continue
        methods.append({"id": parts[0], "type": parts[1], "address": parts[2]})
    rules: list[dict[str, Any]] = []
    for i, line in enumerate(_lines(form.get("notification_rules", ""))):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            errors.append(
                {"field": f"notification_rules[{i}]", "message": "write `method seconds`"}
            )
            continue
        rules.append({"contact_method": parts[0], "after_s": int(parts[1])})
    start, end = form.get("quiet_start", "").strip(), form.get("quiet_end", "").strip()
    if bool(start) != bool(end):
        errors.append({"field": "quiet_hours", "message": "give both start and end, or neither"})
    body = {
        "name": form.get("name", "").strip(),
        "timezone": form.get("timezone", "").strip(),
        "contact_methods": methods,
        "notification_rules": rules,
        "quiet_hours": {"start": start, "end": end} if start and end else None,
    }
    return body, errors


def schedule_body(form: Mapping[str, str]) -> tuple[dict[str, Any], Errors]:
    """``PUT /v1/schedules/{id}``'s body: rotations one a line,
    ``participant,participant daily|weekly HH:MM [weekday] YYYY-MM-DD``."""
    errors: Errors = []
    rotations = []
    for i, line in enumerate(_lines(form.get("rotations", ""))):
        parts = line.split()
        if len(parts) == 4:
            parts.insert(3, "mon")
        if len(parts) != 5 or parts[3] not in WEEKDAYS:
            errors.append(
                {
                    "field": f"rotations[{i}]",
                    "message": "write `a,b daily|weekly HH:MM [mon..sun] YYYY-MM-DD`",
                }
            )
            continue
        rotations.append(
            {
                "participants": [p for p in parts[0].split(",") if p],
                "shift": parts[1],
                "handoff": parts[2],
                "handoff_weekday": parts[3],
                "start": parts[4],
            }
        )
    body = {
        "name": form.get("name", "").strip(),
        "timezone": form.get("timezone", "").strip(),
        "rotations": rotations,
    }
    return body, errors


def _instant(text: str, tz: ZoneInfo) -> datetime | None:
    """A browser's ``datetime-local`` (``2026-12-07T09:00``) read in ``tz``."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return t.replace(tzinfo=tz) if t.tzinfo is None else t


def override_body(form: Mapping[str, str], timezone: str) -> tuple[dict[str, Any], Errors]:
    """``POST /v1/schedules/{id}/overrides``'s body; the window's local times are read in
    the schedule's zone (the form says which)."""
    tz = zone(timezone)
    errors: Errors = []
    start = _instant(form.get("from", ""), tz)
    end = _instant(form.get("to", ""), tz)
    if start is None:
        errors.append({"field": "from", "message": "a date and time"})
    if end is None:
        errors.append({"field": "to", "message": "a date and time"})
    replaces = form.get("replaces", "").strip() or None
    body = {
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
        "clinician_id": form.get("clinician_id", "").strip(),
        "replaces": replaces,
    }
    return body, errors

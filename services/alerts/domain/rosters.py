"""On-call people, as pure rules (docs/domain.md "On-call people"): who a schedule puts on
call at an instant, when that changes, whom a page reaches, coverage gaps, SMS reply
codes, and what a contact address may be. No I/O; every instant in or out is an aware
datetime (a naive one is a ValueError).

- **Rotations.** A rotation hands off at ``handoff`` local time in the schedule's zone:
  every day (``daily``) or every week on ``handoff_weekday`` (``weekly``), from the first
  such handoff on or after its ``start`` date; the participants take turns in order. A
  handoff keeps its local time across daylight-saving changes (a 09:00 handoff stays
  09:00, so that shift is 23 or 25 hours long). A handoff time that does not exist that
  day (inside a spring-forward gap) happens at the first instant after the gap; an
  ambiguous one (fall back) at its first occurrence. At a handoff instant the incoming
  clinician is on call. Before its first handoff a rotation puts nobody on call.
- **Overrides**, taken in order of start, apply in [from, to): one without ``replaces``
  adds its clinician; one with ``replaces`` puts its clinician in that clinician's place
  while they would be on call, and does nothing while they would not.
- **Whom a page reaches.** Each notification rule of each clinician on call who is
  reachable is one delivery, due ``after_s`` after the page. A clinician with no rule
  is reached by nothing; during their quiet hours (their own zone; a window may cross
  midnight) only ``critical`` pages reach them.
- **Coverage gaps**: the windows in which a tier resolves to no clinician with a
  notification rule (quiet hours are no gap: a critical page still reaches them), unless
  the tier has static recipients.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email

Shift = Literal["daily", "weekly"]
Channel = Literal["sms", "email", "webhook"]


@dataclass(frozen=True)
class Rotation:
    participants: tuple[str, ...]
    shift: Shift
    handoff: time
    handoff_weekday: int  # 0 = Monday; weekly rotations only
    start: date


@dataclass(frozen=True)
class Override:
    override_id: str
    start: datetime
    end: datetime
    clinician_id: str
    replaces: str | None

    def __post_init__(self) -> None:
        _aware(self.start)
        _aware(self.end)


@dataclass(frozen=True)
class Schedule:
    schedule_id: str
    timezone: str
    rotations: tuple[Rotation, ...]
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Handoff:
    at: datetime
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass(frozen=True)
class ContactMethod:
    id: str
    type: Channel
    address: str


@dataclass(frozen=True)
class NotificationRule:
    contact_method: str
    after_s: int


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time


@dataclass(frozen=True)
class Clinician:
    clinician_id: str
    timezone: str
    contact_methods: tuple[ContactMethod, ...]
    notification_rules: tuple[NotificationRule, ...]
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True)
class Delivery:
    clinician_id: str
    contact_method: str
    channel: Channel
    address: str
    after_s: int


@dataclass(frozen=True)
class ScheduleTarget:
    schedule_id: str


@dataclass(frozen=True)
class ClinicianTarget:
    clinician_id: str


Target = ScheduleTarget | ClinicianTarget


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime
    tier: int  # 1-based


# --- instants -------------------------------------------------------------------------


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a naive datetime: instants carry their UTC offset")
    return at


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) of a wall-clock time on a local date: the first occurrence of an
    ambiguous time; for a time inside a spring-forward gap, the first instant after it."""
    wall = datetime.combine(day, at)
    early = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if early.astimezone(tz).replace(tzinfo=None) == wall:
        return early
    # In a gap: fold=0 reads the time with the offset before the change (``early``),
    # fold=1 with the one after (``late``, earlier in UTC); the change lies between.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = early
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) > wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def _first_day(r: Rotation) -> date:
    if r.shift == "daily":
        return r.start
    return r.start + timedelta(days=(r.handoff_weekday - r.start.weekday()) % 7)


def _step(r: Rotation) -> int:
    return 1 if r.shift == "daily" else 7


def _shift_day(r: Rotation, at: datetime, tz: ZoneInfo) -> date | None:
    """The local date of the handoff that began the shift ``at`` falls in (None: before
    the rotation's first handoff)."""
    today = at.astimezone(tz).date()
    day = today - timedelta(days=(today - _first_day(r)).days % _step(r))
    if at < local_instant(day, r.handoff, tz):
        day -= timedelta(days=_step(r))
    return day if day >= _first_day(r) else None


def _on_shift(r: Rotation, at: datetime, tz: ZoneInfo) -> str | None:
    day = _shift_day(r, at, tz)
    if day is None or not r.participants:
        return None
    k = (day - _first_day(r)).days // _step(r)
    return r.participants[k % len(r.participants)]


def _dedup(ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def oncall_at(schedule: Schedule, at: datetime) -> tuple[str, ...]:
    """Who the schedule puts on call at ``at``: each rotation's current participant (in
    rotation order), then the overrides in force, in order of start."""
    _aware(at)
    tz = zone(schedule.timezone)
    on = [w for r in schedule.rotations if (w := _on_shift(r, at, tz)) is not None]
    for o in sorted(schedule.overrides, key=lambda o: (o.start, o.override_id)):
        if not o.start <= at < o.end:
            continue
        if o.replaces is None:
            on.append(o.clinician_id)
        else:
            on = [o.clinician_id if c == o.replaces else c for c in on]
    return _dedup(on)


def _rotation_handoffs(r: Rotation, start: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
    first = _first_day(r)
    day = max(first, start.astimezone(tz).date() - timedelta(days=8))
    day += timedelta(days=(first - day).days % _step(r))
    last = end.astimezone(tz).date() + timedelta(days=1)
    out = []
    while day <= last:
        t = local_instant(day, r.handoff, tz)
        if start <= t < end:
            out.append(t)
        day += timedelta(days=_step(r))
    return out


def handoffs(schedule: Schedule, start: datetime, end: datetime) -> list[Handoff]:
    """Every instant in [start, end) at which ``oncall_at`` changes, in time order."""
    _aware(start)
    _aware(end)
    tz = zone(schedule.timezone)
    candidates = {t for r in schedule.rotations for t in _rotation_handoffs(r, start, end, tz)}
    for o in schedule.overrides:
        candidates.update(t for t in (o.start, o.end) if start <= t < end)
    out = []
    before = oncall_at(schedule, start - timedelta(microseconds=1))
    for t in sorted(candidates):
        now = oncall_at(schedule, t)
        if now != before:
            out.append(Handoff(t, before, now))
            before = now
    return out


# --- whom a page reaches ----------------------------------------------------------------


def in_quiet_hours(clinician: Clinician, at: datetime) -> bool:
    _aware(at)
    q = clinician.quiet_hours
    if q is None or q.start == q.end:
        return False
    local = at.astimezone(zone(clinician.timezone)).time().replace(tzinfo=None)
    if q.start < q.end:
        return q.start <= local < q.end
    return local >= q.start or local < q.end  # across midnight


def reachable(clinician: Clinician, severity: str, at: datetime) -> bool:
    _aware(at)
    if not clinician.notification_rules:
        return False
    return severity == "critical" or not in_quiet_hours(clinician, at)


def deliveries(
    clinician_ids: Sequence[str],
    clinicians: Mapping[str, Clinician],
    severity: str,
    at: datetime,
) -> list[Delivery]:
    """One per notification rule of each reachable clinician, soonest first (ties in the
    clinicians' order, then their rules')."""
    _aware(at)
    out = []
    for cid in _dedup(clinician_ids):
        c = clinicians.get(cid)
        if c is None or not reachable(c, severity, at):
            continue
        methods = {m.id: m for m in c.contact_methods}
        for rule in c.notification_rules:
            m = methods.get(rule.contact_method)
            if m is not None:
                out.append(Delivery(cid, m.id, m.type, m.address, rule.after_s))
    return sorted(out, key=lambda d: d.after_s)


def resolve_targets(
    targets: Sequence[Target], schedules: Mapping[str, Schedule], at: datetime
) -> tuple[str, ...]:
    """The clinicians the targets name at ``at``, in order; an unknown schedule names nobody."""
    _aware(at)
    ids: list[str] = []
    for t in targets:
        if isinstance(t, ScheduleTarget):
            s = schedules.get(t.schedule_id)
            if s is not None:
                ids.extend(oncall_at(s, at))
        else:
            ids.append(t.clinician_id)
    return _dedup(ids)


def coverage_gaps(
    tiers: Sequence[Sequence[Target]],
    schedules: Mapping[str, Schedule],
    clinicians: Mapping[str, Clinician],
    start: datetime,
    end: datetime,
    *,
    tiers_with_recipients: Collection[int] = (),
) -> list[Gap]:
    """The maximal windows in [start, end) in which a tier (1-based in the answer)
    resolves to no clinician with a notification rule, tier by tier, in time order."""
    _aware(start)
    _aware(end)
    out: list[Gap] = []
    if end <= start:
        return out  # an empty window has no gap
    for i, targets in enumerate(tiers):
        if i in tiers_with_recipients:
            continue
        bounds = {start}
        for target in targets:
            if isinstance(target, ScheduleTarget) and target.schedule_id in schedules:
                sched = schedules[target.schedule_id]
                bounds.update(h.at for h in handoffs(sched, start, end))
        points = sorted(bounds)
        gap_from: datetime | None = None
        for t in points:
            on = resolve_targets(targets, schedules, t)
            covered = any(c in clinicians and clinicians[c].notification_rules for c in on)
            if not covered and gap_from is None:
                gap_from = t
            elif covered and gap_from is not None:
                out.append(Gap(gap_from, t, i + 1))
                gap_from = None
        if gap_from is not None:
            out.append(Gap(gap_from, end, i + 1))
    return out


# --- SMS reply codes --------------------------------------------------------------------

_REPLY = re.compile(r"^\s*(\d{1,3})\s*([aA])\s*[.!]?\s*$", re.ASCII)


def reply_code(n: int) -> str:
    """The code an SMS page asks for: ``4a`` acknowledges the page numbered 4."""
    return f"{n}a"


def parse_reply(body: str) -> tuple[int, str] | None:
    """``(n, "ack")`` for a reply such as ``4a``, ``4A``, `` 4 a``; None for anything else."""
    m = _REPLY.match(body)
    if m is None or int(m.group(1)) == 0:
        return None
    return int(m.group(1)), "ack"


# --- what an address may be -------------------------------------------------------------

_ZONES = frozenset(available_timezones() - {"localtime"})


def check_timezone(name: str) -> str:
    if name not in _ZONES:
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as America/New_York)")
    try:
        zone(name)
    except ZoneInfoNotFoundError as exc:  # pragma: no cover (listed but unreadable)
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def check_phone(raw: str) -> str:
    """An E.164 number (``+15555550123``), as E.164."""
    if not re.fullmatch(r"\+[1-9]\d{6,14}", raw, re.ASCII):
        raise ValueError("must be an E.164 phone number: + then the country code and number")
    try:
        n = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number (E.164 expected)") from exc
    if not phonenumbers.is_possible_number(n):
        raise ValueError("not a possible phone number for its country code")
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def check_email(raw: str) -> str:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not an e-mail address: {exc}") from exc


def check_webhook(raw: str) -> str:
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in raw):
        raise ValueError("must be an http:// or https:// URL with a host")
    return raw


def check_address(kind: str, address: str) -> str:
    if kind == "sms":
        return check_phone(address)
    if kind == "email":
        return check_email(address)
    if kind == "webhook":
        return check_webhook(address)
    raise ValueError(f"unknown contact method kind {kind!r} (sms, email or webhook)")

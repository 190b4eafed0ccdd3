"""A site's week as lanes (one per room, one per therapist) of day cells, in the site's
own time zone, with its opening hours shaded: a pure view over the scheduling API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The actions an appointment in each status offers (docs/domain.md "Lifecycle").
ACTIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("confirm", "cancel"),
    "confirmed": ("complete", "no-show", "cancel"),
}


@dataclass(frozen=True)
class Block:
    appointment_id: str
    patient_id: str
    kind: str
    status: str
    sequence: int
    local_start: str  # HH:MM in the site's time zone
    local_end: str
    left: float  # percent of the day's visible span
    width: float
    actions: tuple[str, ...]

    @property
    def style(self) -> str:
        return f"left:{self.left:.2f}%;width:{self.width:.2f}%"

    @property
    def label(self) -> str:
        return f"{self.local_start} {self.kind[0].upper()}{self.sequence}"

    @property
    def html(self) -> str:
        """The block's markup, every value from outside escaped (see ``Cell.blocks_html``)."""
        kind, status = escape(self.kind), escape(self.status)
        return (
            f'<div class="block {kind} {status}" '
            f'data-appointment-id="{escape(self.appointment_id)}" '
            f'data-status="{status}" data-local-start="{self.local_start}" '
            f'data-local-end="{self.local_end}" data-patient="{escape(self.patient_id)}" '
            f'data-kind="{kind}" data-seq="{self.sequence}" style="{self.style}" '
            f'tabindex="0"><span class="label">{escape(self.label)}</span></div>'
        )


@dataclass
class Cell:
    day: date
    open_left: float | None  # the shaded opening hours, percent of the span
    open_width: float | None
    blocks: list[Block] = field(default_factory=list)

    @property
    def blocks_html(self) -> Markup:
        """The cell's blocks' markup, built here rather than in the template: a busy week
        has thousands of blocks, and the template's per-attribute escaping was most of its
        render time."""
        return Markup("".join(b.html for b in self.blocks))  # noqa: S704 (escaped in Block.html)


@dataclass
class Lane:
    resource: str
    label: str
    cells: list[Cell]


@dataclass
class Week:
    site_id: str
    timezone: str
    start: date
    days: list[date]
    span: tuple[time, time]  # the visible part of each day
    lanes: list[Lane]

    @property
    def previous(self) -> date:
        return self.start - timedelta(days=7)

    @property
    def next(self) -> date:
        return self.start + timedelta(days=7)


def week_start(day: date) -> date:
    """The Monday of the week containing ``day``."""
    return day - timedelta(days=day.weekday())


def bounds(site: dict[str, Any], start: date) -> tuple[datetime, datetime]:
    """The week [Monday 00:00, next Monday 00:00) in the site's time zone, as aware times."""
    tz = ZoneInfo(site["timezone"])
    begin = datetime.combine(start, time(0), tz)
    return begin, datetime.combine(start + timedelta(days=7), time(0), tz)


def _span(hours: dict[str, list[str]]) -> tuple[time, time]:
    opens = [time.fromisoformat(v[0]) for v in hours.values() if v]
    closes = [time.fromisoformat(v[1]) for v in hours.values() if v]
    first = min(opens, default=time(8))
    last = max(closes, default=time(18))
    # an hour of margin either side, so the shading shows where the day ends
    lo = time(max(first.hour - 1, 0))
    hi = time(min(last.hour + 1, 23), 59 if last.hour + 1 > 23 else 0)
    return lo, hi


def _pct(t: time, span: tuple[time, time]) -> float:
    lo = span[0].hour * 60 + span[0].minute
    hi = span[1].hour * 60 + span[1].minute
    return max(0.0, min(100.0, (t.hour * 60 + t.minute - lo) * 100.0 / (hi - lo)))


def _hhmm(t: datetime) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def build_week(site: dict[str, Any], appointments: Sequence[dict[str, Any]], start: date) -> Week:
    tz = ZoneInfo(site["timezone"])
    days = [start + timedelta(days=i) for i in range(7)]
    span = _span(site["hours"])
    resources = [f"room-{n}" for n in range(1, site["treatment_rooms"] + 1)] + [
        f"therapist-{n}" for n in range(1, site["therapists"] + 1)
    ]
    lanes: dict[str, Lane] = {}
    for r in resources:
        cells = []
        for d in days:
            hours = site["hours"].get(WEEKDAYS[d.weekday()])
            if hours:
                o, c = time.fromisoformat(hours[0]), time.fromisoformat(hours[1])
                left = _pct(o, span)
                cells.append(Cell(d, left, _pct(c, span) - left))
            else:
                cells.append(Cell(d, None, None))
        lanes[r] = Lane(r, r.replace("-", " ").capitalize(), cells)
    for a in appointments:
        lane = lanes.get(a["resource"])
        if lane is None:
            continue
        s = datetime.fromisoformat(a["start"]).astimezone(tz)
        e = datetime.fromisoformat(a["end"]).astimezone(tz)
        if not days[0] <= s.date() <= days[-1]:
            continue
        left = _pct(s.time(), span)
        right = _pct(e.time(), span) if e.date() == s.date() else 100.0
        lane.cells[(s.date() - days[0]).days].blocks.append(
            Block(
                appointment_id=a["appointment_id"],
                patient_id=a["patient_id"],
                kind=a["kind"],
                status=a["status"],
                sequence=a["sequence"],
                local_start=_hhmm(s),
                local_end=_hhmm(e),
                left=left,
                width=max(right - left, 1.0),
                actions=ACTIONS.get(a["status"], ()),
            )
        )
    return Week(site["site_id"], site["timezone"], start, days, span, list(lanes.values()))

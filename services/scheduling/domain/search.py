"""The greedy placement behind ``slots``: earliest dose, then its integration, per call.

One ``Searcher`` serves one call of ``find_series`` or ``find_single``: it caches
the site's slot grid and, per slot start, which room or therapist is free, so
that trying several first days and preference levels re-reads nothing. A series
never collides with itself: its sessions all belong to one patient and no two
sessions of a patient may overlap, so no resource is taken twice either.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime

from services.scheduling.domain.calendar import Calendar, Interval, Timeline, utc
from services.scheduling.domain.grid import ONE_DAY, DayFilter, Grid, Slot
from services.scheduling.domain.model import (
    ROLLING_PERIOD,
    Kind,
    PlannedSession,
    Protocol,
    Site,
)
from services.scheduling.domain.resources import ResourcePool

# A local date and, lazily, its dose slots with a free room.
DayCandidates = tuple[date, Iterator[tuple[Slot, str]]]


def respects_spacing(start: datetime, others: Iterable[datetime], protocol: Protocol) -> bool:
    """A dose at ``start`` keeps ``min_gap`` from every other dose and the rolling cap.

    docs/domain.md ("Who is scheduled, and when": "Spacing counts every dose the
    patient has"): at least ``min_gap`` (standard 48 h, retreat 24 h) between any
    two dose starts, and no rolling 7 days (``ROLLING_PERIOD``, half-open: doses
    exactly 7 days apart are in different windows) holds more than
    ``max_doses_per_7_days`` starts (standard 2, retreat 4). ``others`` are
    assumed to keep the rules among themselves; only windows holding ``start``
    are checked.
    """
    others = list(others)
    if any(abs(start - other) < protocol.min_gap for other in others):
        return False
    near = sorted([o for o in others if abs(o - start) < ROLLING_PERIOD] + [start])
    cap = protocol.max_doses_per_7_days
    return all(
        near[i + cap] - near[i] >= ROLLING_PERIOD
        for i in range(len(near) - cap)
        if near[i] <= start <= near[i + cap]
    )


class Blocked:
    """The open intervals (low, high) in which no new dose may start, sorted, the
    overlapping ones merged (touching ones are not: their shared end is allowed)."""

    def __init__(self, spans: Iterable[tuple[datetime, datetime]]) -> None:
        lows: list[datetime] = []
        highs: list[datetime] = []
        for low, high in sorted(spans):
            if low >= high:
                continue  # an empty interval (min_gap 0) blocks nothing
            if highs and low < highs[-1]:
                highs[-1] = max(highs[-1], high)
            else:
                lows.append(low)
                highs.append(high)
        self.lows, self.highs = lows, highs

    def next_allowed(self, moment: datetime) -> datetime:
        """``moment`` when a dose may start then, else the end of its blocked interval."""
        i = bisect_left(self.lows, moment) - 1  # the last interval opening before moment
        if i >= 0 and moment < self.highs[i]:
            return self.highs[i]
        return moment


class Spacing:
    """The patient's existing doses, sorted; for a set of planned ones, the times in
    which a new dose would break docs/domain.md's spacing rules ("Spacing counts
    every dose the patient has"), as ``Blocked`` intervals.

    A start ``t`` is blocked (1) within ``min_gap`` of any dose: (d - gap, d + gap);
    (2) when some ``max_doses_per_7_days`` doses, consecutive in time, lie within 7
    days of each other and of ``t``: (last - 7 days, first + 7 days). Any 7-day
    window holding ``t`` and that many other doses holds such a consecutive run
    (a window holds every dose between two it holds), so (2) is exactly the rolling
    cap of ``respects_spacing``; exactly 7 days apart is allowed (open intervals).
    """

    def __init__(self, protocol: Protocol, doses: Iterable[datetime]) -> None:
        self.protocol = protocol
        self.doses = tuple(sorted(utc(d) for d in doses))
        self._reach = max(protocol.min_gap, ROLLING_PERIOD)

    def __bool__(self) -> bool:
        return bool(self.doses)

    def blocked(
        self,
        planned: Sequence[datetime] = (),
        after: datetime | None = None,
        before: datetime | None = None,
    ) -> Blocked:
        """The blocked times with ``planned`` doses too; with ``after``/``before``,
        only those that matter to starts between them (the doses out of reach left out)."""
        lo = 0 if after is None else bisect_right(self.doses, after - self._reach)
        hi = len(self.doses) if before is None else bisect_left(self.doses, before + self._reach)
        doses = sorted([*self.doses[lo:hi], *planned])
        gap, cap = self.protocol.min_gap, self.protocol.max_doses_per_7_days
        spans = [(d - gap, d + gap) for d in doses]
        for first, last in zip(doses, doses[cap - 1 :], strict=False):
            if last - first < ROLLING_PERIOD:
                spans.append((last - ROLLING_PERIOD, first + ROLLING_PERIOD))
        return Blocked(spans)

    def allows(self, start: datetime, planned: Sequence[datetime] = ()) -> bool:
        """``start`` keeps the gap and the cap with the existing doses and ``planned``."""
        return self.next_allowed(start, planned) == start

    def next_allowed(self, start: datetime, planned: Sequence[datetime] = ()) -> datetime:
        """The earliest moment at or after ``start`` at which a dose keeps the gap and
        the cap with the existing doses and ``planned``."""
        return self.blocked(planned, after=start).next_allowed(start)


class Searcher:
    """Greedy placement of doses and integrations for one patient at one site."""

    def __init__(
        self,
        site: Site,
        calendar: Calendar,
        protocol: Protocol,
        now: datetime,
        patient_busy: Iterable[Interval],
        patient_doses: Iterable[datetime] = (),
    ) -> None:
        self.protocol = protocol
        self.spacing = Spacing(protocol, patient_doses)
        self.grid = Grid(site, protocol.slot_step_minutes)
        self.rooms = ResourcePool(site.room_ids(), calendar, protocol.dosing_minutes)
        self.therapists = ResourcePool(site.therapist_ids(), calendar, protocol.integration_minutes)
        self.patient = Timeline.of(patient_busy)
        self.earliest = (now + protocol.min_lead).astimezone(UTC)
        self._has_room: dict[date, bool] = {}
        known = calendar.known
        self._full = (
            set()
            if known is None
            else known.full_days((site, protocol.dosing_minutes, protocol.slot_step_minutes))
        )

    def _patient_free(self, slot: Slot, placed: Sequence[PlannedSession]) -> bool:
        if self.patient.conflict_end(slot.start, slot.end) is not None:
            return False
        return all(s.end <= slot.start or slot.end <= s.start for s in placed)

    def doses(
        self,
        level: DayFilter,
        days: tuple[date, date],
        not_before: datetime,
        until: datetime,
        placed: Sequence[PlannedSession],
        spaced: Callable[[datetime], datetime] | None = None,
    ) -> Iterator[DayCandidates]:
        """Per local date in ``days`` (inclusive), earliest first, the dose slots with a
        free room that start in [max(not_before, earliest), until); with ``spaced``
        (the earliest moment from a start that keeps the spacing rules) only those
        that keep them."""
        not_before = max(not_before, self.earliest)
        if spaced is not None:
            not_before = spaced(not_before)
        day = max(days[0], self.grid.local_date(not_before))
        last = min(days[1], self.grid.local_date(until))
        while day <= last:
            if level.allows_day(day):
                yield day, self._dose_slots(day, level, not_before, until, placed, spaced)
            day += ONE_DAY

    def _dose_slots(
        self,
        day: date,
        level: DayFilter,
        not_before: datetime,
        until: datetime,
        placed: Sequence[PlannedSession],
        spaced: Callable[[datetime], datetime] | None,
    ) -> Iterator[tuple[Slot, str]]:
        slots, starts = self.grid.indexed(day, self.protocol.dosing_minutes)
        i = bisect_left(starts, not_before)
        while i < len(slots):
            slot = slots[i]
            if slot.start >= until:
                return
            if not level.allows_slot(slot) or not self._patient_free(slot, placed):
                i += 1
                continue
            if spaced is not None:
                allowed = spaced(slot.start)
                if allowed > slot.start:  # no dose may start before ``allowed``
                    i = bisect_left(starts, allowed, i + 1)
                    continue
            room, soonest = self.rooms.first_free(slot)
            if room is None:  # every room is busy until ``soonest``
                i = i + 1 if soonest is None else bisect_left(starts, soonest, i + 1)
                continue
            yield slot, room
            i += 1

    def has_room(self, day: date) -> bool:
        """Some dose slot of local ``day``, from the earliest start on, has a free room.

        When none has, no series can begin on ``day`` at any preference level, for any
        patient: the answer depends on the calendar alone and is kept for the search;
        a whole day found full is also noted in the calendar's ``known``, for later
        searches on the same (or a fuller) calendar.
        """
        found = self._has_room.get(day)
        if found is None:
            if day in self._full:
                found = False
            else:
                slots, starts = self.grid.indexed(day, self.protocol.dosing_minutes)
                i = bisect_left(starts, self.earliest)
                whole_day = i == 0
                found = False
                while i < len(slots):
                    room, soonest = self.rooms.first_free(slots[i])
                    if room is not None:
                        found = True
                        break
                    i = i + 1 if soonest is None else bisect_left(starts, soonest, i + 1)
                if not found and whole_day:
                    self._full.add(day)
            self._has_room[day] = found
        return found

    def _integration_slots(
        self, dose_day: date, level: DayFilter, placed: Sequence[PlannedSession]
    ) -> Iterator[Slot]:
        """Integration slots 1..3 local days after the dose's date, patient free, in order.

        docs/domain.md ("People and places"): preferences apply to dosing sessions;
        each integration follows its dose, on any open day ``integration_min_days``
        to ``integration_max_days`` (site-local dates) later, in the patient's time
        window while the level keeps it. ``level`` is that integration filter: it
        never holds weekdays.
        """
        protocol = self.protocol
        for offset in range(protocol.integration_min_days, protocol.integration_max_days + 1):
            day = dose_day + offset * ONE_DAY
            for slot in self.grid.slots(day, protocol.integration_minutes):
                if (
                    slot.start >= self.earliest
                    and level.allows_slot(slot)
                    and self._patient_free(slot, placed)
                ):
                    yield slot

    def integration(
        self,
        dose_day: date,
        level: DayFilter,
        placed: Sequence[PlannedSession],
        therapist: str | None,
    ) -> tuple[Slot, str] | None:
        """The earliest slot with ``therapist`` free in the 1..3 days; failing that,
        the earliest slot with any therapist free (continuity of care beats a few hours)."""
        if therapist is not None:
            for slot in self._integration_slots(dose_day, level, placed):
                if self.therapists.is_free(therapist, slot):
                    return slot, therapist
        for slot in self._integration_slots(dose_day, level, placed):
            anyone, _ = self.therapists.first_free(slot)
            if anyone is not None:
                return slot, anyone
        return None

    def pair(
        self,
        candidates: Iterable[DayCandidates],
        talk: DayFilter,
        placed: Sequence[PlannedSession],
        therapist: str | None,
        sequence: int,
        kind: Kind,
    ) -> tuple[PlannedSession, PlannedSession] | None:
        """The earliest dose candidate whose integration session (filtered by ``talk``)
        also fits."""
        for day, slots in candidates:
            for slot, room in slots:
                dose = PlannedSession(kind, sequence, slot.start, slot.end, room)
                found = self.integration(day, talk, [*placed, dose], therapist)
                if found is None:
                    # A dose stays within its local day and its integration lies on
                    # later days: no other dose of this day can have one either.
                    break
                islot, who = found
                return dose, PlannedSession(Kind.integration, sequence, islot.start, islot.end, who)
        return None

    def _cannot_finish(self, not_before: datetime, starts: list[datetime], until: datetime) -> bool:
        """True when the spacing rules alone leave no room for the series' remaining
        doses before ``until``, whatever the calendar.

        The doses placed each as early as the rules allow, from ``not_before``, are
        a lower bound: if a feasible series has doses x_j, the earliest-first ones
        g_j <= x_j, because any 7-day window holding x_j and some g_i (i < j) holds
        x_i too (g_i <= x_i < x_j), so it counts no more doses than x's own did.
        """
        virtual = list(starts)
        moment = not_before
        for _ in range(self.protocol.doses - len(starts)):
            moment = self.spacing.blocked(virtual, not_before, until).next_allowed(moment)
            if moment >= until:
                return True
            virtual.append(moment)
        return False

    def series_from(
        self, first_day: date, level: DayFilter, talk: DayFilter, first_until: datetime
    ) -> list[PlannedSession] | None:
        """The greedy series whose first dose is on local ``first_day``, or None; doses
        filtered by ``level``, integrations by ``talk``."""
        protocol = self.protocol
        placed: list[PlannedSession] = []
        starts: list[datetime] = []
        therapist: str | None = None
        for sequence in range(1, protocol.doses + 1):
            if not starts:
                not_before, until = self.earliest, first_until
                days = (first_day, first_day)
            else:
                not_before = starts[-1] + protocol.min_gap
                if len(starts) >= protocol.max_doses_per_7_days:
                    capped = starts[-protocol.max_doses_per_7_days] + ROLLING_PERIOD
                    not_before = max(not_before, capped)
                until = starts[0] + protocol.window
                days = (self.grid.local_date(not_before), self.grid.local_date(until))
            spaced = None
            if self.spacing:  # the series' own doses are spaced by not_before alone
                spaced = self.spacing.blocked(starts, not_before, until).next_allowed
                not_before = spaced(not_before)
                if starts and self._cannot_finish(not_before, starts, until):
                    return None
            candidates = self.doses(level, days, not_before, until, placed, spaced)
            found = self.pair(candidates, talk, placed, therapist, sequence, Kind.dosing)
            if found is None:
                return None
            placed.extend(found)
            starts.append(found[0].start)
            therapist = therapist or found[1].resource
        return placed

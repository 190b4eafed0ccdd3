"""The stack's clock: what time it is for the domain, in every process.

``utcnow()`` is the wall clock, plus (only with ``DEV_CLOCK=1``; docs/architecture.md,
"Dev clock") one offset that every process of the stack shares. The offset lives in
the stack's database and ``shared.devclock`` keeps this process's copy of it current;
this module is the pure part: the offset, the rules of moving it, and the loopback
check that keeps the dev clock off anything but a developer's machine.

Only the domain's "now" goes through here: latency timings stay on ``time.perf_counter``
and ``time.monotonic``, and what is compared with somebody else's wall clock (a webhook
signature's timestamp, log lines) stays on the wall clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from shared.errors import Conflict

# An advance larger than this in one call is a typo, not a test (ten years).
MAX_ADVANCE_S = 10 * 366 * 86400
# The offset never goes past this (a century): datetimes stay far from year 9999.
MAX_OFFSET_S = 100 * 366 * 86400

_offset_s = 0


def utcnow() -> datetime:
    """Now, for the domain: the wall clock plus the stack's offset (0 without DEV_CLOCK)."""
    now = datetime.now(UTC)
    return now + timedelta(seconds=_offset_s) if _offset_s else now


def offset_s() -> int:
    """This process's copy of the stack's offset, in seconds."""
    return _offset_s


def set_offset(seconds: int) -> bool:
    """Adopt the stack's offset (read from its database); True when it changed."""
    global _offset_s
    seconds = int(seconds)
    if seconds < 0 or seconds > MAX_OFFSET_S:
        raise ValueError(f"a clock offset of {seconds} s is out of range")
    changed = seconds != _offset_s
    _offset_s = seconds
    return changed


class ClockBackwards(Conflict):
    """Time only moves forward: an advance of zero or less seconds."""

    code = "clock_backwards"


class ClockTooFar(Conflict):
    code = "clock_too_far"


def check_advance(advance_s: int, current_offset_s: int) -> int:
    """The offset after moving the clock ``advance_s`` forward; a 409 for zero or less
    (going backwards would un-fire timers that already fired) or past ``MAX_OFFSET_S``."""
    if advance_s <= 0:
        raise ClockBackwards(f"the clock only moves forward: advance_s {advance_s} is not > 0")
    new = current_offset_s + advance_s
    if new > MAX_OFFSET_S:
        raise ClockTooFar(f"the clock may be at most {MAX_OFFSET_S} s ahead of the wall clock")
    return new


def is_loopback(host: str) -> bool:
    """An address (or ``localhost``) that only this machine can reach."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name we cannot vouch for, or "" (every address)


def loopback_refusal(process: str, listens: Iterable[tuple[str, str]]) -> str | None:
    """Why ``DEV_CLOCK=1`` may not run in this process, or None: every address it listens
    on (``(setting, host)`` pairs) must be loopback. Production never has the dev clock."""
    public = [f"{name}={host or '(all)'}" for name, host in listens if not is_loopback(host)]
    if not public:
        return None
    return (
        f"{process}: DEV_CLOCK=1 is refused: the dev clock moves time for the whole stack, "
        f"so it runs only on loopback, but this process listens on {', '.join(public)}. "
        "Unset DEV_CLOCK (production never has it) or listen on 127.0.0.1."
    )

"""What one request costs the machine: CPU milliseconds per intake and per check-in, by
process (the intake API and relay, PostgreSQL, the broker, the load client), over a
fixed open-loop load (docs/performance.md). CPU time is what a request takes from the
machine's two cores whatever else runs, so these figures hold steadier than latencies
on a busy machine; PostgreSQL and the broker count every client's work, so run it
alone."""

from __future__ import annotations

import os
import random
import resource
import signal
from pathlib import Path

import orjson

from bench.load import open_loop
from bench.stack import Stack, stack
from tools.factories import checkin_body, intake_body, routine_phq9

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _pids_of(marker: bytes) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _snapshot(st: Stack) -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **{name: _cpu_s(pid) for name, pid in st.pids.items()},
        "postgresql": sum(_cpu_s(p) for p in _pids_of(b"postgres")),
        "kafka broker": sum(_cpu_s(p) for p in _pids_of(b"kafka.Kafka")),
        "load client": own.ru_utime + own.ru_stime,
    }


async def _measure(
    st: Stack, label: str, bodies: list[bytes], path: str, rate: float
) -> dict[str, float]:
    await st.settle()
    before = _snapshot(st)
    _, errors = await open_loop(st.urls["intake"], rate, len(bodies) / rate, bodies, path=path)
    await st.settle()
    after = _snapshot(st)
    per = {k: (after[k] - before.get(k, 0.0)) * 1000 / len(bodies) for k in after}
    total = sum(per.values())
    parts = "  ".join(f"{k} {v:.2f}" for k, v in per.items())
    print(f"  {label}: {total:.2f} ms CPU each (errors={errors}): {parts}")
    print(f"    => at most {2000 / total:.0f}/s on 2 cores with nothing else running")
    return per


async def section(rate: float = 200, seconds: float = 10) -> None:
    print(f"CPU per request, by process ({rate:g}/s for {seconds:g}s, open loop):")
    n = int(rate * seconds)
    async with stack() as st:
        await open_loop(st.urls["intake"], 100, 2)  # warm
        admitted = [intake_body() for _ in range(500)]
        await open_loop(st.urls["intake"], 250, 2, [orjson.dumps(b) for b in admitted])
        intakes = [orjson.dumps(intake_body()) for _ in range(n)]
        await _measure(st, "POST /v1/intakes", intakes, "/v1/intakes", rate)
        patients = [b["patient"]["patient_id"] for b in admitted]
        checkins = [
            orjson.dumps(checkin_body(random.choice(patients), routine_phq9())) for _ in range(n)
        ]
        await _measure(st, "POST /v1/checkins", checkins, "/v1/checkins", rate)


def _steady() -> list[int]:
    """A patient doing well: a PHQ-9 of 0-8 that stays put (item 9 at 0)."""
    return [random.randint(0, 1) for _ in range(8)] + [0]


def _wobble(answers: list[int]) -> list[int]:
    """The patient's answers with one item a point off: never 5 above their lowest (not
    worsening, docs/domain.md), so these are the routine check-ins most of a day's are."""
    out = list(answers)
    i = random.randrange(8)
    out[i] = min(3, max(0, out[i] + random.choice((-1, 1))))
    return out


def _checkins(steady: dict[str, list[int]], n: int) -> list[bytes]:
    """``n`` routine check-ins of the steady patients, at random."""
    pids = list(steady)
    out = []
    for _ in range(n):
        pid = random.choice(pids)
        out.append(orjson.dumps(checkin_body(pid, _wobble(steady[pid]))))
    return out


async def section_consumers(rate: float = 200, seconds: float = 10) -> None:
    """Routine check-ins (steady patients: none worsening, none at risk) through the whole
    stack (intake, scheduling, alerts), with the workers applying each event in a
    transaction of its own (CONSUMER_BATCH_MAX=1, the baseline) and with a partition's
    queued events applied together (the default; shared/processing.py process_batch).

    Live, a worker that keeps up finds one event queued at a time, so both settings do
    the same work; batching tells once events queue up (a worker behind: a burst, a
    restart, the mixed load). So the second half stops both workers (SIGSTOP) while the
    same load is accepted and measures what they spend, and how long they take, to
    catch up on it."""
    print(f"Check-ins through the whole stack ({rate:g}/s for {seconds:g}s, open loop):")
    n = int(rate * seconds)
    workers = ("alerts-worker", "scheduling-worker")
    for label, env in (("one event per transaction", {"CONSUMER_BATCH_MAX": "1"}), ("batched", {})):
        async with stack(("intake", "scheduling", "alerts"), env) as st:
            await open_loop(st.urls["intake"], 100, 2)  # warm
            admitted = [intake_body() for _ in range(300)]
            await open_loop(st.urls["intake"], 100, 3, [orjson.dumps(b) for b in admitted])
            steady = {b["patient"]["patient_id"]: _steady() for b in admitted}
            await _measure(st, f"live, {label}", _checkins(steady, n), "/v1/checkins", rate)
            await st.settle()
            for w in workers:
                os.kill(st.pids[w], signal.SIGSTOP)
            try:
                bodies = _checkins(steady, n)
                await open_loop(st.urls["intake"], rate, seconds, bodies, path="/v1/checkins")
            finally:
                before = _snapshot(st)
                for w in workers:
                    os.kill(st.pids[w], signal.SIGCONT)
            took = await st.settle()
            after = _snapshot(st)
            spent = "  ".join(
                f"{k} {(after[k] - before[k]) * 1000 / n:.2f}"
                for k in (*workers, "postgresql", "kafka broker")
            )
            print(f"  a backlog of {n}, {label}: caught up in {took:.1f} s; ms CPU each: {spent}")

"""Free TCP ports on loopback for the processes the tests and benchmarks start (and the
test containers' broker and database, tests/support/containers.py, which picks them
before tools/stack.py reads KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Our listening ports come from below the kernel's ephemeral range: a port the kernel
# hands out for bind(0) comes from that range, where any outgoing connection (many, with
# a three-broker cluster) may take it as its local port before our process binds it.
PORT_RANGE = (12000, 32000)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(span: int = 1) -> int:
    """A free port (the first of ``span`` free consecutive ones) outside the ephemeral range."""
    high = min(PORT_RANGE[1], _ephemeral_low()) - span
    for _ in range(500):
        port = random.randrange(PORT_RANGE[0], high)  # noqa: S311  # not a secret
        if all(bindable(port + i) for i in range(span)):
            return port
    raise RuntimeError(f"no {span} free consecutive ports in {PORT_RANGE}")

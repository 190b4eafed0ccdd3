"""``python -m tools.page_receiver --port 9900 [--secret S] [--fail-first N] [--record F]``:
receive pages (webhook POSTs) locally and print one line per page (and append each, as a
JSON line, to F: ``ReceiverProcess`` reads them)."""

from __future__ import annotations

import argparse
import os
import sys

from tools.local_server import serve_until_signalled
from tools.page_receiver.received import Received, summary, to_line
from tools.page_receiver.receiver import PageReceiver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.page_receiver",
        description="Receive pages (webhook POSTs) locally and print one line per page.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9900, help="0 picks a free port")
    parser.add_argument(
        "--secret",
        default=os.environ.get("PAGE_SIGNING_SECRET"),
        help="verify X-Interval-Signature and the Standard Webhooks headers (401 when those "
        "do not verify) with this secret (default: $PAGE_SIGNING_SECRET)",
    )
    parser.add_argument(
        "--fail-first",
        type=int,
        default=0,
        metavar="N",
        help="answer 500 to the first N requests, then 200",
    )
    parser.add_argument(
        "--record",
        metavar="FILE",
        help="append every request to FILE as a JSON line, as it arrives",
    )
    args = parser.parse_args(argv)
    record = open(args.record, "ab", buffering=0) if args.record else None  # noqa: SIM115

    def on_receive(r: Received) -> None:
        if record is not None:
            record.write(to_line(r))
        print(summary(r), flush=True)

    def make() -> PageReceiver:
        receiver = PageReceiver(
            args.port,
            host=args.host,
            signing_secret=args.secret or None,
            on_receive=on_receive,
        )
        if args.fail_first:
            receiver.fail(None, args.fail_first)
        return receiver

    return serve_until_signalled(
        make,
        lambda receiver: (
            f"page receiver listening on {receiver.url('/')} (POST to any path; Ctrl-C stops)"
            + (" verifying signatures" if args.secret else "")
            + (f"; the first {args.fail_first} request(s) get 500" if args.fail_first else "")
        ),
    )


if __name__ == "__main__":
    sys.exit(main())

"""``python -m tools.fake_twilio --port 9901 [--sid AC... --token T]``: take texts locally
and print one line per text (the number masked)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from tools.fake_twilio.server import FakeTwilio, Sms, masked


def summary(sms: Sms) -> str:
    return f"sms  to={masked(sms.to)} sid={sms.sid or '-'} body={sms.body!r} -> {sms.status}"


async def _serve_forever(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fake = FakeTwilio(
        args.port,
        host=args.host,
        account_sid=args.sid,
        auth_token=args.token,
        on_receive=lambda s: print(summary(s), flush=True),
    )
    async with fake:
        print(
            f"fake Twilio on {fake.api_url} (SMS_API_URL), account {fake.account_sid}; "
            "Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fake_twilio",
        description="Serve Twilio's Messages API locally and print one line per text.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9901, help="0 picks a free port")
    parser.add_argument("--sid", default=os.environ.get("SMS_ACCOUNT_SID"))
    parser.add_argument(
        "--token",
        default=os.environ.get("SMS_AUTH_TOKEN"),
        help="the auth token (default: $SMS_AUTH_TOKEN, else a random one)",
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m tools.fake_twilio --port 9901 [--sid AC... --token T]``: take texts locally
and print one line per text (the number masked)."""

from __future__ import annotations

import argparse
import os
import sys

from tools.fake_twilio.server import FakeTwilio, Sms, masked
from tools.local_server import serve_until_signalled


def summary(sms: Sms) -> str:
    return f"sms  to={masked(sms.to)} sid={sms.sid or '-'} body={sms.body!r} -> {sms.status}"


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
    return serve_until_signalled(
        lambda: FakeTwilio(
            args.port,
            host=args.host,
            account_sid=args.sid,
            auth_token=args.token,
            on_receive=lambda s: print(summary(s), flush=True),
        ),
        lambda fake: (
            f"fake Twilio on {fake.api_url} (SMS_API_URL), account {fake.account_sid}; Ctrl-C stops"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())

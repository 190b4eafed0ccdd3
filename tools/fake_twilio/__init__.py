"""A local Twilio for tests, the benchmark and ``make up``: ``FakeTwilio`` (server.py) is
an in-process HTTP server on 127.0.0.1 speaking the Messages API (basic auth, E.164 ``To``,
Twilio's JSON answers and error codes), recording every text, and able to send replies the
way Twilio does (form-encoded, with ``X-Twilio-Signature``)::

    async with FakeTwilio() as tw:
        ...point SMS_API_URL at tw.api_url, SMS_ACCOUNT_SID/SMS_AUTH_TOKEN at tw.account_sid
        and tw.auth_token...
        text = await tw.wait_for(to="+15551230001", timeout=5)
        r = await tw.reply(alerts_url + "/v1/sms/inbound", "+15551230001", text.from_, "4a")

Run it by hand (__main__.py)::

    python -m tools.fake_twilio --port 9901 [--sid AC... --token T]
"""

from __future__ import annotations

from tools.fake_twilio.server import FakeTwilio, Sms, is_e164, masked

__all__ = ["FakeTwilio", "Sms", "is_e164", "masked"]

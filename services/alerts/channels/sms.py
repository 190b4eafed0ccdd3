"""Texts through Twilio's Messages API (or anything speaking it: tools/fake_twilio).

``send_sms`` makes one POST and never retries: the caller schedules retries from the
result (``SendResult.permanent`` says when not to). Pointing ``SmsConfig.api_url`` at
https://api.twilio.com sends real texts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from services.alerts.channels.result import SendResult


@dataclass(frozen=True)
class SmsConfig:
    api_url: str  # e.g. https://api.twilio.com (no trailing path)
    account_sid: str
    auth_token: str = field(repr=False)  # never in a log line or a traceback
    from_: str  # E.164, the number the texts come from

    @property
    def messages_url(self) -> str:
        sid = quote(self.account_sid, safe="")
        return f"{self.api_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"


async def send_sms(http: httpx.AsyncClient, cfg: SmsConfig, to: str, body: str) -> SendResult:
    """POST one text (form fields To, From, Body; basic auth sid:token).

    2xx: sent (``provider_id`` is Twilio's message sid). Any other 4xx but 429 is
    permanent (Twilio refused this request: an invalid number, bad credentials); 429,
    5xx and network errors are transient. The timeout is the client's.
    """
    t0 = time.perf_counter()
    try:
        resp = await http.post(
            cfg.messages_url,
            data={"To": to, "From": cfg.from_, "Body": body},
            auth=(cfg.account_sid, cfg.auth_token),
            headers={"Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        # the type only: httpx messages can carry the request, and so the form fields
        return SendResult(False, None, type(exc).__name__, None, _ms(t0))
    status = resp.status_code
    payload = _json(resp)
    if 200 <= status < 300:
        sid = payload.get("sid")
        return SendResult(True, status, None, sid if isinstance(sid, str) else None, _ms(t0))
    code = payload.get("code")
    # Twilio's "message" often quotes the number ("The 'To' number +1... is not valid"):
    # keep only the status and the numeric error code.
    error = f"HTTP {status}" + (f" (Twilio error {code})" if isinstance(code, int) else "")
    permanent = 400 <= status < 500 and status != 429
    return SendResult(False, status, error, None, _ms(t0), permanent=permanent)


def _json(resp: httpx.Response) -> dict[str, object]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000

"""What one send on a channel came to (``SendResult``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SendResult:
    """One attempt to hand a message to a provider (Twilio, an SMTP server).

    ``permanent`` says a retry cannot help (a number Twilio refuses, a mailbox the server
    rejects with 5xx, bad credentials); a failure that is not permanent (429, 5xx, 4xx
    SMTP replies, the network) is worth retrying with backoff. ``error`` names the
    status and the provider's error code only: never the address or the text sent.
    """

    ok: bool
    status: int | None  # the HTTP status or SMTP reply code; None when none came back
    error: str | None
    provider_id: str | None  # Twilio's message sid, the e-mail's Message-ID
    duration_ms: float
    permanent: bool = False

    @property
    def transient(self) -> bool:
        """A failure worth retrying."""
        return not self.ok and not self.permanent

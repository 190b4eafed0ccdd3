"""Dashboard configuration, read once from the environment."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ProcessSettings


class DashboardSettings(ProcessSettings):
    """The dashboard reads the services' APIs only: no broker, and the database only
    for the dev clock (DEV_CLOCK=1)."""

    dashboard_port: int = Field(default=8000, ge=1, le=65535)
    # The services' APIs the page is built from (it reads no other service's tables):
    # *_URL when set, else the service's port on this machine.
    intake_port: int = Field(default=8001, ge=1, le=65535)
    scheduling_port: int = Field(default=8002, ge=1, le=65535)
    alerts_port: int = Field(default=8003, ge=1, le=65535)
    intake_url: str | None = None
    scheduling_url: str | None = None
    alerts_url: str | None = None
    upstream_timeout_s: float = Field(default=3.0, gt=0)
    # How often the alerts board refreshes itself in the browser (seconds).
    board_refresh_s: float = Field(default=2.0, gt=0, le=60)

    def upstreams(self) -> dict[str, str]:
        return {
            "intake": self.intake_url or f"http://127.0.0.1:{self.intake_port}",
            "scheduling": self.scheduling_url or f"http://127.0.0.1:{self.scheduling_port}",
            "alerts": self.alerts_url or f"http://127.0.0.1:{self.alerts_port}",
        }

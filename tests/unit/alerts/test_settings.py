"""The alerts service's settings that are checked at start (services/alerts/settings.py):
a watchdog fallback webhook that could never be POSTed refuses to start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.alerts.settings import AlertsSettings


def test_the_fallback_webhook_is_optional() -> None:
    assert AlertsSettings().watchdog_fallback_webhook_url is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9900/ops", ""),  # no allow-list: any host
        ("https://pager.example.org/ops", "*.example.org"),
        ("https://ops.test/hook", "ops.test,*.example.org"),
    ],
)
def test_a_fallback_on_the_allow_list_is_taken(url: str, allowed: str) -> None:
    s = AlertsSettings(watchdog_fallback_webhook_url=url, page_allowed_hosts=allowed)
    assert str(s.watchdog_fallback_webhook_url) == url


@pytest.mark.parametrize(
    ("url", "allowed", "says"),
    [
        ("https://evil.test/ops", "*.example.org", "PAGE_ALLOWED_HOSTS"),
        ("https://example.org/ops", "*.example.org", "PAGE_ALLOWED_HOSTS"),
        ("not a url", "", "valid URL"),
        ("ftp://ops.test/x", "", "URL scheme"),
    ],
)
def test_a_fallback_that_could_never_be_paged_refuses_to_start(
    url: str, allowed: str, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        AlertsSettings(watchdog_fallback_webhook_url=url, page_allowed_hosts=allowed)

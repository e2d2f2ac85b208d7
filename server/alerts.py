"""Score drop alerts: post the score_drops result to a Slack-compatible incoming webhook.

The message is Slack's incoming webhook JSON: `text` for notifications and clients without
blocks, and `blocks` with a heading, the accounts as a monospaced table and the dashboard link.
Mattermost and Rocket.Chat incoming webhooks read the same `text` field.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

from pulseboard.server.demo import format_table

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ("account", "score_before", "score_now", "score_drop", "status", "top_risk_signal")
# Slack's Block Kit reference limits a section block's text to 3,000 characters
# (api.slack.com/reference/block-kit/blocks#section), so the table stays below that.
MAX_TABLE_CHARS = 2_800
MAX_RETRIES = 10
NO_LINK = "No dashboard link: pass --dashboard-url."


class WebhookError(Exception):
    """The webhook rejected the message or could not be reached; the message names the cause."""


@dataclass(frozen=True)
class Drop:
    account: str
    score_before: float
    score_now: float
    score_drop: float
    status: str
    top_risk_signal: str


def webhook_host(url: str) -> str:
    """Return scheme and host of a webhook URL for logs and errors: its path is the secret."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_webhook_url(url: str) -> None:
    """Raise WebhookError unless the URL is http(s) with a host; the message leaves out the URL's secret path."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WebhookError(
            f"The webhook URL must start with http:// or https:// and name a host; got scheme {parts.scheme!r}. "
            "Give the full incoming webhook URL, e.g. https://hooks.slack.com/services/..."
        )


def build_message(
    drops: Sequence[Drop], *, project_id: str, min_drop: float, period_hours: int, dashboard_url: str
) -> dict[str, Any]:
    """Return the webhook JSON for a list of score drops, largest drop first."""
    noun = "account" if len(drops) == 1 else "accounts"
    period = f"{period_hours // 24} days" if period_hours % 24 == 0 and period_hours != 24 else f"{period_hours} hours"
    heading = (
        f"{len(drops)} {noun} in project {project_id} lost more than {min_drop:g} health points "
        f"in {period}."
    )
    table = _table(drops)
    link = f"Dashboard: {dashboard_url}" if dashboard_url else NO_LINK
    return {
        "text": f"{heading}\n```\n{table}\n```\n{link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```\n{table}\n```"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _link_text(dashboard_url)}},
        ],
    }


def _link_text(dashboard_url: str) -> str:
    if not dashboard_url:
        return NO_LINK
    return f"<{dashboard_url}|Open the health dashboard>"


def _table(drops: Sequence[Drop]) -> str:
    rows = [[getattr(drop, name) for name in TABLE_COLUMNS] for drop in drops]
    rows_shown = len(rows)
    table = format_table(list(TABLE_COLUMNS), rows)
    while len(table) > MAX_TABLE_CHARS and rows_shown > 1:
        rows_shown -= 1
        table = format_table(list(TABLE_COLUMNS), rows[:rows_shown]) + f"\n... and {len(rows) - rows_shown} more"
    return table


def post_webhook(
    url: str,
    payload: dict[str, Any],
    *,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """POST the payload as JSON; retry a 5xx response or a network error up to `retries` times.

    The waits double from backoff_s (1, 2, 4 s by default). Returns the final 2xx status; raises
    WebhookError on a 4xx response, or when the last try still fails.
    """
    check_webhook_url(url)
    if not 0 <= retries <= MAX_RETRIES:
        raise WebhookError(f"retries must be from 0 to {MAX_RETRIES}; got {retries}.")

    host = webhook_host(url)
    for attempt in range(retries + 1):
        status, failure = _post_once(url, payload, timeout_s, host)
        if failure is None:
            logger.info("posted alert to %s: HTTP %d", host, status)
            return status
        if attempt == retries:
            raise WebhookError(f"Posting to the webhook at {host} failed after {retries + 1} tries: {failure}")

        wait = backoff_s * 2**attempt
        logger.warning("webhook at %s failed (%s); retry %d of %d in %.1f s", host, failure, attempt + 1, retries, wait)
        sleep(wait)
    raise AssertionError("unreachable")


def _post_once(url: str, payload: dict[str, Any], timeout_s: float, host: str) -> tuple[int, str | None]:
    """Post once; return the status and None on success, or a failure worth retrying. Raise on 4xx."""
    try:
        response = httpx2.post(url, json=payload, timeout=timeout_s)
    except httpx2.TransportError as error:
        return 0, f"{type(error).__name__}: {error}"

    if response.is_success:
        return response.status_code, None
    body = response.text[:200]
    if 400 <= response.status_code < 500:
        raise WebhookError(
            f"The webhook at {host} rejected the message with HTTP {response.status_code}: {body!r}. "
            "Check that the URL is the full incoming webhook URL and that the webhook is still enabled."
        )
    return response.status_code, f"HTTP {response.status_code}: {body!r}"

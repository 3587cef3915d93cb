"""Alerts as Slack Block Kit messages, sent once per failure and once per recovery.

Why the state lives in ``verdicts``: a message is marked sent only after Slack accepted it,
so Slack being down loses nothing (the next delivery retries) and a rerun, a sensor tick
or a daemon restart never sends the same failure twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pantry.monitor.verdicts import Verdict, mark_sent, to_alert

log = logging.getLogger("pantry.alerts")
Post = Callable[[str, list[dict[str, Any]]], None]  # (fallback text, blocks); raises when Slack refuses


def ui_url() -> str:
    return os.environ.get("PANTRY_UI_URL", "http://localhost:3000").rstrip("/")


def blocks(verdict: Verdict, recovered: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """The message: asset, partition, check, score against threshold, a UI link and the report."""
    icon = ":white_check_mark: recovered" if recovered else ":red_circle: failed"
    title = f"{verdict.check} {icon}: {verdict.asset}" + (f" {verdict.partition}" if verdict.partition else "")
    link = (
        f"{ui_url()}/assets/{verdict.asset}?view=checks"
        if not verdict.asset.startswith("runs/")
        else ui_url() + "/runs"
    )
    fields = [
        {"type": "mrkdwn", "text": f"*Asset*\n`{verdict.asset}`"},
        {"type": "mrkdwn", "text": f"*Partition*\n{verdict.partition or '-'}"},
        {"type": "mrkdwn", "text": f"*Check*\n{verdict.check}"},
    ]
    details = verdict.details
    if details.get("score") is not None:
        name = str(details.get("score_name") or "score").capitalize()
        fields.append(
            {"type": "mrkdwn", "text": f"*{name} / threshold*\n{details['score']:.4g} / {details.get('threshold')}"}
        )
    if details.get("p_value") is not None:
        fields.append({"type": "mrkdwn", "text": f"*p-value*\n{details['p_value']:.3g}"})
    body: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": verdict.summary[:2900]}, "fields": fields},
    ]
    context = [f"<{link}|Open in Dagster>"]
    if details.get("report"):
        context.append(f"report: `{details['report']}`")
    body.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return title, body


def webhook_post(url: str) -> Post:
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(url, timeout=5)

    def post(text: str, message: list[dict[str, Any]]) -> None:
        response = client.send(text=text, blocks=message)
        if response.status_code != 200:
            raise OSError(f"Slack answered {response.status_code}: {response.body}")

    return post


def bot_post(token: str, channel: str) -> Post:
    from slack_sdk import WebClient

    client = WebClient(token=token, timeout=5)

    def post(text: str, message: list[dict[str, Any]]) -> None:
        client.chat_postMessage(channel=channel, text=text, blocks=message)

    return post


def post_from_env() -> Post | None:
    """``PANTRY_SLACK_WEBHOOK_URL``, or ``SLACK_BOT_TOKEN`` with ``PANTRY_SLACK_CHANNEL``; else None (log only)."""
    if url := os.environ.get("PANTRY_SLACK_WEBHOOK_URL"):
        return webhook_post(url)
    if (token := os.environ.get("SLACK_BOT_TOKEN")) and (channel := os.environ.get("PANTRY_SLACK_CHANNEL")):
        return bot_post(token, channel)
    return None


@dataclass(frozen=True)
class Delivery:
    sent: int
    recovered: int
    failed_to_send: int


def deliver(home: Path, post: Post | None) -> Delivery:
    """Send every new failure and every recovery once; what Slack refuses waits for the next call.

    Runs and the alerts sensor deliver at the same moments: a lock file makes one of them
    wait, so no alert leaves twice."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "alerts.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _deliver(home, post)


def _deliver(home: Path, post: Post | None) -> Delivery:
    failures, recoveries = to_alert(home)
    sent = recovered = failed = 0
    for verdict, state in [(v, "failing") for v in failures] + [(v, "recovered") for v in recoveries]:
        text, message = blocks(verdict, recovered=state == "recovered")
        if post is None:
            log.warning("alert (no Slack configured): %s - %s", text, verdict.summary)
        else:
            try:
                post(text, message)
            except Exception as err:  # noqa: BLE001 - Slack down or refusing: retry on the next delivery
                log.warning("Slack did not take the alert %r: %s; it will be sent on the next delivery", text, err)
                failed += 1
                continue
        mark_sent(home, verdict, state)
        if state == "failing":
            sent += 1
        else:
            recovered += 1
    return Delivery(sent, recovered, failed)

"""Slack as a Dagster resource: an incoming webhook (slack_sdk) or a bot token (dagster-slack).

Why a resource: tests point alerts at a local stand-in for Slack by configuration, and a
deployment chooses webhook or bot in its environment; the message and the "once per
failure" state stay in ``pantry.monitor``.
"""

import os
from pathlib import Path

import dagster as dg

from pantry.monitor.slack import Delivery, Post, deliver, webhook_post


class SlackAlerts(dg.ConfigurableResource):
    """``PANTRY_SLACK_WEBHOOK_URL``, or ``SLACK_BOT_TOKEN`` with ``PANTRY_SLACK_CHANNEL``; neither: log only."""

    home: str
    webhook_url: str | None = None
    bot_token: str | None = None
    channel: str | None = None
    api_url: str | None = None  # Slack's Web API base URL; None: slack.com (a test points it at a stand-in)

    @classmethod
    def from_env(cls, home: str) -> "SlackAlerts":
        return cls(
            home=home,
            webhook_url=os.environ.get("PANTRY_SLACK_WEBHOOK_URL"),
            bot_token=os.environ.get("SLACK_BOT_TOKEN"),
            channel=os.environ.get("PANTRY_SLACK_CHANNEL"),
        )

    def _post(self) -> Post | None:
        if self.webhook_url:
            return webhook_post(self.webhook_url)
        if self.bot_token and self.channel:
            from dagster_slack import SlackResource

            client = SlackResource(token=self.bot_token).get_client()
            if self.api_url:
                client.base_url = self.api_url
            channel = self.channel
            return lambda text, blocks: client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        return None

    def deliver(self) -> Delivery:
        return deliver(Path(self.home), self._post())


def send_alerts(context: dg.OpExecutionContext | dg.AssetCheckExecutionContext, alerts: SlackAlerts) -> None:
    """Send the failures a run has just judged, from the run itself: the alert leaves with
    the run, once per failure (the verdict store remembers what was sent); what Slack
    refuses waits for ``monitor_alerts_sensor``, the retry path. Never fails the run."""
    try:
        delivery = alerts.deliver()
    except Exception as err:  # noqa: BLE001 - an alert problem must not fail the materialization
        context.log.warning(f"alerts not sent: {err}; monitor_alerts_sensor will retry")
        return
    if delivery.sent or delivery.recovered:
        context.log.info(f"alerts sent: {delivery.sent} failure(s), {delivery.recovered} recovery(ies)")
    if delivery.failed_to_send:
        context.log.warning(f"{delivery.failed_to_send} alert(s) refused by Slack; monitor_alerts_sensor will retry")

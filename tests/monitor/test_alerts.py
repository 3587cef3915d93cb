"""Slack alerts through a local stand-in for the webhook: once per failure, one recovery, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pantry import Store
from pantry.monitor.slack import deliver, webhook_post
from pantry.monitor.verdicts import Verdict, record
from tests.conftest import SlackStandIn, run_cli_here
from tests.monitor.conftest import SHIFTED, THIN, build_monitored

FAIL = Verdict(
    "features/spend/amount_1d",
    "2024-03-11",
    "drift",
    False,
    "drifted: Wasserstein distance (normed) score 3.1 against threshold 0.1",
    details={"score": 3.1, "threshold": 0.1, "report": "/tmp/r.html"},
)
PASS = Verdict(FAIL.asset, FAIL.partition, "drift", True, "no drift", details={"score": 0.02, "threshold": 0.1})


def test_once_per_failure_then_one_recovery(tmp_path: Path, slack: SlackStandIn) -> None:
    post = webhook_post(slack.url)
    record(tmp_path, [FAIL])
    assert deliver(tmp_path, post).sent == 1
    for _ in range(3):  # ticks, reruns: the failure stands and is not sent again
        record(tmp_path, [FAIL])
        assert deliver(tmp_path, post).sent == 0
    assert len(slack.posts) == 1
    message = slack.posts[0]
    assert message["text"] == "drift :red_circle: failed: features/spend/amount_1d 2024-03-11"
    section = message["blocks"][1]
    assert "Wasserstein" in section["text"]["text"]
    assert {"type": "mrkdwn", "text": "*Score / threshold*\n3.1 / 0.1"} in section["fields"]
    context = message["blocks"][2]["elements"][0]["text"]
    assert "http://localhost:3000/assets/features/spend/amount_1d?view=checks" in context and "/tmp/r.html" in context
    record(tmp_path, [PASS])
    assert deliver(tmp_path, post).recovered == 1
    assert deliver(tmp_path, post).recovered == 0
    assert [t.split(":")[1] for t in slack.texts()] == ["red_circle", "white_check_mark"]
    record(tmp_path, [FAIL])  # failing again after a recovery is a new failure
    assert deliver(tmp_path, post).sent == 1 and len(slack.posts) == 3


def test_slack_down_loses_nothing(tmp_path: Path, slack: SlackStandIn) -> None:
    post = webhook_post(slack.url)
    record(tmp_path, [FAIL])
    slack.down = True
    delivery = deliver(tmp_path, post)
    assert (delivery.sent, delivery.failed_to_send) == (0, 1) and slack.posts == []
    slack.down = False
    assert deliver(tmp_path, post).sent == 1 and len(slack.posts) == 1
    assert deliver(tmp_path, post).sent == 0


def test_the_state_survives_a_new_process(tmp_path: Path, slack: SlackStandIn) -> None:
    record(tmp_path, [FAIL])
    code = "from pathlib import Path; from pantry.monitor.slack import deliver, webhook_post; import sys; print(deliver(Path(sys.argv[1]), webhook_post(sys.argv[2])).sent)"
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path), slack.url], capture_output=True, text=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs == ["1", "0"] and len(slack.posts) == 1


@pytest.mark.end_to_end
def test_pantry_drift_prints_exits_1_and_alerts_once(
    tmp_path: Path, slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The first call is a process of its own (its exit code and output as a shell sees
    them); the rest run the same ``main`` in this process, sparing an Evidently import each."""
    store: Store = build_monitored(tmp_path)
    env = {
        **os.environ,
        "PANTRY_DEFS": str(store.defs),
        "PANTRY_HOME": str(store.home),
        "PANTRY_SLACK_WEBHOOK_URL": slack.url,
        "COLUMNS": "160",
    }

    def drift(day: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pantry.api.cli", "drift", "spend", "--partition", day],
            env=env,
            capture_output=True,
            text=True,
        )

    def drift_here(day: str) -> subprocess.CompletedProcess:
        mine = {k: env[k] for k in ("PANTRY_DEFS", "PANTRY_HOME", "PANTRY_SLACK_WEBHOOK_URL", "COLUMNS")}
        code, out, err = run_cli_here(monkeypatch, capsys, ["drift", "spend", "--partition", day], mine)
        return subprocess.CompletedProcess([], code, out, err)

    first = drift(SHIFTED.isoformat())
    assert first.returncode == 1, first.stderr
    assert "amount_1d" in first.stdout and "drifted" in first.stdout and "Wasserstein" in first.stdout
    assert f"report: {store.home}/reports/features/spend/{SHIFTED}.html" in first.stdout.replace("\n", "")
    assert [t for t in slack.texts() if "drift" in t] == [
        f"drift :red_circle: failed: features/spend/amount_1d {SHIFTED}"
    ]
    again = drift_here(SHIFTED.isoformat())
    assert again.returncode == 1 and len(slack.posts) == 1  # the same failure: no second alert
    thin = drift_here(THIN.isoformat())
    assert thin.returncode == 0 and "skipped: too few values to judge" in thin.stdout.replace("\n", " ")
    # the thin day fails rows_and_nulls, which is alerted too (and blocks its push)
    assert any(f"rows_and_nulls :red_circle: failed: features/spend/amount_1d {THIN}" == t for t in slack.texts())
    bad = drift_here("yesterday")
    assert bad.returncode == 1 and "partition 'yesterday' is not a date" in bad.stderr and "Traceback" not in bad.stderr


def test_a_bot_token_posts_through_dagster_slack(tmp_path: Path, slack: SlackStandIn) -> None:
    from pantry_dagster.resources.alerts import SlackAlerts

    alerts = SlackAlerts(home=str(tmp_path), bot_token="xoxb-test", channel="#pantry-alerts", api_url=slack.api_url)
    record(tmp_path, [FAIL])
    assert alerts.deliver().sent == 1 and alerts.deliver().sent == 0
    [message] = slack.posts
    assert message["channel"] == "#pantry-alerts" and message["authorization"] == "Bearer xoxb-test"
    assert message["text"] == "drift :red_circle: failed: features/spend/amount_1d 2024-03-11"
    assert message["blocks"][0]["type"] == "header"


def test_without_slack_alerts_are_logged(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    import logging

    record(tmp_path, [FAIL])
    with caplog.at_level(logging.WARNING, logger="pantry.alerts"):
        assert deliver(tmp_path, None).sent == 1
    assert "alert (no Slack configured): drift :red_circle: failed: features/spend/amount_1d 2024-03-11" in caplog.text

"""Alerts: failed checks, late partitions and failed runs go to Slack, once per failure.

Why sensors that only record and deliver: the checks judge inside the runs (assets/checks.py)
and write their verdicts; freshness is judged by Dagster's time-partition freshness checks
under their own sensor. ``monitor_alerts_sensor`` turns freshness evaluations into
verdicts, then sends every new failure and every recovery once (the state is in
``PANTRY_HOME/monitor.sqlite``, so ticks and restarts never repeat an alert), and
``run_failure_alert`` records each failed run.
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from pantry.monitor.verdicts import Verdict, record
from pantry.settings import sensor_seconds
from pantry_dagster.resources.alerts import SlackAlerts

FRESHNESS_DEADLINE = "0 2 * * *"  # a day's partition is late when it is not materialized by 02:00 UTC the next day


def build_freshness_checks(assets: Sequence[dg.AssetsDefinition]) -> tuple[list, dg.SensorDefinition]:
    """Dagster's time-partition freshness checks for every daily asset, evaluated under the daemon."""
    checks = list(dg.build_time_partition_freshness_checks(assets=list(assets), deadline_cron=FRESHNESS_DEADLINE))
    sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=checks, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
    )
    return checks, sensor


def freshness_verdicts(instance: dg.DagsterInstance, checks: Sequence[dg.AssetChecksDefinition]) -> list[Verdict]:
    """The latest evaluation of each freshness check, as a verdict (asset, no partition, 'freshness')."""
    keys = [key for check in checks for key in check.check_keys]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    verdicts = []
    for key, execution in latest.items():
        event = execution.event if execution is not None else None
        evaluation = event.dagster_event.event_specific_data if event and event.dagster_event else None
        if evaluation is None or not hasattr(evaluation, "passed"):
            continue  # planned or running: no verdict yet
        metadata = {k: getattr(v, "value", v) for k, v in (evaluation.metadata or {}).items()}
        asset = "/".join(key.asset_key.path)
        summary = (
            "the latest partition arrived in time"
            if evaluation.passed
            else f"late: the latest partition was not materialized by its deadline ({FRESHNESS_DEADLINE} UTC)"
        )
        verdicts.append(Verdict(asset, "", "freshness", evaluation.passed, summary, details=metadata))
    return verdicts


def build_alert_sensors(freshness_checks: Sequence[dg.AssetChecksDefinition]) -> list[dg.SensorDefinition]:
    @dg.sensor(
        name="monitor_alerts_sensor",
        minimum_interval_seconds=sensor_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends failed checks, late partitions and failed runs to Slack, once per failure, one recovery.",
    )
    def monitor_alerts_sensor(context: dg.SensorEvaluationContext, alerts: SlackAlerts) -> dg.SkipReason:
        record(Path(alerts.home), freshness_verdicts(context.instance, freshness_checks))
        delivery = alerts.deliver()
        return dg.SkipReason(
            f"{delivery.sent} new failure(s) and {delivery.recovered} recovery(ies) sent; "
            f"{delivery.failed_to_send} waiting for Slack"
        )

    @dg.run_failure_sensor(  # ticks as the other alert sensors do (Dagster's default is every 30 s)
        name="run_failure_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=False,
        minimum_interval_seconds=sensor_seconds(),
    )
    def run_failure_alert(context: dg.RunFailureSensorContext, alerts: SlackAlerts) -> None:
        run = context.dagster_run
        message = context.failure_event.message or "the run failed"
        record(
            Path(alerts.home),
            [Verdict(f"runs/{run.job_name}", run.run_id, "run", False, message[:2000], details={"run_id": run.run_id})],
        )
        alerts.deliver()

    return [monitor_alerts_sensor, run_failure_alert]

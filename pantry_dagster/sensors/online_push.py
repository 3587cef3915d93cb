"""``online_push_sensor``: every new partition of an ``online: true`` view goes to Redis.

Why a sensor with a cursor and a job: the sensor only decides what is new (materializations
after the stored event id, whether from a schedule, a sensor or a backfill); the push runs
as a job, so the UI shows each push with its partitions and key counts, and a failed push
is retried like any run. After downtime, the first tick finds every partition it missed.
Partitions are pushed oldest first; Redis's newer-wins script makes the order safe anyway.
"""

import json

import dagster as dg

from pantry.settings import sensor_seconds
from pantry_dagster.keys import feature_key
from pantry_dagster.resources.online import OnlineStore

JOB = "online_push"


class PushConfig(dg.Config):
    view: str
    partitions: list[str]


@dg.op(description="Push feature view partitions into Redis, oldest first.")
def push_partitions(context: dg.OpExecutionContext, config: PushConfig, online: OnlineStore) -> dict:
    store = online.store()
    counts = {}
    for partition in sorted(set(config.partitions)):
        counts[partition] = store.push_online(config.view, partition)
        context.log.info(f"pushed {config.view} partition {partition}: {counts[partition]} keys written")
    context.add_output_metadata(
        {"view": config.view, "partitions": len(counts), "keys_written": sum(counts.values()), "by_partition": counts}
    )
    return counts


@dg.job(name=JOB, description="Push feature view partitions into the online store (Redis).")
def online_push_job() -> None:
    push_partitions()


def build_online_push_sensor(online_views: dict[str, str]) -> dg.SensorDefinition:
    """``online_views``: view name -> the feature whose materializations stand for the view."""

    @dg.sensor(
        name="online_push_sensor",
        job=online_push_job,
        minimum_interval_seconds=sensor_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def online_push_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests = []
        for view, feature in sorted(online_views.items()):
            after = cursor.get(view)
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=feature_key(view, feature), after_storage_id=after),
                limit=10_000,
                ascending=True,
            ).records
            if not records:
                continue
            partitions = sorted({r.partition_key for r in records if r.partition_key})
            cursor[view] = max(r.storage_id for r in records)
            if partitions:
                requests.append(
                    dg.RunRequest(
                        run_key=f"{view}:{cursor[view]}",
                        run_config=dg.RunConfig(ops={"push_partitions": PushConfig(view=view, partitions=partitions)}),
                        tags={
                            "pantry/view": view,
                            "pantry/partitions": f"{partitions[0]}..{partitions[-1]}"
                            if len(partitions) > 1
                            else partitions[0],
                        },
                    )
                )
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return online_push_sensor

"""Source schema checks on real Parquet files: missing or retyped columns fail, new ones warn, the push is refused."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pantry import PantryError, Store
from pantry.api.store import BrokenDefinitions
from pantry.monitor.checks import schema_check
from pantry.monitor.verdicts import record
from pantry.offline.sources import connect, source_schema
from pantry_dagster.assets.location import build_definitions
from tests.conftest import RedisServer, dagster_instance
from tests.monitor.conftest import CALM, build_monitored, events


def judge(store: Store):  # noqa: ANN201
    model = store.definitions.semantic_models["events"]
    con = connect(store.definitions, models=[model])
    try:
        verdict = schema_check(store, model, source_schema(con, model))
    finally:
        con.close()
    record(store.home, [verdict])  # as every caller does: the push reads the record
    return verdict


def test_missing_retyped_and_new_columns(tmp_path: Path, redis_server: RedisServer, dagster_home: Path) -> None:
    built = build_monitored(tmp_path)
    store = Store(defs=built.defs, home=built.home, redis_url=redis_server.url)
    first = judge(store)
    assert first.passed and first.severity == "ERROR" and "columns the definitions use are there" in first.summary
    parquet = store.defs / "data" / "events.parquet"
    rows = events()

    rows.assign(channel="web").to_parquet(parquet, index=False)
    # the Dagster check on the source: passed, with a warning (once: the new column is then known)
    defs = build_definitions(str(store.defs), str(store.home), redis_server.url)
    with dagster_instance(dagster_home) as instance:
        result = defs.resolve_job_def("observe_sources").execute_in_process(instance=instance)
        [evaluation] = [
            e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        assert evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
        assert evaluation.metadata["summary"].value == "new columns: channel"
    again = judge(Store(defs=store.defs, home=store.home))
    assert again.passed and again.severity == "ERROR"  # ERROR is the severity a failure would have; no warning now

    rows.assign(amount=rows["amount"].astype(str)).to_parquet(parquet, index=False)
    # a sum over text no longer binds: the measure and the view on it are left out, with a warning
    with pytest.warns(BrokenDefinitions, match="amount"):
        retyped = judge(Store(defs=store.defs, home=store.home))
    assert not retyped.passed and retyped.summary == "amount changed from DOUBLE to VARCHAR"
    with pytest.raises(PantryError) as err, pytest.warns(BrokenDefinitions):
        Store(defs=store.defs, home=store.home, redis_url=redis_server.url).push_online("spend", CALM)
    assert "feature view 'spend' is left out" in str(err.value) and "sum(VARCHAR)" in str(err.value)

    rows.drop(columns=["amount"]).to_parquet(parquet, index=False)
    with pytest.raises(PantryError, match="column 'amount' is not in source"):  # strict validation refuses it
        Store(defs=store.defs, home=store.home).validate()

"""A semantic model whose source is Parquet on S3, read over HTTP from a real moto_server."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pandas as pd
import pytest

from pantry import PantryError, Store
from tests.conftest import free_port

DEFS = """
semantic_models:
  - name: events
    source: s3://lake/events/events.parquet
    defaults: {agg_time_dimension: at}
    entities: [{name: event, type: primary, expr: id}]
    dimensions:
      - {name: at, type: time, type_params: {time_granularity: day}}
      - {name: kind, type: categorical}
    measures:
      - {name: events, agg: sum, expr: "1"}
      - {name: value, agg: sum, expr: value}
metrics:
  - {name: events, type: simple, type_params: {measure: events}}
  - {name: value, type: simple, type_params: {measure: value}}
"""


def test_s3_source_is_queried(s3_endpoint: str, make_defs: Callable[[dict[str, str]], Path], tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="lake")
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]),
            "kind": ["a", "b", "a"],
            "value": [1.5, 2.0, 4.0],
        }
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    s3.put_object(Bucket="lake", Key="events/events.parquet", Body=buffer.getvalue())
    store = Store(defs=make_defs({"events.yaml": DEFS}), home=tmp_path / "home")
    got = store.query("events,value", group_by="metric_time__day,event__kind")
    assert got.values.tolist() == [
        [pd.Timestamp("2024-01-01"), "a", 1, 1.5],
        [pd.Timestamp("2024-01-01"), "b", 1, 2.0],
        [pd.Timestamp("2024-01-02"), "a", 1, 4.0],
    ]


def test_unreachable_s3_is_a_clear_error_after_bounded_retries(
    make_defs: Callable[[dict[str, str]], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens here
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    store = Store(defs=make_defs({"events.yaml": DEFS}), home=tmp_path / "home")
    started = time.monotonic()
    with pytest.raises(PantryError) as info:
        store.query("events")
    assert time.monotonic() - started < 60
    message = str(info.value)
    assert message.startswith(
        f"metrics_defs/events.yaml: semantic model 'events': source 's3://lake/events/events.parquet' cannot be read from http://127.0.0.1:{port} after 3 attempts"
    )
    assert "(check the URI, AWS_ENDPOINT_URL and the credentials)" in message

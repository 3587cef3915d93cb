"""The engines' servers, shared by a module's tests and stopped at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.spark_cluster import SparkCluster, java_missing


@pytest.fixture(scope="module")
def spark_cluster() -> Iterator[SparkCluster]:
    """A real standalone cluster: a master, two one-core workers and a Spark Connect server."""
    missing = java_missing()
    if missing:
        pytest.skip(missing)
    cluster = SparkCluster()
    yield cluster
    cluster.stop()

"""The asset keys of metrics and features: ``metrics/<name>``, ``features/<view>/<feature>``.

Why a leaf module: the assets define them and the sensors watch them; a sensor importing
``assets/`` made the layers run sideways.
"""

from __future__ import annotations

import dagster as dg


def metric_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["metrics", name])


def feature_key(view: str, feature: str) -> dg.AssetKey:
    return dg.AssetKey(["features", view, feature])

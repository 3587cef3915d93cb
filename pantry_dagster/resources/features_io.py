"""Loads a feature asset partition as a DataFrame, for ``defs.get_asset_value_loader()``.

Why an IO manager that writes nothing: the view's multi_asset writes its tiles in one
transaction, for all features at once. Loading is where an IO manager helps: training
code asks Dagster for ``features/<view>/<feature>`` at partition D and gets the values
at stamp(D), computed by the same point-in-time read as ``Store.get_historical_features``.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from pantry import Store
from pantry.compile.view_plan import stamp_of
from pantry_dagster.resources.offline import default_defs, default_home


class FeatureValuesIOManager(dg.ConfigurableIOManager):
    defs: str = default_defs()
    home: str = default_home()
    offline_uri: str = ""  # empty: PANTRY_OFFLINE_URI, else the DuckDB file under ``home``

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        return None  # the asset wrote its tiles itself, atomically

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        _, view, feature = context.asset_key.path
        window = context.asset_partitions_time_window
        first = stamp_of(window.start.date())
        last = stamp_of((window.end - pd.Timedelta(days=1)).date())
        store = Store(defs=self.defs, home=self.home, offline_uri=self.offline_uri or None)
        return store.get_historical_features(None, [f"{view}:{feature}"], start_time=first, end_time=last)

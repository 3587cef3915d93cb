"""Real Evidently on generated data: a shifted day is flagged, a calm day is not, a thin day is skipped."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from pantry import PantryError, Store
from pantry.monitor.checks import view_partition_checks
from pantry.monitor.drift import view_drift
from tests.monitor.conftest import CALM, DAY0, SHIFTED, THIN


@pytest.fixture(scope="module", autouse=True)
def each_offline_store(offline_uri: str | None) -> str | None:
    """Every test here runs against the local DuckDB file and against S3."""
    return offline_uri


def test_a_shifted_day_drifts_and_a_calm_day_does_not(monitored: Store) -> None:
    shifted = view_drift(monitored, "spend", SHIFTED)
    assert shifted.reference == tuple(SHIFTED - timedelta(days=k) for k in range(7, 0, -1))
    amount = shifted.feature("amount_1d")
    assert amount.drifted and amount.score is not None and amount.score > 0.1
    assert amount.method.startswith("Wasserstein")  # auto: Evidently's choice for 200 vs 1400 numbers
    assert (amount.current_rows, amount.reference_rows) == (200, 1400)
    assert not shifted.feature("kind_last").drifted  # kinds are drawn the same way every day
    assert shifted.report is not None and shifted.report.exists()
    assert "amount_1d" in shifted.report.read_text() and "<html" in shifted.report.read_text()[:300]
    # the reference of the calm day holds the shifted day; the calm day itself is like the others
    calm = view_drift(monitored, "spend", CALM - timedelta(days=2))
    assert calm.drifted == []


def test_a_thin_day_is_skipped_with_its_reason_and_fails_rows(monitored: Store) -> None:
    verdicts, drift = view_partition_checks(monitored, "spend", THIN)
    assert all(f.skipped and "too few values to judge: 5 in the partition" in f.skipped for f in drift.features)
    assert drift.report is None
    rows = {v.asset: v for v in verdicts if v.check == "rows_and_nulls"}
    assert not rows["features/spend/amount_1d"].passed
    assert "5 rows, below 50% of the reference's" in rows["features/spend/amount_1d"].summary
    drifts = [v for v in verdicts if v.check == "drift"]
    assert all(v.passed and v.summary.startswith("skipped: too few values") for v in drifts)


def test_the_first_partition_has_no_reference(monitored: Store) -> None:
    verdicts, drift = view_partition_checks(monitored, "spend", DAY0)
    assert drift.reference == () and drift.report is None
    assert all("no reference yet" in (f.skipped or "") for f in drift.features)
    assert all(v.passed for v in verdicts)


def test_a_named_method_is_used_as_given(monitored: Store, tmp_path) -> None:  # noqa: ANN001
    text = (monitored.defs / "defs.yaml").read_text().replace("method: auto", "method: psi")
    defs = tmp_path / "metrics_defs"
    defs.mkdir()
    (defs / "defs.yaml").write_text(text)
    (defs / "data").symlink_to(monitored.defs / "data")
    store = Store(defs=defs, home=monitored.home, offline_uri=monitored.offline_uri)
    drift = view_drift(store, "spend", SHIFTED)
    assert {f.method for f in drift.features} == {"psi"} and drift.feature("amount_1d").drifted


def test_errors_name_what_is_wrong(monitored: Store) -> None:
    with pytest.raises(PantryError, match="'spnd' is not a feature view"):
        view_drift(monitored, "spnd", SHIFTED)
    with pytest.raises(PantryError, match="'spnd' is not a feature view .did you mean 'spend'"):
        view_partition_checks(monitored, "spnd", SHIFTED)  # what `pantry drift` runs
    with pytest.raises(PantryError, match="partition 2030-01-01 of feature view 'spend' is not materialized"):
        view_partition_checks(monitored, "spend", pd.Timestamp("2030-01-01").date())
    with pytest.raises(PantryError, match="partition 2030-01-01 of feature view 'spend' is not materialized"):
        view_drift(monitored, "spend", pd.Timestamp("2030-01-01").date())


def test_features_and_metrics_on_one_measure_agree(tmp_path) -> None:  # noqa: ANN001
    from pantry.monitor.checks import consistency_checks, consistency_pairs
    from pantry.monitor.drift import partition_frames
    from tests.monitor.conftest import build_monitored, events

    store = build_monitored(tmp_path)
    assert consistency_pairs(store.definitions, "spend") == [("amount_1d", "amount")]
    frame, _, _ = partition_frames(store, "spend", SHIFTED, ["amount_1d"], 7)
    current = {"amount_1d": {"sum": float(frame["amount_1d"].sum())}}  # the training read, summed by pandas
    [verdict] = consistency_checks(store, "spend", {SHIFTED: current})
    rows = events()
    by_hand = rows[rows["at"].dt.date == SHIFTED]["amount"].sum()
    assert verdict.check == "consistent_with_amount" and verdict.passed
    assert verdict.details["metric_total"] == pytest.approx(by_hand)
    assert verdict.details["feature_total"] == pytest.approx(by_hand)
    # the source changes after the tiles were written: the stored feature and the live metric now disagree
    changed = rows.assign(amount=rows["amount"] + 1.0)
    changed.to_parquet(store.defs / "data" / "events.parquet", index=False)
    [stale] = consistency_checks(
        Store(defs=store.defs, home=store.home, offline_uri=store.offline_uri), "spend", {SHIFTED: current}
    )
    assert not stale.passed
    assert (
        "feature spend:amount_1d" in stale.summary
        and "metric 'amount'" in stale.summary
        and "DISAGREE" in stale.summary
    )
    assert stale.details["metric_total"] == pytest.approx(by_hand + 200)


def test_a_metric_value_outside_its_reference_band_fails(monitored: Store) -> None:
    from pantry.monitor.checks import metric_partition_checks
    from tests.monitor.conftest import events

    rows = events()
    daily = rows.groupby(rows["at"].dt.date)["amount"].sum()

    def value_of(day) -> tuple[bool, str, dict]:  # noqa: ANN001
        [verdict] = [v for v in metric_partition_checks(monitored, "amount", day) if v.check == "value"]
        return verdict.passed, verdict.summary, verdict.details

    passed, summary, details = value_of(SHIFTED)
    reference = daily[[SHIFTED - timedelta(days=k) for k in range(1, 8)]]
    width = reference.max() - reference.min()
    assert details["band"] == pytest.approx((reference.min() - width, reference.max() + width))
    assert details["value"] == pytest.approx(daily[SHIFTED]) and daily[SHIFTED] > reference.max() + width
    assert not passed and "lies outside" in summary
    assert value_of(SHIFTED - timedelta(days=1))[0]  # a calm day is inside its band
    # the shifted day two days earlier widens the thin day's band past zero: the value rule lets it
    # through, and the features' rows_and_nulls is what stops the thin day (see the test above)
    passed, _, details = value_of(THIN)
    assert passed and details["band"][0] < daily[THIN] < 100

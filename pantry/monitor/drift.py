"""Feature drift with Evidently: a partition's values against the previous partitions'.

Why values at stamps: what a model sees is the feature value at a stamp for the entities
present, so that is what is compared: the partition's stamp against the stamps of the
previous ``reference_partitions`` materialized partitions (the reference), per feature.
Why one Evidently report per view and partition: Evidently's cost is mostly fixed per
report, so all of a view's features are judged in one run, and one HTML report per
partition holds them all (``PANTRY_HOME/reports/features/<view>/<partition>.html``).

Why a sample: Evidently's cost grows with the rows (about 10 s for 25 features of 100k
entities against 700k reference values), while a drift distance over 10,000 values is as
telling as over a million. So at most ``sample_rows`` values of the partition, and as many
per reference partition, are judged: a seeded random sample, the same on every run.

Too little data (a reference of fewer than ``reference_partitions`` partitions, or fewer
than ``min_rows`` non-null values on either side) is a skip with its reason, never a
failure: a thin reference makes a statistical test cry wolf.

Why ``auto`` asks two questions: Evidently's default is a distance (normed Wasserstein,
Jensen-Shannon) against ``threshold``. On a day of a few hundred values the distance's own
noise reaches 0.1: on stationary data 10 of 196 feature-days alarmed. A p-value alone has
the opposite fault: with 10,000 values it flags changes too small to matter. So a feature
drifts when the change is both *material* (the distance reaches ``threshold``) and
*significant* (Kolmogorov-Smirnov for numbers, chi-square for categories, below
``false_alarm_rate`` split across the view's features, Bonferroni): a view partition of
calm data alarms with a probability of at most ``false_alarm_rate``. An explicit
``method`` is Evidently's test alone, as the user asked.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pantry.errors import PantryError, did_you_mean

if TYPE_CHECKING:
    from pantry.api.store import Store
    from pantry.spec.model import FeatureView

AUTO = "auto"
DEFAULTS = {
    "method": AUTO,
    "threshold": 0.1,
    "reference_partitions": 7,
    "min_rows": 30,
    "sample_rows": 10_000,
    "false_alarm_rate": 0.01,
}
# Evidently's tests whose score is a p-value (drift when it is small); the others are distances
P_VALUE_TESTS = {"ks", "chisquare", "z", "anderson", "cramer_von_mises", "es", "fisher_exact", "g_test"}
P_VALUE_TESTS |= {"mannw", "t_test", "empirical_mmd", "TVD"}


@dataclass(frozen=True)
class DriftSettings:
    """A view's ``drift: {method, threshold, reference_partitions, min_rows}``."""

    method: str = AUTO
    threshold: float = 0.1
    reference_partitions: int = 7
    min_rows: int = 30
    sample_rows: int = 10_000  # values judged per partition; the reference gets as many per partition
    false_alarm_rate: float = 0.01  # auto: a calm view partition alarms at most this often

    @classmethod
    def of(cls, view: FeatureView) -> DriftSettings:
        unknown = sorted(set(view.drift or {}) - set(DEFAULTS))
        if unknown:
            raise view.origin.error(
                f"drift has no setting '{unknown[0]}'",
                definition=f"feature view '{view.name}'",
                field=f"drift.{unknown[0]}",
                hint=did_you_mean(unknown[0], list(DEFAULTS)) or f"the settings are: {', '.join(DEFAULTS)}",
            )
        given = {**DEFAULTS, **(view.drift or {})}
        try:
            settings = cls(
                str(given["method"]).lower(),
                float(given["threshold"]),
                int(given["reference_partitions"]),
                int(given["min_rows"]),
                int(given["sample_rows"]),
                float(given["false_alarm_rate"]),
            )
        except (TypeError, ValueError) as err:
            raise view.origin.error(
                f"drift settings do not parse: {err}",
                definition=f"feature view '{view.name}'",
                field="drift",
                hint="write drift: {method: auto, threshold: 0.1, reference_partitions: 7, min_rows: 30, sample_rows: 10000}",
            ) from None
        if not 0 < settings.false_alarm_rate < 1:
            raise view.origin.error(
                f"drift.false_alarm_rate must lie between 0 and 1, not {settings.false_alarm_rate}",
                definition=f"feature view '{view.name}'",
                field="drift.false_alarm_rate",
                hint="write false_alarm_rate: 0.01 (one calm partition in a hundred may alarm)",
            )
        return settings


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict: drifted, not drifted, or skipped with a reason."""

    feature: str
    score: float | None
    method: str | None
    threshold: float
    drifted: bool
    current_rows: int
    reference_rows: int
    skipped: str | None = None
    p_value: float | None = None  # auto: the significance test's p-value beside the distance
    threshold_p: float | None = None  # auto: the p-value below which the change is significant

    @property
    def score_name(self) -> str:
        """What ``score`` is: a p-value (drift when small) or a distance (drift when large)."""
        return "p-value" if self.method and "p_value" in self.method.replace("-", "_") else "distance"

    @property
    def verdict(self) -> str:
        return "skipped" if self.skipped else ("drifted" if self.drifted else "ok")


@dataclass
class ViewDrift:
    """A view partition's drift: every feature's verdict and the report that shows them."""

    view: str
    partition: date
    reference: tuple[date, ...]
    features: list[FeatureDrift] = field(default_factory=list)
    report: Path | None = None

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.drifted]

    def feature(self, name: str) -> FeatureDrift:
        return next(f for f in self.features if f.feature == name)


def report_path(home: Path, view: str, partition: date) -> Path:
    return Path(home) / "reports" / "features" / view / f"{partition.isoformat()}.html"


def _kind(series: pd.Series) -> str:
    return (
        "numerical"
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        else "categorical"
    )


def _too_few(current: int, reference: int, settings: DriftSettings) -> str | None:
    """Why a feature cannot be judged, or None when both sides have ``min_rows`` values."""
    if current >= settings.min_rows and reference >= settings.min_rows:
        return None
    return (
        f"too few values to judge: {current} in the partition and {reference} in the reference, "
        f"at least {settings.min_rows} each are needed (drift.min_rows)"
    )


def _sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """At most ``rows`` rows, drawn with a fixed seed so that a rerun judges the same values."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=0)


def quick_judge(
    current: pd.DataFrame, reference: pd.DataFrame, features: list[str], settings: DriftSettings
) -> list[FeatureDrift]:
    """The same verdicts as ``judge``, from Evidently's stat tests called directly: no report.

    Why: a year's backfill needs a verdict for each of its 365 partitions, and an Evidently
    Report costs a quarter of a second before it computes anything, while its stat test
    (the one a Report would pick: same registry, same sample, same threshold) takes about
    a millisecond. The HTML report is written by ``judge`` for the partitions a person will
    open: the last of a run, and those that drifted.
    """
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    current = _sample(current, settings.sample_rows)
    reference = _sample(reference, settings.sample_rows * settings.reference_partitions)
    out = []
    for name in features:
        cur, ref = current[name].dropna(), reference[name].dropna()
        if reason := _too_few(len(cur), len(ref), settings):
            out.append(FeatureDrift(name, None, None, settings.threshold, False, len(cur), len(ref), reason))
            continue
        if _kind(pd.concat([cur, ref])) == "numerical":
            kind, cur, ref = ColumnType.Numerical, cur.astype("float64"), ref.astype("float64")
        else:
            kind, cur, ref = ColumnType.Categorical, cur.astype(str), ref.astype(str)
        if settings.method != AUTO:
            test = get_stattest(ref, cur, kind, settings.method)
            result = test(ref, cur, kind, settings.threshold)
            out.append(
                FeatureDrift(
                    name,
                    float(result.drift_score),
                    test.display_name,
                    settings.threshold,
                    bool(result.drifted),
                    len(cur),
                    len(ref),
                )
            )
            continue
        numeric = kind == ColumnType.Numerical
        distance = get_stattest(ref, cur, kind, "wasserstein" if numeric else "jensenshannon")
        measured = distance(ref, cur, kind, settings.threshold)
        alpha = settings.false_alarm_rate / max(1, len(features))
        significance = get_stattest(ref, cur, kind, "ks" if numeric else "chisquare")
        tested = significance(ref, cur, kind, alpha)
        p_value = float(tested.drift_score)
        out.append(
            FeatureDrift(
                name,
                float(measured.drift_score),
                distance.display_name,
                settings.threshold,
                bool(measured.drifted) and p_value < alpha,
                len(cur),
                len(ref),
                p_value=p_value,
                threshold_p=alpha,
            )
        )
    return out


def judge(
    current: pd.DataFrame, reference: pd.DataFrame, features: list[str], settings: DriftSettings, report: Path | None
) -> list[FeatureDrift]:
    """Evidently's ValueDrift per feature with enough rows; the HTML report saved to ``report``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    verdicts: dict[str, FeatureDrift] = {}
    judged: list[str] = []
    counts: dict[str, tuple[int, int]] = {}
    for name in features:
        cur, ref = current[name].dropna(), reference[name].dropna()
        if reason := _too_few(len(cur), len(ref), settings):
            verdicts[name] = FeatureDrift(name, None, None, settings.threshold, False, len(cur), len(ref), reason)
        else:
            judged.append(name)
            counts[name] = (len(cur), len(ref))  # the rows there are; a sample of them is judged
    if judged:
        numeric = [n for n in judged if _kind(pd.concat([current[n], reference[n]])) == "numerical"]
        current = _sample(current, settings.sample_rows)
        reference = _sample(reference, settings.sample_rows * settings.reference_partitions)
        definition = DataDefinition(
            numerical_columns=numeric, categorical_columns=[n for n in judged if n not in numeric]
        )

        def frame(values: pd.DataFrame) -> pd.DataFrame:
            out = values[judged].copy()
            for n in judged:  # Evidently wants plain dtypes: nullable ints become floats, the rest text
                out[n] = out[n].astype("float64") if n in numeric else out[n].astype("string").astype(object)
            return out

        def method(name: str) -> str | None:
            if settings.method != AUTO:
                return settings.method
            return "wasserstein" if name in numeric else "jensenshannon"  # the distance auto reports

        metrics = [ValueDrift(column=n, method=method(n), threshold=settings.threshold) for n in judged]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snapshot = Report(metrics, include_tests=True).run(
                Dataset.from_pandas(frame(current), data_definition=definition),
                Dataset.from_pandas(frame(reference), data_definition=definition),
            )
        results = snapshot.dict()
        scores: dict[str, tuple[float, str]] = {}
        for metric in results["metrics"]:
            config = metric["config"]
            scores[config["column"]] = (float(metric["value"]), str(config.get("method")))
        failed = {t["metric_config"]["params"]["column"] for t in results["tests"] if str(t["status"]).endswith("FAIL")}
        if settings.method == AUTO:  # the verdict is quick_judge's two questions; the report shows the distance
            for verdict in quick_judge(current, reference, judged, settings):
                verdicts[verdict.feature] = replace(
                    verdict, current_rows=counts[verdict.feature][0], reference_rows=counts[verdict.feature][1]
                )
        else:
            for name in judged:
                score, used = scores[name]
                verdicts[name] = FeatureDrift(
                    name,
                    score,
                    used,
                    settings.threshold,
                    name in failed,
                    *counts[name],
                )
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            snapshot.save_html(str(report))
    return [verdicts[n] for n in features]


def partition_frames(
    store: Store, view: str, partition: date, names: list[str], reference_partitions: int
) -> tuple[pd.DataFrame, pd.DataFrame | None, tuple[date, ...]]:
    """The values at the partition's stamp, at the previous partitions' stamps, and those partitions."""
    from pantry.compile.view_plan import stamp_of

    if view not in store.definitions.views:
        raise PantryError(
            f"'{view}' is not a feature view", field="view", hint=did_you_mean(view, store.definitions.views)
        )
    done = store.materialized_partitions(view)
    if partition not in done:
        raise PantryError(
            f"partition {partition} of feature view '{view}' is not materialized",
            field="partition",
            hint="materialize it first (Dagster, or 'dagster asset materialize --partition ...')",
        )
    earlier = tuple(d for d in done if d < partition)[-reference_partitions:]
    refs = [f"{view}:{n}" for n in names]
    current = store.get_historical_features(None, refs, start_time=stamp_of(partition), end_time=stamp_of(partition))
    if not earlier:
        return current, None, earlier
    reference = store.get_historical_features(
        None, refs, start_time=stamp_of(earlier[0]), end_time=stamp_of(earlier[-1])
    )
    return current, reference, earlier


def not_judged(
    names: list[str],
    settings: DriftSettings,
    earlier: tuple[date, ...],
    current: pd.DataFrame,
    reference: pd.DataFrame | None,
) -> list[FeatureDrift]:
    """Every feature skipped: no reference yet, or fewer than ``reference_partitions`` of it."""
    reason = (
        "no reference yet: this is the view's first materialized partition"
        if not earlier
        else f"the reference is not complete yet: {len(earlier)} of {settings.reference_partitions} "
        "earlier partitions are materialized (drift.reference_partitions)"
    )
    return [
        FeatureDrift(
            n,
            None,
            None,
            settings.threshold,
            False,
            int(current[n].notna().sum()),
            0 if reference is None else len(reference),
            reason,
        )
        for n in names
    ]


def view_drift(
    store: Store,
    view: str,
    partition: date,
    frames: tuple[pd.DataFrame, pd.DataFrame | None, tuple[date, ...]] | None = None,
) -> ViewDrift:
    """Drift of a materialized partition of ``view`` against its previous partitions."""
    spec = store.definitions.views.get(view)
    if spec is None:
        raise PantryError(
            f"'{view}' is not a feature view", field="view", hint=did_you_mean(view, store.definitions.views)
        )
    settings = DriftSettings.of(spec)
    names = [f.name for f in spec.features]
    current, reference, earlier = frames or partition_frames(
        store, view, partition, names, settings.reference_partitions
    )
    result = ViewDrift(view, partition, earlier)
    if reference is None or len(earlier) < settings.reference_partitions:
        result.features = not_judged(names, settings, earlier, current, reference)
        return result
    result.report = report_path(store.home, view, partition)
    result.features = judge(current, reference, names, settings, result.report)
    if not any(f.skipped is None for f in result.features):
        result.report = None  # nothing was judged: Evidently wrote no report
    return result


def as_rows(result: ViewDrift) -> list[dict[str, Any]]:
    """One row per feature, for tables and JSON."""
    return [
        {
            "feature": f.feature,
            "score": f.score,
            "method": f.method,
            "threshold": f.threshold,
            "verdict": f.verdict,
            "p_value": f.p_value,
            "rows": f.current_rows,
            "reference_rows": f.reference_rows,
            "reason": f.skipped,
        }
        for f in result.features
    ]

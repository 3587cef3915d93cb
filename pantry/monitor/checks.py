"""Every check Pantry runs, as verdicts: drift, rows and nulls, metric values, source schemas.

Why one module of verdict makers: the Dagster asset checks, ``pantry drift`` and the push's
gate all ask "did this partition pass?", and the answer must be computed the same way and
recorded once (``verdicts.record``), whoever asked.

Rules, where Evidently does not decide:
- rows_and_nulls (blocking): a partition fails when its rows fall below half the
  reference's average rows per partition, or when a column's null rate exceeds the
  reference's by more than 0.2. No reference yet: passes, and says so.
- value (metrics): the day's value fails when it lies outside the reference days' range
  widened by ``VALUE_TOLERANCE`` of that range (or of the mean's size, for a flat
  reference). With declared dimensions, Evidently's Kolmogorov-Smirnov test compares the
  day's values across dimension values with the reference days' (drift when p < 0.01).
- consistent_with_<metric>: where a windowed feature and a simple metric aggregate the
  same sum or count measure with no filter, the feature summed over every entity at stamp
  ``s`` must equal the metric summed over the days ``[s - window, s)`` (rows whose entity
  key is null belong to no entity, so the metric leaves them out here too).
- schema (sources, blocking): a column the definitions use that is missing or whose type
  changed since the last check fails; a new column warns.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import sqlglot
from sqlglot import exp

from pantry.errors import PantryError, did_you_mean
from pantry.features.stamp_stats import StampSummary
from pantry.monitor.drift import (
    DriftSettings,
    FeatureDrift,
    ViewDrift,
    judge,
    not_judged,
    quick_judge,
    report_path,
)
from pantry.monitor.verdicts import Verdict, known_schema, remember_schema
from pantry.settings import env_number
from pantry.spec.windows import Window

if TYPE_CHECKING:
    from pantry.api.store import Store
    from pantry.spec.model import Catalog, SemanticModel

# a day's values across dimension values against the reference days': a handful of values
# each, so a two-sample Kolmogorov-Smirnov test, and only p < 0.01 is a change worth a page
DIMENSION_DRIFT = DriftSettings(method="ks", threshold=0.01, min_rows=5)
MIN_ROWS_SHARE = 0.5
MAX_NULL_RISE = 0.2
VALUE_TOLERANCE = 1.0


def fill_days(window: Window | None) -> int:
    """Days a window takes to fill: the feature plan's whole days, a calendar month as 31."""
    from pantry.compile.view_plan import window_days

    if window is None:
        return 1
    long = {"month": 31, "quarter": 92, "year": 366}
    return window.count * long[window.unit] if window.unit in long else window_days(window)


def warm_from(start: date, window: Window | None, reference: int) -> date:
    """The first partition judged: its window is full, and so are the windows of all its
    ``reference`` partitions (a 30-day sum rises for 30 days on calm data; judging the rise
    as drift was 63 of 69 alerts on a new user's first month)."""
    return start + timedelta(days=fill_days(window) - 1 + reference)


def min_reference_days() -> int:
    """``PANTRY_VALUE_MIN_REFERENCE_DAYS``: reference days a metric's ``value`` check needs
    before it judges (a weekend against three weekdays is no verdict)."""
    return int(env_number("PANTRY_VALUE_MIN_REFERENCE_DAYS", 7, int))


def drift_figures(f: FeatureDrift) -> str:
    """The figures in words, each named for what it is: a p-value is not a "score"."""
    if f.score is None:
        return "not judged"
    if f.p_value is not None:  # auto: a distance and the significance of the change
        return (
            f"{f.method} {f.score:.4g} (threshold {f.threshold:g}), "
            f"p-value {f.p_value:.3g} (below {f.threshold_p:.3g} is significant)"
        )
    if f.score_name == "p-value":
        return f"{f.method} {f.score:.4g} (drift below {f.threshold:g})"
    return f"{f.method} {f.score:.4g} (drift at {f.threshold:g} or more)"


def feature_asset(view: str, feature: str) -> str:
    return f"features/{view}/{feature}"


def rows_and_nulls(
    asset: str,
    partition: str,
    current: pd.DataFrame,
    reference: pd.DataFrame | None,
    partitions: int,
    columns: list[str],
) -> Verdict:
    """The rows_and_nulls verdict of one asset partition (a metric's rows) against its reference partitions."""
    rows = len(current)
    nulls = {c: float(current[c].isna().mean()) if rows else 0.0 for c in columns}
    if reference is None or partitions == 0:
        return rows_and_nulls_rule(asset, partition, rows, nulls, None, {})
    ref_nulls = {c: float(reference[c].isna().mean()) if len(reference) else 0.0 for c in columns}
    return rows_and_nulls_rule(asset, partition, rows, nulls, len(reference) / partitions, ref_nulls)


def rows_and_nulls_rule(
    asset: str,
    partition: str,
    rows: int,
    nulls: dict[str, float],
    expected: float | None,
    ref_nulls: dict[str, float],
) -> Verdict:
    """The rule, on counts: rows below ``MIN_ROWS_SHARE`` of the reference's per partition,
    or a null rate ``MAX_NULL_RISE`` above the reference's, fail. No reference: passes."""
    details: dict = {"rows": rows, "null_rate": nulls}
    if expected is None:
        return Verdict(
            asset, partition, "rows_and_nulls", True, f"{rows} rows; no reference yet", True, details=details
        )
    details.update(reference_rows_per_partition=round(expected, 1), reference_null_rate=ref_nulls)
    problems = []
    if rows < MIN_ROWS_SHARE * expected:
        problems.append(f"{rows} rows, below {MIN_ROWS_SHARE:.0%} of the reference's {expected:.0f} per partition")
    for c, rate in nulls.items():
        if rate > ref_nulls[c] + MAX_NULL_RISE:
            problems.append(f"'{c}' is {rate:.0%} null against {ref_nulls[c]:.0%} in the reference")
    summary = "; ".join(problems) if problems else f"{rows} rows (reference {expected:.0f}); null rates as usual"
    return Verdict(asset, partition, "rows_and_nulls", not problems, summary, True, details=details)


def view_partition_checks(store: Store, view: str, partition: date) -> tuple[list[Verdict], ViewDrift]:
    """Drift (per feature), rows_and_nulls (per feature) and consistency of one view partition."""
    verdicts, drifts, _ = view_range_checks(store, view, [partition])
    return verdicts, drifts[partition]


MAX_REPORTS = 31  # HTML reports per run: the last partition's, then the drifted ones


CHUNK_DAYS = 31  # partitions judged per training read: a long backfill's memory stays bounded


def view_range_checks(
    store: Store, view: str, days: list[date]
) -> tuple[list[Verdict], dict[date, ViewDrift], dict[date, dict[str, dict]]]:
    """Every partition of ``days`` judged: Evidently's stat test per partition and feature, an
    HTML report for the last partition and for drifted ones (``MAX_REPORTS`` at most). Also
    returns each partition's own figures (``feature_stats`` at its stamp), so a caller that
    needs them (per-partition metadata) does not read again.

    Why in chunks of ``CHUNK_DAYS``: one training read over every stamp of a long backfill
    holds every present entity at every stamp (TPC-H SF1's 2,406 partitions: about 100M
    rows), which does not fit. A chunk reads its own stamps and the reference before them."""
    spec = store.definitions.views.get(view)
    if spec is None:
        raise PantryError(
            f"'{view}' is not a feature view", field="view", hint=did_you_mean(view, store.definitions.views)
        )
    settings = DriftSettings.of(spec)
    names = [f.name for f in spec.features]
    done = store.materialized_partitions(view)
    missing = [d for d in days if d not in done]
    if missing:
        raise PantryError(
            f"partition {missing[0]} of feature view '{view}' is not materialized",
            field="partition",
            hint="materialize it first (Dagster, or 'dagster asset materialize --partition ...')",
        )
    verdicts: list[Verdict] = []
    drifts: dict[date, ViewDrift] = {}
    figures: dict[date, dict[str, dict]] = {}
    reports = [0]  # shared by the chunks, newest first: the last partition always gets its report
    chunks = [days[i : i + CHUNK_DAYS] for i in range(0, len(days), CHUNK_DAYS)]
    start = spec.partitions_start or store.definitions.project.partitions_start
    # a view's rows are the entities present in any of its windows: while the longest fills,
    # every feature's population grows (a 1-day sum gains zeros), so all wait for it
    longest = max(spec.features, key=lambda f: fill_days(f.window)).window
    warm = {f.name: warm_from(start, longest, settings.reference_partitions) for f in spec.features}
    for chunk in reversed(chunks):
        chunk_verdicts, chunk_figures = _chunk_checks(
            store, view, chunk, done, settings, names, days[-1], reports, drifts, warm
        )
        verdicts = chunk_verdicts + verdicts
        figures.update(chunk_figures)
    return verdicts, drifts, figures


def _chunk_checks(  # noqa: PLR0913 - the range's shared state, passed down once
    store: Store,
    view: str,
    days: list[date],
    done: list[date],
    settings: DriftSettings,
    names: list[str],
    last: date,
    reports: list[int],
    drifts: dict[date, ViewDrift],
    warm: dict[str, date],
) -> tuple[list[Verdict], dict[date, dict[str, dict]]]:
    """One chunk of ``view_range_checks``: its stamps and their reference, summarized."""
    summaries = _summaries(store, view, days, done, settings, names)
    verdicts: list[Verdict] = []
    for day in reversed(days):  # newest first
        current = summaries[day]
        earlier = tuple(d for d in done if d < day)[-settings.reference_partitions :]
        references = [summaries[d] for d in earlier]
        reference = pd.concat([r.sample for r in references]) if references else None
        result = ViewDrift(view, day, earlier)
        judged = [n for n in names if day >= warm[n]]
        warming = {
            n: FeatureDrift(
                n,
                None,
                None,
                settings.threshold,
                False,
                current.entities,
                sum(r.entities for r in references),
                f"warming up: the window and its {settings.reference_partitions} reference partitions are full from {warm[n]}",
            )
            for n in names
            if n not in judged
        }
        if reference is None or len(earlier) < settings.reference_partitions:
            result.features = not_judged(names, settings, earlier, current.sample, reference)
        elif judged:
            result.features = quick_judge(current.sample, reference, judged, settings)
            if reports[0] < MAX_REPORTS and (day == last or any(f.drifted for f in result.features)):
                result.report = report_path(store.home, view, day)
                result.features = judge(current.sample, reference, judged, settings, result.report)
                reports[0] += 1
                if all(f.skipped for f in result.features):
                    result.report = None  # nothing was judged: Evidently wrote no report
            by_name = {f.feature: f for f in result.features} | warming
            result.features = [by_name[n] for n in names]
        else:
            result.features = [warming[n] for n in names]
        # the values judged are a sample; the counts shown are the partition's own
        result.features = [_counted(f, current, references) for f in result.features]
        drifts[day] = result
        verdicts += _day_verdicts(view, day, result, current, references)
    figures = {day: {n: _shown(summaries[day].figures[n]) for n in names} for day in days}
    return consistency_checks(store, view, {d: summaries[d].figures for d in days}) + verdicts, figures


def _summaries(
    store: Store, view: str, days: list[date], done: list[date], settings: DriftSettings, names: list[str]
) -> dict[date, StampSummary]:
    """The chunk's partitions and their reference partitions, each summarized at its stamp."""
    from pantry.features.stamp_stats import frame_summary, limit_memory, per_partition, summarize_days

    wanted = sorted(
        {*days, *[d for day in days for d in [x for x in done if x < day][-settings.reference_partitions :]]}
    )
    plan = store._plans([f"{view}:{n}" for n in names])[view][0]
    if plan.streaming:  # every tile boundary is a stamp: read as training reads, then summarize
        from pantry.compile.view_plan import stamp_of
        from pantry.features.reads import TIMESTAMP

        values = store.get_historical_features(
            None, [f"{view}:{n}" for n in names], start_time=stamp_of(wanted[0]), end_time=stamp_of(wanted[-1])
        )
        stamps = (
            pd.to_datetime(values[TIMESTAMP]).dt.tz_convert("UTC").dt.date
            if len(values)
            else pd.Series([], dtype=object)
        )
        parts = per_partition(values, stamps, wanted, names)
        return {d: frame_summary(d, parts[d], names, settings.sample_rows) for d in wanted}
    if store.engine is not None:  # the partitions are the engine's tables: summarized there
        from pantry.features import engine_stats

        return engine_stats.summarize_days(store.engine, plan, wanted, names, settings.sample_rows)
    con, attached = store._offline_reader(views=[view])
    try:
        limit_memory(con, store.home)
        return summarize_days(con, plan, wanted, names, settings.sample_rows)
    finally:
        con.close()


FIGURES = ("rows", "entities_present", "null_rate", "mean", "min", "max", "distinct")


def _shown(figure: dict) -> dict:
    return {k: figure[k] for k in FIGURES}


def _counted(f: FeatureDrift, current: StampSummary, references: list[StampSummary]) -> FeatureDrift:
    """A verdict's counts: the partition's and the reference's non-null values, not the sample's."""

    def values(summary: StampSummary) -> int:
        figure = summary.figures[f.feature]
        return round(figure["rows"] * (1 - (figure["null_rate"] or 0.0)))

    return replace(f, current_rows=values(current), reference_rows=sum(values(r) for r in references))


def _day_verdicts(
    view: str,
    day: date,
    drift: ViewDrift,
    current: StampSummary,
    references: list[StampSummary],
) -> list[Verdict]:
    earlier = tuple(r.day for r in references)
    partition = day.isoformat()
    verdicts = []
    for f in drift.features:
        asset = feature_asset(view, f.feature)
        details = {
            "score": f.score,
            "score_name": f.score_name,
            "p_value": f.p_value,
            "method": f.method,
            "threshold": f.threshold,
            "rows": f.current_rows,
            "reference_rows": f.reference_rows,
            "reference": f"{earlier[0]}..{earlier[-1]}" if earlier else None,
            "report": str(drift.report) if drift.report else None,
        }
        if f.skipped:
            summary = f"skipped: {f.skipped}"
        else:
            word = "drifted" if f.drifted else "no drift"
            summary = f"{word}: {drift_figures(f)} over {f.current_rows} values (reference {details['reference']})"
        verdicts.append(Verdict(asset, partition, "drift", not f.drifted, summary, details=details))
        verdicts.append(counted_rows_and_nulls(asset, partition, current, references, f.feature))
    return verdicts


def counted_rows_and_nulls(
    asset: str, partition: str, current: StampSummary, references: list[StampSummary], feature: str
) -> Verdict:
    """``rows_and_nulls`` of a view's feature from its stamps' figures, without the values."""
    nulls = {feature: current.figures[feature]["null_rate"] or 0.0}
    if not references:
        return rows_and_nulls_rule(asset, partition, current.entities, nulls, None, {})
    total = sum(r.entities for r in references)
    null_values = sum(r.entities * (r.figures[feature]["null_rate"] or 0.0) for r in references)
    ref_nulls = {feature: null_values / total if total else 0.0}
    return rows_and_nulls_rule(asset, partition, current.entities, nulls, total / len(references), ref_nulls)


def metric_partition_checks(store: Store, metric: str, partition: date, reference_days: int = 7) -> list[Verdict]:
    """value and rows_and_nulls of a metric's day against the previous ``reference_days`` days."""
    return metric_range_checks(store, metric, [partition], reference_days)


def metric_range_checks(store: Store, metric: str, days: list[date], reference_days: int = 7) -> list[Verdict]:
    """value and rows_and_nulls of every day of ``days``, from one query over the days and their references."""
    from pantry.compile.sql import DAY

    spec = store.definitions.metrics[metric]
    group = [DAY, *spec.dimensions]
    frame = store.query(metric, group_by=group, start_time=days[0] - timedelta(days=reference_days), end_time=days[-1])
    frame[DAY] = pd.to_datetime(frame[DAY]).dt.date
    asset = f"metrics/{metric}"
    verdicts: list[Verdict] = []
    reports = 0
    needed = min(min_reference_days(), reference_days)
    start = spec.partitions_start or store.definitions.project.partitions_start
    # a trailing window (cumulative ``window:``) rises while it fills: not judged before
    warm = warm_from(start, spec.window, needed) if spec.window is not None else start
    for partition in reversed(days):
        first = partition - timedelta(days=reference_days)
        today = frame[frame[DAY] == partition]
        before = frame[(frame[DAY] >= first) & (frame[DAY] < partition)]
        day = partition.isoformat()
        count = before[DAY].nunique()
        verdicts.append(rows_and_nulls(asset, day, today, before if count else None, count, [metric]))
        if count < needed or partition < warm:
            reason = (
                f"warming up: {count} of {needed} reference days"
                if count < needed
                else f"warming up: the {spec.window} window and its reference are full from {warm}"
            )
            verdicts.append(Verdict(asset, day, "value", True, reason, details={"rows": len(today)}))
        elif spec.dimensions:
            settings = DIMENSION_DRIFT
            [judged] = quick_judge(today, before, [metric], settings)
            details = {
                "score": judged.score,
                "score_name": judged.score_name,
                "method": judged.method,
                "threshold": judged.threshold,
                "rows": len(today),
            }
            if not judged.skipped and reports < MAX_REPORTS and (partition == days[-1] or judged.drifted):
                report = store.home / "reports" / "metrics" / metric / f"{day}.html"
                [judged] = judge(today, before, [metric], settings, report)
                details["report"] = str(report)
                reports += 1
            summary = (
                f"skipped: {judged.skipped}"
                if judged.skipped
                else f"values across {', '.join(spec.dimensions)}: {drift_figures(judged)}"
            )
            verdicts.append(Verdict(asset, day, "value", not judged.drifted, summary, details=details))
        else:
            verdicts.append(_value_verdict(asset, day, metric, today, before, count))
    return verdicts


def _value_verdict(asset: str, day: str, metric: str, today: pd.DataFrame, before: pd.DataFrame, count: int) -> Verdict:
    from pantry.compile.sql import DAY

    values = before.set_index(DAY)[metric].astype(float)
    value = float(today[metric].iloc[0]) if len(today) and pd.notna(today[metric].iloc[0]) else None
    lo, hi, mean = float(values.min()), float(values.max()), float(values.mean())
    slack = VALUE_TOLERANCE * ((hi - lo) or abs(mean) or 1.0)
    band = (lo - slack, hi + slack)
    details = {"value": value, "reference_min": lo, "reference_max": hi, "reference_mean": mean, "band": band}
    if value is None:
        return Verdict(asset, day, "value", False, "no value for the day", details=details)
    inside = band[0] <= value <= band[1]
    summary = (
        f"{value:.6g} lies {'inside' if inside else 'outside'} [{band[0]:.6g}, {band[1]:.6g}], the range of the "
        f"{count} reference days ({lo:.6g}..{hi:.6g}) widened by {VALUE_TOLERANCE:.0%}"
    )
    return Verdict(asset, day, "value", inside, summary, details=details)


def used_columns(catalog: Catalog, model: SemanticModel) -> set[str]:
    """The source columns a model's definitions read (entities, dimensions, measures)."""
    used: set[str] = set()
    for expr in (
        [e.expr for e in model.entities] + [d.expr for d in model.dimensions] + [m.expr for m in model.measures]
    ):
        try:
            used |= {c.name.lower() for c in sqlglot.parse_one(expr, read="duckdb").find_all(exp.Column)}
        except sqlglot.errors.ParseError:
            continue
    return used


def schema_check(store: Store, model: SemanticModel, columns: dict[str, str]) -> Verdict:
    """The source's columns against what the definitions use and what the last check saw."""
    asset = f"sources/{model.name}"
    # as written, not as loaded: a retyped column can leave its measure out of the sound
    # catalog (its expr no longer binds), and the check must still see the column as used
    written = store.as_written.semantic_models.get(model.name, model)
    used = used_columns(store.definitions, written)
    before = known_schema(store.home, model.name)
    missing = sorted(c for c in used if c not in columns)
    retyped = sorted(c for c in used if c in columns and c in before and before[c] != columns[c])
    added = sorted(c for c in columns if before and c not in before)
    details = {
        "columns": columns,
        "missing": missing,
        "retyped": {c: [before[c], columns[c]] for c in retyped},
        "new": added,
    }
    if missing or retyped:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"{c} changed from {before[c]} to {columns[c]}" for c in retyped]
        return Verdict(asset, "", "schema", False, "; ".join(parts), True, details=details)
    remember_schema(store.home, model.name, columns)
    if added:
        return Verdict(asset, "", "schema", True, f"new columns: {', '.join(added)}", True, "WARN", details)
    return Verdict(
        asset, "", "schema", True, f"the {len(used)} columns the definitions use are there", True, details=details
    )


def consistency_pairs(catalog: Catalog, view: str) -> list[tuple[str, str]]:
    """(feature, metric) pairs of a view that must agree: same sum/count measure, no filter."""
    spec = catalog.views[view]
    pairs = []
    for feature in spec.features:
        if not feature.measure or feature.window is None or feature.window.unit not in ("day", "week"):
            continue  # a streaming view's 5-minute window has no daily metric to agree with
        model_name, _, measure = feature.measure.partition(".")
        found = catalog.semantic_models[model_name].measure(measure)
        if found is None or found.agg not in ("sum", "count"):
            continue
        for metric in catalog.metrics.values():
            simple = metric.type == "simple" and metric.measure is not None and not metric.implicit
            if simple and metric.measure.name == measure and not metric.filter and not metric.measure.filter:
                if metric.measure.offset_window is None and metric.measure.fill_nulls_with is None:
                    pairs.append((feature.name, metric.name))
    return pairs


def consistency_checks(store: Store, view: str, currents: dict[date, dict[str, dict]]) -> list[Verdict]:
    """consistent_with_<metric> for every pair of the view, at each partition's stamp.

    ``currents``: each partition's figures at its stamp (a feature's ``sum`` over every
    entity). The metric is queried once per pair for all the days the partitions' windows
    cover, not once per partition."""
    from pantry.compile.sql import DAY
    from pantry.compile.view_plan import plan_view, window_days

    catalog = store.definitions
    spec = catalog.views[view]
    entity, key = spec.entity, plan_view(catalog, spec).key
    verdicts = []
    for feature_name, metric in consistency_pairs(catalog, view):
        feature = spec.feature(feature_name)
        assert feature is not None and feature.window is not None
        width = window_days(feature.window)
        daily = store.query(
            metric,
            group_by=[DAY],
            where=[f"{{{{ Entity('{entity}') }}}} IS NOT NULL"],
            start_time=min(currents) - timedelta(days=width - 1),
            end_time=max(currents),
        )
        totals = pd.Series(
            pd.to_numeric(daily[metric], errors="coerce").fillna(0).values, index=pd.to_datetime(daily[DAY]).dt.date
        )
        for partition, current in sorted(currents.items()):
            first, last = partition - timedelta(days=width - 1), partition
            expected = float(totals[(totals.index >= first) & (totals.index <= last)].sum())
            got = float(current[feature_name]["sum"] or 0.0)
            agree = abs(got - expected) <= 1e-9 * max(1.0, abs(expected))
            summary = (
                f"feature {view}:{feature_name} summed over every {entity} at the stamp is {got:.10g}; metric '{metric}' "
                f"summed over {first}..{last} (rows with a {key}) is {expected:.10g}: "
                + ("they agree" if agree else "they DISAGREE; one of the two definitions counts differently")
            )
            details = {"feature_total": got, "metric_total": expected, "days": f"{first}..{last}"}
            verdicts.append(
                Verdict(
                    feature_asset(view, feature_name),
                    partition.isoformat(),
                    f"consistent_with_{metric}",
                    agree,
                    summary,
                    details=details,
                )
            )
    return verdicts

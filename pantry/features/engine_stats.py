"""A view's partitions kept in an engine, summarized there for the checks.

Why in the engine: the checks need per feature the rows, nulls, mean, min, max, distinct
values and sum of each partition, and a sample of values for the drift test
(``stamp_stats``). Pulling every partition to the client to count it would make the
client's memory grow with the entities; one ``GROUP BY`` over the partitions' rows in the
engine answers all the figures of a chunk of days, and only the sample comes back.

The sample follows the embedded path's rule: the entities whose key hashes below a cutoff
(``cut_of``: about ``sample_rows`` of the range's entities), the same panel every day.
The hash is the engine's (PostgreSQL's ``hashtext``, Spark's ``hash``), so past ``sample_rows`` entities
the panel is another draw than DuckDB's; at or below it, both judge every entity and the
verdicts are the same.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pyarrow as pa

from pantry.compile.view_plan import ViewPlan
from pantry.engines.base import Engine
from pantry.engines.frames import arrow_frame
from pantry.engines.names import quoted
from pantry.features.in_engine import stamps_sql, table_of
from pantry.features.reads import TIMESTAMP
from pantry.features.stamp_stats import StampSummary, per_partition
from pantry.features.window_figures import HASH_SPACE, cut_of


def _types(engine: Engine, plan: ViewPlan) -> dict[str, str]:
    """Each column's kind, ``numeric``, ``boolean`` or ``other``, from the Arrow types the
    engine answers (every engine has them; not every engine has an information schema)."""
    found = engine.run(f"SELECT * FROM {table_of(engine, plan)} AS t LIMIT 0").schema
    kinds = {}
    for field in found:
        kind = field.type
        if (field.metadata or {}).get(b"ADBC:postgresql:typname") == b"numeric":  # text under an opaque type
            kinds[field.name] = "numeric"
        elif pa.types.is_boolean(kind):
            kinds[field.name] = "boolean"
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            kinds[field.name] = "numeric"
        else:
            kinds[field.name] = "other"
    return kinds


def _figures(
    engine: Engine, plan: ViewPlan, days: list[date], names: list[str]
) -> tuple[dict[date, dict[str, dict]], int]:
    """Every figure of every day, and the entities present on any of them (the drift
    panel's base): one ``GROUP BY`` over the days' rows, by stamp and in total (grouping
    sets). Why one: on a cluster each statement is a job of its own."""
    types = _types(engine, plan)
    aggregates = ["COUNT(*) AS __rows"]
    numeric = {}
    for i, name in enumerate(names):
        c = quoted(name)
        kind = types.get(name, "")
        numeric[name] = kind in ("numeric", "boolean")
        double = engine.double_type
        v = f"CAST(CAST({c} AS INTEGER) AS {double})" if kind == "boolean" else f"CAST({c} AS {double})"
        aggregates += [f"COUNT({c}) AS p{i}", f"COUNT(DISTINCT {c}) AS d{i}"]
        if numeric[name]:
            aggregates += [f"AVG({v}) AS a{i}", f"MIN({v}) AS l{i}", f"MAX({v}) AS h{i}", f"SUM({v}) AS s{i}"]
    aggregates.append(f"COUNT(DISTINCT {quoted(plan.key)}) AS __keys")
    rows = engine.run(
        f"SELECT {TIMESTAMP} AS __stamp, {', '.join(aggregates)} FROM {table_of(engine, plan)} "
        f"WHERE {TIMESTAMP} IN ({stamps_sql(days)}) GROUP BY GROUPING SETS (({TIMESTAMP}), ())"
    ).to_pylist()
    # the total's stamp is null: the rows of a stamp never are (WHERE ... IN)
    keys = next((int(r["__keys"] or 0) for r in rows if r["__stamp"] is None), 0)
    by_stamp = {r["__stamp"].date() - timedelta(days=1): r for r in rows if r["__stamp"] is not None}
    figures: dict[date, dict[str, dict]] = {}
    for day in days:
        row = by_stamp.get(day, {})
        entities = int(row.get("__rows") or 0)
        figures[day] = {}
        for i, name in enumerate(names):
            present = int(row.get(f"p{i}") or 0)
            some = numeric[name] and present > 0
            figures[day][name] = {
                "rows": entities,
                "entities_present": entities,
                "null_rate": (entities - present) / entities if entities else None,
                "mean": row.get(f"a{i}") if some else None,
                "min": row.get(f"l{i}") if some else None,
                "max": row.get(f"h{i}") if some else None,
                "distinct": int(row.get(f"d{i}") or 0),
                "sum": row.get(f"s{i}") if some else None,
            }
    return figures, keys


def _samples(engine: Engine, plan: ViewPlan, days: list[date], names: list[str], cut: int) -> dict[date, pd.DataFrame]:
    """Each day's panel: the present entities whose key hashes below ``cut``, values only."""
    panel = "" if cut >= HASH_SPACE else f" AND {engine.key_hash(quoted(plan.key))} % {HASH_SPACE} < {cut}"
    values = arrow_frame(
        engine.run(
            f"SELECT {TIMESTAMP} AS __stamp, {', '.join(quoted(n) for n in names)} FROM {table_of(engine, plan)} "
            f"WHERE {TIMESTAMP} IN ({stamps_sql(days)}){panel} ORDER BY {TIMESTAMP}, {quoted(plan.key)}"
        )
    )
    stamps = pd.to_datetime(values["__stamp"]).dt.date if len(values) else pd.Series([], dtype=object)
    return per_partition(values, stamps, days, names)


def summarize_days(
    engine: Engine, plan: ViewPlan, days: list[date], names: list[str], sample_rows: int
) -> dict[date, StampSummary]:
    """Partitions ``days`` of a view kept in the engine, each summarized at its stamp."""
    days = sorted(days)
    figures, keys = _figures(engine, plan, days, names)
    samples = _samples(engine, plan, days, names, cut_of(keys, sample_rows))
    return {
        d: StampSummary(d, figures[d], samples[d], next(iter(figures[d].values()))["rows"] if names else 0)
        for d in days
    }

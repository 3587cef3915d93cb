"""Every stamp's figures of a daily view at once, from dense (entity x day) matrices.

Why not one SQL GROUP BY per stamp: at the churn lab's scale (2M customers, 25 features,
a month) each stamp's GROUP BY combines ~11M tiles into 2M groups with 25 aggregates,
about 3.3 s, so a 31-partition run spent 100 s re-adding the same tiles 31 times. Here a
chunk of entities' tiles is read once and laid out as a matrix of days; a window's sum at
every stamp is then a difference of cumulative sums, a min or max a sparse-table lookup,
a dimension's value the latest day with rows (a running maximum of day indices). Each
feature then costs a few passes over its matrix for all stamps together.

Memory stays bounded: entities are split into chunks by key hash, so one chunk's matrix
holds about ``DENSE_BYTES``, whatever the number of entities or partitions judged.

What is exact: rows, entities present, nulls, min, max, and a dimension's distinct values
(up to ``MAX_LABELS`` of them; past that, holding them all costs memory with the data, and
the figure is None).
Sums and means add in another order than SQL does, so they can differ in the last bits (a
window with no tiles is exactly 0: equal cumulative sums subtract to 0). A numeric
feature's distinct values are counted while the view fits one chunk (about 100k entities
for a month): past that, counting them costs a sort per stamp and feature (at 2M entities
more than the whole run), and the figure is None. Aggregations without a dense form
(count_distinct, median, percentile, min or max of non-numbers) are left to the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pantry.compile.view_plan import PlannedFeature, ViewPlan
from pantry.features.tiles import partial_columns, rows_column
from pantry.offline.feature_tables import q, tile_table
from pantry.spec.aggregations import aggregation

DENSE_BYTES = 64 * 1024 * 1024  # one chunk's (entities x days) float64 matrix, about
STAMPS_PER_PASS = 32  # stamps laid out together: a pass's days are these and the window before
HASH_SPACE = 1_000_003  # a prime: key hashes modulo it decide the drift sample
MAX_LABELS = 100_000  # a dimension's distinct values counted up to this many; past it, None
NUMERIC_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


def dense_form(planned: PlannedFeature, kind: pa.DataType) -> str | None:
    """How a feature is laid out densely: "sum", "average", "min", "max", "last" (a numeric
    dimension), "label" (any other dimension, by its values' codes), or None (left to SQL)."""
    numeric = any(test(kind) for test in NUMERIC_TYPES)  # booleans are labels: drift judges them as categories
    found = aggregation(planned.agg)
    if found is not None and found.adds_up:
        return "sum"
    if found is not None and found.dense == "average":
        return "average"
    if found is not None and found.dense in ("min", "max") and numeric:
        return found.dense
    if planned.agg == "last":
        return "last" if numeric else "label"
    return None


@dataclass
class _Figure:
    """One feature's running figures at one stamp, merged over the chunks."""

    present: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    labels: set | None = field(default_factory=set)  # None: too many to hold (MAX_LABELS)
    distinct: int | None = 0

    def add_numbers(self, values: np.ndarray, count_distinct: bool) -> None:
        """This chunk's non-null values at the stamp (a copy: numpy's masked reductions,
        ``where=``, are slower than gathering first)."""
        self.present += len(values)
        if len(values):
            self.total += float(values.sum())
            self.low = min(self.low, float(values.min()))
            self.high = max(self.high, float(values.max()))
        if count_distinct and self.distinct is not None:
            self.distinct += len(np.unique(values))
        else:
            self.distinct = None

    def add_labels(self, codes: np.ndarray, labels: np.ndarray) -> None:
        """This chunk's codes at the stamp (present entities only; -1: null) and their labels."""
        counts = np.bincount(codes[codes >= 0], minlength=len(labels))
        self.present += int(counts.sum())
        if self.labels is not None:  # a dimension of 2M distinct values would hold them all, per stamp
            self.labels.update(labels[counts > 0].tolist())
            if len(self.labels) > MAX_LABELS:
                self.labels = None

    def figure(self, entities: int, numeric: bool) -> dict[str, float | int | None]:
        some = self.present > 0 and numeric
        return {
            "rows": entities,
            "entities_present": entities,
            "null_rate": (entities - self.present) / entities if entities else None,
            "mean": self.total / self.present if some else None,
            "min": self.low if some else None,
            "max": self.high if some else None,
            "distinct": self.distinct if numeric else (len(self.labels) if self.labels is not None else None),
            "sum": self.total if some else None,
        }


def dense_forms(con: duckdb.DuckDBPyConnection, plan: ViewPlan, names: list[str]) -> dict[str, str | None]:
    """Each feature's dense form (``dense_form``), from its partial's stored type."""
    columns = [partial_columns(plan.feature(n))[0] for n in names]
    schema = (
        con.sql(f"SELECT {', '.join(q(c) for c in columns)} FROM offline.{tile_table(plan.view.name)} LIMIT 0")
        .to_arrow_table()
        .schema
    )
    return {n: dense_form(plan.feature(n), schema.field(c).type) for n, c in zip(names, columns)}


def cut_of(keys: int, sample_rows: int) -> int:
    """The hash cutoff that keeps about ``sample_rows`` of ``keys`` entities (all of them
    when they are that few): the drift panel's rule, here and in an engine (``engine_stats``)."""
    return HASH_SPACE if keys <= sample_rows else math.ceil(sample_rows / keys * HASH_SPACE)


def sample_cut(con: duckdb.DuckDBPyConnection, plan: ViewPlan, days: list[date], sample_rows: int) -> int:
    """The drift sample's cutoff for a range: entities whose key hashes (mod ``HASH_SPACE``)
    below it, about ``sample_rows`` of the range's entities; the same panel at every stamp."""
    return cut_of(_keys(con, plan, min(days) - timedelta(days=plan.window - 1), max(days)), sample_rows)


def window_figures(
    con: duckdb.DuckDBPyConnection, plan: ViewPlan, days: list[date], forms: dict[str, str], cut: int
) -> tuple[dict[date, dict[str, dict]], dict[date, int], dict[date, pd.DataFrame]]:
    """Figures of the features in ``forms`` (each with a dense form) at the stamp of every
    partition in ``days``, each stamp's entities present, and each stamp's drift sample: the
    present entities whose key hashes below ``cut`` (``sample_cut``). ``con`` has the store
    attached as ``offline``.

    The stamps go in passes of at most ``STAMPS_PER_PASS``: a pass lays out its stamps'
    days alone, so memory depends on the longest window, never on the partitions judged."""
    days = sorted(days)
    run = _Run(
        con,
        plan,
        forms,
        cut=cut,
        figures={d: {n: _Figure() for n in forms} for d in days},
        entities=dict.fromkeys(days, 0),
        samples={d: {n: [] for n in forms} for d in days},
    )
    passes = math.ceil(len(days) / STAMPS_PER_PASS)
    size = math.ceil(len(days) / passes)
    for i in range(passes):
        run.stamps(days[i * size : (i + 1) * size])
    frames = {d: pd.DataFrame({n: _joined(run.samples[d][n], forms[n]) for n in forms}) for d in days}
    return (
        {d: {n: run.figures[d][n].figure(run.entities[d], forms[n] != "label") for n in forms} for d in days},
        run.entities,
        frames,
    )


def _keys(con: duckdb.DuckDBPyConnection, plan: ViewPlan, first: date, last: date) -> int:
    """About how many entities have tiles in days ``first..last``."""
    within = f"__day BETWEEN DATE '{first}' AND DATE '{last}'"
    table = f"offline.{tile_table(plan.view.name)}"
    return con.execute(f"SELECT approx_count_distinct(__key) FROM {table} WHERE {within}").fetchall()[0][0] or 0


@dataclass
class _Run:
    """A range's running figures, entities and samples, filled pass by pass, chunk by chunk."""

    con: duckdb.DuckDBPyConnection
    plan: ViewPlan
    forms: dict[str, str]
    cut: int
    figures: dict[date, dict[str, _Figure]]
    entities: dict[date, int]
    samples: dict[date, dict[str, list[np.ndarray]]]

    def stamps(self, days: list[date]) -> None:
        """One pass: ``days``' stamps, over the tiles of their windows, a chunk of entities at a time."""
        plan = self.plan
        first = days[0] - timedelta(days=plan.window - 1)
        span = (days[-1] - first).days + 1
        table = f"offline.{tile_table(plan.view.name)}"
        chunks = max(1, math.ceil(_keys(self.con, plan, first, days[-1]) * span * 8 / DENSE_BYTES))
        groups = _groups([plan.feature(n) for n in self.forms])
        columns = ", ".join(q(c) for c in ["__rows", *dict.fromkeys(c for g in groups for c in _columns(g[0]))])
        ends = [(d - first).days + 1 for d in days]  # each stamp's window is rows [end - days, end)
        for chunk in range(chunks):
            tiles = self.con.sql(
                f"SELECT __key, CAST(__day - DATE '{first}' AS INTEGER) AS __d, hash(__key) % {HASH_SPACE} AS __h, "
                f"{columns} FROM {table} WHERE __day BETWEEN DATE '{first}' AND DATE '{days[-1]}'"
                + (f" AND hash(__key) % {chunks} = {chunk}" if chunks > 1 else "")
            ).to_arrow_table()
            if tiles.num_rows:
                self.chunk(_Dense(tiles, span, ends), days, groups, count_distinct=chunks == 1)
            del tiles

    def chunk(self, dense: _Dense, days: list[date], groups: list[list[PlannedFeature]], count_distinct: bool) -> None:
        present = dense.present(self.plan.window)
        hashes = np.empty(dense.size[1], dtype=np.int64)
        hashes[dense.entity] = dense.tiles.column("__h").to_numpy()
        sampled = [p & (hashes < self.cut) for p in present]
        for j, d in enumerate(days):
            self.entities[d] += int(present[j].sum())
        for group in groups:
            form = self.forms[group[0].feature.name]
            for name, values in dense.values(form, group, self.plan.window):  # one feature's stamps at a time
                for j, d in enumerate(days):
                    if form == "label":
                        self.figures[d][name].add_labels(values[j][present[j]], values[-1])
                        self.samples[d][name].append(np.append(values[-1], None)[values[j][sampled[j]]])
                        continue
                    self.samples[d][name].append(values[j][sampled[j]])
                    at = values[j][present[j]]
                    at = at if form == "sum" else at[~np.isnan(at)]  # a sum is never null
                    self.figures[d][name].add_numbers(at, count_distinct)


def _joined(parts: list[np.ndarray], form: str) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    return np.array([], dtype=object if form == "label" else np.float64)


def _groups(planned: list[PlannedFeature]) -> list[list[PlannedFeature]]:
    """Features whose tiles hold the same partials (one model, value and aggregation: the
    churn lab's spend over 1, 7 and 30 days), so one matrix serves them all; by window."""
    groups: dict[tuple, list[PlannedFeature]] = {}
    for p in planned:
        groups.setdefault((p.model.name, p.value_expr, p.agg), []).append(p)
    return [sorted(g, key=lambda p: p.days) for g in groups.values()]


def _columns(planned: PlannedFeature) -> list[str]:
    extra = [rows_column(planned.model)] if planned.agg == "last" else []
    return partial_columns(planned) + extra


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric Arrow column as float64, nulls as NaN (decimals and booleans too)."""
    kind = column.type
    if pa.types.is_boolean(kind) or pa.types.is_decimal(kind) or pa.types.is_integer(kind):
        column = pc.cast(column, pa.float64(), safe=False)
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


class _Dense:
    """One chunk of entities' tiles laid out day-major (row: a day, column: an entity), so
    a day's values are contiguous, and so are a stamp's. One scratch matrix is reused."""

    def __init__(self, tiles: pa.Table, span: int, ends: list[int]) -> None:
        self.tiles = tiles
        self.entity, keys = pd.factorize(tiles.column("__key").to_pandas(), use_na_sentinel=False)
        self.day = tiles.column("__d").to_numpy()
        self.size = (span, len(keys))
        self.ends = ends
        self.scratch = np.empty((span + 1, len(keys)))

    def present(self, window: int) -> list[np.ndarray]:
        """Per stamp, the entities with a source row in the view's longest window."""
        c = self.cumulative("__rows")
        return [c[e] - c[e - window] > 0 for e in self.ends]

    def cumulative(self, column: str, into: np.ndarray | None = None) -> np.ndarray:
        """Per entity, the running sum over days with a leading 0: a window [a, b) sums to
        C[b] - C[a]; a window without tiles to exactly 0."""
        matrix = self.scratch if into is None else into
        matrix.fill(0.0)
        matrix[self.day + 1, self.entity] = np.nan_to_num(_floats(self.tiles.column(column)))  # null adds nothing
        for day in range(1, self.size[0] + 1):  # row by row: numpy's cumsum down axis 0 is ~10x slower
            np.add(matrix[day], matrix[day - 1], out=matrix[day])
        return matrix

    def laid_out(self, values: np.ndarray, fill: float) -> np.ndarray:
        matrix = self.scratch[: self.size[0]]
        matrix.fill(fill)
        matrix[self.day, self.entity] = values
        return matrix

    def values(self, form: str, group: list[PlannedFeature], longest: int) -> Iterator[tuple[str, list[np.ndarray]]]:
        """Each feature's value per entity at every stamp (NaN: null); a label's codes (-1:
        null), with its labels appended as the last item. One feature at a time, so only one
        feature's stamps are held."""
        part = partial_columns(group[0])
        if form == "sum":
            c = self.cumulative(part[0])
            for p in group:
                yield p.feature.name, [c[e] - c[e - p.days] for e in self.ends]
        elif form == "average":
            s = self.cumulative(part[0], into=np.empty_like(self.scratch))
            n = self.cumulative(part[1])
            for p in group:
                out = []
                for e in self.ends:
                    count = n[e] - n[e - p.days]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        out.append(np.where(count > 0, (s[e] - s[e - p.days]) / count, np.nan))
                yield p.feature.name, out
        elif form in ("min", "max"):
            yield from self.sliding(form, part[0], group)
        else:
            yield from self.latest(form, group, longest)

    def sliding(self, form: str, column: str, group: list[PlannedFeature]) -> Iterator[tuple[str, list[np.ndarray]]]:
        """A window's min or max at every stamp by a sparse table: level k holds the extreme
        of 2^k days from each day, and a window is the extreme of two overlapping levels."""
        pick, fill = (np.fmin, np.inf) if form == "min" else (np.fmax, -np.inf)
        values = _floats(self.tiles.column(column))
        level = self.laid_out(np.where(np.isnan(values), fill, values), fill)
        span, width = self.size[0], 1
        for p in group:  # ascending windows: each reads its level, then the table grows on
            while width * 2 <= p.days:
                # row by row, upwards: row i + width is still the previous level when row i reads it
                # (one call on overlapping slices makes numpy copy the matrix); past the last day
                # there are no tiles, so those rows keep ``fill``
                for i in range(span - width):
                    pick(level[i], level[i + width], out=level[i])
                width *= 2
            best = [pick(level[e - p.days], level[e - width]) for e in self.ends]
            yield p.feature.name, [np.where(np.isinf(b), np.nan, b) for b in best]

    def latest(self, form: str, group: list[PlannedFeature], longest: int) -> Iterator[tuple[str, list[np.ndarray]]]:
        """A dimension: its value on the latest day with rows of its model inside the view's
        longest window (a running maximum of day indices)."""
        model_rows = _floats(self.tiles.column(rows_column(group[0].model))) > 0
        latest = np.full(self.size, -1, dtype=np.int32)
        latest[self.day[model_rows], self.entity[model_rows]] = self.day[model_rows]
        for day in range(1, self.size[0]):  # a running maximum, row by row (see ``cumulative``)
            np.maximum(latest[day], latest[day - 1], out=latest[day])
        chosen = [latest[e - 1] for e in self.ends]
        valid = [c >= e - longest for c, e in zip(chosen, self.ends)]
        entity = np.arange(self.size[1])
        column = self.tiles.column(partial_columns(group[0])[0])
        if form == "last":
            values = self.laid_out(_floats(column), np.nan)
            found = [np.where(v, values[np.maximum(c, 0), entity], np.nan) for c, v in zip(chosen, valid)]
            for p in group:
                yield p.feature.name, found
            return
        codes, labels = pd.factorize(column.to_pandas(), use_na_sentinel=True)
        matrix = np.full(self.size, -1, dtype=np.int32)
        matrix[self.day, self.entity] = codes
        found = [np.where(v, matrix[np.maximum(c, 0), entity], -1) for c, v in zip(chosen, valid)]
        for p in group:
            yield p.feature.name, [*found, np.asarray(labels, dtype=object)]

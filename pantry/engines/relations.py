"""The compiled query, pointed at an engine's own tables and rendered in its dialect.

Why a tree transform and not text: the compiler reads every source as ``src."<model>"`` and
the calendar as ``pantry_time_spine`` (the names the embedded DuckDB path creates). On a
warehouse those are the model's table (``source: schema.table`` or MetricFlow's
``node_relation``) and a calendar the warehouse makes itself. Swapping table nodes in
sqlglot's tree keeps quoting, aliases and every other rule of the dialect in sqlglot's hands.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import sqlglot
from sqlglot import exp

from pantry.compile.context import QueryRequest
from pantry.compile.query import Compiler
from pantry.compile.render import checked_text, paused_gc
from pantry.compile.sql import SOURCE_SCHEMA, SPINE_TABLE
from pantry.errors import PantryError
from pantry.offline.sources import FILE_COLUMN, ROW_COLUMN, source_kind
from pantry.spec.model import Catalog, SemanticModel

SPINE_START, SPINE_END = "1990-01-01", "2050-12-31"  # as the embedded spine (offline/sources.create_spine)


def spark_files(model: SemanticModel, root: Path) -> exp.Table:
    """A file source as Spark reads it in place: ``parquet.`<path>``` (``s3a://`` for ``s3://``).

    Why in place: the cluster reads the files where they are, with no copy through Pantry;
    a relative path is the definitions folder's, as on DuckDB, so it must be a folder every
    worker reaches (a shared mount, or S3)."""
    source = model.source
    if source.startswith("s3://"):
        path = "s3a://" + source.removeprefix("s3://")
    else:
        path = str(Path(source) if Path(source).is_absolute() else root / source)
    if not path.lower().endswith(".parquet") and "*" not in path:
        raise model.origin.error(
            f"source '{model.source}' is not Parquet: the Spark engine reads Parquet files and its own tables",
            definition=f"semantic model '{model.name}'",
            field="source",
            hint="write the source as Parquet, or make it a table of the cluster's catalog (source: schema.table)",
        )
    return exp.Table(this=exp.to_identifier(path, quoted=True), db=exp.to_identifier("parquet"))


def relation(model: SemanticModel) -> exp.Table:
    """The warehouse table a model reads: ``schema.table`` (or ``database.schema.table``)."""
    parts = model.source.split(".")
    if "/" in model.source or model.source.startswith("s3://") or not 1 <= len(parts) <= 3 or not all(parts):
        raise model.origin.error(
            f"source '{model.source}' is a file, not a table of the engine",
            definition=f"semantic model '{model.name}'",
            field="source",
            hint="on a warehouse engine a source is a table: 'source: <schema>.<table>' or "
            "'node_relation: {schema_name: ..., alias: ...}'",
        )
    names = [exp.to_identifier(p) for p in parts]
    return exp.Table(
        this=names[-1], db=names[-2] if len(names) > 1 else None, catalog=names[0] if len(names) > 2 else None
    )


def _spine(catalog: Catalog, dialect: str) -> exp.Expression:
    """The daily calendar as a subquery of the engine's own (``ds`` and any custom grains)."""
    spine = catalog.daily_spine
    if spine is not None:
        columns = [f'CAST("{spine.column}" AS DATE) AS ds'] + [f'"{c}" AS "{n}"' for n, c in spine.custom]
        table = relation(SemanticModel(spine.name, spine.source, (), (), (), spine.origin))
        return exp.select(*columns).from_(table)
    days = (date.fromisoformat(SPINE_END) - date.fromisoformat(SPINE_START)).days + 1
    calendars = {
        "postgres": f"SELECT CAST(d AS DATE) AS ds FROM generate_series(DATE '{SPINE_START}', DATE '{SPINE_END}', "
        "INTERVAL '1 day') AS g(d)",
        # SEQ4 may skip numbers; ROW_NUMBER over it does not
        "snowflake": f"SELECT DATEADD(DAY, ROW_NUMBER() OVER (ORDER BY SEQ4()) - 1, DATE '{SPINE_START}') AS ds "
        f"FROM TABLE(GENERATOR(ROWCOUNT => {days}))",
        "bigquery": f"SELECT ds FROM UNNEST(GENERATE_DATE_ARRAY(DATE '{SPINE_START}', DATE '{SPINE_END}')) AS ds",
        "spark": f"SELECT explode(sequence(DATE '{SPINE_START}', DATE '{SPINE_END}', INTERVAL 1 DAY)) AS ds",
    }
    if dialect not in calendars:
        raise PantryError(
            f"no calendar for a {dialect} engine", field="engine", hint="use postgres, spark, snowflake or bigquery"
        )
    return sqlglot.parse_one(calendars[dialect], read=dialect)


def _in_source_order(table: exp.Table, dialect: str) -> exp.Expression:
    """The table with the source-order columns the embedded sources carry (file, row): a
    view's latest value breaks a tie between rows at the same time by them. PostgreSQL's
    order is its rows' physical place (``ctid``): the load order until rows are updated.
    Spark's is the Parquet file and the row's index in it (``_metadata``), as DuckDB's."""
    if dialect == "spark":
        return exp.select(
            "*",
            exp.alias_(sqlglot.parse_one("_metadata.file_path", read="spark"), FILE_COLUMN),
            exp.alias_(sqlglot.parse_one("_metadata.row_index", read="spark"), ROW_COLUMN),
        ).from_(table)
    if dialect != "postgres":
        raise PantryError(
            f"a latest value (a dimension feature) needs the source's row order, which a {dialect} engine does "
            "not give yet",
            field="features",
            hint="compute this view on DuckDB or PostgreSQL",
        )
    return exp.select(
        "*", exp.alias_(exp.Literal.string(""), FILE_COLUMN), exp.alias_(exp.column("ctid"), ROW_COLUMN)
    ).from_(table)


def _ieee_division(node: exp.Expression) -> exp.Expression:
    """``n / d`` with DuckDB's answer where ``d`` is 0: infinity of ``n``'s sign, or NaN for 0/0.

    Why: PostgreSQL (and Spark under ANSI) stop the whole query on a division by zero, where
    DuckDB and MetricFlow on DuckDB answer ``inf`` (a month-over-month growth from an empty
    month). One definition answers the same on every engine. A divisor already guarded by
    ``NULLIF(d, 0)`` (a ratio metric: null, as MetricFlow has it) is left alone."""
    if not isinstance(node, exp.Div) or isinstance(node.expression, exp.Nullif):
        return node
    # a replaced node's children are not visited again: divisions inside it are done here
    numerator, divisor = node.this.transform(_ieee_division), node.expression.transform(_ieee_division)
    node = exp.Div(this=numerator, expression=divisor, typed=node.args.get("typed"), safe=node.args.get("safe"))

    def special(text: str) -> exp.Expression:
        return exp.cast(exp.Literal.string(text), "DOUBLE")

    sign = (
        exp.Case()
        .when(exp.GT(this=numerator.copy(), expression=exp.Literal.number(0)), special("Infinity"))
        .when(exp.LT(this=numerator.copy(), expression=exp.Literal.number(0)), special("-Infinity"))
        .else_(special("NaN"))
    )
    return exp.Paren(
        this=exp.Case().when(exp.EQ(this=divisor.copy(), expression=exp.Literal.number(0)), sign).else_(node.copy())
    )


def _unique_ctes(tree: exp.Expression) -> exp.Expression:
    """Every CTE whose name is used by another one somewhere in ``tree``, renamed apart.

    Why: a fused query nests subqueries that each have their own ``WITH cumulative_rows``;
    DuckDB and PostgreSQL scope them, but Spark's SQL (Hive's) has no nested WITH, so sqlglot
    lifts every CTE to the top, where two of one name are an error. Innermost first: by the
    time a WITH is renamed, the ones nested in it have names of their own, so each reference
    left in its query under the old name is its own."""
    names = [cte.alias for cte in tree.find_all(exp.CTE)]
    shared = {n for n in names if names.count(n) > 1}
    if not shared:
        return tree
    withs = list(tree.find_all(exp.With))
    counter = 0
    for with_ in reversed(withs):  # find_all walks outer before inner: reversed, inner first
        owner = with_.parent
        for cte in with_.expressions:
            old = cte.alias
            if old not in shared:
                continue
            counter += 1
            new = f"{old}__{counter}"
            cte.set("alias", exp.TableAlias(this=exp.to_identifier(new)))
            for table in owner.find_all(exp.Table):
                if not table.db and table.name == old:
                    table.set("this", exp.to_identifier(new))
    return tree


def for_engine(tree: exp.Expression, catalog: Catalog, dialect: str) -> exp.Expression:
    """``tree`` reading the engine's tables (a copy: the compiler's tree is untouched), its
    divisions by zero answering as DuckDB's do (``_ieee_division``)."""
    tree = tree.transform(_ieee_division)
    models = catalog.semantic_models
    spine: exp.Expression | None = None
    ordered = any(c.name == ROW_COLUMN for c in tree.find_all(exp.Column))

    def point(node: exp.Expression) -> exp.Expression:
        nonlocal spine
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            return node
        alias = node.args.get("alias")
        if node.db == SOURCE_SCHEMA and node.name in models:
            model = models[node.name]
            files = dialect == "spark" and source_kind(model.source) != "table"
            table = spark_files(model, catalog.root) if files else relation(model)
            named = alias.copy() if alias else exp.TableAlias(this=exp.to_identifier(node.name))
            if ordered:
                return exp.Subquery(this=_in_source_order(table, dialect), alias=named)
            table.set("alias", named)
            return table
        if node.name == SPINE_TABLE and not node.db:
            spine = spine or _spine(catalog, dialect)
            return exp.Subquery(this=spine.copy(), alias=alias or exp.TableAlias(this=exp.to_identifier(SPINE_TABLE)))
        if node.name.startswith(SPINE_TABLE + "_") and not node.db:
            raise PantryError(
                "a calendar finer than a day is not built on a warehouse engine yet",
                field="group_by",
                hint="query at day grain or coarser on this engine",
            )
        return node

    tree = tree.transform(point)
    return _unique_ctes(tree) if dialect == "spark" else tree


def engine_sql(catalog: Catalog, request: QueryRequest, dialect: str) -> str:
    """A metric query as the engine's SQL, checked as text against its tree (``checked_text``)."""
    with paused_gc():
        tree = for_engine(Compiler(catalog).compile(request), catalog, dialect)
        return checked_text(tree, dialect)

"""A `where` fuzzed from the grammar's building blocks: nothing outside the group-by names
is ever reached.

The oracle does not trust the guard: every generated where is either refused (ValueError
or PantryError, never anything else), or the SQL that would run is parsed here, in the
test, and must hold one statement, read only the shop's own models (never the ``vault``
model, which shares no entity with them, nor any file or table function), name only the
allowed group-by names in its conditions, and, run on a real DuckDB, never return or
quote the vault's secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from pantry import Store
from pantry.compile.render import compile_checked
from pantry.errors import PantryError
from tests.conftest import SHOP_YAML, shop_frames, write_defs

SECRET = "VAULT-9d1e-secret"
VAULT_YAML = """
semantic_models:
  - name: vault
    source: data/vault.csv
    entities: [{name: safe, type: primary, expr: safe_id}]
    dimensions: [{name: code, type: categorical}]
"""
NAMES = ["metric_time__month", "customer__segment", "order__status"]
SHOP_TABLES = {"orders", "customers", "regions", "pantry_time_spine"}

# -- building blocks ---------------------------------------------------------------------
HOSTILE_TEXT = [
    "VARINT) IS NULL; SELECT code FROM src.vault LIMIT 5 --",
    "x) IS NULL) OR (SELECT count(*) FROM src.vault) > 0 OR (1",
    "INT); SELECT * FROM read_csv('/etc/passwd'); --",
    'a" b',
    "src.vault",
    "vault__code",
    "code",
    "VARCHAR",
    "INT",
    "current_setting('home_directory')",
]
names = st.sampled_from(NAMES).map(lambda n: n if n != "metric_time__month" else n)
quoted_names = st.sampled_from(NAMES + ["vault__code", "code", "safe__code"] + HOSTILE_TEXT).map(
    lambda n: '"' + n.replace('"', '""') + '"'
)
other_names = st.sampled_from(["vault__code", "src.vault.code", "vault.code", "code", "canary", "safe__code"])
strings = st.one_of(
    st.sampled_from(["'vip'", "'2024-01-01'", "''''", "'a''b'", "'--'", "';'", "'/*'", "'\\'", "'é'"]),
    st.text(alphabet="ab'\";-/*() \\", max_size=8).map(lambda t: "'" + t.replace("'", "''") + "'"),
)
numbers = st.sampled_from(["0", "1", "-1", "2.5", "1e3", "20000000", "9999999999999999999999"])
types = st.one_of(
    st.sampled_from(["INT", "BIGINT", "VARCHAR", "DATE", "TIMESTAMP", "DOUBLE", "DECIMAL(10, 2)", "BOOLEAN"]),
    st.sampled_from(["INT[]", "STRUCT(a INT)", "MAP(INT, INT)", "JSON", "VARINT", "UNION(a INT)", "BLOB"]),
    st.sampled_from(HOSTILE_TEXT + ["VARCHAR", "int"]).map(lambda t: '"' + t.replace('"', '""') + '"'),
)
functions = st.sampled_from(
    ["lower", "upper", "length", "trim", "coalesce", "abs", "current_setting", "read_text", "getenv", "glob"]
)
junk = st.sampled_from(
    [";", "--", "/*", "*/", ")", "(", "SELECT code FROM src.vault", "UNION SELECT 1", "'", '"', "::", "{{", "$1"]
)


def expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(names, quoted_names, other_names, strings, numbers, st.just("NULL"), st.just("TRUE"))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(lambda a, t: f"CAST({a} AS {t})", inner, types),
            st.builds(lambda a, t: f"TRY_CAST({a} AS {t})", inner, types),
            st.builds(lambda a, t: f"{a}::{t}", inner, types),
            st.builds(lambda f, a: f"{f}({a})", functions, inner),
            st.builds(lambda a, n: f"lpad({a}, {n}, 'b')", inner, numbers),
            st.builds(
                lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["=", "<>", "<", "||", "+", "LIKE"]), inner
            ),
            st.builds(lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["AND", "OR"]), inner),
            st.builds(lambda a: f"NOT ({a})", inner),
            st.builds(lambda a: f"{a} IS NULL", inner),
            st.builds(lambda a, b, c: f"{a} IN ({b}, {c})", inner, inner, inner),
            st.builds(lambda a, b, c: f"CASE WHEN {a} THEN {b} ELSE {c} END", inner, inner, inner),
        )

    return st.recursive(leaves, extend, max_leaves=8)


wheres = st.one_of(
    expressions(),
    st.builds(lambda a, j, b: f"{a} {j} {b}", expressions(), junk, expressions()),
    st.builds(lambda a, j: f"{a}{j}", expressions(), junk),
)


# -- the shop with a vault ---------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("fuzz")
    defs = write_defs(root, {"shop.yaml": SHOP_YAML, "vault.yaml": VAULT_YAML})
    (defs / "data").mkdir()
    frames = shop_frames(n_orders=60)
    frames["orders"].to_parquet(defs / "data" / "orders.parquet", index=False)
    frames["customers"].to_parquet(defs / "data" / "customers.parquet", index=False)
    frames["regions"].to_csv(defs / "data" / "regions.csv", index=False)
    (defs / "data" / "vault.csv").write_text(f"safe_id,code\n1,{SECRET}\n2,{SECRET}\n")
    return Store(defs=defs, home=root / "home", redis_url="redis://127.0.0.1:1/0")


def reached(sql: str) -> tuple[set[str], set[str], int]:
    """Tables and column names the SQL reads, and its statement count: parsed here, not by Pantry."""
    statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    tables = {t.name for s in statements for t in s.find_all(exp.Table)}
    functions = {f.sql_name().lower() for s in statements for f in s.find_all(exp.Func)}
    return tables, functions, len(statements)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=wheres, group_by=st.sampled_from([["metric_time__month"], ["customer__segment"], []]))
def test_a_fuzzed_where_reaches_nothing_outside_the_group_by_names(
    store: Store, where: str, group_by: list[str]
) -> None:
    metrics = ["revenue"] if group_by != [] else []
    group = group_by or ["customer__segment"]  # no metric: the distinct-values query, ending with the where
    from pantry.api.store import Store as _Store

    try:
        request = _Store._request(store, metrics, group, [where], None, None, None, None)
        sql = compile_checked(store.definitions, request)
    except (ValueError, PantryError) as err:
        assert SECRET not in str(err)
        event("refused")
        return
    event("compiled")
    tables, functions, count = reached(sql)
    assert count == 1, (where, sql)
    assert tables <= SHOP_TABLES, (where, tables)
    assert not functions & {"read_text", "read_csv", "glob", "current_setting", "getenv", "anonymous"}, (where, sql)
    try:
        frame = store.query(metrics, group_by=group, where=where, timeout=10)
    except PantryError as err:
        assert SECRET not in str(err), where
        event("refused by DuckDB")
        return
    event("answered")
    assert SECRET not in frame.to_csv(), where


def test_quoted_type_names_and_unknown_types_are_refused_by_name(store: Store) -> None:
    """The review's injection and its relatives: refused before anything runs, naming the type."""
    cases = {
        "'1'::\"VARINT) IS NULL; SELECT code FROM src.vault LIMIT 5 --\" IS NULL": "the type 'VARINT) IS NULL",
        "CAST('1' AS \"VARINT) IS NULL; SELECT 1 --\") IS NULL": "the type 'VARINT) IS NULL",
        "TRY_CAST('1' AS \"INT); SELECT 1 --\") IS NULL": "is not allowed in a where",
        "CAST(customer__segment AS INT[]) IS NULL": "the type 'INT[]'",
        "CAST(customer__segment AS STRUCT(a INT)) IS NULL": "the type 'STRUCT(a INT)'",
        "CAST(customer__segment AS JSON) IS NULL": "the type 'JSON'",
        "length(lpad(customer__segment, 20000000, 'b')) > 0": "lpad's length must be a whole number of at most 10,000",
        "length(rpad(customer__segment, length(customer__segment), 'b')) > 0": "rpad's length must be",
        "current_setting('home_directory') is not null": "the function 'current_setting'",
    }
    for where, words in cases.items():
        with pytest.raises(PantryError, match="does not parse") as caught:
            store.query(group_by=["customer__segment"], where=where)
        assert words in str(caught.value), (where, str(caught.value))


def test_types_from_the_closed_list_still_answer(store: Store, tmp_path: Path) -> None:
    """Casts a person writes keep working, and answer what a brute force over the frame says."""
    frames = shop_frames(n_orders=60)
    orders = frames["orders"]
    got = store.query(
        ["revenue"],
        where="CAST(metric_time__month AS VARCHAR) LIKE '2024-01%' AND TRY_CAST('7' AS INT) = 7 "
        "AND '2024-02-01'::DATE > metric_time__month AND CAST(1 AS DECIMAL(10, 2)) = 1 AND "
        "lpad('x', 3, '-') = '--x' AND CAST(metric_time__month AS TIMESTAMP) >= CAST('2024-01-01' AS DATETIME) "
        "AND metric_time__month::TIMESTAMP_NS IS NOT NULL AND CAST('1' AS HUGEINT) = 1",
    )
    january = orders[orders["ordered_at"] < "2024-02-01"]["amount"].sum()
    assert float(got["revenue"].iloc[0]) == pytest.approx(january)
    deep = "(" * 64 + "metric_time__month IS NOT NULL" + ")" * 64  # docs/http.md: 64 are accepted
    assert float(store.query(["revenue"], where=deep)["revenue"].iloc[0]) == pytest.approx(orders["amount"].sum())
    with pytest.raises(PantryError, match="nested 65 parentheses deep; at most 64"):
        store.query(["revenue"], where="(" * 65 + "1=1" + ")" * 65)

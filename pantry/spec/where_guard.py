"""Which SQL a ``where`` may hold: one condition over group-by names, and nothing else.

Why an allowlist: a ``where`` arrives from any HTTP caller with the ``read`` scope and
is spliced into the query that DuckDB runs. A denylist of dangerous functions would
miss the next one (``glob``, ``read_text``, ``query``, a subquery over the offline
store, a cross join of ``range``s...). So the parsed tree is walked node by node, and
each node must be a column, a literal, an operator or one of the scalar functions
below; the first node that is not is named in the error. Comments are refused: they
hide nothing a condition needs, and they are the oldest trick for smuggling text past a
check.

Why a closed list of types and a second parse: sqlglot reads a quoted type name it does
not know (``CAST(x AS "VARINT) IS NULL; SELECT ...")``) as a user-defined type and writes
it back verbatim, unquoted, so a tree that passed the walk rendered as two statements.
Checking the tree is not enough; what DuckDB runs is the text. So a cast names one of
DuckDB's scalar types, and ``read_back`` renders the condition, parses that text again and
requires the same tree, which must itself pass the walk: whatever sqlglot writes that means
something else is refused, not only the tricks known today.

Why bounds on function arguments: one ``lpad(x, 20000000, 'b')`` grew a worker to 15 GB.
A padding length is a literal of at most ``MAX_PAD_LENGTH``; what no static rule can bound
(a query's size in general) the worker's ``memory_limit`` and its timeout do.

The same check applies to a metric's ``filter:`` in the definitions, so a filter means
the same whether it is written in YAML or sent over HTTP.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import sqlglot
from sqlglot import exp

MAX_WHERE_CHARS = 4_000  # a long where is an attack or a mistake; both get a clear refusal
MAX_NODES = 2_000
MAX_DEPTH = 64  # parentheses deep; deeper input would exhaust the parser's recursion
MAX_PAD_LENGTH = 10_000  # lpad/rpad: the longest string a where may build
_RECURSION = 20_000  # sqlglot's parser takes ~20 Python frames per parenthesis

_T = exp.DataType.Type
# DuckDB's scalar types, the only ones a cast in a where may name. A closed list: a name
# sqlglot does not know becomes USERDEFINED and is written back as given (the injection).
CAST_TYPES: frozenset[exp.DataType.Type] = frozenset(
    {
        _T.BOOLEAN,
        _T.TINYINT,
        _T.SMALLINT,
        _T.INT,
        _T.BIGINT,
        _T.INT128,
        _T.UTINYINT,
        _T.USMALLINT,
        _T.UINT,
        _T.UBIGINT,
        _T.UINT128,
        _T.FLOAT,
        _T.DOUBLE,
        _T.DECIMAL,
        _T.VARCHAR,
        _T.TEXT,
        _T.CHAR,
        _T.DATE,
        _T.TIME,
        _T.TIMESTAMP,
        _T.TIMESTAMPNTZ,  # what sqlglot reads DuckDB's TIMESTAMP and DATETIME as
        _T.TIMESTAMPTZ,
        _T.TIMESTAMP_S,
        _T.TIMESTAMP_MS,
        _T.TIMESTAMP_NS,
        _T.INTERVAL,
    }
)
_UNIT = re.compile(r"[A-Za-z_]{1,24}")  # a date part or interval unit: a word, nothing else

# Operators, predicates and the leaves they combine.
_STRUCTURE: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Xor,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.SimilarTo,
    exp.Glob,
    exp.Escape,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.Neg,
    exp.DPipe,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.TryCast,
    exp.Interval,
)

# Scalar functions: strings, numbers, dates. No function here reads a file, a table,
# the environment or the settings, and none produces rows.
_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Substring,
    exp.Trim,
    exp.Concat,
    exp.ConcatWs,
    exp.Replace,
    exp.Left,
    exp.Right,
    exp.StrPosition,
    exp.StartsWith,
    exp.Contains,
    exp.RegexpLike,
    exp.Initcap,
    exp.Pad,
    exp.Reverse,
    exp.Coalesce,
    exp.Nullif,
    exp.Greatest,
    exp.Least,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Sign,
    exp.Sqrt,
    exp.Ln,
    exp.Log,
    exp.Exp,
    exp.Pow,
    exp.CurrentDate,
    exp.CurrentTimestamp,
    exp.DateTrunc,
    exp.TimestampTrunc,
    exp.DateAdd,
    exp.DateSub,
    exp.DateDiff,
    exp.Extract,
    exp.Year,
    exp.Quarter,
    exp.Month,
    exp.Week,
    exp.Day,
    exp.DayOfWeek,
    exp.DayOfWeekIso,
    exp.DayOfMonth,
    exp.DayOfYear,
    exp.DateFromParts,
    exp.TimeToStr,
    exp.StrToTime,
    exp.StrToDate,
    exp.TimeToUnix,
    exp.LastDay,
)

# DuckDB scalar functions that sqlglot does not model, by name.
_ANONYMOUS = {"date_part", "datepart", "dayname", "monthname", "isodow", "yearweek", "strip_accents"}

# Where a bare keyword (``month`` in ``date_trunc('month', x)``, ``day`` in ``interval 3 day``) may stand.
_UNIT_PARENTS = (exp.Interval, exp.Extract)

_NAMED = {
    exp.Subquery: "a subquery",
    exp.Select: "a subquery",
    exp.Exists: "EXISTS",
    exp.Star: "'*'",
    exp.Columns: "COLUMNS(...)",
    exp.Struct: "a struct",
    exp.Placeholder: "a parameter placeholder",
    exp.Table: "a table reference",
    exp.Lambda: "a lambda",
    exp.Dot: "a field access",
    exp.Bracket: "an index or slice",
    exp.Array: "a list",
}


def _construct(node: exp.Expression) -> str:
    """The refused construct, in words a person recognises."""
    if isinstance(node, (exp.DataType, exp.DataTypeParam)):
        shown = node.args.get("kind") if node.this == _T.USERDEFINED else node.sql("duckdb")
        return f"the type '{str(shown)[:40]}'"
    if isinstance(node, exp.In):
        return "IN over a subquery or UNNEST"
    for kind, words in _NAMED.items():
        if isinstance(node, kind):
            return words
    if isinstance(node, exp.Anonymous):
        return f"the function '{node.name}'"
    if isinstance(node, exp.Func):
        return f"the function '{node.sql_name().lower()}'"
    if isinstance(node, exp.Command):
        return f"the statement {str(node.this).upper()}"
    if node.parent is None and not isinstance(node, exp.Condition):
        return f"the statement {node.key.upper()}"
    return f"'{node.key}'"


def _allowed(node: exp.Expression) -> bool:
    if isinstance(node, exp.Column):
        return not (node.table or node.args.get("db") or node.args.get("catalog"))
    if isinstance(node, exp.Var):
        return (isinstance(node.parent, _UNIT_PARENTS) or node.arg_key == "unit") and bool(_UNIT.fullmatch(node.name))
    if isinstance(node, exp.DataType):
        return node.this in CAST_TYPES and isinstance(node.parent, (exp.Cast, exp.TryCast))
    if isinstance(node, exp.DataTypeParam):
        return isinstance(node.parent, exp.DataType) and isinstance(node.this, exp.Literal) and node.this.is_int
    if isinstance(node, exp.Literal) and isinstance(node.parent, exp.DataTypeParam):
        return node.is_int
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in _ANONYMOUS
    if isinstance(node, exp.In):
        return not (node.args.get("query") or node.args.get("unnest") or node.args.get("field"))
    return isinstance(node, _STRUCTURE + _FUNCTIONS)


def allowed_condition(tree: exp.Expression) -> exp.Expression:
    """The tree itself if every node is allowed; else ValueError naming the first that is not."""
    count = 0
    for node in tree.walk():
        count += 1
        if count > MAX_NODES:
            raise ValueError(f"it has more than {MAX_NODES:,} parts; simplify the condition")
        if not _allowed(node):
            if isinstance(node, exp.Column) and node.table:
                raise ValueError(
                    f"'{node.sql()}' is a qualified name; a where names group-by columns only, such as metric_time__day"
                )
            raise ValueError(
                f"{_construct(node)} is not allowed in a where; only group-by names, literals, operators "
                "and string, number and date functions are"
            )
        if node.comments:
            raise ValueError("comments (-- or /* */) are not allowed in a where")
        if isinstance(node, exp.Pad):
            _check_pad(node)
    return tree


def _check_pad(node: exp.Pad) -> None:
    """lpad/rpad build a string as long as their length argument: a literal, bounded."""
    length = node.expression
    if not (isinstance(length, exp.Literal) and length.is_int) or int(length.this) > MAX_PAD_LENGTH:
        raise ValueError(
            f"{'lpad' if node.args.get('is_left') else 'rpad'}'s length must be a whole number of at most "
            f"{MAX_PAD_LENGTH:,}, written as a literal"
        )


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Room for sqlglot to parse and render ``MAX_DEPTH`` parentheses (it recurses per level)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, _RECURSION))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def read_back(tree: exp.Expression) -> exp.Expression:
    """Render the checked condition as DuckDB will receive it, parse that text again and
    require the same tree, itself allowed: the text that runs means what was checked."""
    rendered = tree.sql(dialect="duckdb")
    try:
        again = [s for s in sqlglot.parse(rendered, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError:
        again = []
    if len(again) != 1 or again[0] != tree:
        raise ValueError("it does not read back as the same condition once written as SQL; simplify it")
    return allowed_condition(again[0])


def check_nesting(sql: str) -> None:
    """Refuse input nested deeper than ``MAX_DEPTH`` before the recursive parser sees it."""
    depth = deepest = 0
    for char in sql:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise ValueError(f"it is nested {deepest} parentheses deep; at most {MAX_DEPTH} are accepted")

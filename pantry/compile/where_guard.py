"""Which SQL a ``where`` may hold: one condition over group-by names, and nothing else.

Why an allowlist: a ``where`` arrives from any HTTP caller with the ``read`` scope and
is spliced into the query that DuckDB runs. A denylist of dangerous functions would
miss the next one (``glob``, ``read_text``, ``query``, a subquery over the offline
store, a cross join of ``range``s...). So the parsed tree is walked node by node, and
each node must be a column, a literal, an operator or one of the scalar functions
below; the first node that is not is named in the error. Comments are refused: they
hide nothing a condition needs, and they are the oldest trick for smuggling text past a
check.

The same check applies to a metric's ``filter:`` in the definitions, so a filter means
the same whether it is written in YAML or sent over HTTP.
"""

from __future__ import annotations

from sqlglot import exp

MAX_WHERE_CHARS = 4_000  # a long where is an attack or a mistake; both get a clear refusal
MAX_NODES = 2_000
MAX_DEPTH = 64  # parentheses deep; deeper input would exhaust the parser's recursion

# Operators, predicates and the leaves they combine.
_STRUCTURE: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.RawString,
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
    exp.DataType,
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
        return isinstance(node.parent, _UNIT_PARENTS) or node.arg_key == "unit"
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
    return tree


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

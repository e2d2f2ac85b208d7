"""Step 3, continued: HogQL functions whose ClickHouse counterpart has another name or form.

| HogQL            | ClickHouse                                                           |
|------------------|----------------------------------------------------------------------|
| `toFloat(x)`     | `toFloat64OrNull(x)`, with `toString(x)` for a non-string argument  |
| `toInt(x)`       | `toInt64OrNull(x)`, likewise                                         |
| `toDate(s)`      | `toDateOrNull(s)` for a string, `toDate(x)` otherwise                |
| `toDateTime(s)`  | `parseDateTime64BestEffortOrNull(s, 6, tz)` for a string, `toDateTime(x, tz)` otherwise |
| `now()`          | `now64(6, tz)`; `now('Europe/Paris')` keeps its own timezone        |
| `today()`        | `toDate(now64(6, tz))`                                               |
| `yesterday()`    | `subtractDays(toDate(now64(6, tz)), 1)`                              |
| `current_date()`, `CURRENT_DATE`, `curdate()` | as `today()`                            |
| `current_timestamp()`, `CURRENT_TIMESTAMP`, `localtimestamp()` | as `now()`             |
| `windowFunnel(w)(timestamp, ...)` | `windowFunnel(w)(toDateTime(timestamp, tz), ...)`   |

`tz` is the project's timezone. ClickHouse's `*OrNull` conversions accept only String arguments
(ILLEGAL_TYPE_OF_ARGUMENT for Float64 on ClickHouse 26.9), hence `toString` around numbers.
ClickHouse 26.9 has the SQL-standard names as aliases of today() and now(). They are rewritten,
so they read the project's timezone as today() and now() do. windowFunnel and the sequence*
aggregates reject DateTime64 arguments (ILLEGAL_TYPE_OF_ARGUMENT on ClickHouse 26.9), and the
events table stores `timestamp` as DateTime64(6), so a timestamp column there is converted to DateTime.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from .columns import DATETIME_COLUMNS
from .context import CompileContext
from .dialect import PARAMETER_TYPE_KEY
from .errors import UnsupportedError
from .nodes import PROPERTY_READ_KEY, call, timezone_parameter
from .parse import USER_PLACEHOLDER_KEY
from .positions import error_at_name
from .source import SourceText
from .tree import TreeNodes

# Functions whose result is a String, so a conversion can take it without toString().
STRING_RESULT_FUNCTIONS = {
    "toString", "concat", "concatWithSeparator", "lower", "upper", "substring", "substr",
    "trim", "trimBoth", "trimLeft", "trimRight", "replaceAll", "replaceOne", "replaceRegexpAll",
    "replaceRegexpOne", "JSONExtractString", "JSONExtractRaw", "extract", "formatDateTime",
    "leftPad", "rightPad", "left", "right", "domain", "path", "extractURLParameter",
}
# Aggregates whose first argument is a time that must be DateTime, Date or an unsigned number.
DATETIME_ARGUMENT_AGGREGATES = ("windowFunnel", "sequenceMatch", "sequenceCount", "sequenceNextNode")
_STRING_TYPE = re.compile(r"(Nullable\(|LowCardinality\()*(String|FixedString\(\d+\))\)*\Z")

Rewrite = Callable[[exp.Anonymous, CompileContext], exp.Expr]


def rewrite_functions(tree: exp.Expr, context: CompileContext, source: SourceText) -> None:
    """Replace HogQL-only functions with their ClickHouse forms."""
    # One walk finds the nodes of all three loops. The calls that the first two loops add,
    # such as toDate(now64(6, tz)), are already in ClickHouse form, so the third needs none of them.
    nodes = TreeNodes(tree)
    for node in nodes.find_all(exp.CurrentDate, exp.Column):
        if _is_current_date_keyword(node):
            node.replace(_rewrite_today(node, context))
        elif _is_current_timestamp_keyword(node):
            node.replace(_now(context))

    for node in nodes.find_all(exp.ParameterizedAgg, exp.CombinedParameterizedAgg):
        timestamp = _datetime_argument(node)
        if timestamp is not None:
            timestamp.replace(call("toDateTime", timestamp.copy(), timezone_parameter(context.timezone)))

    for node in nodes.find_all(exp.Anonymous):
        rewrite = _REWRITES.get(node.name)
        if rewrite is None:
            continue

        expected = _ARGUMENT_COUNTS[node.name]
        if len(node.expressions) not in expected:
            counts = " or ".join(str(count) for count in sorted(expected))
            noun = "argument" if expected == {1} else "arguments"
            raise error_at_name(
                source,
                UnsupportedError,
                f"Function '{node.name}' takes {counts} {noun}, found {len(node.expressions)}.",
                node,
            )

        node.replace(rewrite(node, context))


def is_rewritten(node: exp.Expr) -> bool:
    """Return whether `rewrite_functions` replaces or changes this node."""
    if isinstance(node, exp.Anonymous):
        return node.name in _REWRITES
    if isinstance(node, (exp.ParameterizedAgg, exp.CombinedParameterizedAgg)):
        return _datetime_argument(node) is not None
    return _is_current_date_keyword(node) or _is_current_timestamp_keyword(node)


def _is_current_date_keyword(node: exp.Expr) -> bool:
    return isinstance(node, exp.CurrentDate) and not node.this


def _is_current_timestamp_keyword(node: exp.Expr) -> bool:
    """`CURRENT_TIMESTAMP` without parentheses, which sqlglot parses as a column name."""
    return (
        isinstance(node, exp.Column)
        and not node.table
        and isinstance(node.this, exp.Identifier)
        and not node.this.quoted
        and node.name.upper() == "CURRENT_TIMESTAMP"
    )


def _datetime_argument(node: exp.Expr) -> exp.Column | None:
    """Return the timestamp column passed to windowFunnel or a sequence* aggregate, if any."""
    name = node.name
    if not any(name.startswith(base) for base in DATETIME_ARGUMENT_AGGREGATES):
        return None

    # sqlglot 30.31 keeps the parameters, `(w)`, in `expressions` and the arguments in `params`.
    arguments = node.args.get("params") or []
    first = arguments[0] if arguments else None
    if isinstance(first, exp.Column) and first.name in DATETIME_COLUMNS:
        return first
    return None


def is_string_expression(node: exp.Expr) -> bool:
    """Return whether `node` is known to produce a String, without a type system: literals, String
    placeholders and property reads, casts to String and calls from STRING_RESULT_FUNCTIONS."""
    if isinstance(node, exp.Literal):
        return node.is_string

    if isinstance(node, exp.Placeholder) and node.meta.get(USER_PLACEHOLDER_KEY):
        return bool(_STRING_TYPE.match(node.meta[PARAMETER_TYPE_KEY]))

    if node.meta.get(PROPERTY_READ_KEY) == "String":
        return True

    if isinstance(node, exp.Cast):
        return node.to.is_type(exp.DType.TEXT)

    return isinstance(node, exp.Anonymous) and node.name in STRING_RESULT_FUNCTIONS


def _as_string(node: exp.Expr) -> exp.Expr:
    return node if is_string_expression(node) else call("toString", node)


def _now(context: CompileContext, timezone: exp.Expr | None = None) -> exp.Expr:
    return call("now64", exp.Literal.number(6), timezone or timezone_parameter(context.timezone))


def _rewrite_now(node: exp.Anonymous, context: CompileContext) -> exp.Expr:
    return _now(context, node.expressions[0] if node.expressions else None)


def _rewrite_today(node: exp.Expr, context: CompileContext) -> exp.Expr:
    return call("toDate", _now(context))


def _rewrite_yesterday(node: exp.Anonymous, context: CompileContext) -> exp.Expr:
    return call("subtractDays", call("toDate", _now(context)), exp.Literal.number(1))


def _rewrite_to_float(node: exp.Anonymous, context: CompileContext) -> exp.Expr:
    return call("toFloat64OrNull", _as_string(node.expressions[0]))


def _rewrite_to_int(node: exp.Anonymous, context: CompileContext) -> exp.Expr:
    return call("toInt64OrNull", _as_string(node.expressions[0]))


def _rewrite_to_date(node: exp.Anonymous, context: CompileContext) -> exp.Expr:
    if len(node.expressions) == 1 and is_string_expression(node.expressions[0]):
        return call("toDateOrNull", node.expressions[0])
    return node


def _rewrite_to_date_time(node: exp.Anonymous, context: CompileContext) -> exp.Expr:
    value = node.expressions[0]
    timezone = node.expressions[1] if len(node.expressions) == 2 else timezone_parameter(context.timezone)
    if is_string_expression(value):
        return call("parseDateTime64BestEffortOrNull", value, exp.Literal.number(6), timezone)
    return call("toDateTime", value, timezone)


_REWRITES: dict[str, Rewrite] = {
    "now": _rewrite_now,
    "current_timestamp": _rewrite_now,
    "localtimestamp": _rewrite_now,
    "today": _rewrite_today,
    "current_date": _rewrite_today,
    "curdate": _rewrite_today,
    "yesterday": _rewrite_yesterday,
    "toFloat": _rewrite_to_float,
    "toInt": _rewrite_to_int,
    "toDate": _rewrite_to_date,
    "toDateTime": _rewrite_to_date_time,
}
_ARGUMENT_COUNTS: dict[str, set[int]] = {
    "now": {0, 1},
    "current_timestamp": {0, 1},
    "localtimestamp": {0, 1},
    "today": {0},
    "current_date": {0},
    "curdate": {0},
    "yesterday": {0},
    "toFloat": {1},
    "toInt": {1},
    "toDate": {1, 2},
    "toDateTime": {1, 2},
}

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

`tz` is the project's timezone. ClickHouse's `*OrNull` conversions accept only String arguments
(ILLEGAL_TYPE_OF_ARGUMENT for Float64 on ClickHouse 26.9), hence `toString` around numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from .context import CompileContext
from .dialect import PARAMETER_TYPE_KEY
from .errors import UnsupportedError
from .nodes import PROPERTY_READ_KEY, call, timezone_parameter
from .parse import USER_PLACEHOLDER_KEY
from .positions import error_at_name
from .source import SourceText

# Functions whose result is a String, so a conversion can take it without toString().
STRING_RESULT_FUNCTIONS = {
    "toString", "concat", "concatWithSeparator", "lower", "upper", "substring", "substr",
    "trim", "trimBoth", "trimLeft", "trimRight", "replaceAll", "replaceOne", "replaceRegexpAll",
    "replaceRegexpOne", "JSONExtractString", "JSONExtractRaw", "extract", "formatDateTime",
    "leftPad", "rightPad", "left", "right", "domain", "path", "extractURLParameter",
}
_STRING_TYPE = re.compile(r"(Nullable\(|LowCardinality\()*(String|FixedString\(\d+\))\)*\Z")

Rewrite = Callable[[exp.Anonymous, CompileContext], exp.Expr]


def rewrite_functions(tree: exp.Expr, context: CompileContext, source: SourceText) -> None:
    """Replace HogQL-only functions with their ClickHouse forms."""
    for node in list(tree.find_all(exp.Anonymous)):
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


def _rewrite_today(node: exp.Anonymous, context: CompileContext) -> exp.Expr:
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
    "today": _rewrite_today,
    "yesterday": _rewrite_yesterday,
    "toFloat": _rewrite_to_float,
    "toInt": _rewrite_to_int,
    "toDate": _rewrite_to_date,
    "toDateTime": _rewrite_to_date_time,
}
_ARGUMENT_COUNTS: dict[str, set[int]] = {
    "now": {0, 1},
    "today": {0},
    "yesterday": {0},
    "toFloat": {1},
    "toInt": {1},
    "toDate": {1, 2},
    "toDateTime": {1, 2},
}

"""Step 6: give the query a row limit, a default when none is written and a maximum.

`apply_limits` sets the limits the caller sees in the echoed HogQL and returns the row cap.
`add_truncation_probe` then raises the top-level LIMIT to row cap + 1, so the executor can tell
a result that was cut at the cap (it received row cap + 1 rows) from one that fits exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sqlglot import exp

from .context import CompileContext
from sqlglot.tokens import TokenType

from .errors import HogQLError, UnsupportedError
from .parse import USER_PLACEHOLDER_KEY, ParsedQuery
from .positions import error_at, node_span
from .source import quoted

# Meta key on the Limit node that carries the row cap.
ROW_CAP_KEY = "pb_row_cap"


def apply_limits(parsed: ParsedQuery, context: CompileContext) -> tuple[exp.Query, int | None]:
    """Return the query with its limits and the row cap (None when the query's own LIMIT holds).

    Each UNION arm without a LIMIT gets the default, as PostHog does; the row cap applies to
    the whole query.
    """
    tree = parsed.tree
    if isinstance(tree, exp.SetOperation):
        for arm in _set_operation_arms(tree):
            if arm.args.get("limit") is None:
                arm.set("limit", _limit_node(context.default_limit))

    limit = tree.args.get("limit")
    if limit is not None and _is_limit_by(limit):
        # sqlglot 30.31 keeps one LIMIT per SELECT, so `LIMIT n BY x` keeps its place and
        # the row limit goes on a wrapping SELECT.
        tree = exp.select(exp.Star()).from_(tree.subquery("limited_by", copy=False), copy=False)
        limit = None

    if limit is None:
        tree.set("limit", _limit_node(context.default_limit, row_cap=context.default_limit))
        return tree, context.default_limit

    requested = _limit_value(limit, context.placeholders, parsed)
    if requested <= context.max_limit:
        return tree, None

    tree.set("limit", _limit_node(context.max_limit, row_cap=context.max_limit, offset=limit.args.get("offset")))
    return tree, context.max_limit


def add_truncation_probe(tree: exp.Query) -> exp.Query:
    """Raise the top-level LIMIT that carries the row cap to row cap + 1."""
    limit = tree.args.get("limit")
    if limit is None or ROW_CAP_KEY not in limit.meta:
        return tree

    limit.set("expression", exp.Literal.number(limit.meta[ROW_CAP_KEY] + 1))
    return tree


def _limit_node(value: int, *, row_cap: int | None = None, offset: exp.Expr | None = None) -> exp.Limit:
    limit = exp.Limit(expression=exp.Literal.number(value))
    if offset is not None:
        limit.set("offset", offset)
    if row_cap is not None:
        limit.meta[ROW_CAP_KEY] = row_cap
    return limit


def _is_limit_by(limit: exp.Limit) -> bool:
    return bool(limit.args.get("expressions"))


def _limit_value(limit: exp.Limit, placeholders: Mapping[str, tuple[object, str]], parsed: ParsedQuery) -> int:
    """Read a LIMIT written as a whole number or as a placeholder holding one."""
    expression = limit.expression
    value: object = None
    if isinstance(expression, exp.Literal) and not expression.is_string and expression.is_int:
        value = int(expression.this)
    elif isinstance(expression, exp.Placeholder) and expression.meta.get(USER_PLACEHOLDER_KEY):
        value = placeholders[expression.name][0]

    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value

    raise _limit_error(expression, parsed)


def _limit_error(expression: exp.Expr, parsed: ParsedQuery) -> HogQLError:
    message = "LIMIT must be a whole number of 0 or more, or a placeholder holding one"
    span = node_span(expression)
    if span is None:
        return error_at(parsed.source, UnsupportedError, f"{message}.", expression)

    start, end = span
    if isinstance(expression, exp.Neg):
        # sqlglot keeps no position for the minus sign of `LIMIT -1`; it is the '-' just before.
        dashes = [token for token in parsed.tokens if token.token_type == TokenType.DASH and token.end < start]
        start = dashes[-1].start if dashes else start

    original_start, original_end = parsed.source.original_span(start, end)
    found = parsed.source.original[original_start:original_end]
    return parsed.source.error_at_rewritten(UnsupportedError, f"{message}; found {quoted(found)}.", start, end)


def _set_operation_arms(node: exp.Expr) -> Iterator[exp.Select]:
    """Yield the SELECTs a UNION combines, through parentheses and nested UNIONs.

    INTERSECT and EXCEPT arms get no default LIMIT, because cutting them changes the result.
    """
    if isinstance(node, exp.Subquery):
        yield from _set_operation_arms(node.this)
    elif isinstance(node, exp.Union):
        yield from _set_operation_arms(node.this)
        yield from _set_operation_arms(node.expression)
    elif isinstance(node, exp.Select):
        yield node

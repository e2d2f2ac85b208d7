"""Step 4, continued: read strings compared with the events table's timestamps as times.

ClickHouse 26.9 converts a string compared with a DateTime64 column in its basic format only:
`timestamp >= '2024-01-03T00:00:00Z'`, as agents write ISO 8601, fails with TYPE_MISMATCH.
So such a string becomes `parseDateTime64BestEffort(s, 6, tz)`, which reads ISO 8601 with `T`,
fractions and offsets, and reads a time without an offset in the project's timezone, as
`toDateTime('...')` does (rewrite.py). The non-OrNull form reports an unreadable string instead
of comparing with NULL and returning no rows.
"""

from __future__ import annotations

from sqlglot import exp

from .columns import DATETIME_COLUMNS, own_columns_by_select
from .dialect import PARAMETER_TYPE_KEY
from .nodes import call, timezone_parameter
from .parse import USER_PLACEHOLDER_KEY
from .scopes import resolve_qualifier, select_sources
from .tables import is_events_table
from .tree import TreeNodes

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def parse_timestamp_strings(tree: exp.Expr, timezone: str) -> None:
    """Replace strings compared with `timestamp` or `inserted_at` of events by parsed times."""
    # Only constants are replaced, so the SELECTs and columns found first stay in place.
    nodes = TreeNodes(tree)
    columns = own_columns_by_select(nodes)
    for select in nodes.find_all(exp.Select):
        for column in columns.get(id(select), []):
            if not _is_events_datetime(column, select):
                continue

            for operand in _compared_strings(column):
                operand.replace(
                    call("parseDateTime64BestEffort", operand.copy(), exp.Literal.number(6), timezone_parameter(timezone))
                )


def _is_events_datetime(column: exp.Column, select: exp.Select) -> bool:
    if column.name not in DATETIME_COLUMNS or isinstance(column.this, exp.Star):
        return False

    if column.table:
        resolved = resolve_qualifier(column)
        return resolved is not None and is_events_table(resolved[1])

    # A bare name is the table's column when every source is events and no SELECT item takes
    # the name as the alias of another expression (ClickHouse resolves aliases first). names.py
    # names `e.timestamp` "timestamp", which is still the column.
    sources = select_sources(select)
    aliases = {
        item.alias
        for item in select.expressions
        if isinstance(item, exp.Alias) and not (isinstance(item.this, exp.Column) and item.this.name == item.alias)
    }
    return bool(sources) and all(is_events_table(source) for source in sources) and column.name not in aliases


def _compared_strings(column: exp.Column) -> list[exp.Expr]:
    """Return the string constants that `column` is compared with by =, <, IN or BETWEEN."""
    parent = column.parent
    if isinstance(parent, _COMPARISONS):
        operands = [parent.expression if parent.this is column else parent.this]
    elif isinstance(parent, exp.Between) and parent.this is column:
        operands = [parent.args["low"], parent.args["high"]]
    elif isinstance(parent, exp.In) and parent.this is column:
        operands = list(parent.expressions)
    else:
        operands = []

    return [operand for operand in operands if _is_string_constant(operand)]


def _is_string_constant(node: exp.Expr) -> bool:
    if isinstance(node, exp.Literal):
        return node.is_string

    if isinstance(node, exp.Placeholder) and node.meta.get(USER_PLACEHOLDER_KEY):
        return node.meta[PARAMETER_TYPE_KEY] in ("String", "Nullable(String)")
    return False

"""Step 4, continued: name result columns as written, before later steps rewrite the items.

ClickHouse names an unaliased SELECT item after the expression it runs, so without an alias a
column would be named after the compiler's output: `avg(accurateCastOrNull(properties.amount,
'Float64'))` for `avg(properties.amount)`, or `pb_t1.event` for `f.event` of a self-join. So:

- a qualified events column such as `e.event` is named `event`, or `e.event` when the bare name is
  already an earlier item's name, another item's alias, or a column of an earlier source in the
  same FROM list (ClickHouse 26.9 names `e.event, f.event` of a self-join `event`, `f.event`);
- an unaliased expression is named by its HogQL text when the compiler rewrites part of it. Those
  parts are property reads, HogQL functions such as now() and toFloat(), timestamp columns (read
  in the project timezone or compared with a parsed string) and events columns whose name needs
  the table qualifier.

Other items keep ClickHouse's own names (`count()`, `countIf(equals(event, 'x'))`). Bare property
reads are named by properties.py.
"""

from __future__ import annotations

from sqlglot import exp

from .columns import DATETIME_COLUMNS
from .paths import property_path
from .printer import print_hogql
from .rewrite import is_rewritten
from .scopes import possible_columns, qualifier, resolve_qualifier, select_sources
from .tables import is_events_table
from .tree import TreeNodes


def name_columns(tree: exp.Expr) -> None:
    """Alias the SELECT items whose ClickHouse name would show the compiler's rewriting."""
    for select in TreeNodes(tree).find_all(exp.Select):
        aliases = {item.alias for item in select.expressions if isinstance(item, exp.Alias)}
        earlier_names: set[str] = set()
        names = []
        for item in select.expressions:
            name = _result_name(item, select, aliases, earlier_names)
            names.append(name)
            earlier_names.add(name or item.alias_or_name)

        items = [
            item if name is None else exp.alias_(item, name, quoted=True, copy=False)
            for item, name in zip(select.expressions, names)
        ]
        select.set("expressions", items)


def _result_name(
    item: exp.Expr, select: exp.Select, aliases: set[str], earlier_names: set[str]
) -> str | None:
    """Return the alias to give an unaliased SELECT item, or None to leave it as it is."""
    if isinstance(item, (exp.Alias, exp.Star)) or property_path(item) is not None:
        return None

    if isinstance(item, exp.Column) and is_rewritten(item):
        return print_hogql(item)  # CURRENT_TIMESTAMP, which sqlglot parses as a column
    if isinstance(item, exp.Column):
        return _column_name(item, select, aliases, earlier_names)

    for node in item.walk():
        if node.find_ancestor(exp.Select) is not select:
            continue  # part of a subquery inside the item, named in that subquery
        if _is_rewritten(node, select, aliases):
            return print_hogql(item)
    return None


def _column_name(
    column: exp.Column, select: exp.Select, aliases: set[str], earlier_names: set[str]
) -> str | None:
    resolved = resolve_qualifier(column)
    if resolved is None or not is_events_table(resolved[1]) or isinstance(column.this, exp.Star):
        return None

    if column.name in earlier_names or _needs_qualifier(column, select, aliases):
        return f"{qualifier(column).name}.{column.name}"
    return column.name


def _is_rewritten(node: exp.Expr, select: exp.Select, aliases: set[str]) -> bool:
    if isinstance(node, (exp.Column, exp.Dot, exp.Bracket)) and property_path(node) is not None:
        return True

    if is_rewritten(node):
        return True

    if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
        return False
    if node.name in DATETIME_COLUMNS:
        return True

    resolved = resolve_qualifier(node)
    return resolved is not None and is_events_table(resolved[1]) and _needs_qualifier(node, select, aliases)


def _needs_qualifier(column: exp.Column, select: exp.Select, aliases: set[str]) -> bool:
    """Return whether the bare column name would not name this column in `select`."""
    if column.name in aliases:
        return True

    resolved = resolve_qualifier(column)
    if resolved is None or resolved[0] is not select:
        return True

    sources = select_sources(select)
    position = next(index for index, source in enumerate(sources) if source is resolved[1])
    for earlier in sources[:position]:
        names = possible_columns(earlier)
        if names is None or column.name in names:
            return True
    return False

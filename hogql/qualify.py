"""Step 5: give every events table reference an internal alias, so no user name can stand in for it.

ClickHouse 26.9 resolves `e.project_id` to a subcolumn of an expression aliased `e` when the query
has one (`SELECT properties AS e FROM events AS e WHERE e.project_id = ...` reads the JSON key
`properties.project_id`, checked on chDB 4.4). So the project guard must not use a name the user
chose. Each `events` source becomes `events AS pb_t<n>`, every column qualifier that names it is
rewritten to that alias, and the guard compares `pb_t<n>.project_id`. Names starting with `pb_`
are rejected in user text (tables.py), so nothing in the query can shadow these aliases.

Result columns keep the names the user wrote: SELECT items that are qualified columns, and
unaliased expressions that would need their qualifier in the name, get an explicit alias first.
"""

from __future__ import annotations

import difflib

from sqlglot import exp

from .errors import UnknownColumnError
from .paths import property_path
from .positions import error_at
from .printer import print_hogql
from .scopes import possible_columns, qualifier, resolve_qualifier, select_sources
from .source import SourceText
from .tables import EVENTS_COLUMNS, is_events_table

INTERNAL_ALIAS_PREFIX = "pb_t"


def check_qualified_columns(tree: exp.Expr, source: SourceText) -> None:
    """Reject `e.name` where `e` is an events table and `name` is not one of its columns.

    ClickHouse would report the error with the internal alias, which the user never wrote.
    """
    for column in tree.find_all(exp.Column):
        resolved = resolve_qualifier(column)
        if resolved is None or not is_events_table(resolved[1]):
            continue

        name = column.parts[1]
        if isinstance(name, exp.Star) or name.name in EVENTS_COLUMNS:
            continue

        table = column.parts[0].name
        close = difflib.get_close_matches(name.name, EVENTS_COLUMNS, n=1)
        hint = f"did you mean {table}.{close[0]}?" if close else f"read an event property as {table}.properties.{name.name}."
        raise error_at(
            source,
            UnknownColumnError,
            f"Unknown column '{table}.{name.name}'. The events table has the columns {', '.join(EVENTS_COLUMNS)}; {hint}",
            name,
        )


def name_columns(tree: exp.Expr) -> None:
    """Alias SELECT items whose name ClickHouse would build from an events table qualifier.

    A qualified column gets its column name, or `qualifier.column` when the bare name is already
    an earlier item's name, another item's alias, or a column of an earlier source in the same
    FROM list (as ClickHouse 26.9 names `e.event, f.event` of a self-join `event`, `f.event`).
    An unaliased expression that reads such an ambiguous column is named by its HogQL text.
    Property reads are named by properties.py.
    """
    for select in list(tree.find_all(exp.Select)):
        aliases = {item.alias for item in select.expressions if isinstance(item, exp.Alias)}
        taken: set[str] = set()
        names = []
        for item in select.expressions:
            name = _result_name(item, select, aliases, taken)
            names.append(name)
            taken.add(name or item.alias_or_name)

        items = [
            item if name is None else exp.alias_(item, name, quoted=True, copy=False)
            for item, name in zip(select.expressions, names)
        ]
        select.set("expressions", items)


def qualify_events_tables(tree: exp.Expr) -> None:
    """Alias each events table reference `pb_t<n>` and point its column qualifiers there."""
    columns = [(column, resolve_qualifier(column)) for column in tree.find_all(exp.Column)]

    tables = [table for table in tree.find_all(exp.Table, bfs=False) if is_events_table(table)]
    for index, table in enumerate(tables):
        table.set("alias", exp.TableAlias(this=exp.to_identifier(f"{INTERNAL_ALIAS_PREFIX}{index}")))

    for column, resolved in columns:
        if resolved is None or not is_events_table(resolved[1]):
            continue

        internal = resolved[1].alias
        qualifier(column).replace(exp.to_identifier(internal))


def _result_name(item: exp.Expr, select: exp.Select, aliases: set[str], taken: set[str]) -> str | None:
    """Return the alias to give an unaliased SELECT item, or None to leave it as it is."""
    if isinstance(item, (exp.Alias, exp.Star)) or property_path(item) is not None:
        return None

    if isinstance(item, exp.Column):
        resolved = resolve_qualifier(item)
        if resolved is None or not is_events_table(resolved[1]) or isinstance(item.this, exp.Star):
            return None
        if item.name in taken or _needs_qualifier(item, select, aliases):
            return f"{qualifier(item).name}.{item.name}"
        return item.name

    for column in item.find_all(exp.Column):
        if column.find_ancestor(exp.Select) is not select:
            continue  # a column of a subquery inside the item, named in that subquery

        resolved = resolve_qualifier(column)
        if resolved is not None and is_events_table(resolved[1]) and _needs_qualifier(column, select, aliases):
            return print_hogql(item)
    return None


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

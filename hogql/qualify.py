"""Step 5: give every events table reference an internal alias, so no user name can stand in for it.

ClickHouse 26.9 resolves `e.project_id` to a subcolumn of an expression aliased `e` when the query
has one (`SELECT properties AS e FROM events AS e WHERE e.project_id = ...` reads the JSON key
`properties.project_id`, checked on chDB 4.4). So the project guard must not use a name the user
chose. Each `events` source becomes `events AS pb_t<n>`, every column qualifier that names it is
rewritten to that alias, and the guard compares `pb_t<n>.project_id`. Names starting with `pb_`
are rejected in user text (tables.py), so nothing in the query can shadow these aliases.

Result columns keep the names the user wrote, because names.py aliases SELECT items first.
"""

from __future__ import annotations

import difflib
import re

from sqlglot import exp

from .context import CompiledQuery
from .errors import UnknownColumnError, UnknownTableError
from .positions import error_at
from .scopes import qualifier, resolve_qualifier
from .source import SourceText
from .tables import EVENTS_COLUMNS, is_events_table
from .tree import TreeNodes

INTERNAL_ALIAS_PREFIX = "pb_t"
# Internal aliases of events tables (pb_t<n>) and of health_snapshots subqueries (pb_h<n>).
_INTERNAL_ALIAS = re.compile(r"\bpb_[th]\d+\b")


def check_qualified_columns(tree: exp.Expr, source: SourceText, nodes: TreeNodes | None = None) -> None:
    """Reject `e.name` where `e` is an events table and `name` is not one of its columns.

    ClickHouse would report the error with the internal alias, which the user never wrote.
    `nodes`, when given, must list the nodes of `tree` as it is now.
    """
    nodes = nodes or TreeNodes(tree)
    for column in nodes.find_all(exp.Column):
        resolved = resolve_qualifier(column)
        if resolved is None or not is_events_table(resolved[1]):
            continue

        name = column.parts[1]
        if isinstance(name, exp.Star) or name.name in EVENTS_COLUMNS:
            continue

        table = column.parts[0].name
        close = difflib.get_close_matches(name.name, EVENTS_COLUMNS, n=1)
        if close:
            hint = f"did you mean {table}.{close[0]}?"
        else:
            hint = f"read an event property as {table}.properties.{name.name}."
        raise error_at(
            source,
            UnknownColumnError,
            f"Unknown column '{table}.{name.name}'. The events table has the columns "
            f"{', '.join(EVENTS_COLUMNS)}; {hint}",
            name,
        )


def check_property_qualifiers(tree: exp.Expr, source: SourceText, nodes: TreeNodes | None = None) -> None:
    """Reject `x.properties.key` where no table or subquery in scope is named `x`.

    PostHog's `person.properties.email` is the usual case: ClickHouse would report an unknown
    identifier without saying that person properties do not exist here. `nodes`, when given,
    must list the nodes of `tree` as it is now.
    """
    nodes = nodes or TreeNodes(tree)
    for path in nodes.property_paths():
        if path.qualifier is None:
            continue

        root = path.node
        while not isinstance(root, exp.Column):
            root = root.this
        if resolve_qualifier(root) is not None:
            continue

        raise error_at(
            source,
            UnknownTableError,
            f"Unknown table '{path.qualifier}' in '{path.qualifier}.properties'. Only event properties "
            "can be read, as properties.<key> or <events alias>.properties.<key>; person and group "
            "tables are not available.",
            root.parts[0],
        )


def qualify_events_tables(tree: exp.Expr) -> dict[str, str]:
    """Alias each events table reference `pb_t<n>` and point its column qualifiers there.

    Returns each internal alias with the name the user gave that table (`events` when unaliased).
    """
    nodes = TreeNodes(tree)
    columns = [(column, resolve_qualifier(column)) for column in nodes.find_all(exp.Column)]

    aliases = {}
    tables = [table for table in nodes.find_all_depth_first(exp.Table) if is_events_table(table)]
    for index, table in enumerate(tables):
        internal = f"{INTERNAL_ALIAS_PREFIX}{index}"
        aliases[internal] = table.alias_or_name
        table.set("alias", exp.TableAlias(this=exp.to_identifier(internal)))

    for column, resolved in columns:
        if resolved is None or not is_events_table(resolved[1]):
            continue

        internal = resolved[1].alias
        qualifier(column).replace(exp.to_identifier(internal))

    return aliases


def restore_table_aliases(text: str, compiled: CompiledQuery) -> str:
    """Replace the internal table aliases in `text`, such as a ClickHouse error message about
    `pb_t1.event`, with the names the query's author gave those tables."""
    return _INTERNAL_ALIAS.sub(lambda match: compiled.table_aliases.get(match.group(), match.group()), text)

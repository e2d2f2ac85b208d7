"""Step 3, continued: the names a query may use for tables, aliases and columns.

Only `events`, `health_snapshots` and the query's own CTEs can be read, and no name reaches
`project_id`. The project guard (guard.py) compares `pb_t<n>.project_id`, an alias qualify.py gives
each events table, and snapshot_table.py reads `health_snapshots` through a guarded subquery
aliased `pb_h<n>`, so names starting with `pb_` are reserved. No other source can take a table's
name, because ClickHouse 26.9 reads a subquery or CTE aliased `events` wherever the same query
names the events table (`FROM events AS t, x AS events` reads x twice, checked on chDB 4.4).
"""

from __future__ import annotations

from sqlglot import exp

from .errors import NotAllowedError, UnknownTableError, UnsupportedError
from .functions import table_function_reason
from .paths import chain_identifiers
from .positions import error_at, error_at_name
from .prelex import RESERVED_PREFIX
from .source import SourceText
from .tree import TreeNodes

EVENTS_TABLE = "events"
# Columns of the events table that queries may name; `project_id` is reserved for the guard.
EVENTS_COLUMNS = ("uuid", "event", "distinct_id", "timestamp", "properties", "inserted_at")
PROJECT_COLUMN = "project_id"
SNAPSHOTS_TABLE = "health_snapshots"
# Columns of the health_snapshots table that queries may name; `project_id` and `version` stay hidden.
SNAPSHOTS_COLUMNS = ("day", "account", "health_score", "status", "top_risk_signal", "as_of", "computed_at")
TABLE_NAMES = (EVENTS_TABLE, SNAPSHOTS_TABLE)
# Arguments a table reference may carry: its name and alias. FINAL, SAMPLE and the like are rejected.
TABLE_ARGUMENTS = {"this", "alias"}


def is_events_table(node: exp.Expr) -> bool:
    """Return whether a FROM or JOIN source is the physical events table."""
    return isinstance(node, exp.Table) and node.name == EVENTS_TABLE and not node.args.get("db")


def is_snapshots_table(node: exp.Expr) -> bool:
    """Return whether a FROM or JOIN source is the physical health_snapshots table."""
    return isinstance(node, exp.Table) and node.name == SNAPSHOTS_TABLE and not node.args.get("db")


def check_tables(tree: exp.Expr, source: SourceText, nodes: TreeNodes | None = None) -> None:
    """Check every FROM and JOIN source, and that no other source takes a table's name.

    `nodes`, when given, must list the nodes of `tree` as it is now; none of the checks changes it.
    """
    nodes = nodes or TreeNodes(tree)

    ctes = nodes.find_all(exp.CTE)
    cte_names = {cte.alias for cte in ctes if not cte.args.get("scalar")}
    for cte in ctes:
        if cte.alias in TABLE_NAMES:
            raise error_at(
                source,
                NotAllowedError,
                f"A CTE cannot be named '{cte.alias}', because that name is the {cte.alias} table; "
                "choose another name.",
                cte.args.get("alias"),
            )

    for table in nodes.find_all(exp.Table):
        _check_table(table, source, cte_names)

    for subquery in nodes.find_all(exp.Subquery):
        if subquery.alias in TABLE_NAMES:
            raise error_at(
                source,
                NotAllowedError,
                f"A subquery cannot be aliased '{subquery.alias}', because that name is the {subquery.alias} "
                "table; choose another alias.",
                subquery.args.get("alias"),
            )

    for select in nodes.find_all(exp.Select):
        _check_unique_source_names(select, source)

    for node in nodes.find_all(exp.In):
        if isinstance(node.args.get("field"), (exp.Column, exp.Table)):
            raise error_at(
                source,
                UnsupportedError,
                "IN with a table name is not supported; write IN (SELECT ... FROM ...).",
                node.args["field"],
            )


def _check_unique_source_names(select: exp.Select, source: SourceText) -> None:
    """Reject two FROM or JOIN sources of one SELECT with the same name, such as two unaliased
    `events`, because a qualifier such as `events.event` could then mean either."""
    from_ = select.args.get("from_")
    if from_ is None:
        return

    joins = [join.this for join in select.args.get("joins") or [] if (join.kind or "").upper() != "ARRAY"]
    seen = set()
    for relation in [from_.this, *joins]:
        name = relation.alias_or_name
        if not name:
            continue
        if name in seen:
            raise error_at(
                source,
                NotAllowedError,
                f"Two tables in one FROM clause are both named '{name}'; give each an alias of its own, "
                "such as FROM events AS a JOIN events AS b.",
                relation.args.get("alias") or relation,
            )
        seen.add(name)


def _check_table(table: exp.Table, source: SourceText, cte_names: set[str]) -> None:
    if isinstance(table.this, exp.Func):
        name = table.this.name
        raise error_at_name(
            source,
            NotAllowedError,
            f"Function '{name}' is not allowed. {table_function_reason()}",
            table.this,
        )

    for argument, value in table.args.items():
        if argument in TABLE_ARGUMENTS or argument in ("db", "catalog") or value in (None, False, []):
            continue
        raise error_at(source, UnsupportedError, f"{argument.upper()} after a table is not supported.", table)

    if table.args.get("db") or table.args.get("catalog"):
        qualified = ".".join(part.name for part in table.parts)
        raise error_at(
            source,
            NotAllowedError,
            f"Table '{qualified}' is not allowed. Only the events and health_snapshots tables and the "
            "query's own CTEs can be queried, without a database name.",
            table,
        )

    if table.name not in TABLE_NAMES and table.name not in cte_names:
        known = ", ".join([*TABLE_NAMES, *sorted(cte_names)])
        raise error_at(
            source,
            UnknownTableError,
            f"Unknown table '{table.name}'. Tables that can be queried: {known}.",
            table.this,
        )

    alias = table.alias
    if alias in TABLE_NAMES and table.name != alias:
        raise error_at(
            source,
            NotAllowedError,
            f"Only the {alias} table can have the alias '{alias}', because that name is the {alias} table; "
            "choose another alias.",
            table.args.get("alias"),
        )

    if alias in EVENTS_COLUMNS or alias == PROJECT_COLUMN:
        raise error_at(
            source,
            NotAllowedError,
            f"Table alias '{alias}' is also a column of the events table; choose another alias.",
            table.args.get("alias"),
        )


def check_names(tree: exp.Expr, source: SourceText, nodes: TreeNodes | None = None) -> None:
    """Reject every identifier naming `project_id` or starting with `pb_`, except keys inside a
    properties path (`properties.project_id` is an ordinary event property).

    `nodes`, when given, must list the nodes of `tree` as it is now.
    """
    nodes = nodes or TreeNodes(tree)
    property_keys = set()
    for path in nodes.property_paths():
        identifiers = chain_identifiers(path.node)
        root = 2 if path.qualifier is not None else 1
        property_keys.update(id(identifier) for identifier in identifiers[root:])

    for identifier in nodes.find_all(exp.Identifier):
        if id(identifier) in property_keys:
            continue

        name = identifier.name.lower()
        if name == PROJECT_COLUMN or name.endswith("." + PROJECT_COLUMN):
            raise error_at(
                source,
                NotAllowedError,
                "'project_id' cannot be used; every query already reads only the caller's project.",
                identifier,
            )

        if name.startswith(RESERVED_PREFIX):
            raise error_at(
                source,
                NotAllowedError,
                f"Names starting with '{RESERVED_PREFIX}' are reserved for the compiler; rename '{identifier.name}'.",
                identifier,
            )

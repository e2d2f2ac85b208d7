"""Step 5, continued: read `health_snapshots` as a guarded, deduplicated subquery.

Each `health_snapshots` source, in every scope, becomes

    (SELECT day, account, health_score, status, top_risk_signal, as_of, computed_at
     FROM health_snapshots FINAL WHERE project_id = {pb_project:String}) AS pb_h<n>

and every column qualifier that names it is rewritten to `pb_h<n>`, as qualify.py does for events.
Wrapping every source, whatever join holds it, keeps the guard in one place: the subquery returns
the caller's rows only, so no join, NULL-extending side or user condition can widen it.

The table is a ReplacingMergeTree keyed by (project_id, day, account). Two writes of the same day
that overlap leave two versions of a row until a merge removes the older one, so the subquery
reads it with FINAL, which returns the latest version of each key. FINAL merges at read time,
which stays cheap because the table contains one row per account and day, far fewer than events. The guard filters on the
first column of the sorting key, which FINAL never merges across, so filtering before the merge
gives the same rows. `as_of` and `computed_at` are read in the project's timezone, like the
events table's timestamps.
"""

from __future__ import annotations

import difflib

from sqlglot import exp

from .errors import UnknownColumnError
from .nodes import PROJECT_PARAMETER, call, parameter, timezone_parameter
from .positions import error_at
from .scopes import qualifier, resolve_qualifier
from .source import SourceText
from .tables import PROJECT_COLUMN, SNAPSHOTS_COLUMNS, SNAPSHOTS_TABLE, is_snapshots_table

SNAPSHOTS_ALIAS_PREFIX = "pb_h"
DATETIME_COLUMNS = ("as_of", "computed_at")


def wrap_snapshot_tables(tree: exp.Expr, project_id: str, timezone: str, source: SourceText) -> dict[str, str]:
    """Replace each health_snapshots source with its guarded subquery aliased `pb_h<n>`.

    Returns each internal alias with the name the user gave that table.
    """
    columns = [(column, resolve_qualifier(column)) for column in tree.find_all(exp.Column)]
    tables = [table for table in tree.find_all(exp.Table, bfs=False) if is_snapshots_table(table)]
    if not tables:
        return {}

    internal_aliases = {id(table): f"{SNAPSHOTS_ALIAS_PREFIX}{index}" for index, table in enumerate(tables)}
    for column, resolved in columns:
        if resolved is None or not is_snapshots_table(resolved[1]):
            continue

        _check_column(column, source)
        user_qualifier = column.table
        qualifier(column).replace(exp.to_identifier(internal_aliases[id(resolved[1])]))
        _name_result_column(column, user_qualifier)

    aliases = {}
    for table in tables:
        internal = internal_aliases[id(table)]
        aliases[internal] = table.alias_or_name
        table.replace(_guarded_snapshots(internal, project_id, timezone))
    return aliases


def _check_column(column: exp.Column, source: SourceText) -> None:
    """Reject `s.name` where `s` is health_snapshots and `name` is not one of its public columns."""
    name = column.parts[1]
    if isinstance(name, exp.Star) or name.name in SNAPSHOTS_COLUMNS:
        return

    table = column.parts[0].name
    close = difflib.get_close_matches(name.name, SNAPSHOTS_COLUMNS, n=1)
    hint = f"; did you mean {table}.{close[0]}?" if close else "."
    raise error_at(
        source,
        UnknownColumnError,
        f"Unknown column '{table}.{name.name}'. The {SNAPSHOTS_TABLE} table has the columns "
        f"{', '.join(SNAPSHOTS_COLUMNS)}{hint}",
        name,
    )


def _name_result_column(column: exp.Column, user_qualifier: str) -> None:
    """Alias an unaliased SELECT item such as `s.account` as ClickHouse would name it before the
    rewrite: `account`, or `s.account` when an earlier item already has that name."""
    select = column.parent
    if not isinstance(select, exp.Select) or column.arg_key != "expressions" or isinstance(column.this, exp.Star):
        return

    earlier = set()
    for item in select.expressions:
        if item is column:
            break
        earlier.add(item.alias_or_name)

    name = column.name if column.name not in earlier else f"{user_qualifier}.{column.name}"
    column.replace(exp.alias_(column.copy(), name, quoted=True))


def _guarded_snapshots(alias: str, project_id: str, timezone: str) -> exp.Subquery:
    items: list[exp.Expr] = []
    for name in SNAPSHOTS_COLUMNS:
        if name in DATETIME_COLUMNS and timezone != "UTC":
            items.append(exp.alias_(call("toTimeZone", exp.column(name), timezone_parameter(timezone)), name))
        else:
            items.append(exp.column(name))

    table = exp.Final(this=exp.Table(this=exp.to_identifier(SNAPSHOTS_TABLE)))
    guard = exp.EQ(this=exp.column(PROJECT_COLUMN), expression=parameter(PROJECT_PARAMETER, "String", project_id))
    inner = exp.select(*items).from_(table, copy=False).where(guard, copy=False)
    return inner.subquery(alias, copy=False)

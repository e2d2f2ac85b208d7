"""Step 4, continued: resolve the events table's own columns.

- `SELECT *` and `e.*` over the events table expand to its public columns, because ClickHouse
  would also return `project_id` and `inserted_at`.
- `timestamp` and `inserted_at` are stored in UTC; outside comparisons they are read in the
  project's timezone, as PostHog does, so `toStartOfDay(timestamp)` buckets by the local day.
"""

from __future__ import annotations

from sqlglot import exp

from .errors import UnsupportedError
from .nodes import call, timezone_parameter
from .scopes import select_sources, source_name
from .tables import is_events_table
from .tree import TreeNodes

# The columns `SELECT *` returns from events; `inserted_at` is readable by name only.
STAR_COLUMNS = ("uuid", "event", "distinct_id", "timestamp", "properties")
DATETIME_COLUMNS = {"timestamp", "inserted_at"}

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between)
# A column inside one of these belongs to it, not to the SELECT around it.
_SCOPE_TYPES = (exp.Select, exp.Subquery, exp.With)


def expand_stars(tree: exp.Expr) -> None:
    """Replace `*` and `alias.*` over an events table with its public columns."""
    for select in TreeNodes(tree).find_all(exp.Select):
        sources = select_sources(select)
        if not any(is_events_table(source) for source in sources):
            continue

        expressions: list[exp.Expr] = []
        for item in select.expressions:
            expressions.extend(_expand_item(item, sources))
        select.set("expressions", expressions)


def _expand_item(item: exp.Expr, sources: list[exp.Expr]) -> list[exp.Expr]:
    if isinstance(item, exp.Star):
        qualify = len(sources) > 1
        expanded: list[exp.Expr] = []
        for source in sources:
            expanded.extend(_source_star(source, qualify))
        return expanded

    if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
        for source in sources:
            if is_events_table(source) and source_name(source) == item.table:
                return _events_columns(item.table)

    return [item]


def _source_star(source: exp.Expr, qualify: bool) -> list[exp.Expr]:
    if is_events_table(source):
        return _events_columns(source_name(source) if qualify else None)

    name = source_name(source)
    if not name:
        raise UnsupportedError(
            "SELECT * over the events table joined with a subquery needs an alias on the subquery."
        )
    return [exp.Column(this=exp.Star(), table=exp.to_identifier(name))]


def _events_columns(qualifier: str | None) -> list[exp.Expr]:
    return [exp.column(name, table=qualifier) for name in STAR_COLUMNS]


def localize_timestamps(tree: exp.Expr, timezone: str) -> None:
    """Read the events table's DateTime columns in the project timezone, outside comparisons.

    Comparisons keep the stored UTC column, because an instant compares the same in any timezone
    and ClickHouse can then use the table's sort key for the time range. GROUP BY and ORDER BY
    items keep it too, so they still match a SELECT item of the same name.
    """
    if timezone == "UTC":
        return

    for select in TreeNodes(tree).find_all(exp.Select):
        sources = select_sources(select)
        qualifiers = {source_name(source) for source in sources if is_events_table(source)}
        if not qualifiers:
            continue

        only_events = len(qualifiers) == len(sources)
        for column in own_columns(select):
            if column.name not in DATETIME_COLUMNS or isinstance(column.this, exp.Star):
                continue
            if column.table and column.table not in qualifiers:
                continue
            if not column.table and not only_events:
                continue
            if _keeps_utc(column):
                continue

            _wrap_in_timezone(column, timezone, select)


def own_columns(select: exp.Select) -> list[exp.Column]:
    """Columns that belong to this SELECT, not to a subquery or CTE inside it."""
    def prune(node: exp.Expr) -> bool:
        return node is not select and isinstance(node, _SCOPE_TYPES)

    return [node for node in select.walk(prune=prune) if isinstance(node, exp.Column)]


def own_columns_by_select(nodes: TreeNodes) -> dict[int, list[exp.Column]]:
    """Map the id() of each SELECT in the tree to `own_columns(select)`, in the same order."""
    columns: dict[int, list[exp.Column]] = {}
    for column in nodes.find_all(exp.Column):
        owner = column.parent
        while owner is not None and not isinstance(owner, _SCOPE_TYPES):
            owner = owner.parent
        if isinstance(owner, exp.Select):
            columns.setdefault(id(owner), []).append(column)
    return columns


def _keeps_utc(column: exp.Column) -> bool:
    parent = column.parent
    if isinstance(parent, _COMPARISONS):
        return True

    if isinstance(parent, exp.Group) or isinstance(parent, exp.Ordered):
        return True

    return isinstance(parent, exp.Window) and column.arg_key == "partition_by"


def _wrap_in_timezone(column: exp.Column, timezone: str, select: exp.Select) -> None:
    wrapped: exp.Expr = call("toTimeZone", column.copy(), timezone_parameter(timezone))
    if column.parent is select and column.arg_key == "expressions":
        wrapped = exp.alias_(wrapped, _unused_alias(column, select), quoted=True)
    column.replace(wrapped)


def _unused_alias(column: exp.Column, select: exp.Select) -> str:
    """Name the result as ClickHouse names a plain column: `timestamp`, or `f.timestamp` when
    an earlier item already took that name (as in a self-join)."""
    taken = set()
    for item in select.expressions:
        if item is column:
            break
        taken.add(item.alias_or_name)

    if column.name not in taken or not column.table:
        return column.name
    return f"{column.table}.{column.name}"

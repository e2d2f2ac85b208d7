"""Step 5, continued: limit every read of the events table to the caller's project.

Each `events` source in every SELECT (CTE bodies, subqueries, IN subqueries, union arms, joins)
gets `pb_t<n>.project_id = {pb_project:String}`, with the internal alias that qualify.py gave it:

- the FROM table and INNER, CROSS and comma-joined tables: ANDed at the root of that SELECT's
  WHERE, around the user's condition in parentheses, so `WHERE 1 = 1 OR ...` stays inside it;
- the preserved side of a RIGHT join: ANDed into the WHERE, as for the FROM table;
- a LEFT-joined table, and an INNER-joined table that a later join may replace with NULLs: ANDed
  into that table's own ON, where it filters the joined side only;
- a table without an ON of its own (the FROM table, a CROSS or comma join) that a later RIGHT
  join may replace with NULLs: ANDed into that RIGHT join's ON;
- a table whose rows a FULL join may replace with NULLs (where a WHERE guard would drop the
  unmatched rows), or one joined with USING where a later join or its own side needs an ON
  guard: wrapped in `(SELECT <public columns> FROM events WHERE project_id = ...) AS pb_t<n>`.

The first two keep the table read direct, which is faster. On chDB 4.4 with 2M events (1M in the
project, 2 CPU cores, median of 7 runs), counting one property's distinct values took 31 ms with
the WHERE guard and 74 ms with the table wrapped in the filtered subquery.

The FROM table of a SELECT whose expressions or WHERE contain a subquery gets its guard as
PREWHERE instead, because ClickHouse 26.9 fails a correlated subquery such as
`(SELECT count() FROM events f WHERE f.timestamp < e.timestamp)` with NOT_IMPLEMENTED ("can't find
correlated column") when the outer table has a WHERE filter, and runs it with the same filter
as PREWHERE (checked on chDB 4.4). PREWHERE on a MergeTree table reads the same rows.

NOTE: the guard limits the rows a query returns. ClickHouse may still evaluate the user's
conditions on rows of neighbouring projects inside granules that the primary key index could
not skip, so a condition that raises an error on some values could reveal that such a value
exists there. `throwIf` is not allowlisted for this reason; errors from casts remain possible.
"""

from __future__ import annotations

from sqlglot import exp

from .columns import STAR_COLUMNS
from .errors import UnsupportedError
from .nodes import PROJECT_PARAMETER, parameter
from .scopes import source_name
from .tables import EVENTS_TABLE, PROJECT_COLUMN, is_events_table
from .tree import TreeNodes

_NULL_EXTENDING_SIDES = {"RIGHT", "FULL"}


def guard_projects(tree: exp.Expr, project_id: str) -> None:
    """Add the project guard to every events source; raise if one could not be guarded."""
    guarded: set[int] = set()
    for select in TreeNodes(tree).find_all(exp.Select):
        _guard_select(select, project_id, guarded)

    # A fresh walk, because guarding replaced some tables with filtered subqueries.
    for table in TreeNodes(tree).find_all(exp.Table):
        if is_events_table(table) and id(table) not in guarded:
            raise UnsupportedError(
                "This use of the events table is not supported; read it in a FROM or JOIN clause."
            )


def _guard_select(select: exp.Select, project_id: str, guarded: set[int]) -> None:
    from_ = select.args.get("from_")
    if from_ is None:
        return

    joins = select.args.get("joins") or []
    sources: list[tuple[exp.Expr, exp.Join | None]] = [(from_.this, None)]
    sources.extend((join.this, join) for join in joins)

    where_guards: list[exp.Expr] = []
    prewhere_guards: list[exp.Expr] = []
    for index, (source, join) in enumerate(sources):
        if not is_events_table(source):
            continue

        guarded.add(id(source))
        null_extended_later = any(_side(later) in _NULL_EXTENDING_SIDES for later in joins[index:])
        side = _side(join) if join is not None else ""
        own_on = join.args.get("on") if join is not None else None
        guard = _guard_condition(source_name(source), project_id)

        if not null_extended_later and join is None and _has_nested_query(select):
            prewhere_guards.append(guard)
        elif not null_extended_later and side in ("", "RIGHT"):
            where_guards.append(guard)
        elif own_on is not None and side in ("", "LEFT"):
            # A condition in the table's own ON filters it before the join, whatever joins follow.
            join.set("on", exp.and_(exp.paren(own_on, copy=False), guard, copy=False))
        elif (right_join := _first_right_join(joins[index:])) is not None:
            # A RIGHT join keeps no unmatched row of its left side, so rows of another project
            # that fail this ON condition disappear, and the right side's rows get NULLs.
            right_join.set("on", exp.and_(exp.paren(right_join.args["on"], copy=False), guard, copy=False))
        else:
            source.replace(_filtered_events(source_name(source), project_id, guarded))

    if prewhere_guards:
        select.set("prewhere", exp.PreWhere(this=exp.and_(*prewhere_guards, copy=False)))

    if where_guards:
        where = select.args.get("where")
        conditions = [*where_guards, exp.paren(where.this, copy=False)] if where else where_guards
        select.set("where", exp.Where(this=exp.and_(*conditions, copy=False)))


def _first_right_join(later_joins: list[exp.Join]) -> exp.Join | None:
    """Return the first RIGHT join with ON among `later_joins`, or None when a FULL join follows or
    the first RIGHT join has USING, so no ON condition can hold the guard."""
    if any(_side(join) == "FULL" for join in later_joins):
        return None

    right_joins = [join for join in later_joins if _side(join) == "RIGHT"]
    if not right_joins or right_joins[0].args.get("on") is None:
        return None
    return right_joins[0]


def _has_nested_query(select: exp.Select) -> bool:
    """Return whether the SELECT list or WHERE of `select` contains a subquery, which may be correlated."""
    parts = [*select.expressions, select.args.get("where")]
    return any(part is not None and part.find(exp.Select) is not None for part in parts)


def _side(join: exp.Join) -> str:
    # ARRAY JOIN never replaces rows with NULLs, not even LEFT ARRAY JOIN.
    if (join.kind or "").upper() == "ARRAY":
        return "ARRAY"
    return (join.side or "").upper()


def _guard_condition(qualifier: str | None, project_id: str) -> exp.Expr:
    column = exp.column(PROJECT_COLUMN, table=qualifier)
    return exp.EQ(this=column, expression=parameter(PROJECT_PARAMETER, "String", project_id))


def _filtered_events(alias: str, project_id: str, guarded: set[int]) -> exp.Subquery:
    """`(SELECT <columns> FROM events WHERE project_id = ...) AS alias`."""
    table = exp.Table(this=exp.to_identifier(EVENTS_TABLE))
    guarded.add(id(table))

    columns = [exp.column(name) for name in (*STAR_COLUMNS, "inserted_at")]
    inner = exp.select(*columns).from_(table, copy=False)
    inner.set("where", exp.Where(this=_guard_condition(None, project_id)))
    return inner.subquery(alias, copy=False)

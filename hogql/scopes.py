"""Name resolution: which FROM or JOIN source a column qualifier such as the `e` in `e.event` names.

A qualifier refers to the innermost SELECT that lists a source of that name, as in ClickHouse and
standard SQL. A subquery's own sources hide those of the SELECTs around it, and a correlated
subquery can still name an outer source. A FROM subquery or a CTE body cannot see the sources of
the SELECT that reads it.
"""

from __future__ import annotations

from sqlglot import exp

from .tables import EVENTS_COLUMNS, PROJECT_COLUMN, is_events_table


def select_sources(select: exp.Select) -> list[exp.Expr]:
    """Return the FROM source and every joined source, in order, without ARRAY JOINs."""
    from_ = select.args.get("from_")
    if from_ is None:
        return []

    joins = [join.this for join in select.args.get("joins") or [] if (join.kind or "").upper() != "ARRAY"]
    return [from_.this, *joins]


def source_name(source: exp.Expr) -> str:
    """Return the name that qualifies a source's columns: its alias, else the table's name."""
    if isinstance(source, exp.Table):
        return source.alias_or_name
    return source.alias


def qualifier(column: exp.Column) -> exp.Identifier | None:
    """Return the first part of a dotted column name (`e` in `e.event`), or None for a bare name."""
    parts = column.parts
    if len(parts) < 2 or not isinstance(parts[0], exp.Identifier):
        return None
    return parts[0]


def resolve_qualifier(column: exp.Column) -> tuple[exp.Select, exp.Expr] | None:
    """Return the SELECT and the FROM or JOIN source that the column's qualifier names.

    Returns None for a bare name, for a lambda parameter and for a name no source has.
    """
    name = qualifier(column)
    if name is None:
        return None

    child: exp.Expr = column
    # True on the way up from a FROM or JOIN source or a CTE body, whose reading SELECT is skipped.
    hidden = False
    while child.parent is not None:
        parent = child.parent
        if isinstance(parent, exp.Lambda) and name.name in {param.name for param in parent.expressions}:
            return None

        if _enters_source_or_cte(parent, child):
            hidden = True
        elif isinstance(parent, (exp.Select, exp.SetOperation)):
            sources = select_sources(parent) if isinstance(parent, exp.Select) and not hidden else []
            for source in sources:
                if source_name(source) == name.name:
                    return parent, source
            hidden = False

        child = parent

    return None


def _enters_source_or_cte(parent: exp.Expr, child: exp.Expr) -> bool:
    """Return whether `child` is a FROM or JOIN source, or the WITH clause, of the query `parent`."""
    if isinstance(parent, (exp.From, exp.With)):
        return True
    return isinstance(parent, exp.Join) and child.arg_key == "this"


def possible_columns(source: exp.Expr) -> set[str] | None:
    """Return the column names a source can have, or None when they are not known."""
    if is_events_table(source):
        return {*EVENTS_COLUMNS, PROJECT_COLUMN}

    query: exp.Expr | None = None
    if isinstance(source, exp.Subquery):
        query = source.this
    elif isinstance(source, exp.Table):
        query = _cte_query(source)

    while isinstance(query, (exp.SetOperation, exp.Subquery)):
        query = query.this
    if not isinstance(query, exp.Select):
        return None

    names = set()
    for item in query.expressions:
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
            return None
        names.add(item.alias_or_name)
    return names


def _cte_query(table: exp.Table) -> exp.Expr | None:
    """Return the body of the CTE that a table reference names, searching outwards."""
    node: exp.Expr | None = table
    while node is not None:
        with_ = node.args.get("with_") if isinstance(node, (exp.Select, exp.SetOperation)) else None
        for cte in with_.expressions if with_ else []:
            if cte.alias == table.name and not cte.args.get("scalar"):
                return cte.this
        node = node.parent
    return None

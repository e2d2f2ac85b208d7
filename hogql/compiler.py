"""The compiler's entry point: HogQL text in, ClickHouse SQL and bound parameters out."""

from __future__ import annotations

import re

from .columns import expand_stars, localize_timestamps
from .context import CompiledQuery, CompileContext
from .filters import expand_filters
from .guard import guard_projects
from .limits import add_truncation_probe, apply_limits
from .parse import parse
from .prelex import PLACEHOLDER_NAME, RESERVED_PREFIX, prelex
from .printer import print_clickhouse, print_hogql
from .properties import resolve_properties
from .names import name_columns
from .qualify import qualify_events_tables
from .rewrite import rewrite_functions
from .snapshot_table import wrap_snapshot_tables
from .timestamps import parse_timestamp_strings
from .validate import validate

# An IANA timezone name such as "UTC", "Europe/Berlin" or "America/Argentina/Buenos_Aires".
_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*\Z")
# A ClickHouse type name as the placeholders declare it: "Int64", "DateTime64(6, 'UTC')",
# "Array(String)". No braces, so it cannot end the `{name:Type}` parameter early.
_CLICKHOUSE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\([A-Za-z0-9_ ,'()/+\-.]*\))?\Z")


def compile_query(text: str, context: CompileContext) -> CompiledQuery:
    """Compile one HogQL SELECT into ClickHouse SQL limited to `context.project_id`.

    Raises a HogQLError subclass, with the offending text and its position, for a query the
    caller can fix; raises ValueError for an invalid context.
    """
    _check_context(context)

    prelexed = prelex(text, context.placeholders)
    parsed = parse(prelexed, context.placeholders)
    expand_filters(parsed, context.filters)
    validate(parsed)
    tree, row_cap = apply_limits(parsed, context)
    hogql = print_hogql(tree)
    snapshot_aliases = wrap_snapshot_tables(tree, context.project_id, context.timezone, parsed.source)

    expand_stars(tree)
    name_columns(tree)
    resolve_properties(tree, context)
    rewrite_functions(tree, context, parsed.source)
    parse_timestamp_strings(tree, context.timezone)
    localize_timestamps(tree, context.timezone)
    table_aliases = qualify_events_tables(tree) | snapshot_aliases
    guard_projects(tree, context.project_id)
    tree = add_truncation_probe(tree)

    sql, parameters = print_clickhouse(tree, context)
    return CompiledQuery(
        sql=sql, parameters=parameters, row_cap=row_cap, hogql=hogql, table_aliases=table_aliases
    )


def _check_context(context: CompileContext) -> None:
    problems = []
    if not isinstance(context.project_id, str) or not context.project_id:
        problems.append("project_id must be a non-empty string")
    if not _TIMEZONE.match(context.timezone):
        problems.append(f"timezone {context.timezone!r} is not a timezone name such as 'Europe/Berlin'")
    if not 1 <= context.default_limit <= context.max_limit:
        problems.append(
            f"default_limit ({context.default_limit}) must be at least 1 and at most "
            f"max_limit ({context.max_limit})"
        )

    for name, declared in context.placeholders.items():
        if not PLACEHOLDER_NAME.match(name) or name.lower().startswith(RESERVED_PREFIX):
            problems.append(
                f"placeholder name {name!r} must match [A-Za-z][A-Za-z0-9_]* and not start "
                f"with {RESERVED_PREFIX!r}"
            )
        if not isinstance(declared, tuple) or len(declared) != 2 or not isinstance(declared[1], str):
            problems.append(f"placeholder {name!r} must be a (value, ClickHouse type) tuple")
        elif not _CLICKHOUSE_TYPE.match(declared[1]):
            problems.append(f"placeholder {name!r} has an invalid ClickHouse type {declared[1]!r}")

    if problems:
        raise ValueError("Invalid CompileContext: " + "; ".join(problems) + ".")

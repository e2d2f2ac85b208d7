"""`analytics_query`: compile HogQL for one project and run it read-only."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import logging
import math
import re
import threading
import uuid
import weakref
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from clickhouse_connect.driver.exceptions import DatabaseError

from pulseboard.hogql import CompileContext, CompiledQuery, QueryFilters, compile_query, restore_table_aliases
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store
from pulseboard.tools.errors import QueryFailedError, clickhouse_message, unknown_project_error

logger = logging.getLogger(__name__)

# Rows one query may read from the store, summed over every table scan. No interactive query
# needs to read a billion events, and a narrower time range reads fewer.
MAX_ROWS_TO_READ = 1_000_000_000

# What to do when a query hits a resource limit, by ClickHouse error code. The result row limit
# never fails a query: the result is cut, and `truncation_notice` explains the cut.
NARROW_BY_TIME = "add or shorten a time range, such as WHERE timestamp >= now() - INTERVAL 7 DAY"
LIMIT_ADVICE = {
    "TIMEOUT_EXCEEDED": (
        "time",
        f"Narrow the query: {NARROW_BY_TIME}, filter on event, or aggregate in a subquery before joining.",
    ),
    "MEMORY_LIMIT_EXCEEDED": (
        "memory",
        f"Narrow the query: {NARROW_BY_TIME}, group by fewer or coarser keys, use uniq() instead of "
        "uniqExact() or groupArray(), or join smaller subqueries.",
    ),
    "TOO_MANY_ROWS": (
        "rows read",
        f"Narrow the query: {NARROW_BY_TIME} or filter on event, so it reads fewer events.",
    ),
}
_ERROR_CODE = re.compile(r"\(([A-Z_]+)\)")


class Column(BaseModel):
    name: str
    type: str = Field(description="ClickHouse type of the column, e.g. Nullable(Float64).")


class QueryOutput(BaseModel):
    """Rows of one query, JSON-ready."""

    columns: list[Column]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="True when the default or maximum row limit cut the result.")
    notice: str | None = Field(
        default=None, description="Why the result was cut and how to get the remaining rows, when it was."
    )
    elapsed_ms: float
    clickhouse_sql: str | None = Field(default=None, description="The compiled SQL, when requested.")


def execution_settings(settings: Settings, timezone: str) -> dict[str, Any]:
    """Return the ClickHouse settings every user query runs with."""
    return {
        # readonly=2 forbids writes and DDL but lets these per-query settings apply.
        "readonly": 2,
        "max_execution_time": settings.query_timeout_s,
        "max_memory_usage": settings.query_max_memory_mb * 1024 * 1024,
        "max_rows_to_read": MAX_ROWS_TO_READ,
        "join_use_nulls": 1,
        "session_timezone": timezone,
    }


def run_hogql(
    store: Store,
    settings: Settings,
    project_id: str,
    hogql: str,
    placeholders: Mapping[str, tuple[object, str]] | None = None,
    *,
    filters: QueryFilters | None = None,
    include_sql: bool = False,
) -> QueryOutput:
    """Compile and run one HogQL query in a project; compile errors propagate as HogQLError.

    `filters` sets the date range that `{filters}` in the query expands to.
    """
    compiled, context = compile_hogql(store, project_id, hogql, placeholders, filters=filters)
    timezone = context.timezone
    logger.debug("compiled SQL for project %s: %s", project_id, compiled.sql)

    run_settings = execution_settings(settings, timezone)
    if compiled.row_cap is not None:
        run_settings["max_result_rows"] = compiled.row_cap + 1
        run_settings["result_overflow_mode"] = "break"
    try:
        result = store.query(compiled.sql, compiled.parameters, run_settings)
    except DatabaseError as error:
        limit_message = resource_limit_message(str(error), settings)
        if limit_message is not None:
            raise QueryFailedError(limit_message) from None

        message = restore_table_aliases(clickhouse_message(error), compiled)
        raise QueryFailedError(f"The query failed in ClickHouse: {message}") from None

    rows = result.rows
    truncated = compiled.row_cap is not None and len(rows) > compiled.row_cap
    if truncated:
        rows = rows[: compiled.row_cap]
    return QueryOutput(
        columns=[Column(name=name, type=kind) for name, kind in zip(result.columns, result.types)],
        rows=[[json_value(value) for value in row] for row in rows],
        row_count=len(rows),
        truncated=truncated,
        notice=truncation_notice(compiled.row_cap, context.max_limit) if truncated else None,
        elapsed_ms=round(result.elapsed_ms, 2),
        clickhouse_sql=compiled.sql if include_sql else None,
    )


def compile_hogql(
    store: Store,
    project_id: str,
    hogql: str,
    placeholders: Mapping[str, tuple[object, str]] | None = None,
    *,
    filters: QueryFilters | None = None,
) -> tuple[CompiledQuery, CompileContext]:
    """Compile one HogQL query with the project's property types and timezone, without running it."""
    project = store.get_project(project_id)
    if project is None:
        raise unknown_project_error(project_id)

    context = CompileContext(
        project_id=project_id,
        property_types=store.property_types(project_id),
        placeholders=dict(placeholders or {}),
        timezone=project.timezone,
        filters=filters,
        stored_types=stored_property_types(store),
    )
    return compile_query(hogql, context), context


class StoredTypes:
    """The ClickHouse types stored at each path of `events.properties`, cached per data part.

    A part never changes once written, so its types are read once, by one query over the new
    parts only, and merged parts are read again when they first appear. The union over the
    active parts covers every project, so it is a superset of any one project's types, which is
    all the compiler needs to choose a typed subcolumn read safely.

    NOTE: a part written between this lookup and the query it serves is not covered. If it stores
    a new type at a path the query reads as a typed subcolumn, that query reads its rows as NULL.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_part: dict[str, dict[str, frozenset[str]]] = {}
        self._merged: tuple[tuple[str, ...], dict[str, frozenset[str]]] = ((), {})

    def lookup(self, store: Store) -> dict[str, frozenset[str]]:
        parts = tuple(sorted(row[0] for row in store.query(ACTIVE_PARTS_SQL).rows))
        with self._lock:
            if parts == self._merged[0]:
                return self._merged[1]

        missing = [part for part in parts if part not in self._by_part]
        read: dict[str, dict[str, frozenset[str]]] = {part: {} for part in missing}
        if missing:
            for part, paths in store.query(PART_TYPES_SQL, {"parts": missing}).rows:
                read[part] = {path: frozenset(types) for path, types in paths.items()}

        with self._lock:
            self._by_part.update(read)
            for inactive in set(self._by_part) - set(parts):
                del self._by_part[inactive]

            merged: dict[str, frozenset[str]] = {}
            for part in parts:
                for path, types in self._by_part.get(part, {}).items():
                    merged[path] = merged.get(path, frozenset()) | types
            self._merged = (parts, merged)
        return merged


ACTIVE_PARTS_SQL = (
    "SELECT name FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active"
)
PART_TYPES_SQL = (
    "SELECT _part, distinctJSONPathsAndTypes(properties) FROM events "
    "WHERE _part IN {parts:Array(String)} GROUP BY _part"
)
# One cache per open store; an entry goes with its store, so part names never mix across stores.
_STORED_TYPES: weakref.WeakKeyDictionary[Store, StoredTypes] = weakref.WeakKeyDictionary()
_STORED_TYPES_LOCK = threading.Lock()


def stored_property_types(store: Store) -> dict[str, frozenset[str]]:
    """Return the types stored at each property path of the store's events table."""
    with _STORED_TYPES_LOCK:
        cache = _STORED_TYPES.setdefault(store, StoredTypes())
    return cache.lookup(store)


def resource_limit_message(error_text: str, settings: Settings) -> str | None:
    """Return which limit a failed query hit and how to narrow it, or None for other errors."""
    code = _ERROR_CODE.search(error_text)
    if code is None or code.group(1) not in LIMIT_ADVICE:
        return None

    limit_name, advice = LIMIT_ADVICE[code.group(1)]
    values = {
        "time": f"{settings.query_timeout_s} s",
        "memory": f"{settings.query_max_memory_mb} MiB",
        "rows read": f"{MAX_ROWS_TO_READ:,} rows",
    }
    return f"The query exceeded the {limit_name} limit ({values[limit_name]}). {advice}"


def truncation_notice(row_cap: int | None, max_limit: int) -> str:
    """Say where a result was cut and how to get more of it."""
    if row_cap is not None and row_cap < max_limit:
        return (
            f"The result was cut at the default limit of {row_cap} rows. Add LIMIT n (at most "
            f"{max_limit}) for more rows, or aggregate with GROUP BY to fewer rows."
        )
    return (
        f"The result was cut at the maximum of {max_limit} rows. Aggregate with GROUP BY, filter, "
        "or page with LIMIT n OFFSET m."
    )


def json_value(value: Any) -> Any:
    """Convert a value from the driver into plain JSON: times as ISO 8601, NaN and inf as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    return value

"""`analytics_query`: compile HogQL for one project and run it read-only."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import logging
import math
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from clickhouse_connect.driver.exceptions import DatabaseError

from pulseboard.hogql import CompileContext, compile_query, restore_table_aliases
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store
from pulseboard.tools.errors import QueryFailedError, UserInputError, clickhouse_message

logger = logging.getLogger(__name__)


class Column(BaseModel):
    name: str
    type: str = Field(description="ClickHouse type of the column, e.g. Nullable(Float64).")


class QueryOutput(BaseModel):
    """Rows of one query, JSON-ready."""

    columns: list[Column]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="True when the default or maximum row limit cut the result.")
    elapsed_ms: float
    clickhouse_sql: str | None = Field(default=None, description="The compiled SQL, when requested.")


def execution_settings(settings: Settings, timezone: str) -> dict[str, Any]:
    """Return the ClickHouse settings every user query runs with."""
    return {
        # readonly=2 forbids writes and DDL but lets these per-query settings apply.
        "readonly": 2,
        "max_execution_time": settings.query_timeout_s,
        "max_memory_usage": settings.query_max_memory_mb * 1024 * 1024,
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
    include_sql: bool = False,
) -> QueryOutput:
    """Compile and run one HogQL query in a project; compile errors propagate as HogQLError."""
    project = store.get_project(project_id)
    if project is None:
        raise UserInputError(
            f"Project {project_id!r} does not exist; check the project_id, or create it with "
            "`pulseboard project create`."
        )
    timezone = project.timezone
    context = CompileContext(
        project_id=project_id,
        property_types=store.property_types(project_id),
        placeholders=dict(placeholders or {}),
        timezone=timezone,
    )
    compiled = compile_query(hogql, context)
    logger.debug("compiled SQL for project %s: %s", project_id, compiled.sql)

    run_settings = execution_settings(settings, timezone)
    if compiled.row_cap is not None:
        run_settings["max_result_rows"] = compiled.row_cap + 1
        run_settings["result_overflow_mode"] = "break"
    try:
        result = store.query(compiled.sql, compiled.parameters, run_settings)
    except DatabaseError as error:
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
        elapsed_ms=round(result.elapsed_ms, 2),
        clickhouse_sql=compiled.sql if include_sql else None,
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

"""Fixtures for running compiled HogQL on a real chDB store.

chDB opens one data folder per process, so `hogql_ch` reuses the session's `ch_client` when the
shared conftest provides one, and otherwise opens its own store in a temporary folder. Every
test writes its events under a fresh project id, so tests never see each other's rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import clickhouse_connect
import pytest

from pulseboard.hogql import CompileContext, CompiledQuery, compile_query

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    project_id LowCardinality(String), uuid UUID, event LowCardinality(String),
    distinct_id String, timestamp DateTime64(6, 'UTC'), properties JSON,
    inserted_at DateTime64(6, 'UTC')
) ENGINE = MergeTree ORDER BY (project_id, timestamp, event)
"""


@pytest.fixture(scope="session")
def hogql_ch(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A clickhouse-connect client on chDB with the events table."""
    try:
        shared = request.getfixturevalue("ch_client")
    except pytest.FixtureLookupError:
        shared = None

    if shared is not None:
        yield shared
        return

    folder = tmp_path_factory.mktemp("hogql_chdb") / "clickhouse"
    client = clickhouse_connect.get_client(dsn=f"chdb://{folder}")
    client.command(EVENTS_DDL)
    yield client
    client.close()


@dataclass
class QueryResult:
    rows: list[tuple]
    columns: tuple[str, ...]
    truncated: bool
    compiled: CompiledQuery


@dataclass
class Project:
    """A project id of its own, with helpers to add events and to run HogQL in it."""

    client: Any
    project_id: str = field(default_factory=lambda: "hq" + uuid.uuid4().hex)

    def insert(self, *events: dict[str, Any]) -> None:
        """Insert events given as dicts with `event`, `properties` and optional
        `timestamp` ('YYYY-MM-DD hh:mm:ss', UTC) and `distinct_id`."""
        lines = [
            json.dumps({
                "project_id": self.project_id,
                "uuid": event.get("uuid", str(uuid.uuid4())),
                "event": event.get("event", "pageview"),
                "distinct_id": event.get("distinct_id", "user"),
                "timestamp": event.get("timestamp", "2024-01-01 00:00:00"),
                "properties": event.get("properties", {}),
                "inserted_at": "2024-01-01 00:00:00",
            })
            for event in events
        ]
        self.client.command("INSERT INTO events FORMAT JSONEachRow\n" + "\n".join(lines))

    def run(self, text: str, **context: Any) -> QueryResult:
        """Compile `text` for this project and run it as the executor does."""
        compiled = compile_query(text, CompileContext(project_id=self.project_id, **context))
        timezone = context.get("timezone", "UTC")
        result = self.client.query(
            compiled.sql,
            parameters=compiled.parameters,
            settings={
                "readonly": 2,
                "max_execution_time": 30,
                "join_use_nulls": 1,
                "session_timezone": timezone,
            },
        )
        rows = [tuple(row) for row in result.result_rows]
        truncated = compiled.row_cap is not None and len(rows) > compiled.row_cap
        if truncated:
            rows = rows[: compiled.row_cap]
        return QueryResult(rows=rows, columns=tuple(result.column_names), truncated=truncated, compiled=compiled)


@pytest.fixture(scope="session")
def new_project(hogql_ch: Any) -> Callable[[], Project]:
    """Make a project with a fresh id; call it once per project a test needs."""
    return lambda: Project(hogql_ch)

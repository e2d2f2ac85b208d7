"""The date range of `analytics_query` (date_from, date_to) and of `pulseboard query` (--date-from,
--date-to): what `{filters}` in a query expands to, through the real MCP client in memory and over
HTTP, and through the command line with and without a running server."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from pulseboard.server.store import EventRow, Store, utcnow
from tests.live_server import free_port
from tests.test_mcp_serve import child_env, serve
from tests.test_mcp_tools import connected

COMMAND_TIMEOUT_S = 120
DISTINCT_IDS = "SELECT distinct_id FROM events WHERE {filters} ORDER BY distinct_id"
FILTERS_HELP = (
    "write an ISO 8601 date or time such as '2024-10-01' or '2024-10-01T12:00:00Z', or a relative date such as "
    "'-7d' (units h, d, w, m, y)."
)


def event_at(distinct_id: str, timestamp: dt.datetime) -> EventRow:
    return EventRow(uuid=str(uuid.uuid4()), event="pageview", distinct_id=distinct_id, timestamp=timestamp)


def dated_events() -> list[EventRow]:
    """d1 is 2024-10-25 00:30 in Berlin but still 2024-10-24 in UTC; d4 and d5 are 10 and 3 days old."""
    now = utcnow()
    return [
        event_at("d1", dt.datetime(2024, 10, 24, 22, 30, tzinfo=dt.timezone.utc)),
        event_at("d2", dt.datetime(2024, 10, 25, 12, 0, tzinfo=dt.timezone.utc)),
        event_at("d3", dt.datetime(2024, 10, 26, 12, 0, tzinfo=dt.timezone.utc)),
        event_at("d4", now - dt.timedelta(days=10)),
        event_at("d5", now - dt.timedelta(days=3)),
    ]


@pytest.fixture
def projects(store: Store) -> dict[str, str]:
    """A UTC project and a Europe/Berlin project, each with the same dated events."""
    created = {}
    for timezone in ("UTC", "Europe/Berlin"):
        project, _ = store.create_project("t" + uuid.uuid4().hex[:12], timezone=timezone)
        store.insert_events(project.project_id, dated_events())
        created[timezone] = project.project_id
    return created


# (timezone of the project, date_from, date_to, distinct ids in the result)
RANGE_CASES = [
    ("UTC", None, None, ["d1", "d2", "d3", "d4", "d5"]),
    ("UTC", "2024-10-25", "2024-10-26", ["d2"]),
    ("UTC", "2024-10-25", None, ["d2", "d3", "d4", "d5"]),
    ("UTC", None, "2024-10-25T12:00:00Z", ["d1"]),
    ("UTC", "2024-10-25T00:00:00+02:00", "2024-10-25", ["d1"]),
    ("UTC", "-7d", None, ["d5"]),
    ("UTC", "-2w", "-1w", ["d4"]),
    ("UTC", "", "", ["d1", "d2", "d3", "d4", "d5"]),
    ("Europe/Berlin", "2024-10-25", "2024-10-26", ["d1", "d2"]),
]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["memory", "http"])
async def test_query_date_range(store: Store, projects: dict[str, str], tmp_path, transport: str):
    results = []
    async with connected(transport, "auto", store, projects["UTC"], tmp_path) as (client, _):
        for timezone, date_from, date_to, _ in RANGE_CASES:
            arguments: dict[str, Any] = {"hogql": DISTINCT_IDS, "project_id": projects[timezone]}
            if date_from is not None:
                arguments["date_from"] = date_from
            if date_to is not None:
                arguments["date_to"] = date_to
            result = await client.call_tool("analytics_query", arguments)
            results.append((result.is_error, result.structured_content))

    for (timezone, date_from, date_to, expected), (is_error, output) in zip(RANGE_CASES, results, strict=True):
        case = (timezone, date_from, date_to)
        assert is_error is False, case
        assert output["rows"] == [[distinct_id] for distinct_id in expected], case
        assert output["row_count"] == len(expected), case


@pytest.mark.anyio
async def test_query_date_range_sql(store: Store, projects: dict[str, str], tmp_path):
    arguments = {
        "hogql": "SELECT count() AS n FROM events WHERE {filters}", "date_from": "2024-10-25", "date_to": "-1d",
        "include_sql": True,
    }
    async with connected("memory", "auto", store, projects["UTC"], tmp_path) as (client, _):
        result = await client.call_tool("analytics_query", arguments)

    assert result.is_error is False
    assert result.structured_content["rows"] == [[4]]
    assert result.structured_content["clickhouse_sql"] == (
        "SELECT count() AS n FROM events AS pb_t0 WHERE pb_t0.project_id = {pb_project:String} AND "
        "((timestamp >= parseDateTime64BestEffort({pb_s0:String}, 6, {pb_tz:String}) "
        "AND timestamp < now64(6, {pb_tz:String}) - INTERVAL 1 DAY)) LIMIT 101"
    )


@pytest.mark.anyio
async def test_query_date_arguments_listed(store: Store, projects: dict[str, str], tmp_path):
    async with connected("memory", "auto", store, projects["UTC"], tmp_path) as (client, _):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    properties = tools["analytics_query"].input_schema["properties"]
    for name in ("date_from", "date_to"):
        assert properties[name]["anyOf"] == [{"type": "string"}, {"type": "null"}], name
        assert properties[name]["default"] is None, name
        assert "{filters}" in properties[name]["description"], name
    assert "-7d" in properties["date_from"]["description"]
    assert "{filters}" in properties["hogql"]["description"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("hogql", "dates", "message"),
    [
        (
            "SELECT count() FROM events",
            {"date_from": "-7d"},
            "The query has no {filters} placeholder, so date_from '-7d' would be ignored. Write {filters} where "
            "the date range applies, e.g. SELECT count() FROM events WHERE {filters}.",
        ),
        (
            "SELECT count() FROM events WHERE event = '{filters}' -- {filters}",
            {"date_from": "2024-10-01", "date_to": "2024-11-01"},
            "The query has no {filters} placeholder, so date_from '2024-10-01', date_to '2024-11-01' would be "
            "ignored. Write {filters} where the date range applies, e.g. SELECT count() FROM events WHERE {filters}.",
        ),
        (
            "SELECT count() FROM events WHERE {variables.filters}",
            {"date_to": "2024-11-01"},
            "Placeholder {filters} has no value. Placeholders given: none. Line 1, Col 34.",
        ),
        (DISTINCT_IDS, {"date_from": "last week"}, f"Invalid filters date_from 'last week': {FILTERS_HELP}"),
        (DISTINCT_IDS, {"date_to": "2024-13-01"}, f"Invalid filters date_to '2024-13-01': {FILTERS_HELP}"),
        (DISTINCT_IDS, {"date_from": "-7 days"}, f"Invalid filters date_from '-7 days': {FILTERS_HELP}"),
    ],
)
async def test_query_date_range_rejected(
    store: Store, projects: dict[str, str], tmp_path, hogql: str, dates: dict[str, str], message: str
):
    async with connected("memory", "auto", store, projects["UTC"], tmp_path) as (client, _):
        result = await client.call_tool("analytics_query", {"hogql": hogql, **dates})

    assert result.is_error is True
    assert result.content[0].text == f"Error executing tool analytics_query: {message}"


# The command line, on its own data folder.

EVENTS_CSV = """\
ts,user,account,action
2025-03-01T10:00:00Z,u1,acme,login
2025-03-02T11:30:00Z,u2,acme,export
2025-03-03T12:00:00Z,u3,globex,login
2025-03-04T09:00:00Z,u1,acme,login
"""
MAPPING_TOML = """\
timestamp = "ts"
account = "account"
user = "user"

[[events]]
name_column = "action"
"""
BY_EVENT = "SELECT event, count() AS n FROM events WHERE {filters} GROUP BY event ORDER BY event"
DATES = ["--date-from", "2025-03-02", "--date-to", "2025-03-04"]
BY_EVENT_SQL = (
    "SELECT event, count() AS n FROM events AS pb_t0 WHERE pb_t0.project_id = {pb_project:String} AND "
    "((timestamp >= parseDateTime64BestEffort({pb_s0:String}, 6, {pb_tz:String}) "
    "AND timestamp < parseDateTime64BestEffort({pb_s1:String}, 6, {pb_tz:String}))) "
    "GROUP BY event ORDER BY event LIMIT 101"
)
NO_FILTERS_ERROR = (
    "pulseboard: The query has no {filters} placeholder, so date_from '-7d' would be ignored. Write {filters} "
    "where the date range applies, e.g. SELECT count() FROM events WHERE {filters}.\n"
)


def pulseboard(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**child_env(), "PULSEBOARD_DATA_DIR": str(data_dir), "PULSEBOARD_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "pulseboard.server.cli", *args],
        capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )


def date_range_commands(data_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    return {
        "json": pulseboard(data_dir, "query", "--project", "shop", "--format", "json", *DATES, BY_EVENT),
        "table": pulseboard(data_dir, "query", "--project", "shop", "--date-from", "2025-03-03", BY_EVENT),
        "relative": pulseboard(data_dir, "query", "--project", "shop", "--date-to=-1d", "--format", "csv", BY_EVENT),
        "explain": pulseboard(data_dir, "query", "--project", "shop", "--explain", *DATES, BY_EVENT),
        "no filters": pulseboard(
            data_dir, "query", "--project", "shop", "--date-from=-7d", "SELECT count() FROM events"
        ),
    }


def test_cli_query_date_range(tmp_path: Path):
    data_dir = tmp_path / "data"
    (tmp_path / "events.csv").write_text(EVENTS_CSV)
    (tmp_path / "mapping.toml").write_text(MAPPING_TOML)
    assert pulseboard(data_dir, "project", "create", "shop").returncode == 0
    imported = pulseboard(
        data_dir, "import", str(tmp_path / "events.csv"), "--mapping", str(tmp_path / "mapping.toml"), "--project", "shop"
    )
    assert imported.returncode == 0, imported.stderr

    local = date_range_commands(data_dir)
    with serve(data_dir, free_port()):
        served = date_range_commands(data_dir)

    for mode, results in [("local", local), ("served", served)]:
        assert results["json"].returncode == 0, (mode, results["json"].stderr)
        assert json.loads(results["json"].stdout) == [{"event": "export", "n": 1}, {"event": "login", "n": 1}], mode
        assert results["table"].returncode == 0, (mode, results["table"].stderr)
        assert results["table"].stdout.splitlines() == ["event  n", "-----  -", "login  2"], mode
        assert results["relative"].returncode == 0, (mode, results["relative"].stderr)
        assert results["relative"].stdout.splitlines() == ["event,n", "export,1", "login,3"], mode
        assert results["explain"].returncode == 0, (mode, results["explain"].stderr)
        assert results["explain"].stdout == BY_EVENT_SQL + "\n", mode
        assert results["no filters"].returncode == 2, mode
        assert results["no filters"].stdout == "", mode
        assert results["no filters"].stderr == NO_FILTERS_ERROR, mode

"""Every MCP tool, prompt and resource through the real SDK client, in both protocol eras: in memory
and over streamable HTTP on a free 127.0.0.1 port. Results are compared whole, except values that
are random or depend on the clock, which are checked for their form and then set aside."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from pulseboard.server.app import create_app
from pulseboard.server.mcp_server import create_mcp
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import EventRow, Store
from tests.live_server import free_port, serving

TOKEN = "tools-test-token"
AS_OF = "2024-03-05T00:00:00Z"
# The tour stores a snapshot of this day before it runs the recipe, so score_history has one entry.
SNAPSHOT_DAY = "2024-03-04"


def event(name: str, account: str, day: int, hour: int = 10, **properties: Any) -> EventRow:
    return EventRow(
        uuid=str(uuid.uuid4()),
        event=name,
        distinct_id=f"user-{account}",
        timestamp=dt.datetime(2024, 3, day, hour, 0, tzinfo=dt.timezone.utc),
        properties={"account_id": account, **properties},
    )


EVENTS = [
    event("subscription_started", "acme", 1, 9, mrr=750, plan="pro"),
    event("subscription_started", "globex", 1, 9, mrr=300, plan="basic"),
    event("report_exported", "acme", 1),
    event("report_exported", "acme", 2),
    event("report_exported", "acme", 3),
    event("dashboard_viewed", "globex", 2),
    event("$exception", "globex", 3, **{"$exception_type": "ValueError"}),
]


@pytest.fixture
def project_id(store: Store, project) -> str:
    created, _ = project
    store.insert_events(created.project_id, EVENTS)
    return created.project_id


def runtime_for(store: Store, project_id: str, tmp_path, public_url: str) -> Runtime:
    settings = Settings(
        data_dir=tmp_path, clickhouse_url=store.url, default_project=project_id, public_url=public_url
    )
    return Runtime(settings, store)


@asynccontextmanager
async def connected(transport: str, mode: str, store: Store, project_id: str, tmp_path) -> AsyncIterator[tuple[Client, str]]:
    """Yield an SDK client of a fresh server for the project, and the server's public URL."""
    if transport == "memory":
        public_url = "http://127.0.0.1:8787"
        async with Client(create_mcp(runtime_for(store, project_id, tmp_path, public_url)), mode=mode) as client:
            yield client, public_url
        return

    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    app = create_app(runtime_for(store, project_id, tmp_path, public_url), api_token=TOKEN)
    with serving(app, port) as base:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client:
                yield client, public_url


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert result.is_error is False, result.content
    return result.structured_content


async def tour(client: Client, project_id: str) -> dict[str, Any]:
    """Call every tool once in the order an agent would, and read every prompt and resource."""
    results: dict[str, Any] = {}
    results["describe_schema"] = await call(client, "describe_schema", {})
    results["analytics_query"] = await call(
        client, "analytics_query",
        {"hogql": "SELECT properties.account_id AS account, count() AS n FROM events "
                  "WHERE event = {variables.name} GROUP BY account ORDER BY account",
         "variables": {"name": "report_exported"}, "include_sql": True},
    )
    results["list_recipes"] = await call(client, "list_recipes", {})
    results["get_recipe"] = await call(client, "get_recipe", {"recipe_id": "account_health_score"})
    results["snapshot_health_scores"] = await call(client, "snapshot_health_scores", {"as_of": SNAPSHOT_DAY})
    results["run_recipe"] = await call(
        client, "run_recipe", {"recipe_id": "account_health_score", "params": {"as_of": AS_OF}}
    )
    results["publish_query"] = await call(
        client, "publish_query",
        {"recipe_id": "account_health_score", "params": {"as_of": AS_OF}, "title": "Account health",
         "description": "Health of every account for the CS team."},
    )
    publication_id = results["publish_query"]["publication_id"]
    results["list_publications"] = await call(client, "list_publications", {})
    results["rotate_publication_key"] = await call(client, "rotate_publication_key", {"publication_id": publication_id})
    results["revoke_publication"] = await call(client, "revoke_publication", {"publication_id": publication_id})
    results["account_drilldown"] = await call(client, "account_drilldown", {"account_id": "acme", "as_of": AS_OF})
    results["account_drilldown bottom_n"] = await call(client, "account_drilldown", {"bottom_n": 1, "as_of": AS_OF})

    schema_text = (await client.read_resource(f"schema://{project_id}")).contents[0].text
    recipe_text = (await client.read_resource("recipe://account_health_score")).contents[0].text
    results["schema_resource"] = json.loads(schema_text)
    results["recipe_resource"] = json.loads(recipe_text)
    prompt = await client.get_prompt("account_health_score", {"w_revenue": "50"})
    results["prompt"] = [(message.role, message.content.text) for message in prompt.messages]
    return results


# No account had events in the 14 days before the last 14, so trend has no data. Its 30 weight
# points move to usage (40) and friction (30), and revenue weighs 0.
# globex: usage is log(1+2)/log(1+4) = 0.683 and friction is 1 - 1000 * 1 error / 1000 events / 5 = 0.8.
# So it loses 40/70 * 100 * 0.317 = 18.1 and 30/70 * 100 * 0.2 = 8.6 points.
# The friction median of 0 and 0.2 is 0.1, so globex has 2x it.
COVERAGE = "usage, friction, revenue; no data: trend (30 of 100 weight points moved to the signals with data)"
GLOBEX_USAGE = "usage: 2 events in 30 days, 50% of the busiest account"
GLOBEX_FRICTION = "errors: 1 in 30 days, 2x the median"
SCORED_ROWS = [
    ["globex", "basic", 300.0, 2, 2, 1, 0, 73.3, "healthy", GLOBEX_USAGE, 68.3, 58.0, 80.0, 40.0, 4.0, 1, 1, None,
     COVERAGE, GLOBEX_FRICTION, None, None, [73.3]],
    ["acme", "pro", 750.0, 4, 4, 0, 0, 100.0, "champion", "none", 100.0, 66.0, 100.0, 100.0, 8.0, 1, 1, None,
     COVERAGE, "none", None, None, [100.0]],
]
SCORED_COLUMNS = [
    {"name": "account", "type": "Nullable(String)"},
    {"name": "plan", "type": "Nullable(String)"},
    {"name": "mrr", "type": "Nullable(Float64)"},
    {"name": "events_30d", "type": "UInt64"},
    {"name": "trend", "type": "Int64"},
    {"name": "errors_30d", "type": "UInt64"},
    {"name": "tickets_30d", "type": "UInt64"},
    {"name": "health_score", "type": "Nullable(Float64)"},
    {"name": "status", "type": "String"},
    {"name": "top_risk_signal", "type": "Nullable(String)"},
    {"name": "usage_score", "type": "Float64"},
    {"name": "trend_score", "type": "Float64"},
    {"name": "friction_score", "type": "Float64"},
    {"name": "revenue_score", "type": "Float64"},
    {"name": "trend_change_pct", "type": "Float64"},
    {"name": "active_users_30d", "type": "UInt64"},
    {"name": "last_seen_days_ago", "type": "Nullable(Int64)"},
    {"name": "nps", "type": "Nullable(Float64)"},
    {"name": "coverage", "type": "String"},
    {"name": "second_risk_signal", "type": "Nullable(String)"},
    {"name": "score_change_7d", "type": "Nullable(Float64)"},
    {"name": "score_change_30d", "type": "Nullable(Float64)"},
    {"name": "score_history", "type": "Array(Float64)"},
]
# (name, type, default, min, max, values) of each account_health_score parameter, in header order.
RECIPE_PARAMETERS = [
    ("as_of", "datetime", "now", None, None, None),
    ("account_property", "property", "account_id", None, None, None),
    ("w_usage", "number", 40, 0.0, 1000.0, None),
    ("w_trend", "number", 30, 0.0, 1000.0, None),
    ("w_friction", "number", 30, 0.0, 1000.0, None),
    ("w_revenue", "number", 0, 0.0, 1000.0, None),
    ("window_days", "integer", 30, 1.0, 365.0, None),
    ("trend_days", "integer", 14, 1.0, 182.0, None),
    ("usage_scale", "enum", "all_accounts", None, None, ["all_accounts", "plan_tier"]),
    ("trend_full_scale", "number", 0.25, 0.01, 10.0, None),
    ("trend_min_base", "integer", 50, 1.0, 1000000.0, None),
    ("friction_basis", "enum", "events", None, None, ["events", "active_users"]),
    ("friction_ceiling", "number", 5, 0.01, 1000.0, None),
    ("friction_min_events", "integer", 1000, 1.0, 1000000.0, None),
    ("friction_ceiling_per_user", "number", 2, 0.01, 100000.0, None),
    ("nps_days", "integer", 90, 1.0, 730.0, None),
    ("band_warn", "number", 40, 0.0, 100.0, None),
    ("band_ok", "number", 55, 0.0, 100.0, None),
    ("band_healthy", "number", 70, 0.0, 100.0, None),
    ("band_champion", "number", 85, 0.0, 100.0, None),
    ("plan", "string", "", None, None, None),
    ("sort", "enum", "asc", None, None, ["asc", "desc"]),
    ("limit", "integer", 100, 1.0, 10000.0, None),
]

def at(day: int, hour: int) -> str:
    return dt.datetime(2024, 3, day, hour, tzinfo=dt.timezone.utc).isoformat()


def columns(*pairs: str) -> list[dict[str, str]]:
    """Columns from alternating names and types."""
    return [{"name": name, "type": kind} for name, kind in zip(pairs[::2], pairs[1::2])]


def usage_weeks(events: int, errors: int) -> list[list[Any]]:
    """The 12 Monday-started weeks up to AS_OF (a Tuesday); every event is in the week of 2024-02-26."""
    mondays = [dt.date(2024, 3, 4) - dt.timedelta(weeks=11 - week) for week in range(12)]
    return [
        [monday.isoformat(), *((events, 1, errors) if monday == dt.date(2024, 2, 26) else (0, 0, 0))]
        for monday in mondays
    ]


def summary(plan: str, mrr: str, score: str, status: str, top: str, second: str, events: str, errors: str) -> list[list[str]]:
    return [
        ["plan", plan], ["mrr", mrr], ["health_score", score], ["status", status], ["top_risk_signal", top],
        ["second_risk_signal", second], ["coverage", COVERAGE], ["events_30d", events], ["active_users_30d", "1"],
        ["errors_30d", errors], ["tickets_30d", "0"], ["trend", events], ["last_seen_days_ago", "1"], ["nps", ""],
        ["score_change_7d", ""], ["score_change_30d", ""],
    ]


TIME = "DateTime64(6, 'UTC')"
EVENT_TYPE = "LowCardinality(String)"


def drilldown_sections(account: str) -> list[dict[str, Any]]:
    """Every section of the drill-down of one account of EVENTS as of AS_OF, in the tool's order."""
    user = f"user-{account}"
    if account == "acme":
        head = summary("pro", "750", "100", "champion", "none", "none", "4", "0")
        weeks = usage_weeks(4, 0)
        users = [[user, 4, at(3, 10)]]
        top_events = [["report_exported", 3, 1, at(3, 10)], ["subscription_started", 1, 1, at(1, 9)]]
        errors: list[list[Any]] = []
        billing = [[at(1, 9), "subscription_started", "pro", 750.0]]
        history = [["2024-03-04", 100.0, "champion", "none"]]
        latest = [[at(3, 10), "report_exported", user], [at(2, 10), "report_exported", user],
                  [at(1, 10), "report_exported", user], [at(1, 9), "subscription_started", user]]
    else:
        head = summary("basic", "300", "73.3", "healthy", GLOBEX_USAGE, GLOBEX_FRICTION, "2", "1")
        weeks = usage_weeks(2, 1)
        users = [[user, 2, at(2, 10)]]
        top_events = [["dashboard_viewed", 1, 1, at(2, 10)], ["subscription_started", 1, 1, at(1, 9)]]
        errors = [["(no message)", "ValueError", 1, 1, at(3, 10), at(3, 10)]]
        billing = [[at(1, 9), "subscription_started", "basic", 300.0]]
        history = [["2024-03-04", 73.3, "healthy", GLOBEX_USAGE]]
        latest = [[at(3, 10), "$exception", user], [at(2, 10), "dashboard_viewed", user],
                  [at(1, 9), "subscription_started", user]]
    return [
        {"name": "summary", "title": "Health score summary", "columns": columns("field", "String", "value", "String"),
         "rows": head},
        {"name": "usage_by_week", "title": "Usage per week, last 12 weeks",
         "columns": columns("week_start", "Date", "events", "UInt64", "active_users", "UInt64", "errors", "UInt64"),
         "rows": weeks},
        {"name": "active_users", "title": "Most active users, last 30 days",
         "columns": columns("user", "String", "events", "UInt64", "last_seen", TIME), "rows": users},
        {"name": "top_events", "title": "Top events, last 30 days",
         "columns": columns("event", EVENT_TYPE, "events", "UInt64", "users", "UInt64", "last_seen", TIME),
         "rows": top_events},
        {"name": "errors", "title": "Errors by message, last 30 days",
         "columns": columns("message", "String", "type", "String", "errors", "UInt64", "users", "UInt64",
                            "first_seen", TIME, "last_seen", TIME),
         "rows": errors},
        {"name": "tickets", "title": "Support tickets, last 30 days",
         "columns": columns("opened_at", TIME, "user", "String", "subject", "Nullable(String)",
                            "priority", "Nullable(String)"),
         "rows": []},
        {"name": "billing", "title": "Plan and MRR history",
         "columns": columns("at", TIME, "event", EVENT_TYPE, "plan", "Nullable(String)", "mrr", "Nullable(Float64)"),
         "rows": billing},
        {"name": "score_history", "title": "Health score snapshots, last 30 days",
         "columns": columns("day", "Date", "health_score", "Float64", "status", "LowCardinality(String)",
                            "top_risk_signal", "String"),
         "rows": history},
        {"name": "last_activity", "title": "Latest activity",
         "columns": columns("timestamp", TIME, "event", EVENT_TYPE, "user", "String"), "rows": latest},
    ]


PROMPT_REQUEST = (
    "Score every B2B account 0-100 on usage, usage trend, revenue and friction (errors and support tickets) over "
    "the last 30 days, band each one as critical, warn, ok, healthy or champion, and name the signals that cost "
    "each account the most points, lowest scores first."
)


def expected_schema(project_id: str) -> dict[str, Any]:
    """describe_schema of EVENTS, without its prose: table descriptions, properties_note and hints."""
    return {
        "project_id": project_id,
        "timezone": "UTC",
        "total_events": 7,
        "first_event_at": "2024-03-01T09:00:00Z",
        "last_event_at": "2024-03-03T10:00:00Z",
        "columns": [
            ("uuid", "UUID"), ("event", "String"), ("distinct_id", "String"),
            ("timestamp", "DateTime64(6, 'UTC')"), ("properties", "JSON"), ("inserted_at", "DateTime64(6, 'UTC')"),
        ],
        "events": [
            {"event": "report_exported", "count": 3, "last_seen": "2024-03-03T10:00:00Z", "properties": ["account_id"]},
            {"event": "subscription_started", "count": 2, "last_seen": "2024-03-01T09:00:00Z",
             "properties": ["account_id", "mrr", "plan"]},
            {"event": "$exception", "count": 1, "last_seen": "2024-03-03T10:00:00Z",
             "properties": ["$exception_type", "account_id"]},
            {"event": "dashboard_viewed", "count": 1, "last_seen": "2024-03-02T10:00:00Z", "properties": ["account_id"]},
        ],
        "events_truncated": False,
        "properties": [
            {"path": "account_id", "hogql": "properties.account_id", "type": "String", "count": 7,
             "examples": ["acme", "globex"], "stored_types": [{"type": "string", "count": 7}]},
            {"path": "mrr", "hogql": "properties.mrr", "type": "Numeric", "count": 2,
             "examples": ["750", "300"], "stored_types": [{"type": "number", "count": 2}]},
            {"path": "plan", "hogql": "properties.plan", "type": "String", "count": 2,
             "examples": ["pro", "basic"], "stored_types": [{"type": "string", "count": 2}]},
            {"path": "$exception_type", "hogql": "properties.$exception_type", "type": "String", "count": 1,
             "examples": ["ValueError"], "stored_types": [{"type": "string", "count": 1}]},
        ],
        "properties_truncated": False,
        "properties_scope": {
            "all_events": True, "events_scanned": 7, "since": "2024-03-01T09:00:00Z", "older_events_of": [],
            "examples_from_events": 7, "note": "Property counts cover all 7 events.",
        },
        "mixed_types": [],
        "first_hint": "properties.account_id is the account (customer company) of an event; group by it for "
        "per-account questions.",
    }


def schema_facts(schema: dict[str, Any]) -> dict[str, Any]:
    facts = {key: value for key, value in schema.items() if key not in {"tables", "hints"}}
    table, snapshots = schema["tables"]
    assert snapshots["name"] == "health_snapshots"
    facts["columns"] = [(column["name"], column["type"]) for column in table["columns"]]
    facts["first_hint"] = schema["hints"][0]
    return facts


def account_read(store: Store) -> str:
    """Return the compiled read of properties.account_id.

    The compiler reads the typed String subcolumn only while every stored value at that path, in any
    project of the store, is a string. Other tests may store a number there.
    """
    [[stored]] = store.query("SELECT distinctJSONPathsAndTypes(properties)['account_id'] FROM events").rows
    if stored == ["String"]:
        return 'properties."account_id".:String'
    return 'CAST(properties."account_id" AS Nullable(String))'


def pop_elapsed(output: dict[str, Any]) -> None:
    elapsed = output.pop("elapsed_ms")
    assert isinstance(elapsed, float) and elapsed >= 0


def pop_created_at(entry: dict[str, Any]) -> dt.datetime:
    created_at = dt.datetime.fromisoformat(entry.pop("created_at"))
    assert dt.timedelta(0) <= dt.datetime.now(dt.timezone.utc) - created_at < dt.timedelta(minutes=5)
    return created_at


def key_of(url: str, public_url: str, publication_id: str) -> str:
    match = re.fullmatch(re.escape(f"{public_url}/q/{publication_id}?key=") + r"([A-Za-z0-9_-]{43})", url)
    assert match, url
    return match.group(1)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["memory", "http"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_tool(store: Store, project_id: str, tmp_path, transport: str, mode: str):
    async with connected(transport, mode, store, project_id, tmp_path) as (client, public_url):
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        results = await tour(client, project_id)

    assert schema_facts(results["describe_schema"]) == expected_schema(project_id)
    assert results["schema_resource"] == results["describe_schema"]

    query = results["analytics_query"]
    pop_elapsed(query)
    assert query == {
        "columns": [{"name": "account", "type": "Nullable(String)"}, {"name": "n", "type": "UInt64"}],
        "rows": [["acme", 3]],
        "row_count": 1,
        "truncated": False,
        "notice": None,
        "clickhouse_sql": f"SELECT {account_read(store)} AS account, count() AS n "
        "FROM events AS pb_t0 WHERE pb_t0.project_id = {pb_project:String} AND (event = {name:String}) "
        "GROUP BY account ORDER BY account LIMIT 101",
    }

    recipe = results["get_recipe"]
    assert [
        (p["name"], p["type"], p["default"], p["min"], p["max"], p["values"]) for p in recipe["parameters"]
    ] == RECIPE_PARAMETERS
    assert all(p["description"] for p in recipe["parameters"])
    assert [column["name"] for column in recipe["output_columns"]] == [column["name"] for column in SCORED_COLUMNS]
    assert recipe["recipe_id"] == "account_health_score"
    assert recipe["title"] == "Account health score"
    assert recipe["prompt"] == PROMPT_REQUEST
    assert recipe["hogql"].startswith("WITH\n    billing_events AS (")
    assert "{account_property}" in recipe["hogql"]
    assert results["recipe_resource"] == recipe
    without_text = {key: value for key, value in recipe.items() if key != "hogql"}
    listed_recipes = {entry["recipe_id"]: entry for entry in results["list_recipes"]["recipes"]}
    assert listed_recipes["account_health_score"] == without_text

    assert results["snapshot_health_scores"] == {
        "project_id": project_id, "day": SNAPSHOT_DAY, "as_of": "2024-03-04T23:59:59.999999Z", "accounts": 2,
        "skipped": 0,
    }

    scored = results["run_recipe"]
    pop_elapsed(scored)
    assert scored == {
        "columns": SCORED_COLUMNS, "rows": SCORED_ROWS, "row_count": 2, "truncated": False, "notice": None,
        "clickhouse_sql": None,
    }

    published = results["publish_query"]
    publication_id = published.pop("publication_id")
    assert re.fullmatch(r"pub_[0-9a-f]{16}", publication_id)
    first_key = key_of(published.pop("public_url"), public_url, publication_id)
    assert published == {
        "title": "Account health", "columns": SCORED_COLUMNS, "preview_rows": SCORED_ROWS, "row_count": 2,
    }

    listed = results["list_publications"]["publications"]
    assert len(listed) == 1
    created_at = pop_created_at(listed[0])
    entry = {
        "publication_id": publication_id,
        "url_without_key": f"{public_url}/q/{publication_id}",
        "title": "Account health",
        "description": "Health of every account for the CS team.",
        "recipe_id": "account_health_score",
        "hogql": "",
        "params": {"as_of": AS_OF},
        "cache_ttl_s": 60,
        "expires_at": None,
        "revoked": False,
    }
    assert listed[0] == entry
    assert first_key not in json.dumps(results["list_publications"])

    rotated = results["rotate_publication_key"]
    assert rotated["publication_id"] == publication_id
    assert key_of(rotated["public_url"], public_url, publication_id) != first_key
    grace = dt.datetime.fromisoformat(rotated["old_key_valid_until"]) - created_at
    assert dt.timedelta(minutes=59) < grace < dt.timedelta(minutes=65)

    revoked = results["revoke_publication"]
    pop_created_at(revoked)
    assert revoked == {**entry, "revoked": True}

    assert results["account_drilldown"] == {
        "as_of": "2024-03-05T00:00:00+00:00",
        "accounts": [{"account_id": "acme", "health_score": 100.0, "status": "champion", "last_seen": at(3, 10),
                      "sections": drilldown_sections("acme")}],
    }
    # globex is the lowest-scoring account that has not cancelled.
    assert results["account_drilldown bottom_n"] == {
        "as_of": "2024-03-05T00:00:00+00:00",
        "accounts": [{"account_id": "globex", "health_score": 73.3, "status": "healthy", "last_seen": at(3, 10),
                      "sections": drilldown_sections("globex")}],
    }

    assert results["prompt"] == [
        ("user", PROMPT_REQUEST + "\n\nUse the run_recipe tool with recipe_id 'account_health_score' and params "
         '{"w_revenue": "50"}, show the result as a table, then publish it with publish_query and give me the URL.'),
    ]


# (read_only, destructive, idempotent) per tool; open_world is False for all, since every tool
# works on this server's store only.
ANNOTATIONS = {
    "describe_schema": (True, None, True),
    "analytics_query": (True, None, True),
    "list_recipes": (True, None, True),
    "get_recipe": (True, None, True),
    "run_recipe": (True, None, True),
    "list_publications": (True, None, True),
    "publish_query": (False, False, False),
    "revoke_publication": (False, True, True),
    "rotate_publication_key": (False, True, False),
    "account_drilldown": (True, None, True),
    "snapshot_health_scores": (False, False, True),
}


@pytest.mark.anyio
async def test_tool_annotations(store: Store, project_id: str, tmp_path):
    async with Client(create_mcp(runtime_for(store, project_id, tmp_path, "http://127.0.0.1:8787"))) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(tools) == sorted(ANNOTATIONS)
    for name, (read_only, destructive, idempotent) in ANNOTATIONS.items():
        annotations = tools[name].annotations
        assert annotations.read_only_hint is read_only, name
        assert annotations.destructive_hint is destructive, name
        assert annotations.idempotent_hint is idempotent, name
        assert annotations.open_world_hint is False, name
        assert tools[name].title, name
        assert tools[name].output_schema is not None, name


@pytest.mark.anyio
async def test_prompts_and_resources_listed(store: Store, project_id: str, tmp_path):
    async with Client(create_mcp(runtime_for(store, project_id, tmp_path, "http://127.0.0.1:8787"))) as client:
        resources = {str(resource.uri): resource for resource in (await client.list_resources()).resources}
        templates = [template.uri_template for template in (await client.list_resource_templates()).resource_templates]
        prompts = {prompt.name: prompt for prompt in (await client.list_prompts()).prompts}
        with pytest.raises(MCPError) as unknown:
            await client.read_resource("schema://nosuchproject")

    recipe_ids = ["account_drilldown", "account_health_score", "score_drops"]
    assert sorted(resources) == [f"recipe://{recipe_id}" for recipe_id in recipe_ids]
    assert sorted(prompts) == recipe_ids
    recipe = resources["recipe://account_health_score"]
    assert (recipe.name, recipe.title, recipe.mime_type) == ("account_health_score", "Account health score", "application/json")
    assert templates == ["schema://{project_id}"]
    prompt = prompts["account_health_score"]
    assert prompt.title == "Account health score"
    assert [(argument.name, argument.required) for argument in prompt.arguments] == [
        (name, False) for name, *_ in RECIPE_PARAMETERS
    ]
    assert unknown.value.error.message == (
        "Project 'nosuchproject' does not exist; check the project_id, or create it with `pulseboard project create nosuchproject`."
    )

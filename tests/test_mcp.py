"""MCP tools through the real SDK client: in memory and over streamable HTTP in process."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.testclient import TestClient

from pulseboard.server.app import create_app, redact_query
from pulseboard.server.mcp_server import create_mcp
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import EventRow, Store

BASE = "http://127.0.0.1:8787"
TOKEN = "test-token-123"


def event(name: str, account: str, day: int, **properties) -> EventRow:
    return EventRow(
        uuid=str(uuid.uuid4()),
        event=name,
        distinct_id=f"user-{account}",
        timestamp=dt.datetime(2024, 3, day, 10, 0, tzinfo=dt.timezone.utc),
        properties={"account_id": account, **properties},
    )


@pytest.fixture
def runtime(store: Store, project, tmp_path) -> Runtime:
    created, _ = project
    settings = Settings(
        data_dir=tmp_path, clickhouse_url=store.url, default_project=created.project_id, public_url=BASE
    )
    store.insert_events(
        created.project_id,
        [
            event("report_exported", "acme", 1),
            event("report_exported", "acme", 2),
            event("dashboard_viewed", "globex", 2),
            event("subscription_started", "acme", 1, mrr=750, plan="pro"),
        ],
    )
    return Runtime(settings, store)


@pytest.mark.anyio
async def test_analytics_query_returns_rows(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool(
            "analytics_query",
            {"hogql": "SELECT properties.account_id AS account, count() AS n FROM events "
                      "WHERE event != 'subscription_started' GROUP BY account ORDER BY account"},
        )
    assert result.is_error is False
    content = result.structured_content
    assert content["rows"] == [["acme", 2], ["globex", 1]]
    assert [column["name"] for column in content["columns"]] == ["account", "n"]
    assert content["row_count"] == 2
    assert content["truncated"] is False
    assert content["clickhouse_sql"] is None


@pytest.mark.anyio
async def test_analytics_query_variables(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool(
            "analytics_query",
            {"hogql": "SELECT count() AS n FROM events WHERE properties.account_id = {variables.account}",
             "variables": {"account": "globex"}},
        )
    assert result.structured_content["rows"] == [[1]]


@pytest.mark.anyio
async def test_default_limit_truncates(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool("analytics_query", {"hogql": "SELECT arrayJoin(range(150)) AS n"})
    assert result.is_error is False
    assert result.structured_content["rows"][:2] == [[0], [1]]
    assert result.structured_content["row_count"] == 100
    assert result.structured_content["truncated"] is True


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("hogql", "message"),
    [
        (
            "SELECT * FROM system.tables",
            "Table 'system.tables' is not allowed. Only the events and health_snapshots tables and the "
            "query's own CTEs can be queried, without a database name. Line 1, Col 15.",
        ),
        ("SELECT 1; DROP TABLE events", "Only one statement is allowed. Remove the text after ';'. Line 1, Col 9."),
    ],
)
async def test_fixable_errors_reach_the_agent(runtime: Runtime, hogql: str, message: str):
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool("analytics_query", {"hogql": hogql})
    assert result.is_error is True
    assert result.content[0].text == f"Error executing tool analytics_query: {message}"


@pytest.mark.anyio
async def test_clickhouse_error_is_readable(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool("analytics_query", {"hogql": "SELECT intDiv(count(), 0) FROM events"})
    assert result.is_error is True
    assert result.content[0].text == (
        "Error executing tool analytics_query: The query failed in ClickHouse: Division by zero: while executing "
        "function intDiv on arguments count() UInt64 UInt64(size = 0), 0_UInt8 UInt8 Const(size = 0, "
        "UInt8(size = 1)). (ILLEGAL_DIVISION)"
    )


@pytest.mark.anyio
async def test_publish_validates_source(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        both = await client.call_tool(
            "publish_query", {"description": "d", "recipe_id": "account_health_score", "hogql": "SELECT 1"}
        )
        neither = await client.call_tool("publish_query", {"description": "d"})
    expected = "Error executing tool publish_query: Give exactly one of recipe_id (with params) or hogql."
    assert both.content[0].text == expected
    assert neither.content[0].text == expected


def test_publish_then_view_over_http(runtime: Runtime):
    app = create_app(runtime, api_token=TOKEN)
    with TestClient(app, base_url=BASE) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.post("/mcp", json={}).status_code == 401

    from pulseboard.tools.publish import publish

    published = publish(
        runtime.store, runtime.settings, runtime.settings.default_project, description="Usage by account",
        hogql="SELECT properties.account_id AS account, count() AS n FROM events GROUP BY account ORDER BY account",
    )
    assert published.public_url.startswith(f"{BASE}/q/{published.publication_id}?key=")
    assert published.preview_rows == [["acme", 3], ["globex", 1]]

    path = published.public_url.removeprefix(BASE)
    app = create_app(runtime, api_token=TOKEN)
    with TestClient(app, base_url=BASE) as http:
        page = http.get(path + "&format=json")
        wrong = http.get(f"/q/{published.publication_id}?key=wrong&format=json")
    assert page.status_code == 200
    assert page.json()["rows"] == [["acme", 3], ["globex", 1]]
    assert page.headers["access-control-allow-origin"] == "*"
    assert wrong.status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_streamable_http_in_process(runtime: Runtime, mode: str):
    app = create_app(runtime, api_token=TOKEN)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx2.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                result = await client.call_tool(
                    "analytics_query", {"hogql": "SELECT count() AS n FROM events WHERE event = 'report_exported'"}
                )
    assert {"analytics_query", "publish_query", "list_recipes", "run_recipe"} <= tools
    assert result.structured_content["rows"] == [[2]]


def test_mcp_rejects_foreign_host(runtime: Runtime):
    app = create_app(runtime, api_token=TOKEN)
    with TestClient(app, base_url=BASE) as http:
        response = http.post(
            "/mcp", json={}, headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}
        )
    assert response.status_code == 421


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("key=abc&format=json", "key=***&format=json"),
        ("format=csv&KEY=abc", "format=csv&KEY=***"),
        ("token=t&api_key=k", "token=***&api_key=***"),
        ("format=json", "format=json"),
    ],
)
def test_redact_query(query: str, expected: str):
    assert redact_query(query) == expected



@pytest.mark.anyio
async def test_list_recipes_and_prompt(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        listed = await client.call_tool("list_recipes", {})
        prompts = {prompt.name: prompt for prompt in (await client.list_prompts()).prompts}
        rendered = await client.get_prompt("account_health_score", {"w_revenue": "50"})
    assert listed.is_error is False, listed.content
    recipe_ids = [recipe["recipe_id"] for recipe in listed.structured_content["recipes"]]
    assert "account_health_score" in recipe_ids
    assert "account_health_score" in prompts
    text = rendered.messages[0].content.text
    assert "Use the run_recipe tool with recipe_id 'account_health_score' and params {\"w_revenue\": \"50\"}" in text


@pytest.mark.anyio
async def test_run_recipe_unknown_id(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool("run_recipe", {"recipe_id": "nope"})
    assert result.is_error is True
    assert "nope" in result.content[0].text
    assert "account_health_score" in result.content[0].text


@pytest.mark.anyio
async def test_list_and_revoke_publications(runtime: Runtime):
    project_id = runtime.settings.default_project
    async with Client(create_mcp(runtime)) as client:
        published = await client.call_tool(
            "publish_query", {"description": "Events by name", "hogql": "SELECT event, count() AS n FROM events GROUP BY event"}
        )
        publication_id = published.structured_content["publication_id"]
        key = published.structured_content["public_url"].split("key=")[1]
        listed = await client.call_tool("list_publications", {})
        revoked = await client.call_tool("revoke_publication", {"publication_id": publication_id})
        unknown = await client.call_tool("revoke_publication", {"publication_id": "pub_0000000000000000"})

    entries = listed.structured_content["publications"]
    assert [entry["publication_id"] for entry in entries] == [publication_id]
    assert entries[0]["url_without_key"] == f"{BASE}/q/{publication_id}"
    assert entries[0]["revoked"] is False
    assert key not in json.dumps(listed.structured_content)
    assert revoked.structured_content["revoked"] is True
    assert unknown.is_error is True
    assert unknown.content[0].text == (
        "Error executing tool revoke_publication: Publication 'pub_0000000000000000' does not exist in project "
        f"'{project_id}'; list_publications shows the ids."
    )

    app = create_app(runtime, api_token=TOKEN)
    with TestClient(app, base_url=BASE) as http:
        view = http.get(f"/q/{publication_id}?key={key}&format=json")
    assert view.status_code == 404


@pytest.mark.anyio
async def test_revoke_needs_the_owning_project(runtime: Runtime, store: Store):
    other, _ = store.create_project("o" + uuid.uuid4().hex[:12])
    async with Client(create_mcp(runtime)) as client:
        published = await client.call_tool("publish_query", {"description": "d", "hogql": "SELECT 1 AS one"})
        publication_id = published.structured_content["publication_id"]
        foreign = await client.call_tool(
            "revoke_publication", {"publication_id": publication_id, "project_id": other.project_id}
        )
        listed = await client.call_tool("list_publications", {})
    assert foreign.is_error is True
    assert [entry["revoked"] for entry in listed.structured_content["publications"]] == [False]

"""Who may call /mcp: bearer tokens, projects per token, and the Host and Origin checks."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from starlette.testclient import TestClient

from pulseboard.server.app import create_app
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store
from pulseboard.server.tokens import TokenError, create_token, list_tokens, revoke_token
from tests.live_server import free_port, serving

SERVER_TOKEN = "server-token-for-auth-tests"
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def new_project(store: Store) -> str:
    project_id = "a" + uuid.uuid4().hex[:12]
    store.create_project(project_id)
    return project_id


def runtime_for(store: Store, tmp_path, default_project: str, public_url: str) -> Runtime:
    settings = Settings(
        data_dir=tmp_path, clickhouse_url=store.url, default_project=default_project, public_url=public_url
    )
    return Runtime(settings, store)


def rejection(allowed: str, project_id: str) -> str:
    return (
        f"This API token may use only the project(s) {allowed}; project {project_id!r} is not one of them. "
        f"Pass one of those as project_id, or use a token created with `pulseboard token create --project {project_id}`."
    )


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_project_token_reaches_its_projects_only(store: Store, tmp_path, mode: str):
    own, other = new_project(store), new_project(store)
    record, token = create_token(store, [own], label="cs team")
    port = free_port()
    app = create_app(runtime_for(store, tmp_path, own, f"http://127.0.0.1:{port}"), api_token=SERVER_TOKEN)

    with serving(app, port) as base:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client:
                allowed = await client.call_tool("analytics_query", {"hogql": "SELECT 1 AS one"})
                foreign_query = await client.call_tool(
                    "analytics_query", {"hogql": "SELECT 1 AS one", "project_id": other}
                )
                foreign_schema = await client.call_tool("describe_schema", {"project_id": other})
                foreign_list = await client.call_tool("list_publications", {"project_id": other})
                recipes = await client.call_tool("list_recipes", {})
                with pytest.raises(MCPError) as resource_error:
                    await client.read_resource(f"schema://{other}")
                own_schema = await client.read_resource(f"schema://{own}")

    assert record.projects == (own,)
    assert allowed.is_error is False
    assert allowed.structured_content["rows"] == [[1]]
    for tool, result in [
        ("analytics_query", foreign_query), ("describe_schema", foreign_schema), ("list_publications", foreign_list),
    ]:
        assert result.is_error is True
        assert result.content[0].text == f"Error executing tool {tool}: {rejection(own, other)}"
    assert recipes.is_error is False
    assert rejection(own, other) in resource_error.value.error.message
    assert f'"project_id": "{own}"' in own_schema.contents[0].text


@pytest.mark.anyio
async def test_server_token_reaches_every_project(store: Store, tmp_path):
    first, second = new_project(store), new_project(store)
    port = free_port()
    app = create_app(runtime_for(store, tmp_path, first, f"http://127.0.0.1:{port}"), api_token=SERVER_TOKEN)
    with serving(app, port) as base:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {SERVER_TOKEN}"}, timeout=60) as http:
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
                results = [
                    await client.call_tool("analytics_query", {"hogql": "SELECT 2 AS two", "project_id": project_id})
                    for project_id in (first, second)
                ]
    assert [result.structured_content["rows"] for result in results] == [[[2]], [[2]]]


def test_requests_without_a_valid_token_get_401(store: Store, tmp_path):
    project_id = new_project(store)
    _, token = create_token(store, [project_id])
    revoked, revoked_token = create_token(store, [project_id])
    revoke_token(store, revoked.token_id)
    app = create_app(runtime_for(store, tmp_path, project_id, "http://127.0.0.1:8787"), api_token=SERVER_TOKEN)

    with TestClient(app, base_url="http://127.0.0.1:8787") as http:
        missing = http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        wrong = http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer wrong"})
        after_revoke = http.post(
            "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {revoked_token}"}
        )
        valid = http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"})

    for response in (missing, wrong, after_revoke):
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_token", "error_description": "Authentication required"}
        assert response.headers["www-authenticate"] == (
            'Bearer error="invalid_token", error_description="Authentication required"'
        )
    assert valid.status_code == 200
    assert valid.headers["mcp-session-id"]


def test_tokens_are_stored_as_hashes(store: Store):
    project_id = new_project(store)
    record, token = create_token(store, [project_id, project_id], label="ops")

    assert token.startswith("pbt_")
    assert len(token) == 4 + 43
    assert record.token_id.startswith("tok_")
    assert record.projects == (project_id,)
    stored = store.client.query(
        "SELECT count() FROM api_tokens WHERE token_hash = {t:String} OR token_id = {t:String} OR label = {t:String}",
        parameters={"t": token},
    ).result_rows
    assert stored == [(0,)]
    [listed] = [entry for entry in list_tokens(store) if entry.token_id == record.token_id]
    assert listed == record


@pytest.mark.parametrize(
    ("projects", "message"),
    [
        ([], "A token needs at least one project; name it with --project PROJECT_ID."),
        (
            ["nosuchproject"],
            "Project 'nosuchproject' does not exist; create it with `pulseboard project create nosuchproject` or "
            "check `pulseboard project list`.",
        ),
    ],
)
def test_token_needs_existing_projects(store: Store, projects: list[str], message: str):
    with pytest.raises(TokenError) as error:
        create_token(store, projects)
    assert str(error.value) == message


def test_revoke_unknown_token(store: Store):
    with pytest.raises(TokenError) as error:
        revoke_token(store, "tok_0000000000000000")
    assert str(error.value) == "API token 'tok_0000000000000000' does not exist; `pulseboard token list` shows the ids."


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "127.0.0.1:8787"}, 200),
        ({"Host": "localhost"}, 200),
        ({"Host": "pulse.example.com"}, 200),
        ({"Host": "pulse.example.com:443"}, 200),
        ({"Host": "evil.example"}, 421),
        ({"Host": "pulse.example.com.evil.example"}, 421),
        ({"Host": "pulse.example.com", "Origin": "https://pulse.example.com"}, 200),
        ({"Host": "127.0.0.1:8787", "Origin": "http://localhost:3000"}, 200),
        ({"Host": "pulse.example.com", "Origin": "https://evil.example"}, 403),
        ({"Host": "127.0.0.1:8787", "Origin": "null"}, 403),
    ],
)
def test_host_and_origin_follow_public_url(store: Store, tmp_path, headers: dict[str, str], status: int):
    project_id = new_project(store)
    runtime = runtime_for(store, tmp_path, project_id, "https://pulse.example.com")
    app = create_app(runtime, api_token=SERVER_TOKEN)
    with TestClient(app, base_url="http://127.0.0.1:8787") as http:
        response = http.post(
            "/mcp", json=INITIALIZE,
            headers={**MCP_HEADERS, "Authorization": f"Bearer {SERVER_TOKEN}", **headers},
        )
    assert response.status_code == status


PROJECT_ID_DESCRIPTION = (
    "Project to act on. When omitted, the token's project if the API token is limited to one project, "
    "otherwise the server's default project."
)


@pytest.mark.anyio
async def test_omitted_project_follows_token(store: Store, tmp_path):
    default, first, second = new_project(store), new_project(store), new_project(store)
    _, single_token = create_token(store, [first])
    _, double_token = create_token(store, [second, first])
    port = free_port()
    app = create_app(runtime_for(store, tmp_path, default, f"http://127.0.0.1:{port}"), api_token=SERVER_TOKEN)

    results = {}
    with serving(app, port) as base:
        for name, token in [("single", single_token), ("double", double_token), ("server", SERVER_TOKEN)]:
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
                    results[name] = {
                        "schema": await client.call_tool("describe_schema", {}),
                        "publications": await client.call_tool("list_publications", {}),
                        "named": await client.call_tool("describe_schema", {"project_id": second}),
                    }
                    tools = (await client.list_tools()).tools

    assert results["single"]["schema"].is_error is False
    assert results["single"]["schema"].structured_content["project_id"] == first
    assert results["single"]["publications"].is_error is False
    assert results["single"]["named"].is_error is True
    assert results["single"]["named"].content[0].text == (
        f"Error executing tool describe_schema: {rejection(first, second)}"
    )

    ordered = ", ".join(sorted([first, second]))
    for tool, key in [("describe_schema", "schema"), ("list_publications", "publications")]:
        assert results["double"][key].is_error is True
        assert results["double"][key].content[0].text == (
            f"Error executing tool {tool}: This API token may use the projects {ordered}; "
            "pass one of them as project_id."
        )
    assert results["double"]["named"].is_error is False
    assert results["double"]["named"].structured_content["project_id"] == second

    assert results["server"]["schema"].structured_content["project_id"] == default
    assert results["server"]["named"].structured_content["project_id"] == second

    project_tools = [tool for tool in tools if "project_id" in tool.input_schema["properties"]]
    assert sorted(tool.name for tool in project_tools) == [
        "account_drilldown", "analytics_query", "describe_schema", "list_publications", "publish_query",
        "revoke_publication", "rotate_publication_key", "run_recipe", "snapshot_health_scores",
    ]
    for tool in project_tools:
        assert tool.input_schema["properties"]["project_id"]["description"] == PROJECT_ID_DESCRIPTION
        assert tool.input_schema["properties"]["project_id"]["default"] is None

"""The account_drilldown and snapshot_health_scores tools through the real MCP client, in memory."""

from __future__ import annotations

import datetime as dt

import pytest
from mcp import Client

from pulseboard.server.demo import ingest_events
from pulseboard.server.mcp_server import create_mcp
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def runtime(store: Store, project, tmp_path) -> Runtime:
    created, _ = project
    settings = Settings(data_dir=tmp_path, clickhouse_url=store.url, default_project=created.project_id)
    events = []
    for account, uses in (("acme", 30), ("globex", 3)):
        events.append({
            "event": "subscription_started", "distinct_id": f"{account}-1",
            "timestamp": (NOW - dt.timedelta(days=40)).isoformat(),
            "properties": {"account_id": account, "plan": "pro", "mrr": 750},
        })
        events.extend(
            {
                "event": "query_run", "distinct_id": f"{account}-1",
                "timestamp": (NOW - dt.timedelta(days=2, minutes=index)).isoformat(),
                "properties": {"account_id": account},
            }
            for index in range(uses)
        )
    ingest_events(store, created.project_id, events, now=NOW)
    return Runtime(settings, store)


@pytest.mark.anyio
async def test_drilldown_tool_bottom_n(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        snapshot = await client.call_tool("snapshot_health_scores", {})
        result = await client.call_tool("account_drilldown", {"bottom_n": 1})

    assert snapshot.is_error is False
    assert snapshot.structured_content["accounts"] == 2
    assert result.is_error is False
    accounts = result.structured_content["accounts"]
    assert [account["account_id"] for account in accounts] == ["globex"]
    sections = {section["name"]: section for section in accounts[0]["sections"]}
    assert sections["top_events"]["rows"][0][:3] == ["query_run", 3, 1]
    assert sections["score_history"]["rows"][0][1] == accounts[0]["health_score"]
    assert [column["name"] for column in sections["errors"]["columns"]] == [
        "message", "type", "errors", "users", "first_seen", "last_seen",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        (
            "account_drilldown", {},
            "Give exactly one of account_id (one account) or bottom_n (the lowest-scoring accounts).",
        ),
        (
            "snapshot_health_scores", {"params": {"w_usage": -1}},
            "Parameter 'w_usage' must be a number from 0 to 1000; got -1.",
        ),
    ],
)
async def test_tools_report_fixable_errors(runtime: Runtime, tool: str, arguments: dict, message: str):
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool(tool, arguments)

    assert result.is_error is True
    assert result.content[0].text == f"Error executing tool {tool}: {message}"

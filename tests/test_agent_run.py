"""A scripted agent session over streamable HTTP on a free 127.0.0.1 port: discover, err, fix from
the error text, score, publish, fetch the public URL."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from pulseboard.server.app import create_app
from pulseboard.server.demo import load_demo
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store
from tests.live_server import free_port, serving

TOKEN = "agent-run-token"
MISTAKE = "SELECT properties.account_id AS account, cont() AS n FROM events GROUP BY account"


@pytest.mark.anyio
async def test_agent_session_end_to_end(store: Store, tmp_path):
    project_id = "agent" + uuid.uuid4().hex[:10]
    store.create_project(project_id)
    load_demo(store, project_id, dt.datetime.now(dt.timezone.utc), extra_accounts=0)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(data_dir=tmp_path, clickhouse_url=store.url, default_project=project_id, public_url=base)
    app = create_app(Runtime(settings, store), api_token=TOKEN)

    with serving(app, port):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as agent:
                schema = (await agent.call_tool("describe_schema", {})).structured_content

                mistake = await agent.call_tool("analytics_query", {"hogql": MISTAKE})
                suggestion = re.search(r"Similar allowed functions: (\w+)", mistake.content[0].text)
                assert suggestion is not None, mistake.content[0].text
                fixed_query = MISTAKE.replace("cont()", f"{suggestion.group(1)}()")
                fixed = await agent.call_tool("analytics_query", {"hogql": fixed_query})

                scored = await agent.call_tool("run_recipe", {"recipe_id": "account_health_score"})
                published = await agent.call_tool(
                    "publish_query",
                    {"recipe_id": "account_health_score", "description": "Health of every account for the CS team"},
                )

        public_url = published.structured_content["public_url"]
        async with httpx2.AsyncClient(timeout=60) as viewer:
            page = await viewer.get(public_url + "&format=json")

    assert "subscription_started" in [entry["event"] for entry in schema["events"]]
    property_types = {entry["hogql"]: entry["type"] for entry in schema["properties"]}
    assert property_types["properties.mrr"] == "Numeric"

    assert mistake.is_error is True
    assert mistake.content[0].text.startswith(
        "Error executing tool analytics_query: Function 'cont' is not allowed."
    )
    assert suggestion.group(1) == "count"

    assert fixed.is_error is False
    assert sorted(row[0] for row in fixed.structured_content["rows"]) == [
        "acme", "globex", "innovate", "megacorp", "tinyco",
    ]

    rows = scored.structured_content["rows"]
    columns = [column["name"] for column in scored.structured_content["columns"]]
    statuses = {row[columns.index("account")]: row[columns.index("status")] for row in rows}
    assert statuses["megacorp"] == "critical"
    assert [name for name, status in statuses.items() if status == "critical"] == ["megacorp"]

    assert published.is_error is False
    assert public_url.startswith(f"{base}/q/pub_")
    assert page.status_code == 200
    assert page.json()["rows"] == rows

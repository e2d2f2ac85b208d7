"""publish_query's cache_ttl_s and expires_at, through the real MCP SDK client, and the views they give."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from mcp import Client
from starlette.testclient import TestClient

from pulseboard.server.app import create_app
from pulseboard.server.mcp_server import create_mcp
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store, utcnow

BASE = "http://127.0.0.1:8787"
TOKEN = "test-token-publish"
HOGQL = "SELECT 1 AS one"


@pytest.fixture
def runtime(store: Store, project, tmp_path) -> Runtime:
    created, _ = project
    settings = Settings(
        data_dir=tmp_path, clickhouse_url=store.url, default_project=created.project_id, public_url=BASE
    )
    return Runtime(settings, store)


def iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.mark.anyio
async def test_publish_with_ttl_and_expiry(runtime: Runtime):
    expires_at = (utcnow() + dt.timedelta(seconds=2)).replace(microsecond=0)
    async with Client(create_mcp(runtime)) as client:
        published = await client.call_tool(
            "publish_query",
            {"description": "d", "hogql": HOGQL, "cache_ttl_s": 5, "expires_at": expires_at.isoformat()},
        )
        listed = await client.call_tool("list_publications", {})

    assert published.is_error is False
    url = published.structured_content["public_url"].removeprefix(BASE)
    [info] = listed.structured_content["publications"]
    assert info["cache_ttl_s"] == 5
    assert dt.datetime.fromisoformat(info["expires_at"]) == expires_at

    with TestClient(create_app(runtime, api_token=TOKEN), base_url=BASE) as http:
        before = http.get(url + "&format=json")
        deadline = time.monotonic() + 10
        while utcnow() <= expires_at and time.monotonic() < deadline:
            time.sleep(0.05)
        after = http.get(url + "&format=json")

    assert before.status_code == 200
    # The view comes a moment after the computation on the real clock, so max-age may be 4.
    assert before.headers["cache-control"] in ("private, max-age=5", "private, max-age=4")
    assert before.json()["publication"]["expires_at"] == iso(expires_at)
    assert before.json()["rows"] == [[1]]
    assert after.status_code == 404
    assert after.json()["error"]["code"] == "not_found"


@pytest.mark.anyio
async def test_publish_rejects_past_expiry(runtime: Runtime, store: Store):
    past = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool(
            "publish_query", {"description": "d", "hogql": HOGQL, "expires_at": past.isoformat()}
        )
        too_long = await client.call_tool("publish_query", {"description": "d", "hogql": HOGQL, "cache_ttl_s": 86_401})

    assert result.is_error is True
    assert result.content[0].text == (
        "Error executing tool publish_query: expires_at 2020-01-01T00:00:00+00:00 is in the past; give a future time."
    )
    assert too_long.is_error is True
    assert "cache_ttl_s" in too_long.content[0].text
    assert "less than or equal to 86400" in too_long.content[0].text
    assert store.list_publications(runtime.settings.default_project) == []

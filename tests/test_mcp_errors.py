"""What an agent reads when a tool fails: the validator's or compiler's text for mistakes it can fix,
and a short message with an id, logged with the traceback, for anything else."""

from __future__ import annotations

import logging
import re
import uuid

import pytest
from mcp import Client

from pulseboard.recipes.loader import load_recipes
from pulseboard.server.mcp_server import create_mcp
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store, utcnow

BASE = "http://127.0.0.1:8787"


@pytest.fixture
def runtime(store: Store, project, tmp_path) -> Runtime:
    created, _ = project
    settings = Settings(data_dir=tmp_path, clickhouse_url=store.url, default_project=created.project_id, public_url=BASE)
    return Runtime(settings, store)


def logged_error(caplog: pytest.LogCaptureFixture, error_id: str) -> logging.LogRecord:
    [record] = [
        record for record in caplog.records
        if record.name == "pulseboard.tools.errors" and error_id in record.getMessage()
    ]
    return record


@pytest.mark.anyio
async def test_unexpected_failure_gives_an_id(runtime: Runtime, store: Store, caplog: pytest.LogCaptureFixture):
    # A publication row whose params are not JSON makes reading it raise JSONDecodeError.
    project_id = runtime.settings.default_project
    store.client.insert(
        "publications",
        [["pub_broken" + uuid.uuid4().hex[:6], project_id, "t", "d", "", "SELECT 1", "{not json", "0" * 64, 60,
          utcnow(), None, 0, 1]],
        column_names=["publication_id", "project_id", "title", "description", "recipe_id", "hogql", "params",
                      "key_hash", "cache_ttl_s", "created_at", "expires_at", "revoked", "version"],
    )
    caplog.set_level(logging.INFO)
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool("list_publications", {})

    assert result.is_error is True
    text = result.content[0].text
    match = re.fullmatch(
        r"Error executing tool list_publications: Internal error ([0-9a-f]{8}) in list_publications; the server "
        r"log has the details\. Retry once; if it fails again, report this id\.",
        text,
    )
    assert match, text
    assert "JSON" not in text
    record = logged_error(caplog, match.group(1))
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[0].__name__ == "JSONDecodeError"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        (
            "get_recipe",
            {"recipe_id": "account_health"},
            "Unknown recipe 'account_health'. Known recipes: {recipes}.",
        ),
        (
            "run_recipe",
            {"recipe_id": "account_health_score", "params": {"w_usage": -1}},
            "Parameter 'w_usage' must be a number from 0 to 1000; got -1.",
        ),
        (
            "run_recipe",
            {"recipe_id": "account_health_score", "params": {"weight": 1}},
            "Unknown parameter 'weight' for recipe 'account_health_score'. Known parameters: as_of, "
            "account_property, w_usage, w_trend, w_friction, w_revenue, window_days, trend_days, usage_scale, "
            "trend_full_scale, trend_min_base, friction_basis, friction_ceiling, friction_min_events, "
            "friction_ceiling_per_user, nps_days, band_warn, band_ok, band_healthy, band_champion, plan, sort, "
            "limit.",
        ),
        (
            "analytics_query",
            {"hogql": "SELECT 1", "project_id": "nosuchproject"},
            "Project 'nosuchproject' does not exist; check the project_id, or create it with `pulseboard project create nosuchproject`.",
        ),
        (
            "analytics_query",
            {"hogql": "SELECT count() FROM persons"},
            "Unknown table 'persons'. Tables that can be queried: events, health_snapshots. Line 1, Col 21.",
        ),
        (
            "publish_query",
            {"description": "d", "hogql": "SELECT 1", "params": {"a": 1}},
            "params apply to recipes only; put values for hogql in the query text.",
        ),
        (
            "rotate_publication_key",
            {"publication_id": "pub_0000000000000000"},
            "Publication 'pub_0000000000000000' does not exist in project '{project}'; list_publications shows "
            "the ids.",
        ),
    ],
)
async def test_fixable_failures_read_as_is(runtime: Runtime, tool: str, arguments: dict, message: str):
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    known_recipes = ", ".join(sorted(load_recipes()))
    expected = message.replace("{project}", runtime.settings.default_project).replace("{recipes}", known_recipes)
    assert result.content[0].text == f"Error executing tool {tool}: {expected}"

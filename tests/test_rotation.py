"""Publication key rotation: the store, the MCP tool through the real SDK client, and public views."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from mcp import Client
from starlette.testclient import TestClient

from pulseboard.server.app import create_app
from pulseboard.server.mcp_server import create_mcp
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import MIGRATIONS, PublicationKeys, Store, hash_key, new_key, utcnow
from pulseboard.tools.publish import KEY_ROTATION_GRACE_S

BASE = "http://127.0.0.1:8787"
TOKEN = "test-token-123"
HOGQL = "SELECT 1 AS one"


@pytest.fixture
def runtime(store: Store, project, tmp_path) -> Runtime:
    created, _ = project
    settings = Settings(
        data_dir=tmp_path, clickhouse_url=store.url, default_project=created.project_id, public_url=BASE
    )
    return Runtime(settings, store)


def key_of(public_url: str) -> str:
    return public_url.split("key=", 1)[1]


def view_status(runtime: Runtime, publication_id: str, key: str) -> int:
    app = create_app(runtime, api_token=TOKEN)
    with TestClient(app, base_url=BASE) as http:
        return http.get(f"/q/{publication_id}?key={key}&format=json").status_code


async def publish_one(client: Client) -> tuple[str, str]:
    published = await client.call_tool("publish_query", {"description": "d", "hogql": HOGQL})
    content = published.structured_content
    return content["publication_id"], key_of(content["public_url"])


@pytest.mark.anyio
async def test_rotate_tool_returns_working_url(runtime: Runtime, store: Store):
    async with Client(create_mcp(runtime)) as client:
        publication_id, old_key = await publish_one(client)
        before = utcnow()
        rotated = await client.call_tool("rotate_publication_key", {"publication_id": publication_id})
        after = utcnow()

    assert rotated.is_error is False
    content = rotated.structured_content
    assert sorted(content) == ["old_key_valid_until", "public_url", "publication_id"]
    assert content["publication_id"] == publication_id
    assert content["public_url"].startswith(f"{BASE}/q/{publication_id}?key=")
    new = key_of(content["public_url"])
    assert new != old_key
    assert len(new) == len(new_key(""))

    valid_until = dt.datetime.fromisoformat(content["old_key_valid_until"])
    grace = dt.timedelta(seconds=KEY_ROTATION_GRACE_S)
    assert before + grace <= valid_until <= after + grace

    opened_new = store.open_publication(publication_id, new)
    opened_old = store.open_publication(publication_id, old_key)
    assert opened_new is not None
    assert opened_new.publication_id == publication_id
    assert opened_old == opened_new
    assert store.open_publication(publication_id, "wrong") is None
    assert view_status(runtime, publication_id, old_key) == 200
    assert view_status(runtime, publication_id, new) == 200


@pytest.mark.anyio
async def test_old_key_404_after_grace(runtime: Runtime, store: Store):
    async with Client(create_mcp(runtime)) as client:
        publication_id, first_key = await publish_one(client)

    second_key = store.rotate_publication_key(publication_id, grace_s=0)

    assert second_key is not None
    assert store.open_publication(publication_id, first_key) is None
    assert store.open_publication(publication_id, second_key) is not None
    assert view_status(runtime, publication_id, first_key) == 404
    assert view_status(runtime, publication_id, second_key) == 200


@pytest.mark.anyio
async def test_second_rotation_ends_first_key(runtime: Runtime, store: Store):
    async with Client(create_mcp(runtime)) as client:
        publication_id, first_key = await publish_one(client)
        first = await client.call_tool("rotate_publication_key", {"publication_id": publication_id})
        second = await client.call_tool("rotate_publication_key", {"publication_id": publication_id})
    second_key = key_of(first.structured_content["public_url"])
    third_key = key_of(second.structured_content["public_url"])

    assert len({first_key, second_key, third_key}) == 3
    assert store.open_publication(publication_id, first_key) is None
    assert store.open_publication(publication_id, second_key) is not None
    assert store.open_publication(publication_id, third_key) is not None
    assert view_status(runtime, publication_id, first_key) == 404
    assert view_status(runtime, publication_id, third_key) == 200


@pytest.mark.anyio
async def test_rotate_errors(runtime: Runtime, store: Store):
    project_id = runtime.settings.default_project
    other, _ = store.create_project("o" + uuid.uuid4().hex[:12])
    async with Client(create_mcp(runtime)) as client:
        publication_id, key = await publish_one(client)
        foreign = await client.call_tool(
            "rotate_publication_key", {"publication_id": publication_id, "project_id": other.project_id}
        )
        unknown = await client.call_tool("rotate_publication_key", {"publication_id": "pub_0000000000000000"})
        await client.call_tool("revoke_publication", {"publication_id": publication_id})
        revoked = await client.call_tool("rotate_publication_key", {"publication_id": publication_id})

    cases = {
        "another project's id": (
            foreign,
            f"Error executing tool rotate_publication_key: Publication '{publication_id}' does not exist in "
            f"project '{other.project_id}'; list_publications shows the ids.",
        ),
        "unknown id": (
            unknown,
            "Error executing tool rotate_publication_key: Publication 'pub_0000000000000000' does not exist in "
            f"project '{project_id}'; list_publications shows the ids.",
        ),
        "revoked": (
            revoked,
            f"Error executing tool rotate_publication_key: Publication '{publication_id}' is revoked and cannot "
            "be rotated; publish the query again with publish_query to get a new link.",
        ),
    }
    for name, (result, message) in cases.items():
        assert result.is_error is True, name
        assert result.content[0].text == message, name
    # The failed rotation in another project left the original key as the only key.
    _, keys = store.get_publication_keys(publication_id)
    assert keys == PublicationKeys(key_hash=hash_key(key))


@pytest.mark.anyio
async def test_rotate_tool_annotations(runtime: Runtime):
    async with Client(create_mcp(runtime)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    annotations = tools["rotate_publication_key"].annotations
    assert annotations.read_only_hint is False
    assert annotations.destructive_hint is True
    assert annotations.idempotent_hint is False
    description = " ".join(tools["rotate_publication_key"].description.split())
    assert "The old key keeps working for one hour, then gets 404." in description


def test_store_rotation_cases(store: Store, project):
    created, _ = project
    publication, key = store.create_publication(created.project_id, title="t", hogql=HOGQL)
    publication_id = publication.publication_id

    assert store.rotate_publication_key("pub_0000000000000000", grace_s=60) is None
    with pytest.raises(ValueError, match="grace_s must be 0 or more seconds, got -1."):
        store.rotate_publication_key(publication_id, grace_s=-1)

    new = store.rotate_publication_key(publication_id, grace_s=60)
    _, keys = store.get_publication_keys(publication_id)
    assert keys.key_hash == hash_key(new)
    assert keys.previous_key_hash == hash_key(key)
    assert store.get_publication(publication_id) == (publication, hash_key(new))

    # Revoking keeps the key hashes, and neither key opens a revoked publication.
    assert store.revoke_publication(publication_id) is True
    revoked, revoked_keys = store.get_publication_keys(publication_id)
    assert revoked.revoked is True
    assert revoked_keys == keys
    assert store.open_publication(publication_id, key) is None
    assert store.open_publication(publication_id, new) is None


def test_rotation_keeps_expiry(store: Store, project):
    created, _ = project
    expires_at = utcnow() + dt.timedelta(seconds=1)
    publication, key = store.create_publication(created.project_id, title="t", hogql=HOGQL, expires_at=expires_at)
    new = store.rotate_publication_key(publication.publication_id, grace_s=3600)

    assert store.open_publication(publication.publication_id, new) is not None
    deadline = time.monotonic() + 5
    while utcnow() <= expires_at and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.open_publication(publication.publication_id, new) is None
    assert store.open_publication(publication.publication_id, key) is None


def test_migrate_is_idempotent(store: Store):
    assert [version for version, _, _ in MIGRATIONS] == [1, 2, 4, 5, 6]
    assert store.migrate() == []
    for statement in MIGRATIONS[1][2]:
        store.client.command(statement)
    assert store.migrate() == []


def test_row_without_new_columns_reads(store: Store, project):
    created, _ = project
    publication_id = "pub_" + uuid.uuid4().hex[:16]
    key = new_key("")
    now = utcnow()
    # The columns written before migration 2; the new ones take their defaults.
    store.client.insert(
        "publications",
        [[publication_id, created.project_id, "Old", "", "", HOGQL, "{}", hash_key(key), 60, now, None, 0,
          time.time_ns()]],
        column_names=["publication_id", "project_id", "title", "description", "recipe_id", "hogql", "params",
                      "key_hash", "cache_ttl_s", "created_at", "expires_at", "revoked", "version"],
    )

    publication, keys = store.get_publication_keys(publication_id)
    assert keys == PublicationKeys(key_hash=hash_key(key), previous_key_hash="", previous_key_valid_until=None)
    assert publication.title == "Old"
    assert store.open_publication(publication_id, key) == publication
    assert store.open_publication(publication_id, "") is None
    assert [item.publication_id for item in store.list_publications(created.project_id)] == [publication_id]


def test_migration_upgrades_old_table(store: Store):
    database = "legacy_" + uuid.uuid4().hex[:12]
    create_v1 = next(s for s in MIGRATIONS[0][2] if "TABLE IF NOT EXISTS publications" in s)
    store.client.command(f"CREATE DATABASE {database}")
    try:
        store.client.command(create_v1.replace("publications", f"{database}.publications"))
        store.client.command(
            f"INSERT INTO {database}.publications (publication_id, project_id, title, description, recipe_id, "
            "hogql, params, key_hash, cache_ttl_s, created_at, expires_at, revoked, version) VALUES "
            "('pub_old', 'p', 'Old', '', '', 'SELECT 1', '{}', 'h', 60, now64(6), NULL, 0, 1)"
        )
        for _ in range(2):
            for statement in MIGRATIONS[1][2]:
                store.client.command(statement.replace("publications", f"{database}.publications"))

        rows = store.client.query(
            f"SELECT publication_id, key_hash, previous_key_hash, previous_key_valid_until "
            f"FROM {database}.publications FINAL"
        ).result_rows
        described = store.client.query(f"DESCRIBE TABLE {database}.publications").result_rows
    finally:
        store.client.command(f"DROP DATABASE IF EXISTS {database}")

    assert rows == [("pub_old", "h", "", None)]
    types = {row[0]: row[1] for row in described}
    assert types["previous_key_hash"] == "String"
    assert types["previous_key_valid_until"] == "Nullable(DateTime64(6, 'UTC'))"

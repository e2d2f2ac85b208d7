"""Ingestion guarantees seen through queries: retried events count once, and mixed property types read correctly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pulseboard.server.ingest import EventWriter, ingest_routes
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import EventRow, Project, Store, utcnow
from pulseboard.tools.query import run_hogql
from pulseboard.tools.schema import describe_schema


@pytest.fixture
def settings(store: Store, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, clickhouse_url=store.url)


@pytest.fixture
def client(store: Store, settings: Settings) -> Iterator[TestClient]:
    @asynccontextmanager
    async def lifespan(app: Starlette):
        async with EventWriter(store) as writer:
            app.state.runtime = Runtime(settings, store)
            app.state.writer = writer
            yield

    with TestClient(Starlette(routes=ingest_routes(), lifespan=lifespan)) as test_client:
        yield test_client


def post_batch(client: TestClient, project_id: str, key: str, events: list[dict[str, Any]]) -> Any:
    return client.post(
        f"/v1/analytics/{project_id}/",
        content=json.dumps({"batch": events}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )


def batch(count: int, event: str = "report_exported") -> list[dict[str, Any]]:
    return [
        {"event": event, "distinct_id": f"u{index % 4}", "uuid": str(uuid.uuid4()),
         "timestamp": f"2026-01-10T10:{index % 60:02d}:00Z", "properties": {"account_id": f"a{index % 3}"}}
        for index in range(count)
    ]


def query_rows(store: Store, settings: Settings, project_id: str, hogql: str) -> list[list[Any]]:
    return run_hogql(store, settings, project_id, hogql).rows


def test_retried_batch_counts_once(
    client: TestClient, store: Store, settings: Settings, project: tuple[Project, str]
):
    created, key = project
    events = batch(50)

    first = post_batch(client, created.project_id, key, events)
    retry = post_batch(client, created.project_id, key, events)
    overlapping = post_batch(client, created.project_id, key, events[40:] + batch(5, "signed_up"))

    assert [first.status_code, retry.status_code, overlapping.status_code] == [200, 200, 200]
    assert retry.json() == {"status": "ok", "stored": 50}
    assert query_rows(store, settings, created.project_id, "SELECT count(), count(DISTINCT uuid) FROM events") == [[55, 55]]
    assert query_rows(
        store, settings, created.project_id,
        "SELECT event, count() AS n FROM events GROUP BY event ORDER BY event",
    ) == [["report_exported", 50], ["signed_up", 5]]
    assert query_rows(
        store, settings, created.project_id,
        "SELECT properties.account_id AS account, count() FROM events WHERE event = 'report_exported' "
        "GROUP BY account ORDER BY account",
    ) == [["a0", 17], ["a1", 17], ["a2", 16]]


def test_duplicate_uuid_within_batch_counts_once(
    client: TestClient, store: Store, settings: Settings, project: tuple[Project, str]
):
    created, key = project
    events = batch(3)
    events.append(dict(events[0], distinct_id="someone else"))

    response = post_batch(client, created.project_id, key, events)

    assert response.status_code == 200
    assert query_rows(store, settings, created.project_id, "SELECT distinct_id FROM events ORDER BY timestamp") == [
        ["u0"], ["u1"], ["u2"],
    ]


def test_concurrent_retries_count_once(
    client: TestClient, store: Store, settings: Settings, project: tuple[Project, str]
):
    created, key = project
    events = batch(20)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: post_batch(client, created.project_id, key, events).status_code, range(16)))

    assert statuses == [200] * 16
    assert query_rows(store, settings, created.project_id, "SELECT count() FROM events") == [[20]]


def test_insert_events_returns_new_count(store: Store, project: tuple[Project, str]):
    created, _ = project
    now = utcnow()
    rows = [EventRow(str(uuid.uuid4()), "x", "u", now) for _ in range(3)]

    assert store.insert_events(created.project_id, rows, skip_stored=True) == 3
    assert store.insert_events(
        created.project_id, rows + [EventRow(str(uuid.uuid4()), "x", "u", now)], skip_stored=True
    ) == 1
    assert store.stored_uuids(created.project_id, [rows[0].uuid, str(uuid.uuid4())]) == {rows[0].uuid}


def test_first_property_type_is_kept(
    client: TestClient, store: Store, settings: Settings, project: tuple[Project, str]
):
    created, key = project
    sent = [
        {"event": "plan_changed", "distinct_id": "a1", "properties": {"mrr": 100, "seats": "4"}},
        {"event": "plan_changed", "distinct_id": "a2", "properties": {"mrr": "250", "seats": 6}},
        {"event": "plan_changed", "distinct_id": "a3", "properties": {"mrr": 12.5, "seats": "ten"}},
    ]
    for event in sent:
        assert post_batch(client, created.project_id, key, [event]).status_code == 200

    assert store.property_types(created.project_id) == {"mrr": "Numeric", "seats": "String"}
    assert query_rows(store, settings, created.project_id, "SELECT sum(properties.mrr) FROM events") == [[362.5]]
    assert query_rows(
        store, settings, created.project_id, "SELECT properties.seats FROM events ORDER BY distinct_id"
    ) == [["4"], ["6"], ["ten"]]
    assert query_rows(
        store, settings, created.project_id, "SELECT distinct_id FROM events WHERE properties.mrr > 50 ORDER BY distinct_id"
    ) == [["a1"], ["a2"]]

    schema = describe_schema(store, settings, created.project_id)
    mixed = {entry.path: entry for entry in schema.mixed_types}
    assert sorted(mixed) == ["mrr", "seats"]
    assert [(item.type, item.count) for item in mixed["mrr"].stored_types] == [("number", 2), ("string", 1)]
    assert [(item.type, item.count) for item in mixed["seats"].stored_types] == [("string", 2), ("number", 1)]

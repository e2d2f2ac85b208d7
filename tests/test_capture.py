"""PostHog-compatible capture: the real posthog SDK against a live server, and each body form it may send."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import posthog
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from pulseboard.server.capture import capture_routes
from pulseboard.server.ingest import EventWriter, ingest_routes
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Project, Store

UTC = dt.timezone.utc
EVENT_UUID = "0190a3f2-7c1e-7b8e-9a6f-3d2c1b0a9f8e"


class PathRecorder:
    """ASGI middleware that records the method and path of every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def build_app(store: Store, data_dir: Path) -> Starlette:
    settings = Settings(data_dir=data_dir, clickhouse_url=store.url)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        async with EventWriter(store) as writer:
            app.state.runtime = Runtime(settings, store)
            app.state.writer = writer
            yield

    return Starlette(routes=[*ingest_routes(), *capture_routes()], lifespan=lifespan)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, base: str, recorder: PathRecorder) -> None:
        self.base = base
        self.recorder = recorder


@pytest.fixture
def live_server(store: Store, tmp_path: Path) -> Iterator[LiveServer]:
    """The capture app served by uvicorn on 127.0.0.1, in a thread of the test process."""
    recorder = PathRecorder(build_app(store, tmp_path))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start within 10 s"
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", recorder)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(store, tmp_path)) as test_client:
        yield test_client


def stored(store: Store, project_id: str) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT toString(uuid), event, distinct_id, timestamp, toString(properties) FROM events "
        "WHERE project_id = {p:String} ORDER BY timestamp, event",
        {"p": project_id},
    ).rows
    return [
        {"uuid": row[0], "event": row[1], "distinct_id": row[2], "timestamp": row[3].replace(tzinfo=UTC),
         "properties": json.loads(row[4])}
        for row in rows
    ]


def sdk_client(key: str, host: str, *, gzip_bodies: bool, errors: list[Any]) -> posthog.Posthog:
    """A posthog client that sends each call at once and contacts nothing but `host`.

    sync_mode sends every capture in the calling thread; without a personal API key no feature
    flag poller starts, and local evaluation and GeoIP are off.
    """
    return posthog.Posthog(
        key,
        host=host,
        sync_mode=True,
        gzip=gzip_bodies,
        max_retries=0,
        disable_geoip=True,
        enable_local_evaluation=False,
        enable_exception_autocapture=False,
        on_error=lambda error, batch: errors.append(error),
    )


@pytest.mark.parametrize("gzip_bodies", [False, True], ids=["json", "gzip"])
def test_posthog_sdk_events_arrive(
    live_server: LiveServer, store: Store, project: tuple[Project, str], gzip_bodies: bool
):
    created, key = project
    errors: list[Any] = []
    sdk = sdk_client(key, live_server.base, gzip_bodies=gzip_bodies, errors=errors)
    happened = dt.datetime(2026, 1, 10, 9, 30, 15, 250000, tzinfo=UTC)

    sdk.capture(
        "report_exported",
        distinct_id="u_42",
        properties={"format": "csv", "rows": 120, "$set": {"email": "ana@example.com"}},
        timestamp=happened,
        groups={"company": "acme"},
        uuid=EVENT_UUID,
    )
    sdk.set(distinct_id="u_42", properties={"plan": "pro"})
    sdk.shutdown()

    assert errors == []
    assert live_server.recorder.requests == [("POST", "/batch/"), ("POST", "/batch/")]
    events = stored(store, created.project_id)
    assert [event["event"] for event in events] == ["report_exported", "$set"]
    exported, person = events
    assert exported["uuid"] == EVENT_UUID
    assert exported["distinct_id"] == "u_42"
    assert exported["timestamp"] == happened
    assert exported["properties"]["format"] == "csv"
    assert exported["properties"]["rows"] == 120
    assert exported["properties"]["$set"] == {"email": "ana@example.com"}
    assert exported["properties"]["$groups"] == {"company": "acme"}
    assert exported["properties"]["$lib"] == "posthog-python"
    assert exported["properties"]["$lib_version"] == posthog.VERSION
    assert "api_key" not in exported["properties"]
    assert person["distinct_id"] == "u_42"
    assert person["properties"]["$set"] == {"plan": "pro"}


def test_posthog_sdk_retry_is_stored_once(live_server: LiveServer, store: Store, project: tuple[Project, str]):
    created, key = project
    errors: list[Any] = []
    sdk = sdk_client(key, live_server.base, gzip_bodies=True, errors=errors)

    for _ in range(3):
        sdk.capture("signed_up", distinct_id="u_1", uuid=EVENT_UUID)
    sdk.shutdown()

    assert errors == []
    assert len(live_server.recorder.requests) == 3
    assert [event["uuid"] for event in stored(store, created.project_id)] == [EVENT_UUID]


def test_posthog_sdk_wrong_key_is_rejected(
    live_server: LiveServer, store: Store, project: tuple[Project, str], caplog: pytest.LogCaptureFixture
):
    created, _ = project
    sdk = sdk_client("phc_not_a_key", live_server.base, gzip_bodies=False, errors=[])

    with caplog.at_level("ERROR", logger="posthog"):
        sdk.capture("signed_up", distinct_id="u_1")
    sdk.shutdown()

    # In sync_mode the SDK logs a failed send instead of calling on_error.
    assert live_server.recorder.requests == [("POST", "/batch/")]
    failures = [record.getMessage() for record in caplog.records if "(401)" in record.getMessage()]
    assert len(failures) == 1
    assert "Invalid project API key" in failures[0]
    assert stored(store, created.project_id) == []


# Body forms: (case, path, query, headers, body builder) where the builder takes the key.

SENT_AT = "2026-01-10T09:30:15.250000+00:00"


def event(key_in_properties: str | None = None, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"$current_url": "https://app.example.com/reports", "$lib": "web"}
    if key_in_properties:
        properties["token"] = key_in_properties
    body = {"event": "$pageview", "distinct_id": "u_7", "timestamp": SENT_AT, "uuid": EVENT_UUID,
            "properties": properties}
    body.update(extra)
    return body


def form_body(data: bytes, **fields: str) -> bytes:
    return urlencode({"data": data.decode("latin-1"), **fields}).encode("latin-1")


BODY_FORMS = [
    (
        "capture json with api_key",
        "/capture/",
        "",
        {"Content-Type": "application/json"},
        lambda key: json.dumps({"api_key": key, **event()}).encode(),
    ),
    (
        "batch gzip header",
        "/batch/",
        "",
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        lambda key: gzip.compress(json.dumps({"api_key": key, "batch": [event()]}).encode()),
    ),
    (
        "e form base64 data",
        "/e/",
        "",
        {"Content-Type": "application/x-www-form-urlencoded"},
        lambda key: form_body(base64.b64encode(json.dumps([event(key)]).encode()), compression="base64"),
    ),
    (
        "e form plain json data",
        "/e",
        "",
        {"Content-Type": "application/x-www-form-urlencoded"},
        lambda key: form_body(json.dumps(event(key)).encode()),
    ),
    (
        "i v0 e gzip-js text plain",
        "/i/v0/e/",
        "?compression=gzip-js&ver=1.160.0",
        {"Content-Type": "text/plain"},
        lambda key: gzip.compress(json.dumps([event(key)]).encode()),
    ),
    (
        "capture base64 query",
        "/capture",
        "?compression=base64",
        {"Content-Type": "text/plain"},
        lambda key: base64.b64encode(json.dumps({"api_key": key, "batch": [event()]}).encode()),
    ),
    (
        "key in url only",
        "/i/v0/e",
        "?api_key={key}",
        {"Content-Type": "application/json"},
        lambda key: json.dumps(event()).encode(),
    ),
]


@pytest.mark.parametrize(
    ("path", "query", "headers", "build"), [case[1:] for case in BODY_FORMS], ids=[case[0] for case in BODY_FORMS]
)
def test_capture_body_forms(client: TestClient, store: Store, project: tuple[Project, str], path, query, headers, build):
    created, key = project

    response = client.post(path + query.format(key=key), content=build(key), headers=headers)

    assert response.status_code == 200
    assert response.json() == {"status": 1}
    assert stored(store, created.project_id) == [{
        "uuid": EVENT_UUID,
        "event": "$pageview",
        "distinct_id": "u_7",
        "timestamp": dt.datetime(2026, 1, 10, 9, 30, 15, 250000, tzinfo=UTC),
        "properties": {"$current_url": "https://app.example.com/reports", "$lib": "web"},
    }]


def test_capture_posthog_event_forms(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    body = {
        "api_key": key,
        "batch": [
            {"event": "$identify", "properties": {"distinct_id": "u_9", "token": key}, "$set": {"email": "b@example.com"},
             "$set_once": {"first_seen": "2026-01-01"}, "timestamp": SENT_AT},
            {"event": "clicked", "distinct_id": "u_9", "offset": 1500},
        ],
    }

    before = dt.datetime.now(UTC)
    response = client.post("/batch/", json=body)
    after = dt.datetime.now(UTC)

    assert response.status_code == 200
    identify, clicked = stored(store, created.project_id)
    assert identify["distinct_id"] == "u_9"
    assert identify["properties"] == {
        "distinct_id": "u_9", "$set": {"email": "b@example.com"}, "$set_once": {"first_seen": "2026-01-01"},
    }
    assert before - dt.timedelta(milliseconds=1500) <= clicked["timestamp"] <= after - dt.timedelta(milliseconds=1500)


@pytest.mark.parametrize("path", ["/e/", "/i/v0/e/", "/batch", "/capture/"])
def test_capture_allows_browser_origins(client: TestClient, project: tuple[Project, str], path: str):
    _, key = project
    origin = {"Origin": "https://app.example.com"}

    preflight = client.options(
        path, headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    )
    response = client.post(path, json={"api_key": key, **event()}, headers=origin)

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "POST, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "Content-Type, Content-Encoding"
    assert "access-control-allow-credentials" not in preflight.headers
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_capture_error_allows_browser_origins(client: TestClient):
    response = client.post("/batch/", json={"batch": [event()]}, headers={"Origin": "https://app.example.com"})

    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


# Bad capture requests: (case, path, headers, body builder, status, expected body)
BAD_CAPTURES = [
    (
        "missing key",
        "/batch/",
        {"Content-Type": "application/json"},
        lambda key: json.dumps({"batch": [event()]}).encode(),
        401,
        error_body("missing_key", "Missing project API key; send the project's ingestion key as api_key in the body"),
    ),
    (
        "unknown key",
        "/batch/",
        {"Content-Type": "application/json"},
        lambda key: json.dumps({"api_key": "phc_unknown", "batch": [event()]}).encode(),
        401,
        error_body("invalid_key", "Invalid project API key"),
    ),
    (
        "form without data",
        "/e/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        lambda key: b"compression=base64",
        400,
        error_body("invalid_body", "Form body has no data field; send data=<JSON or base64 of JSON>"),
    ),
    (
        "invalid base64",
        "/e/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        lambda key: b"data=%%%%&compression=base64",
        400,
        error_body("invalid_base64", "Body is not valid base64; send the JSON itself or drop compression=base64"),
    ),
    (
        "xml content type",
        "/capture/",
        {"Content-Type": "application/xml"},
        lambda key: b"<event/>",
        415,
        error_body(
            "unsupported_media_type",
            "Content-Type 'application/xml' is not supported; send application/json, text/plain or "
            "application/x-www-form-urlencoded",
        ),
    ),
    (
        "one invalid event in a batch",
        "/batch/",
        {"Content-Type": "application/json"},
        lambda key: json.dumps({"api_key": key, "batch": [event(), {"event": "x", "distinct_id": "u", "uuid": "nope"}]}).encode(),
        422,
        error_body(
            "invalid_events",
            "1 of 2 events is invalid (index 1); nothing was stored",
            [{"index": 1, "field": "uuid", "message": f"uuid 'nope' is not a valid UUID; send e.g. {EVENT_UUID} or leave it out"}],
        ),
    ),
    (
        "too many events",
        "/batch/",
        {"Content-Type": "application/json"},
        lambda key: json.dumps({"api_key": key, "batch": [{"event": "x", "distinct_id": "u"}] * 1001}).encode(),
        413,
        error_body("payload_too_large", "Batch has 1001 events; the maximum is 1000. Split it into several requests."),
    ),
]


@pytest.mark.parametrize(
    ("path", "headers", "build", "status", "expected"),
    [case[1:] for case in BAD_CAPTURES],
    ids=[case[0] for case in BAD_CAPTURES],
)
def test_bad_capture_stores_nothing(
    client: TestClient, store: Store, project: tuple[Project, str], path, headers, build, status, expected
):
    created, key = project

    response = client.post(path, content=build(key), headers=headers)

    assert response.status_code == status
    assert response.json() == expected
    assert stored(store, created.project_id) == []

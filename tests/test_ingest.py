"""Ingestion over HTTP: validation, authentication, storage and group commit, against the session store."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pulseboard.server.ingest import (
    MAX_BODY_BYTES,
    EventWriter,
    IngestError,
    WriterClosedError,
    exception_fingerprint,
    ingest_routes,
    parse_events,
    parse_log,
)
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import EventRow, Project, Store
from pulseboard.server.tokens import create_token
from pulseboard.tools.query import run_hogql

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
EVENT_UUID = "0190a3f2-7c1e-7b8e-9a6f-3d2c1b0a9f8e"


def build_app(store: Store, data_dir: Path) -> Starlette:
    settings = Settings(data_dir=data_dir, clickhouse_url=store.url)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        async with EventWriter(store) as writer:
            app.state.runtime = Runtime(settings, store)
            app.state.writer = writer
            yield

    return Starlette(routes=ingest_routes(), lifespan=lifespan)


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(store, tmp_path)) as test_client:
        yield test_client


def post(
    client: TestClient,
    path: str,
    body: Any,
    key: str | None,
    content_type: str = "application/json",
) -> Any:
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if isinstance(body, EncodedBody):
        headers["Content-Encoding"] = body.encoding
        body = body.content
    content = body if isinstance(body, (bytes, Iterator)) else json.dumps(body).encode()
    return client.post(path, content=content, headers=headers)


def stored_events(store: Store, project_id: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    rows = store.query(
        "SELECT event, distinct_id, toString(timestamp), toString(properties) FROM events "
        "WHERE project_id = {p:String} ORDER BY timestamp, event, distinct_id",
        {"p": project_id},
    ).rows
    return [(event, distinct_id, timestamp, json.loads(properties)) for event, distinct_id, timestamp, properties in rows]


def stored_count(store: Store, project_id: str) -> int:
    return store.query("SELECT count() FROM events WHERE project_id = {p:String}", {"p": project_id}).rows[0][0]


def sha256_prefix(text: str) -> str:
    """The first 32 hex digits of the SHA-256 of `text`: the form of `$exception_fingerprint`."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


# Bad inputs: (case, route, body, content type, expected status, expected body)

MISSING_EVENT = "event is missing; send a non-empty string such as \"signed_up\""
MISSING_DISTINCT_ID = "distinct_id is missing; send the user's id as a non-empty string or a number"
BAD_TIMESTAMP = "timestamp 'yesterday' is not an ISO 8601 date-time; send e.g. 2024-05-01T12:00:00Z"
BAD_UUID = "uuid 'not-a-uuid' is not a valid UUID; send e.g. 0190a3f2-7c1e-7b8e-9a6f-3d2c1b0a9f8e or leave it out"
TOO_LARGE = f"Body is larger than {MAX_BODY_BYTES} bytes (5 MiB); split the batch"
PADDING = b"a" * MAX_BODY_BYTES


class EncodedBody:
    """A request body sent with a Content-Encoding header."""

    def __init__(self, content: bytes, encoding: str) -> None:
        self.content = content
        self.encoding = encoding


class GzipBody(EncodedBody):
    """A body sent with Content-Encoding: gzip, compressed here unless `compress` is False."""

    def __init__(self, content: bytes, *, compress: bool = True) -> None:
        super().__init__(gzip.compress(content) if compress else content, "gzip")


FUTURE_MESSAGE = (
    "timestamp '2999-01-01T00:00:00Z' is more than 1 day after the server time {now}; "
    "check the sender's clock, or the unit of an epoch number"
)
FUTURE_ERROR = "future"  # the message quotes the server's clock, so the test fills it in


def invalid(message: str, field: str) -> dict[str, Any]:
    return error_body("invalid_events", f"Invalid event: {message}", [{"field": field, "message": message}])


BAD_REQUESTS = [
    (
        "invalid json",
        "analytics",
        b'{"event": "x",',
        "application/json",
        400,
        error_body("invalid_json", "Body is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 15"),
    ),
    (
        "nan literal",
        "analytics",
        b'{"event": "x", "distinct_id": "u1", "properties": {"ratio": NaN}}',
        "application/json",
        400,
        error_body("invalid_json", "Body is not valid JSON: NaN is not a JSON number at line 1, column 1"),
    ),
    (
        "json nested too deeply",
        "analytics",
        b"[" * 100_000,
        "application/json",
        400,
        error_body("invalid_json", "Body is not valid JSON: it nests too deeply"),
    ),
    (
        "number with 5000 digits",
        "analytics",
        b'{"event": "x", "distinct_id": ' + b"1" * 5000 + b"}",
        "application/json",
        400,
        error_body("invalid_json", "Body is not valid JSON: a number has more than 4300 digits; send it as a string"),
    ),
    (
        "distinct_id number too long",
        "analytics",
        {"event": "x", "distinct_id": 10**300},
        "application/json",
        422,
        invalid("distinct_id is 301 characters long; the maximum is 200", "distinct_id"),
    ),
    (
        "invalid utf-8",
        "analytics",
        b'{"event": "caf\xe9", "distinct_id": "u1"}',
        "application/json",
        400,
        error_body("invalid_encoding", "Body is not valid UTF-8: invalid continuation byte (byte 0xe9 at offset 14)"),
    ),
    (
        "non-object body",
        "analytics",
        b'"hello"',
        "application/json",
        400,
        error_body(
            "invalid_body",
            "Body must be a JSON object (one event, or {\"batch\": [...]}) or an array of events; got a string 'hello'",
        ),
    ),
    (
        "form content type",
        "analytics",
        b"event=x",
        "application/x-www-form-urlencoded",
        415,
        error_body(
            "unsupported_media_type",
            "Content-Type 'application/x-www-form-urlencoded' is not supported; send Content-Type: application/json",
        ),
    ),
    (
        "latin-1 charset",
        "analytics",
        b"{}",
        "application/json; charset=latin-1",
        415,
        error_body("unsupported_media_type", "charset 'latin-1' is not supported; send UTF-8 JSON"),
    ),
    ("missing event", "analytics", {"distinct_id": "u1"}, "application/json", 422, invalid(MISSING_EVENT, "event")),
    ("missing distinct_id", "analytics", {"event": "x"}, "application/json", 422, invalid(MISSING_DISTINCT_ID, "distinct_id")),
    (
        "properties not an object",
        "analytics",
        {"event": "x", "distinct_id": "u1", "properties": [1, 2]},
        "application/json",
        422,
        invalid("properties must be an object; got an array [1, 2]", "properties"),
    ),
    (
        "event a number",
        "analytics",
        {"event": 42, "distinct_id": "u1"},
        "application/json",
        422,
        invalid("event must be a non-empty string such as \"signed_up\"; got a number 42", "event"),
    ),
    (
        "distinct_id a boolean",
        "analytics",
        {"event": "x", "distinct_id": True},
        "application/json",
        422,
        invalid("distinct_id must be a non-empty string or a number; got a boolean true", "distinct_id"),
    ),
    (
        "event name too long",
        "analytics",
        {"event": "x" * 201, "distinct_id": "u1"},
        "application/json",
        422,
        invalid("event is 201 characters long; the maximum is 200", "event"),
    ),
    (
        "unparseable timestamp",
        "analytics",
        {"event": "x", "distinct_id": "u1", "timestamp": "yesterday"},
        "application/json",
        422,
        invalid(BAD_TIMESTAMP, "timestamp"),
    ),
    (
        "timestamp before 2000",
        "analytics",
        {"event": "x", "distinct_id": "u1", "timestamp": "1999-12-31T23:59:59Z"},
        "application/json",
        422,
        invalid("timestamp '1999-12-31T23:59:59Z' is before 2000-01-01T00:00:00Z; send a later time", "timestamp"),
    ),
    (
        "epoch zero timestamp",
        "analytics",
        {"event": "x", "distinct_id": "u1", "timestamp": 0},
        "application/json",
        422,
        invalid("timestamp 0 is before 2000-01-01T00:00:00Z; send a later time", "timestamp"),
    ),
    (
        "timestamp far in the future",
        "analytics",
        [{"event": "x", "distinct_id": "u1"}, {"event": "x", "distinct_id": "u1", "timestamp": "2999-01-01T00:00:00Z"}],
        "application/json",
        422,
        FUTURE_ERROR,
    ),
    (
        "property name with a control character",
        "analytics",
        {"event": "x", "distinct_id": "u1", "properties": {"plan\nname": "pro"}},
        "application/json",
        422,
        invalid(
            "property name 'plan\nname' is invalid: it contains a control character; rename it", "properties.plan\nname"
        ),
    ),
    (
        "property name in JSON subcolumn syntax",
        "analytics",
        {"event": "x", "distinct_id": "u1", "properties": {"mrr": {":Int64": 5}}},
        "application/json",
        422,
        invalid(
            "property name ':Int64' is invalid: a part starts with ':', which ClickHouse reads as JSON subcolumn "
            "syntax; rename it",
            "properties.mrr.:Int64",
        ),
    ),
    (
        "property name part too long",
        "analytics",
        {"event": "x", "distinct_id": "u1", "properties": {"a." + "b" * 201: 1}},
        "application/json",
        422,
        invalid(
            f"property name 'a.{'b' * 58}...' is invalid: a part is 201 characters long, and the maximum is 200; "
            "rename it",
            "properties.a." + "b" * 201,
        ),
    ),
    (
        "gzip body that is not gzip",
        "analytics",
        GzipBody(b"not gzip at all", compress=False),
        "application/json",
        400,
        error_body(
            "invalid_gzip",
            "Body is not valid gzip data (Error -3 while decompressing data: incorrect header check); "
            "compress it with gzip or drop Content-Encoding: gzip",
        ),
    ),
    (
        "truncated gzip body",
        "analytics",
        GzipBody(gzip.compress(b'{"event": "x", "distinct_id": "u1"}')[:-8], compress=False),
        "application/json",
        400,
        error_body(
            "invalid_gzip",
            "Body is not valid gzip data (it ends before the gzip trailer); send the whole compressed body",
        ),
    ),
    (
        "gzip body over the size limit once decompressed",
        "analytics",
        GzipBody(b'{"event": "x", "distinct_id": "u1", "properties": {"pad": "' + PADDING + b'"}}'),
        "application/json",
        413,
        error_body("payload_too_large", f"Decompressed body is larger than {MAX_BODY_BYTES} bytes (5 MiB); split the batch"),
    ),
    (
        "gzip body with invalid events",
        "analytics",
        GzipBody(json.dumps([{"event": "x", "distinct_id": "u1"}, {"event": "y"}]).encode()),
        "application/json",
        422,
        error_body(
            "invalid_events",
            "1 of 2 events is invalid (index 1); nothing was stored",
            [{"index": 1, "field": "distinct_id", "message": MISSING_DISTINCT_ID}],
        ),
    ),
    (
        "brotli content encoding",
        "analytics",
        EncodedBody(b"{}", "br"),
        "application/json",
        415,
        error_body(
            "unsupported_media_type",
            "Content-Encoding 'br' is not supported; send the body uncompressed or gzip-compressed",
        ),
    ),
    (
        "epoch microseconds",
        "analytics",
        {"event": "x", "distinct_id": "u1", "timestamp": 1714564800000000},
        "application/json",
        422,
        invalid(
            "timestamp 1714564800000000 is out of range for an epoch in seconds or milliseconds", "timestamp"
        ),
    ),
    (
        "bad uuid",
        "analytics",
        {"event": "x", "distinct_id": "u1", "uuid": "not-a-uuid"},
        "application/json",
        422,
        invalid(BAD_UUID, "uuid"),
    ),
    (
        "colliding property paths",
        "analytics",
        {"event": "x", "distinct_id": "u1", "properties": {"plan": "pro", "plan.tier": 2}},
        "application/json",
        422,
        invalid(
            "properties 'plan' and 'plan.tier' collide: names are split at dots, so 'plan' cannot be both a value "
            "and an object; rename one",
            "properties",
        ),
    ),
    (
        "empty batch",
        "analytics",
        {"batch": []},
        "application/json",
        422,
        error_body("invalid_events", "Batch is empty; send 1 to 1000 events"),
    ),
    (
        "empty array",
        "analytics",
        [],
        "application/json",
        422,
        error_body("invalid_events", "Batch is empty; send 1 to 1000 events"),
    ),
    (
        "too many events",
        "analytics",
        [{"event": "x", "distinct_id": "u1"}] * 1001,
        "application/json",
        413,
        error_body("payload_too_large", "Batch has 1001 events; the maximum is 1000. Split it into several requests."),
    ),
    (
        "body over the size limit",
        "analytics",
        b'{"event": "x", "distinct_id": "u1", "properties": {"pad": "' + PADDING + b'"}}',
        "application/json",
        413,
        error_body("payload_too_large", TOO_LARGE),
    ),
    (
        "streamed body over the size limit",
        "analytics",
        iter([b'{"event": "x", "distinct_id": "u1", "properties": {"pad": "', PADDING, b'"}}']),
        "application/json",
        413,
        error_body("payload_too_large", TOO_LARGE),
    ),
    (
        "batch with bad events at 1 and 3",
        "analytics",
        {
            "batch": [
                {"event": "a", "distinct_id": "u1"},
                {"event": "b"},
                {"event": "c", "distinct_id": "u1"},
                {"event": "d", "distinct_id": "u1", "timestamp": "yesterday"},
            ]
        },
        "application/json",
        422,
        error_body(
            "invalid_events",
            "2 of 4 events are invalid (indexes 1, 3); nothing was stored",
            [
                {"index": 1, "field": "distinct_id", "message": MISSING_DISTINCT_ID},
                {"index": 3, "field": "timestamp", "message": BAD_TIMESTAMP},
            ],
        ),
    ),
    (
        "array with a non-object item",
        "analytics",
        [{"event": "a", "distinct_id": "u1"}, "b"],
        "application/json",
        422,
        error_body(
            "invalid_events",
            "1 of 2 events is invalid (index 1); nothing was stored",
            [{"index": 1, "field": None, "message": "an event must be a JSON object; got a string 'b'"}],
        ),
    ),
    (
        "log without message",
        "logs",
        {"stack": "Traceback ..."},
        "application/json",
        422,
        error_body(
            "invalid_log",
            "Invalid log: message is missing; send a non-empty string",
            [{"field": "message", "message": "message is missing; send a non-empty string"}],
        ),
    ),
    (
        "log with unknown field and level",
        "logs",
        {"message": "boom", "tag": {"account_id": "A-1"}, "level": "loud"},
        "application/json",
        422,
        error_body(
            "invalid_log",
            "Invalid log: tag is not a log field; send only message, stack, type, level, user, tags, timestamp, uuid; "
            "level 'loud' is not a log level; send one of debug, info, warning, error, fatal",
            [
                {"field": "tag", "message": "tag is not a log field; send only message, stack, type, level, user, tags, timestamp, uuid"},
                {"field": "level", "message": "level 'loud' is not a log level; send one of debug, info, warning, error, fatal"},
            ],
        ),
    ),
    (
        "log tag replacing a reserved property",
        "logs",
        {"message": "boom", "tags": {"$exception_message": "other"}},
        "application/json",
        422,
        error_body(
            "invalid_log",
            "Invalid log: tag '$exception_message' would replace a reserved property; rename it",
            [{"field": "tags.$exception_message", "message": "tag '$exception_message' would replace a reserved property; rename it"}],
        ),
    ),
    (
        "log body an array",
        "logs",
        [{"message": "boom"}],
        "application/json",
        400,
        error_body("invalid_body", "Body must be a JSON object with a message; got an array [{\"message\": \"boom\"}]"),
    ),
]


def future_error(response: Any) -> dict[str, Any]:
    """The expected error for the far-future case, with the server time the response quotes."""
    details = response.json()["error"]["details"]
    now = details[0]["message"].split("server time ")[1].split(";")[0] if details else "(missing)"
    return error_body(
        "invalid_events",
        "1 of 2 events is invalid (index 1); nothing was stored",
        [{"index": 1, "field": "timestamp", "message": FUTURE_MESSAGE.format(now=now)}],
    )


@pytest.mark.parametrize(
    ("route", "body", "content_type", "status", "expected"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_stores_nothing(
    client: TestClient, store: Store, project: tuple[Project, str], route, body, content_type, status, expected
):
    created, key = project

    response = post(client, f"/v1/{route}/{created.project_id}/", body, key, content_type)

    if expected == FUTURE_ERROR:
        expected = future_error(response)
    assert response.status_code == status
    assert response.json() == expected
    assert response.headers["content-type"] == "application/json"
    assert stored_count(store, created.project_id) == 0


UNAUTHORIZED = error_body("invalid_key", "Invalid ingestion key for this project")
MISSING_KEY = error_body(
    "missing_key", "Missing ingestion key; send the header Authorization: Bearer <project ingestion key>"
)
PROJECT_API_TOKEN = error_body(
    "wrong_key_kind",
    "This is a project API token, which only /mcp accepts. Send the project's ingestion key, "
    "printed once by `pulseboard project create`, or the server's API token.",
)


@pytest.mark.parametrize("route", ["analytics", "logs"])
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing key", MISSING_KEY),
        ("wrong key", UNAUTHORIZED),
        ("key of another project", UNAUTHORIZED),
        ("unknown project", UNAUTHORIZED),
        ("invalid project id", UNAUTHORIZED),
        ("project API token", PROJECT_API_TOKEN),
    ],
)
def test_authentication_failures(
    client: TestClient, store: Store, project: tuple[Project, str], route: str, case: str, expected
):
    created, key = project
    _, other_key = store.create_project(created.project_id + "-other")
    _, api_token = create_token(store, [created.project_id])
    body = {"event": "x", "distinct_id": "u1"} if route == "analytics" else {"message": "boom"}
    path, sent_key = {
        "missing key": (created.project_id, None),
        "wrong key": (created.project_id, key + "x"),
        "key of another project": (created.project_id, other_key),
        "unknown project": ("no-such-project", key),
        "invalid project id": ("Not A Project!", key),
        "project API token": (created.project_id, api_token),
    }[case]

    response = post(client, f"/v1/{route}/{path}/", body, sent_key)

    assert response.status_code == 401
    assert response.json() == expected
    assert response.headers["www-authenticate"] == "Bearer"
    assert key not in response.text
    assert stored_count(store, created.project_id) == 0


def test_wrong_key_and_unknown_project_look_alike(client: TestClient, project: tuple[Project, str]):
    created, key = project
    body = {"event": "x", "distinct_id": "u1"}

    wrong_key = post(client, f"/v1/analytics/{created.project_id}/", body, "pbi_wrong")
    unknown_project = post(client, "/v1/analytics/no-such-project/", body, key)

    assert wrong_key.status_code == unknown_project.status_code == 401
    assert wrong_key.content == unknown_project.content
    assert dict(wrong_key.headers) == dict(unknown_project.headers)


# Good inputs: (case, path, body, expected stored events)

GOOD_REQUESTS = [
    (
        "single event with every field",
        "/v1/analytics/{project}/",
        {
            "event": "signed_up",
            "distinct_id": "u1",
            "timestamp": "2024-05-01T12:00:00Z",
            "uuid": EVENT_UUID,
            "properties": {"plan": "pro"},
            "type": "capture",
        },
        [("signed_up", "u1", "2024-05-01 12:00:00.000000", {"plan": "pro"})],
    ),
    (
        "batch object without trailing slash",
        "/v1/analytics/{project}",
        {
            "api_key": "ignored",
            "batch": [
                {"event": "a", "distinct_id": "u1", "timestamp": "2024-05-01T12:00:00+02:00"},
                {"event": "b", "distinct_id": 42, "timestamp": "2024-05-01 11:00:00"},
            ],
        },
        [
            ("a", "u1", "2024-05-01 10:00:00.000000", {}),
            ("b", "42", "2024-05-01 11:00:00.000000", {}),
        ],
    ),
    (
        "array with epoch and date timestamps",
        "/v1/analytics/{project}/",
        [
            {"event": "seconds", "distinct_id": "u1", "timestamp": 1714564800},
            {"event": "milliseconds", "distinct_id": "u1", "timestamp": 1714564800123},
            {"event": "date", "distinct_id": "u1", "timestamp": "2024-05-02"},
            {"event": "fraction", "distinct_id": "u1", "timestamp": "2024-05-03T08:30:00.250Z"},
        ],
        [
            ("seconds", "u1", "2024-05-01 12:00:00.000000", {}),
            ("milliseconds", "u1", "2024-05-01 12:00:00.123000", {}),
            ("date", "u1", "2024-05-02 00:00:00.000000", {}),
            ("fraction", "u1", "2024-05-03 08:30:00.250000", {}),
        ],
    ),
    (
        "properties keep their types",
        "/v1/analytics/{project}/",
        {
            "event": "paid",
            "distinct_id": "u1",
            "timestamp": "2024-05-01T12:00:00Z",
            "properties": {
                "account_id": "A-1",
                "mrr": 300,
                "ratio": 0.25,
                "trial": False,
                "tags": ["a", "b"],
                "$groups": {"company": "acme"},
                "note": "café ☕",
            },
        },
        [(
            "paid",
            "u1",
            "2024-05-01 12:00:00.000000",
            {
                "account_id": "A-1",
                "mrr": 300,
                "ratio": 0.25,
                "trial": False,
                "tags": ["a", "b"],
                "$groups": {"company": "acme"},
                "note": "café ☕",
            },
        )],
    ),
    (
        "log with tags and user",
        "/v1/logs/{project}/",
        {
            "message": "KeyError: 'plan'",
            "stack": "Traceback (most recent call last): ...",
            "type": "KeyError",
            "level": "ERROR",
            "user": {"id": "u7"},
            "tags": {"account_id": "A-9", "release": "1.4.2"},
            "timestamp": "2024-05-01T12:00:00Z",
        },
        [(
            "$exception",
            "u7",
            "2024-05-01 12:00:00.000000",
            {
                "$exception_message": "KeyError: 'plan'",
                "$exception_stack": "Traceback (most recent call last): ...",
                "$exception_type": "KeyError",
                "$exception_level": "error",
                "$exception_fingerprint": sha256_prefix("KeyError\nKeyError: 'plan'\n"),
                "account_id": "A-9",
                "release": "1.4.2",
            },
        )],
    ),
    (
        "log without user falls back to the account",
        "/v1/logs/{project}",
        {"message": "timeout", "level": "warning", "tags": {"account_id": "A-9"}, "timestamp": "2024-05-01T12:00:00Z"},
        [(
            "$exception",
            "account:A-9",
            "2024-05-01 12:00:00.000000",
            {
                "$exception_message": "timeout",
                "$exception_level": "warning",
                "$exception_fingerprint": sha256_prefix("\ntimeout\n"),
                "account_id": "A-9",
            },
        )],
    ),
    (
        "log without user or account",
        "/v1/logs/{project}/",
        {"message": "timeout", "timestamp": "2024-05-01T12:00:00Z"},
        [(
            "$exception",
            "anonymous",
            "2024-05-01 12:00:00.000000",
            {
                "$exception_message": "timeout",
                "$exception_level": "error",
                "$exception_fingerprint": sha256_prefix("\ntimeout\n"),
            },
        )],
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "expected"), [case[1:] for case in GOOD_REQUESTS], ids=[case[0] for case in GOOD_REQUESTS]
)
def test_good_request_is_stored(client: TestClient, store: Store, project: tuple[Project, str], path, body, expected):
    created, key = project

    response = post(client, path.format(project=created.project_id), body, key)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "stored": len(expected)}
    assert stored_events(store, created.project_id) == expected


def test_property_types_are_stored(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    body = {"event": "paid", "distinct_id": "u1", "properties": {"mrr": 300, "ratio": 0.25, "trial": False, "plan": "pro"}}

    post(client, f"/v1/analytics/{created.project_id}/", body, key)

    rows = store.query(
        "SELECT dynamicType(properties.mrr), dynamicType(properties.ratio), dynamicType(properties.trial), "
        "dynamicType(properties.plan) FROM events WHERE project_id = {p:String}",
        {"p": created.project_id},
    ).rows
    assert rows == [["Int64", "Float64", "Bool", "String"]]
    assert store.property_types(created.project_id) == {
        "mrr": "Numeric", "ratio": "Numeric", "trial": "Boolean", "plan": "String"
    }


def test_uuid_is_kept_or_generated(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    body = [
        {"event": "given", "distinct_id": "u1", "uuid": "{0190A3F2-7C1E-7B8E-9A6F-3D2C1B0A9F8E}"},
        {"event": "generated", "distinct_id": "u1"},
    ]

    post(client, f"/v1/analytics/{created.project_id}/", body, key)

    rows = dict(store.query(
        "SELECT event, toString(uuid) FROM events WHERE project_id = {p:String}", {"p": created.project_id}
    ).rows)
    assert rows["given"] == EVENT_UUID
    assert rows["generated"] != EVENT_UUID
    assert rows["generated"][14] == "4"


def test_missing_timestamp_is_receipt_time(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    before = dt.datetime.now(UTC)

    post(client, f"/v1/analytics/{created.project_id}/", {"event": "x", "distinct_id": "u1"}, key)

    after = dt.datetime.now(UTC)
    stored = store.query(
        "SELECT timestamp FROM events WHERE project_id = {p:String}", {"p": created.project_id}
    ).rows[0][0].replace(tzinfo=UTC)
    assert before <= stored <= after


def test_request_log_line(client: TestClient, project: tuple[Project, str], caplog: pytest.LogCaptureFixture):
    created, key = project
    caplog.set_level(logging.INFO, logger="pulseboard.server.ingest")

    post(client, f"/v1/analytics/{created.project_id}/", [{"event": "x", "distinct_id": "u1"}] * 3, key)
    post(client, f"/v1/analytics/{created.project_id}/", {"event": "x"}, "pbi_wrong")
    post(client, "/v1/logs/bad%0Aproject/", {"message": "boom"}, key)

    lines = [record.getMessage() for record in caplog.records if record.name == "pulseboard.server.ingest"]
    assert len(lines) == 3
    assert lines[0].startswith(f"ingest analytics project={created.project_id} events=3 status=200 ms=")
    assert lines[1].startswith(f"ingest analytics project={created.project_id} events=0 status=401 ms=")
    assert lines[2].startswith("ingest logs project=(invalid) events=0 status=401 ms=")
    assert all(key not in line and "pbi_wrong" not in line for line in lines)


def test_full_batch_is_stored(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    batch = [
        {"event": "viewed", "distinct_id": f"u{number}", "properties": {"n": number, "path": "/docs/" + "x" * 200}}
        for number in range(1000)
    ]

    response = post(client, f"/v1/analytics/{created.project_id}/", {"batch": batch}, key)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "stored": 1000}
    assert stored_count(store, created.project_id) == 1000


def test_gzip_batch_is_stored(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    batch = [{"event": "viewed", "distinct_id": f"u{number}", "properties": {"n": number}} for number in range(1000)]
    body = GzipBody(json.dumps({"batch": batch}).encode())

    response = post(client, f"/v1/analytics/{created.project_id}/", body, key)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "stored": 1000}
    assert stored_count(store, created.project_id) == 1000
    assert store.query(
        "SELECT sum(toInt64(properties.n)) FROM events WHERE project_id = {p:String}", {"p": created.project_id}
    ).rows == [[499500]]


def test_get_is_not_allowed(client: TestClient, project: tuple[Project, str]):
    created, key = project

    response = client.get(f"/v1/analytics/{created.project_id}/", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 405


# Group commit


def test_concurrent_requests_share_inserts(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    requests = 50
    writer: EventWriter = client.app.state.writer
    inserts_before = writer.insert_count
    barrier = threading.Barrier(requests, timeout=30)

    def send(number: int) -> Any:
        barrier.wait()
        body = {"event": "clicked", "distinct_id": f"u{number}", "properties": {"n": number}}
        return post(client, f"/v1/analytics/{created.project_id}/", body, key)

    with ThreadPoolExecutor(max_workers=requests) as pool:
        responses = list(pool.map(send, range(requests), timeout=60))

    assert [response.status_code for response in responses] == [200] * requests
    assert all(response.json() == {"status": "ok", "stored": 1} for response in responses)
    numbers = store.query(
        "SELECT groupArray(properties.n.:Int64) FROM events WHERE project_id = {p:String}", {"p": created.project_id}
    ).rows[0][0]
    assert sorted(numbers) == list(range(requests))
    # insert_events gives every row of one call the same inserted_at, so distinct values count inserts.
    stored_inserts = store.query(
        "SELECT uniqExact(inserted_at) FROM events WHERE project_id = {p:String}", {"p": created.project_id}
    ).rows[0][0]
    inserts = writer.insert_count - inserts_before
    assert stored_inserts == inserts
    assert inserts < requests


def event(name: str, **properties: Any) -> EventRow:
    return parse_events({"event": name, "distinct_id": "u1", "properties": properties}, now=NOW)[0]


@pytest.mark.anyio
async def test_writer_isolates_failing_caller(store: Store, project: tuple[Project, str], caplog: pytest.LogCaptureFixture):
    created, _ = project
    bad = event("bad")
    bad.properties["ratio"] = float("nan")  # ClickHouse rejects NaN in JSONEachRow, so this insert fails

    async with EventWriter(store, window_s=0.05) as writer:
        results = await asyncio.gather(
            writer.write(created.project_id, [event("good")]),
            writer.write(created.project_id, [bad]),
            return_exceptions=True,
        )

    assert results[0] is None
    assert isinstance(results[1], DatabaseError)
    assert writer.insert_count == 3
    assert [row[0] for row in stored_events(store, created.project_id)] == ["good"]
    messages = [record.getMessage() for record in caplog.records if record.name == "pulseboard.server.ingest"]
    assert messages[0].startswith(
        f"grouped insert of 2 events from 2 requests into project {created.project_id} failed"
    )
    assert messages[1].startswith(f"insert of 1 events into project {created.project_id} failed")


@pytest.mark.anyio
async def test_writer_close_flushes_pending(store: Store, project: tuple[Project, str]):
    created, _ = project
    writer = EventWriter(store, window_s=30)

    pending = asyncio.ensure_future(writer.write(created.project_id, [event("late")]))
    await asyncio.sleep(0.01)
    assert stored_count(store, created.project_id) == 0
    await asyncio.wait_for(writer.close(), timeout=10)

    assert pending.done()
    assert pending.result() is None
    assert stored_count(store, created.project_id) == 1
    with pytest.raises(WriterClosedError):
        await writer.write(created.project_id, [event("after close")])


@pytest.mark.anyio
async def test_writer_flushes_full_group_at_once(store: Store, project: tuple[Project, str]):
    created, _ = project

    async with EventWriter(store, window_s=30, max_events=3) as writer:
        await asyncio.wait_for(writer.write(created.project_id, [event("a"), event("b"), event("c")]), timeout=10)
        assert writer.insert_count == 1

    assert stored_count(store, created.project_id) == 3


@pytest.mark.anyio
async def test_writer_groups_per_project(store: Store):
    suffix = uuid.uuid4().hex[:12]
    first, _ = store.create_project(f"tg-first-{suffix}")
    second, _ = store.create_project(f"tg-second-{suffix}")

    async with EventWriter(store, window_s=0.05) as writer:
        await asyncio.gather(
            *(writer.write(first.project_id, [event("a")]) for _ in range(5)),
            *(writer.write(second.project_id, [event("b")]) for _ in range(3)),
        )

    assert writer.insert_count == 2
    assert stored_count(store, first.project_id) == 5
    assert stored_count(store, second.project_id) == 3


# Validation without HTTP

TIMESTAMPS = [
    ("2024-05-01T12:00:00Z", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01T14:00:00+02:00", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01T12:00:00", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2024-05-01 12:00:00.5", dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
    ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=UTC)),
    (1714564800, dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
    (1714564800.5, dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
    (1714564800000, dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ("2026-01-16T11:59:59Z", dt.datetime(2026, 1, 16, 11, 59, 59, tzinfo=UTC)),
]


@pytest.mark.parametrize(("sent", "expected"), TIMESTAMPS, ids=[str(sent) for sent, _ in TIMESTAMPS])
def test_timestamp_forms(sent: Any, expected: dt.datetime):
    rows = parse_events({"event": "x", "distinct_id": "u1", "timestamp": sent}, now=NOW)

    assert rows[0].timestamp == expected
    assert rows[0].timestamp.tzinfo == UTC


def test_timestamp_too_far_ahead():
    with pytest.raises(IngestError) as raised:
        parse_events({"event": "x", "distinct_id": "u1", "timestamp": "2026-01-16T12:00:01Z"}, now=NOW)

    assert raised.value.status == 422
    assert raised.value.errors == [{
        "field": "timestamp",
        "message": "timestamp '2026-01-16T12:00:01Z' is more than 1 day after the server time 2026-01-15T12:00:00Z; "
        "check the sender's clock, or the unit of an epoch number",
    }]


def test_non_finite_property_from_python_caller():
    with pytest.raises(IngestError) as raised:
        parse_events({"event": "x", "distinct_id": "u1", "properties": {"n": {"ratio": float("inf")}}}, now=NOW)

    assert raised.value.errors == [{
        "field": "properties.n.ratio",
        "message": "properties.n.ratio is a number Infinity; send a JSON value with finite numbers",
    }]


def test_properties_nest_at_most_ten_levels():
    nested: dict[str, Any] = {"leaf": 1}
    for _ in range(10):
        nested = {"x": nested}

    with pytest.raises(IngestError) as raised:
        parse_events({"event": "x", "distinct_id": "u1", "properties": nested}, now=NOW)

    assert raised.value.errors == [{
        "field": "properties" + ".x" * 10,
        "message": "properties" + ".x" * 10 + " nests objects deeper than 10 levels; flatten it",
    }]


def test_dotted_names_are_nested_paths():
    rows = parse_events(
        {"event": "x", "distinct_id": "u1", "properties": {"$groups.company": "acme", "$groups": {"team": "b"}}}, now=NOW
    )

    assert rows[0].properties == {"$groups.company": "acme", "$groups": {"team": "b"}}


def test_log_distinct_id_from_numeric_user():
    row = parse_log({"message": "boom", "user": {"id": 42}}, now=NOW)

    assert row.distinct_id == "42"
    assert row.timestamp == NOW
    assert row.properties == {
        "$exception_message": "boom",
        "$exception_level": "error",
        "$exception_fingerprint": sha256_prefix("\nboom\n"),
    }


PYTHON_STACK = """Traceback (most recent call last):
  File "/app/server.py", line 88, in handle
    return charge(order)
  File "/app/billing.py", line {line}, in charge
    raise KeyError(plan)
KeyError: 'plan'"""
JS_STACK = """TypeError: Cannot read properties of undefined (reading 'id')
    at renderInvoice (https://app.example.com/static/app.js:{line}:17)
    at HTMLButtonElement.onClick (https://app.example.com/static/app.js:88:5)"""

# (case, type, message, stack, expected top frame, text hashed into the fingerprint)
FINGERPRINTS = [
    (
        "python innermost frame",
        "KeyError",
        "user 42 has no plan",
        PYTHON_STACK.format(line=120),
        "/app/billing.py in charge",
        "KeyError\nuser <n> has no plan\n/app/billing.py in charge",
    ),
    (
        "javascript first at line",
        "TypeError",
        "Cannot read properties of undefined (reading 'id')",
        JS_STACK.format(line=1042),
        "renderInvoice (https://app.example.com/static/app.js)",
        "TypeError\nCannot read properties of undefined (reading 'id')\n"
        "renderInvoice (https://app.example.com/static/app.js)",
    ),
    (
        "uuid and address in message",
        "",
        "order 0190a3f2-7c1e-7b8e-9a6f-3d2c1b0a9f8e locked by 0x7f3a9c",
        "",
        "",
        "\norder <uuid> locked by <hex>\n",
    ),
    ("stack without frames", "", "boom", "something went wrong", "", "\nboom\n"),
]


@pytest.mark.parametrize(
    ("exception_type", "message", "stack", "top_frame", "hashed"),
    [case[1:] for case in FINGERPRINTS],
    ids=[case[0] for case in FINGERPRINTS],
)
def test_exception_fingerprint(exception_type: str, message: str, stack: str, top_frame: str, hashed: str):
    assert exception_fingerprint(exception_type, message, stack) == (sha256_prefix(hashed), top_frame)


def test_fingerprint_groups_one_kind():
    first = exception_fingerprint("KeyError", "user 42 has no plan", PYTHON_STACK.format(line=120))
    moved = exception_fingerprint("KeyError", "user 7 has no plan", PYTHON_STACK.format(line=131))
    other_place = exception_fingerprint("KeyError", "user 42 has no plan", JS_STACK.format(line=3))

    assert first == moved
    assert first[0] != other_place[0]


def test_errors_counted_per_fingerprint(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    reports = [
        {"message": f"user {user} has no plan", "type": "KeyError", "stack": PYTHON_STACK.format(line=line)}
        for user, line in ((1, 120), (2, 121), (3, 122))
    ]
    reports.append({"message": "Cannot read properties of undefined (reading 'id')", "stack": JS_STACK.format(line=9)})
    for report in reports:
        assert post(client, f"/v1/logs/{created.project_id}/", report, key).status_code == 200

    output = run_hogql(
        store,
        Settings(data_dir=Path("/tmp"), clickhouse_url=store.url),
        created.project_id,
        "SELECT properties.$exception_top_frame AS frame, count() AS errors FROM events "
        "WHERE event = '$exception' GROUP BY frame ORDER BY errors DESC",
    )

    assert output.rows == [
        ["/app/billing.py in charge", 3],
        ["renderInvoice (https://app.example.com/static/app.js)", 1],
    ]

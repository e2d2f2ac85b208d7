"""PostHog-compatible capture: the endpoints PostHog's SDKs send events to.

Routes (each with and without the trailing slash): `POST /capture/`, `/batch/`, `/e/` and
`/i/v0/e/`. Point an SDK's `host` at the server, with the project's ingestion key as its API key.

Bodies
    - JSON: one event, `{"batch": [event, ...]}`, `{"data": [...]}` or an array of events. The
      content type may be `application/json`, `text/plain` (browsers' `sendBeacon`) or absent.
    - Form-encoded (`application/x-www-form-urlencoded`): the JSON, or its base64, in the `data`
      field, as posthog-js sends it.
    - gzip: with `Content-Encoding: gzip`, with `?compression=gzip` or `gzip-js`, or recognised by
      the gzip magic bytes. Base64 text with `?compression=base64`.
    The 5 MiB limit holds for the body as received and after decompression.

Project key
    `api_key` or `token` at the top level of the body, else in the first event (top level or
    `properties.token`, where posthog-js puts it), else `?api_key=` / `?token=` in the URL. The key
    selects the project. `token` and `api_key` are removed from stored properties.

Events
    An event is read as on the native API (`pulseboard.server.ingest.parse_events`), after these
    PostHog forms are turned into native ones:
    - top-level `$set` and `$set_once` become the properties of those names, unless the properties
      already have them, so person properties stay readable as `properties.$set.email`;
    - a missing `distinct_id` is taken from `properties.distinct_id` (posthog-js);
    - a missing `timestamp` with an `offset` in milliseconds is the receipt time minus the offset.
    Properties the SDK adds, such as `$lib` and `$lib_version`, are kept as sent.

Responses
    `200 {"status": 1}` after the events are stored, as PostHog responds; errors use the native
    API's shape and statuses, with 401 for a missing or unknown key. Browsers may post from any
    origin: every response has `Access-Control-Allow-Origin: *`, and `OPTIONS` preflight requests
    get 204 with the allowed methods and headers. No credentials are allowed, because the key
    travels in the body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulseboard.server.ingest import (
    OFFLOAD_BODY_BYTES,
    IngestError,
    content_encoding,
    decompress,
    describe,
    error_response,
    load_json,
    log_request,
    parse_events,
    read_body,
    store_events,
)
from pulseboard.server.store import EventRow, utcnow

CAPTURE_PATHS = ("/capture", "/batch", "/e", "/i/v0/e")
JSON_CONTENT_TYPES = ("", "application/json", "text/plain")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
GZIP_MAGIC = b"\x1f\x8b"
KEY_FIELDS = ("api_key", "token")
CORS_HEADERS = {"Access-Control-Allow-Origin": "*"}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}
PERSON_FIELDS = ("$set", "$set_once")


def capture_routes() -> list[Route]:
    """Return the PostHog capture routes, each with and without the trailing slash."""
    routes = []
    for path in CAPTURE_PATHS:
        for route_path in (path + "/", path):
            routes.append(Route(route_path, capture_endpoint, methods=["POST"]))
            routes.append(Route(route_path, preflight_endpoint, methods=["OPTIONS"]))
    return routes


async def preflight_endpoint(request: Request) -> Response:
    """Respond to a browser's CORS preflight for a capture path."""
    return Response(status_code=204, headers=PREFLIGHT_HEADERS)


async def capture_endpoint(request: Request) -> JSONResponse:
    """Store the events of one PostHog SDK request in the project its key names."""
    started = time.perf_counter()
    project_id = "(unknown)"
    count = 0
    error_code = ""
    try:
        body = await read_body(request)
        if len(body) > OFFLOAD_BODY_BYTES:
            payload = await asyncio.to_thread(decode_capture_body, body, request)
        else:
            payload = decode_capture_body(body, request)
        project_id = await _project_for_key(request, payload)
        events = _parse_capture(payload, utcnow())
        count = len(events)
        await store_events(request, project_id, events)
        response = JSONResponse({"status": 1})
    except IngestError as error:
        response = error_response(error)
        error_code = error.code

    response.headers.update(CORS_HEADERS)
    log_request("capture", project_id, count, response.status_code, started, error_code)
    return response


def decode_capture_body(body: bytes, request: Request) -> Any:
    """Undo the form encoding, base64 and gzip that PostHog SDKs apply, and parse the JSON."""
    compression = request.query_params.get("compression", "").lower()
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = decompress(body, content_encoding(request))

    if media_type == FORM_CONTENT_TYPE:
        form = parse_qs(body.decode("latin-1"), keep_blank_values=True)
        if "data" not in form:
            raise IngestError(400, "Form body has no data field; send data=<JSON or base64 of JSON>", code="invalid_body")
        compression = form.get("compression", [compression])[0].lower()
        body = form["data"][0].encode("latin-1")
        if not body.lstrip().startswith((b"{", b"[")):
            compression = "base64"
    elif media_type not in JSON_CONTENT_TYPES:
        raise IngestError(
            415,
            f"Content-Type {request.headers.get('content-type')!r} is not supported; send application/json, "
            f"text/plain or {FORM_CONTENT_TYPE}",
        )

    if compression == "base64":
        body = _decode_base64(body)
    if compression in ("gzip", "gzip-js") or body.startswith(GZIP_MAGIC):
        body = decompress(body, "gzip")
    return load_json(body)


def _decode_base64(body: bytes) -> bytes:
    text = b"".join(body.split())
    altchars = b"-_" if b"-" in text or b"_" in text else None
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise IngestError(
            400, "Body is not valid base64; send the JSON itself or drop compression=base64", code="invalid_base64"
        ) from None


async def _project_for_key(request: Request, payload: Any) -> str:
    key = _find_key(payload) or request.query_params.get("api_key") or request.query_params.get("token") or ""
    if not key:
        raise IngestError(
            401,
            "Missing project API key; send the project's ingestion key as api_key in the body",
            code="missing_key",
        )
    store = request.app.state.runtime.store
    project_id = store.cached_project_for_ingest_key(key) or await asyncio.to_thread(store.project_for_ingest_key, key)
    if project_id is None:
        raise IngestError(401, "Invalid project API key", code="invalid_key")
    return project_id


def _find_key(payload: Any) -> str:
    """Return the project key from the body, or '' when the body carries none."""
    if isinstance(payload, dict):
        for name in KEY_FIELDS:
            if isinstance(payload.get(name), str):
                return payload[name]
    items = _raw_events(payload)
    if not items or not isinstance(items[0], dict):
        return ""
    first = items[0]
    properties = first.get("properties")
    for source in (first, properties if isinstance(properties, dict) else {}):
        for name in KEY_FIELDS:
            if isinstance(source.get(name), str):
                return source[name]
    return ""


def _raw_events(payload: Any) -> list[Any]:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for name in ("batch", "data"):
            if isinstance(payload.get(name), list):
                return payload[name]
        return [payload]
    return []


def _parse_capture(payload: Any, now: dt.datetime) -> list[EventRow]:
    if not isinstance(payload, (dict, list)):
        raise IngestError(
            400, f"Body must be a JSON object (one event, or {{\"batch\": [...]}}) or an array of events; got {describe(payload)}"
        )
    if isinstance(payload, dict) and "batch" not in payload and "data" not in payload:
        return parse_events(native_event(payload, now), now=now)
    return parse_events([native_event(item, now) for item in _raw_events(payload)], now=now)


def native_event(item: Any, now: dt.datetime) -> Any:
    """Turn one PostHog event into the native form; leave anything that is not an object as it is."""
    if not isinstance(item, dict):
        return item

    event = dict(item)
    properties = event.get("properties")
    if properties is None:
        properties = {}
    if isinstance(properties, dict):
        properties = {name: value for name, value in properties.items() if name not in KEY_FIELDS}
        for name in PERSON_FIELDS:
            if name in event and name not in properties:
                properties[name] = event[name]
        if event.get("distinct_id") is None and properties.get("distinct_id") is not None:
            event["distinct_id"] = properties["distinct_id"]
    event["properties"] = properties

    offset = event.get("offset")
    if event.get("timestamp") is None and isinstance(offset, (int, float)) and not isinstance(offset, bool):
        event["timestamp"] = now - dt.timedelta(milliseconds=offset)
    return event

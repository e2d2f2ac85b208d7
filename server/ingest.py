"""Event ingestion: payload validation, group commit, and the HTTP endpoints under `/v1/`.

Payloads
    `POST /v1/analytics/{project_id}/` takes one event, `{"batch": [event, ...]}` or a JSON array of
    events. An event is `{"event", "distinct_id", "properties"?, "timestamp"?, "uuid"?}`. Other
    top-level keys (`type`, `library`, `api_key`, ...) are ignored.

    `POST /v1/logs/{project_id}/` takes one error report `{"message", "stack"?, "type"?, "level"?,
    "user": {"id"}?, "tags"?, "timestamp"?, "uuid"?}` and stores it as a `$exception` event (see
    `parse_log`), with an `$exception_fingerprint` that groups reports of the same kind. Unknown
    keys are rejected there, so a misspelt `tag` does not drop data.

Rules shared by both endpoints and by the file importer
    - `event` is a non-empty string of at most 200 characters.
    - `distinct_id` is a non-empty string of at most 200 characters, or a number, which is stored
      as its decimal text (`42` becomes `"42"`).
    - `properties` is an object, and absent or null means `{}`. The JSON column splits names at
      dots, so `{"a.b": 1}` is the nested path a.b. Each part between dots must be non-empty, and
      one event cannot contain both `a` and `a.b`. A part has at most 200 characters, no control
      characters, and does not start with `:` or `^`, which ClickHouse reads as JSON subcolumn
      syntax (`properties.a.:Int64`, `properties.^a`). Objects nest at most 10 levels, and numbers
      must be finite.
    - `timestamp` is an ISO 8601 date-time with `Z` or an offset, or without one for UTC. A date
      alone is midnight UTC. A number is Unix epoch time: seconds below 1e11 and milliseconds
      from 1e11 up, because 1e11 seconds is the year 5138 and 1e11 milliseconds is 1973. The
      time must lie between 2000-01-01T00:00:00Z and one day after the server's clock, because
      earlier times come from unset device clocks or a wrong epoch unit. Absent means the time
      of receipt.
    - `uuid` is any form `uuid.UUID` parses and is stored in canonical form; absent means a new
      uuid4.
    - A batch contains 1 to 1,000 events. If any event is invalid, nothing is stored and the error
      lists every invalid event by its index.
    - A request body is JSON (`Content-Type: application/json`), UTF-8, at most 5 MiB, and may be
      gzip-compressed (`Content-Encoding: gzip`); the 5 MiB limit then holds for both the
      compressed and the decompressed body.

Authentication
    `Authorization: Bearer <key>` with the project's ingestion key, or with the server's API token,
    which is accepted for every project. With the API token an unknown project gets 404; with any
    other key it gets the same 401 as a wrong key, so project ids cannot be probed.

Responses
    Success is `200 {"status": "ok", "stored": N}`, sent only after the insert that contains the
    events has completed. N counts the request's events, including any whose uuid the project
    already stored: those are skipped, so a retried request is stored once. Errors are `{"error": {"code", "message", "details"}}`, with one of these
    statuses:
    - 400: the body is not JSON, not UTF-8, or of the wrong shape
    - 401: the ingestion key is missing or invalid
    - 404: the project does not exist (with the API token only)
    - 413: the body or the batch is too large
    - 415: the content type is not JSON, or the content encoding is neither gzip nor identity
    - 422: events are invalid
    - 500: the store failed
    - 503: the server is shutting down
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pulseboard.server.settings import PROJECT_ID_PATTERN
from pulseboard.server.store import API_TOKEN_PREFIX, EventRow, Store, utcnow

logger = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 1_000
MAX_BODY_BYTES = 5 * 1024 * 1024
# Larger bodies are parsed in a worker thread, so they do not stall other requests on the event
# loop. Measured on a 2-CPU VM: a 1.1 MB batch of 1,000 events took 3 ms to load and 7 ms to validate.
OFFLOAD_BODY_BYTES = 32 * 1024
MAX_NAME_CHARS = 200  # for event names and distinct ids
MAX_PROPERTY_DEPTH = 10
MAX_FUTURE = dt.timedelta(days=1)
MIN_TIMESTAMP = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
EPOCH_MS_THRESHOLD = 1e11
# Property name parts that ClickHouse reads as JSON subcolumn syntax, or that no one can type in a query.
RESERVED_NAME_START = (":", "^")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

LOG_LEVELS = ("debug", "info", "warning", "error", "fatal")
LOG_FIELDS = ("message", "stack", "type", "level", "user", "tags", "timestamp", "uuid")
ANONYMOUS_DISTINCT_ID = "anonymous"

TIMESTAMP_EXAMPLE = "2024-05-01T12:00:00Z"
UUID_EXAMPLE = "0190a3f2-7c1e-7b8e-9a6f-3d2c1b0a9f8e"


class IngestError(Exception):
    """A request that cannot be stored, with its HTTP status and a list of problems.

    Each entry of `errors` has `field` and `message`, and `index` when the event came in a batch.
    """

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None, *, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.code = code or DEFAULT_CODES.get(status, "invalid_request")


DEFAULT_CODES = {
    400: "invalid_body",
    401: "unauthorized",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_events",
}


class WriterClosedError(Exception):
    """The EventWriter was closed, so it accepts no more events."""


# Validation


def parse_events(payload: Any, *, now: dt.datetime) -> list[EventRow]:
    """Validate one event, a `{"batch": [...]}` object or an array of events, and return the rows.

    Raises IngestError listing every invalid event, so a batch is stored completely or not at all.
    """
    items, indexed = _event_items(payload)
    rows: list[EventRow] = []
    errors: list[dict[str, Any]] = []
    bad_indexes: list[int] = []
    for index, item in enumerate(items):
        problems: list[tuple[str | None, str]] = []
        row = _parse_event(item, now, problems)
        if row is not None:
            rows.append(row)
            continue

        bad_indexes.append(index)
        for field_name, message in problems:
            error: dict[str, Any] = {"index": index} if indexed else {}
            error.update(field=field_name, message=message)
            errors.append(error)

    if not errors:
        return rows
    if not indexed:
        raise IngestError(422, "Invalid event: " + "; ".join(e["message"] for e in errors), errors)
    listed = ", ".join(str(index) for index in bad_indexes)
    verb, noun = ("is", "index") if len(bad_indexes) == 1 else ("are", "indexes")
    raise IngestError(
        422,
        f"{len(bad_indexes)} of {len(items)} events {verb} invalid ({noun} {listed}); nothing was stored",
        errors,
    )


def _event_items(payload: Any) -> tuple[list[Any], bool]:
    """Return the events of a payload and whether they came as a batch."""
    if isinstance(payload, dict) and "batch" in payload:
        items = payload["batch"]
        if not isinstance(items, list):
            raise IngestError(
                422,
                f"batch must be an array of events; got {describe(items)}",
                [{"field": "batch", "message": f"batch must be an array of events; got {describe(items)}"}],
            )
    elif isinstance(payload, dict):
        return [payload], False
    elif isinstance(payload, list):
        items = payload
    else:
        raise IngestError(
            400,
            "Body must be a JSON object (one event, or {\"batch\": [...]}) or an array of events; "
            f"got {describe(payload)}",
        )

    if not items:
        raise IngestError(422, f"Batch is empty; send 1 to {MAX_BATCH_EVENTS} events")
    if len(items) > MAX_BATCH_EVENTS:
        raise IngestError(
            413,
            f"Batch has {len(items)} events; the maximum is {MAX_BATCH_EVENTS}. Split it into several requests.",
        )
    return items, True


def _parse_event(item: Any, now: dt.datetime, problems: list[tuple[str | None, str]]) -> EventRow | None:
    """Return the validated row, or None after appending (field, message) for each problem."""
    if not isinstance(item, dict):
        problems.append((None, f"an event must be a JSON object; got {describe(item)}"))
        return None

    event = _parse_name(item, "event", 'a non-empty string such as "signed_up"', problems)
    distinct_id = _parse_distinct_id(item.get("distinct_id"), "distinct_id", problems)
    properties = _parse_properties(item.get("properties"), "properties", problems)
    timestamp = _parse_timestamp_field(item.get("timestamp"), "timestamp", now, problems)
    event_uuid = _parse_uuid(item.get("uuid"), "uuid", problems)
    if problems:
        return None
    return EventRow(
        uuid=event_uuid, event=event, distinct_id=distinct_id, timestamp=timestamp, properties=properties,
        uuid_generated=item.get("uuid") is None,
    )


def _parse_name(item: dict[str, Any], key: str, expected: str, problems: list[tuple[str | None, str]]) -> str:
    value = item.get(key)
    if value is None:
        problems.append((key, f"{key} is missing; send {expected}"))
        return ""
    if not isinstance(value, str) or not value.strip():
        problems.append((key, f"{key} must be {expected}; got {describe(value)}"))
        return ""
    if len(value) > MAX_NAME_CHARS:
        problems.append((key, f"{key} is {len(value)} characters long; the maximum is {MAX_NAME_CHARS}"))
        return ""
    return value


def _parse_distinct_id(value: Any, key: str, problems: list[tuple[str | None, str]]) -> str:
    if value is None:
        problems.append((key, f"{key} is missing; send the user's id as a non-empty string or a number"))
        return ""
    if isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and math.isfinite(value):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        problems.append((key, f"{key} must be a non-empty string or a number; got {describe(value)}"))
        return ""
    if len(value) > MAX_NAME_CHARS:
        problems.append((key, f"{key} is {len(value)} characters long; the maximum is {MAX_NAME_CHARS}"))
        return ""
    return value


def _parse_uuid(value: Any, key: str, problems: list[tuple[str | None, str]]) -> str:
    if value is None:
        return str(uuid.uuid4())
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    problems.append((key, f"{key} {quote(value)} is not a valid UUID; send e.g. {UUID_EXAMPLE} or leave it out"))
    return ""


def _parse_timestamp_field(
    value: Any, key: str, now: dt.datetime, problems: list[tuple[str | None, str]]
) -> dt.datetime:
    if value is None:
        return now
    try:
        return parse_timestamp(value, now=now)
    except ValueError as error:
        problems.append((key, f"{key} {error}"))
        return now


def parse_timestamp(value: Any, *, now: dt.datetime) -> dt.datetime:
    """Return an aware UTC datetime for an ISO 8601 text, a datetime or an epoch number.

    Raises ValueError with a message that starts with the quoted value, for the caller to prefix
    with the field name.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = parse_iso_datetime(value)
        if parsed is None:
            raise ValueError(f"{quote(value)} is not an ISO 8601 date-time; send e.g. {TIMESTAMP_EXAMPLE}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parsed = _from_epoch(value)
    else:
        raise ValueError(
            f"must be an ISO 8601 string such as {TIMESTAMP_EXAMPLE} or a Unix epoch number; got {describe(value)}"
        )

    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    parsed = parsed.astimezone(dt.timezone.utc)
    if parsed < MIN_TIMESTAMP:
        raise ValueError(f"{quote(value)} is before {format_iso(MIN_TIMESTAMP)}; send a later time")
    if parsed > now + MAX_FUTURE:
        raise ValueError(
            f"{quote(value)} is more than 1 day after the server time {format_iso(now)}; "
            "check the sender's clock, or the unit of an epoch number"
        )
    return parsed


def parse_iso_datetime(text: str) -> dt.datetime | None:
    """Parse an ISO 8601 date-time or date with Python 3.11's `fromisoformat`, or return None."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _from_epoch(value: float) -> dt.datetime:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{quote(value)} is not a finite number")
    try:
        seconds = value / 1000 if abs(value) >= EPOCH_MS_THRESHOLD else value
        return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{quote(value)} is out of range for an epoch in seconds or milliseconds") from None


def format_iso(value: dt.datetime) -> str:
    """Format an aware datetime as ISO 8601 in UTC with a `Z` suffix."""
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_properties(value: Any, key: str, problems: list[tuple[str | None, str]]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append((key, f"{key} must be an object; got {describe(value)}"))
        return {}

    before = len(problems)
    dotted = _check_values(value, key, 1, problems)
    if dotted and len(problems) == before:
        _check_path_collisions(value, key, problems)
    return value


def _check_values(value: dict[str, Any], path: str, depth: int, problems: list[tuple[str | None, str]]) -> bool:
    """Check names, nesting and values of a properties object, and return whether any name contains a dot."""
    if depth > MAX_PROPERTY_DEPTH:
        problems.append((path, f"{path} nests objects deeper than {MAX_PROPERTY_DEPTH} levels; flatten it"))
        return False

    dotted = False
    for name, item in value.items():
        item_path = f"{path}.{name}"
        if not isinstance(name, str):
            problems.append((path, f"{path} has the name {name!r}; property names must be strings"))
            continue
        if "." in name or not name:
            dotted = True
            if "" in name.split("."):
                problems.append((
                    item_path,
                    f"property name {quote(name)} is invalid: names are split at dots, "
                    "so each part between dots must be non-empty",
                ))
                continue
        name_problem = _name_problem(name)
        if name_problem:
            problems.append((item_path, f"property name {quote(name)} is invalid: {name_problem}; rename it"))
            continue
        if isinstance(item, dict):
            dotted = _check_values(item, item_path, depth + 1, problems) or dotted
        elif not _is_json_value(item, depth):
            problems.append((item_path, f"{item_path} is {describe(item)}; send a JSON value with finite numbers"))
    return dotted


def _name_problem(name: str) -> str:
    """Return why a property name would break queries, or '' when it is usable."""
    if CONTROL_CHARACTERS.search(name):
        return "it contains a control character"
    for part in name.split("."):
        if len(part) > MAX_NAME_CHARS:
            return f"a part is {len(part)} characters long, and the maximum is {MAX_NAME_CHARS}"
        if part.startswith(RESERVED_NAME_START):
            return f"a part starts with {quote(part[0])}, which ClickHouse reads as JSON subcolumn syntax"
    return ""


def _is_json_value(value: Any, depth: int) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > MAX_PROPERTY_DEPTH:
        return False
    if isinstance(value, list):
        return all(_is_json_value(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(name, str) and _is_json_value(item, depth + 1) for name, item in value.items())
    return False


def _check_path_collisions(value: dict[str, Any], key: str, problems: list[tuple[str | None, str]]) -> None:
    """Report names that the JSON column would store at the same path, or as both value and object.

    ClickHouse splits `{"a": 1, "a.b": 2}` into paths `a` and `a.b` of one row, which the
    clickhouse-connect 1.12 reader then fails to rebuild for every query that selects the row.
    """
    leaves: dict[tuple[str, ...], str] = {}
    for parts, spelled in _leaf_paths(value, (), ""):
        if parts in leaves:
            problems.append((key, f"properties {quote(leaves[parts])} and {quote(spelled)} are the same path; keep one"))
            return
        leaves[parts] = spelled

    for parts, spelled in leaves.items():
        for end in range(1, len(parts)):
            prefix = parts[:end]
            if prefix in leaves:
                problems.append((
                    key,
                    f"properties {quote(leaves[prefix])} and {quote(spelled)} collide: names are split at dots, "
                    f"so {quote(leaves[prefix])} cannot be both a value and an object; rename one",
                ))
                return


def _leaf_paths(value: dict[str, Any], parts: tuple[str, ...], spelled: str) -> Iterator[tuple[tuple[str, ...], str]]:
    for name, item in value.items():
        item_parts = parts + tuple(name.split("."))
        item_spelled = f"{spelled}.{name}" if spelled else name
        if isinstance(item, dict) and item:
            yield from _leaf_paths(item, item_parts, item_spelled)
        else:
            yield item_parts, item_spelled


def parse_log(payload: Any, *, now: dt.datetime) -> EventRow:
    """Validate one error report and return it as a `$exception` event.

    Properties: `$exception_message`, `$exception_level` (default "error"), `$exception_stack` and
    `$exception_type` when given, `$exception_fingerprint` and `$exception_top_frame` (see
    `exception_fingerprint`), and every tag as a top-level property, so `tags.account_id` becomes
    `properties.account_id`. The distinct_id is `user.id`; without one it is
    `account:<tags.account_id>` when that tag is set, else "anonymous".
    """
    if not isinstance(payload, dict):
        raise IngestError(400, f"Body must be a JSON object with a message; got {describe(payload)}")

    problems: list[tuple[str | None, str]] = []
    unknown = sorted(set(payload) - set(LOG_FIELDS))
    for name in unknown:
        problems.append((name, f"{name} is not a log field; send only {', '.join(LOG_FIELDS)}"))

    properties: dict[str, Any] = {}
    properties["$exception_message"] = _parse_name(payload, "message", "a non-empty string", problems)
    for key, property_name in (("stack", "$exception_stack"), ("type", "$exception_type")):
        text = payload.get(key)
        if text is None:
            continue
        if isinstance(text, str):
            properties[property_name] = text
        else:
            problems.append((key, f"{key} must be a string; got {describe(text)}"))
    properties["$exception_level"] = _parse_level(payload.get("level"), problems)

    tags = _parse_properties(payload.get("tags"), "tags", problems)
    for name, value in tags.items():
        if name.startswith("$exception_"):
            problems.append((f"tags.{name}", f"tag {quote(name)} would replace a reserved property; rename it"))
        properties[name] = value

    distinct_id = _log_distinct_id(payload.get("user"), tags, problems)
    timestamp = _parse_timestamp_field(payload.get("timestamp"), "timestamp", now, problems)
    event_uuid = _parse_uuid(payload.get("uuid"), "uuid", problems)
    if problems:
        errors = [{"field": field_name, "message": message} for field_name, message in problems]
        raise IngestError(
            422, "Invalid log: " + "; ".join(message for _, message in problems), errors, code="invalid_log"
        )

    fingerprint, top_frame = exception_fingerprint(
        properties.get("$exception_type", ""), properties["$exception_message"], properties.get("$exception_stack", "")
    )
    properties["$exception_fingerprint"] = fingerprint
    if top_frame:
        properties["$exception_top_frame"] = top_frame
    return EventRow(
        uuid=event_uuid, event="$exception", distinct_id=distinct_id, timestamp=timestamp, properties=properties,
        uuid_generated=payload.get("uuid") is None,
    )


# Variable parts of error messages and stack frames, replaced before hashing so that reports of
# one kind share a fingerprint: uuids, hexadecimal addresses, then any other run of digits.
_VARIABLE_PARTS = (
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
)
# A Python traceback lists the innermost frame last; JavaScript, Java and Go list it first.
_PYTHON_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)', re.MULTILINE)
_AT_FRAME = re.compile(r"^\s*at\s+(.+?)\s*$", re.MULTILINE)


def exception_fingerprint(exception_type: str, message: str, stack: str) -> tuple[str, str]:
    """Return (fingerprint, top frame) for an error report.

    The fingerprint is the first 32 hex digits of the SHA-256 of the type, the message and the top
    stack frame, each with uuids, hex addresses and numbers replaced, so "user 42 not found" and
    "user 43 not found" thrown at the same place share one. The top frame is the innermost frame
    of a Python traceback (`file in function`), or the first `at ...` line of a JavaScript or Java
    stack. Line and column numbers are dropped, and the top frame is '' when the stack has neither
    form.
    """
    top_frame = _top_frame(stack)
    text = "\n".join((exception_type, _normalize(message), top_frame))
    return hashlib.sha256(text.encode()).hexdigest()[:32], top_frame


def _top_frame(stack: str) -> str:
    python_frames = _PYTHON_FRAME.findall(stack)
    if python_frames:
        path, function = python_frames[-1]
        return f"{path} in {function}"
    match = _AT_FRAME.search(stack)
    if match:
        return re.sub(r":\d+(:\d+)?", "", match.group(1))
    return ""


def _normalize(text: str) -> str:
    for pattern, placeholder in _VARIABLE_PARTS:
        text = pattern.sub(placeholder, text)
    return text.strip()


def _parse_level(value: Any, problems: list[tuple[str | None, str]]) -> str:
    if value is None:
        return "error"
    if isinstance(value, str) and value.lower() in LOG_LEVELS:
        return value.lower()
    problems.append(("level", f"level {quote(value)} is not a log level; send one of {', '.join(LOG_LEVELS)}"))
    return ""


def _log_distinct_id(user: Any, tags: dict[str, Any], problems: list[tuple[str | None, str]]) -> str:
    if user is not None and not isinstance(user, dict):
        problems.append(("user", f"user must be an object such as {{\"id\": \"u_42\"}}; got {describe(user)}"))
        return ""
    if user and user.get("id") is not None:
        return _parse_distinct_id(user["id"], "user.id", problems)

    account = tags.get("account_id")
    if isinstance(account, (str, int)) and not isinstance(account, bool) and str(account):
        return f"account:{account}"
    return ANONYMOUS_DISTINCT_ID


def describe(value: Any) -> str:
    """Describe a JSON value for an error message: its kind and a short rendering."""
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", dict: "an object"}
    if value is None:
        return "null"
    kind = kinds.get(type(value), type(value).__name__)
    return f"{kind} {quote(value)}"


def quote(value: Any, limit: int = 60) -> str:
    """Quote a value for a message, shortened to about `limit` characters."""
    if isinstance(value, str):
        text = value if len(value) <= limit else value[:limit] + "..."
        return f"'{text}'"
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# Group commit


@dataclass
class _PendingGroup:
    events: list[EventRow] = field(default_factory=list)
    callers: list[tuple[asyncio.Future[None], int, int]] = field(default_factory=list)  # future, start, end
    timer: asyncio.TimerHandle | None = None


class EventWriter:
    """Group concurrent callers' events into one `store.insert_events` per project per flush.

    A group is flushed `window_s` after its first event arrives, or at once when it reaches
    `max_events`. `write` returns only after the insert containing its events has completed, and
    raises the insert's exception if it failed. When a grouped insert of several callers fails, each
    caller's events are inserted again on their own, so one caller's bad events cannot fail the
    others. A caller that is cancelled while it waits may still have its events stored.
    Events whose uuid the project already stores, or that repeat an earlier uuid of the same
    insert, are skipped (`insert_events(..., skip_stored=True)`).
    Use it from one event loop, as `async with EventWriter(store) as writer:`.
    `insert_count` counts the `store.insert_events` calls made, retries included.

    Measured on chDB 4.4 on a 2-CPU VM: 8 threads calling `insert_events` with one event each
    reached about 195 inserts/s, while one call with 1,000 events took about 14 ms. So a 10 ms
    window adds little latency and turns a burst of requests into a few inserts.
    """

    def __init__(self, store: Store, *, window_s: float = 0.01, max_events: int = 1_000) -> None:
        self.store = store
        self.window_s = window_s
        self.max_events = max_events
        self.insert_count = 0
        self._pending: dict[str, _PendingGroup] = {}
        self._flushing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def __aenter__(self) -> EventWriter:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def write(self, project_id: str, events: Sequence[EventRow]) -> None:
        """Store events with the next flush of their project's group; return when they are stored."""
        if self._closed:
            raise WriterClosedError("The event writer is closed; no more events are accepted")
        if not events:
            return

        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        group = self._pending.get(project_id)
        if group is None:
            group = _PendingGroup()
            group.timer = loop.call_later(self.window_s, self._start_flush, project_id)
            self._pending[project_id] = group

        start = len(group.events)
        group.events.extend(events)
        group.callers.append((future, start, len(group.events)))
        if len(group.events) >= self.max_events:
            self._start_flush(project_id)
        await future

    async def close(self) -> None:
        """Flush every pending group, wait for running inserts, and reject later writes."""
        self._closed = True
        for project_id in list(self._pending):
            self._start_flush(project_id)
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    def _start_flush(self, project_id: str) -> None:
        group = self._pending.pop(project_id, None)
        if group is None:
            return

        if group.timer is not None:
            group.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._flush(project_id, group))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, project_id: str, group: _PendingGroup) -> None:
        try:
            await self._insert(project_id, group.events)
        except Exception as error:
            if len(group.callers) == 1:
                logger.error("insert of %d events into project %s failed: %s", len(group.events), project_id, error)
                _settle(group.callers[0][0], error)
                return

            logger.warning(
                "grouped insert of %d events from %d requests into project %s failed (%s); "
                "inserting each request's events separately",
                len(group.events), len(group.callers), project_id, error,
            )
            await asyncio.gather(*(self._insert_alone(project_id, group, caller) for caller in group.callers))
            return

        for future, _, _ in group.callers:
            _settle(future, None)

    async def _insert_alone(
        self, project_id: str, group: _PendingGroup, caller: tuple[asyncio.Future[None], int, int]
    ) -> None:
        future, start, end = caller
        try:
            await self._insert(project_id, group.events[start:end])
        except Exception as error:
            logger.error("insert of %d events into project %s failed: %s", end - start, project_id, error)
            _settle(future, error)
            return
        _settle(future, None)

    async def _insert(self, project_id: str, events: list[EventRow]) -> None:
        self.insert_count += 1
        await asyncio.to_thread(partial(self.store.insert_events, project_id, events, skip_stored=True))


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    """Resolve a caller's future unless the caller has gone away (a cancelled request)."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


# HTTP endpoints


async def analytics_endpoint(request: Request) -> JSONResponse:
    """`POST /v1/analytics/{project_id}/`: store one event, a batch, or an array of events."""
    return await _ingest(request, "analytics", parse_events)


async def logs_endpoint(request: Request) -> JSONResponse:
    """`POST /v1/logs/{project_id}/`: store one error report as a `$exception` event."""
    return await _ingest(request, "logs", lambda payload, now: [parse_log(payload, now=now)])


def ingest_routes() -> list[Route]:
    """Return the ingestion routes, each with and without the trailing slash."""
    routes = []
    for path, endpoint in (("/v1/analytics/{project_id}", analytics_endpoint), ("/v1/logs/{project_id}", logs_endpoint)):
        routes.append(Route(path + "/", endpoint, methods=["POST"]))
        routes.append(Route(path, endpoint, methods=["POST"]))
    return routes


async def _ingest(
    request: Request, kind: str, parse: Callable[..., list[EventRow]]
) -> JSONResponse:
    started = time.perf_counter()
    project_id = request.path_params["project_id"]
    count = 0
    error_code = ""
    try:
        await authenticate(request, project_id)
        encoding = _check_content_headers(request)
        body = decompress(await read_body(request), encoding)
        if len(body) > OFFLOAD_BODY_BYTES:
            events = await asyncio.to_thread(_parse_body, body, parse)
        else:
            events = _parse_body(body, parse)
        count = len(events)
        await store_events(request, project_id, events)
        response = JSONResponse({"status": "ok", "stored": count})
    except IngestError as error:
        response = error_response(error)
        error_code = error.code

    log_request(kind, project_id, count, response.status_code, started, error_code)
    return response


def log_request(kind: str, project_id: str, count: int, status: int, started: float, error_code: str) -> None:
    """Log one line per ingestion request, with the error code and not the message, because messages quote event values."""
    elapsed_ms = (time.perf_counter() - started) * 1000
    logged_project = project_id if PROJECT_ID_PATTERN.match(project_id) else "(invalid)"
    logger.info(
        "ingest %s project=%s events=%d status=%d ms=%.1f%s",
        kind, logged_project, count, status, elapsed_ms, f" error={error_code}" if error_code else "",
    )


def error_response(error: IngestError) -> JSONResponse:
    body = {"error": {"code": error.code, "message": error.message, "details": error.errors}}
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(body, status_code=error.status, headers=headers)


async def authenticate(request: Request, project_id: str) -> None:
    """Accept the project's ingestion key or the API token as a bearer token; raise IngestError 401 or 404."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise IngestError(
            401,
            "Missing ingestion key; send the header Authorization: Bearer <project ingestion key>",
            code="missing_key",
        )

    store = request.app.state.runtime.store
    if is_api_token(request, key.strip()):
        await _require_project(store, project_id)
        return

    if key.strip().startswith(API_TOKEN_PREFIX):
        raise IngestError(
            401,
            "This is a project API token, which only /mcp accepts. Send the project's ingestion key, "
            "printed once by `pulseboard project create`, or the server's API token.",
            code="wrong_key_kind",
        )

    valid = PROJECT_ID_PATTERN.match(project_id) is not None
    if valid:
        cached = store.cached_ingest_key_check(project_id, key.strip())
        valid = cached if cached is not None else await asyncio.to_thread(store.check_ingest_key, project_id, key.strip())
    if not valid:
        # An unknown project gets the same response as a wrong key, so project ids cannot be probed.
        raise IngestError(401, "Invalid ingestion key for this project", code="invalid_key")


def is_api_token(request: Request, presented: str) -> bool:
    """Return whether `presented` is the app's API token, compared in constant time; False when the app has none."""
    expected = getattr(request.app.state, "api_token", "")
    if not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


async def _require_project(store: Store, project_id: str) -> None:
    exists = PROJECT_ID_PATTERN.match(project_id) is not None
    if exists:
        exists = await asyncio.to_thread(store.get_project, project_id) is not None
    if not exists:
        raise IngestError(
            404,
            f"Project {quote(project_id)} does not exist; create it with POST /v1/projects",
            code="unknown_project",
        )


def _check_content_headers(request: Request) -> str:
    """Check the JSON content type and return the content encoding: "gzip" or "identity"."""
    content_type = request.headers.get("content-type", "")
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        raise IngestError(
            415, f"Content-Type {quote(content_type)} is not supported; send Content-Type: application/json"
        )
    charset = _charset(parameters)
    if charset not in ("", "utf-8", "utf8"):
        raise IngestError(415, f"charset {quote(charset)} is not supported; send UTF-8 JSON")
    return content_encoding(request)


def content_encoding(request: Request) -> str:
    """Return the request's content encoding, "gzip" or "identity"; raise 415 for any other."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding not in ("gzip", "identity"):
        raise IngestError(
            415, f"Content-Encoding {quote(encoding)} is not supported; send the body uncompressed or gzip-compressed"
        )
    return encoding


def decompress(body: bytes, encoding: str) -> bytes:
    """Return the gzip-decompressed body when `encoding` is "gzip", stopping beyond MAX_BODY_BYTES."""
    if encoding != "gzip":
        return body

    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
    try:
        data = decompressor.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as error:
        raise IngestError(
            400, f"Body is not valid gzip data ({error}); compress it with gzip or drop Content-Encoding: gzip",
            code="invalid_gzip",
        ) from None
    if len(data) > MAX_BODY_BYTES:
        raise IngestError(
            413,
            f"Decompressed body is larger than {MAX_BODY_BYTES} bytes ({MAX_BODY_BYTES // (1024 * 1024)} MiB); "
            "split the batch",
        )
    if not decompressor.eof:
        raise IngestError(
            400, "Body is not valid gzip data (it ends before the gzip trailer); send the whole compressed body",
            code="invalid_gzip",
        )
    return data


def _parse_body(body: bytes, parse: Callable[..., list[EventRow]]) -> list[EventRow]:
    """Decode a UTF-8 JSON body and validate it with `parse`."""
    return parse(load_json(body), now=utcnow())


def load_json(body: bytes) -> Any:
    """Decode a UTF-8 JSON body; raise IngestError 400 naming the first problem."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise IngestError(
            400,
            f"Body is not valid UTF-8: {error.reason} (byte 0x{body[error.start]:02x} at offset {error.start})",
            code="invalid_encoding",
        ) from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise IngestError(
            400, f"Body is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}", code="invalid_json"
        ) from None
    except RecursionError:
        raise IngestError(400, "Body is not valid JSON: it nests too deeply", code="invalid_json") from None
    except ValueError:  # Python converts integers of at most 4300 digits by default
        raise IngestError(
            400, "Body is not valid JSON: a number has more than 4300 digits; send it as a string", code="invalid_json"
        ) from None
    return payload


def _charset(parameters: str) -> str:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


async def read_body(request: Request) -> bytes:
    """Read the body, stopping as soon as it exceeds MAX_BODY_BYTES."""
    too_large = IngestError(
        413, f"Body is larger than {MAX_BODY_BYTES} bytes ({MAX_BODY_BYTES // (1024 * 1024)} MiB); split the batch"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large

    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def store_events(request: Request, project_id: str, events: list[EventRow]) -> None:
    """Store events through the app's EventWriter; raise IngestError 503 or 500 when that fails."""
    writer: EventWriter = request.app.state.writer
    try:
        await writer.write(project_id, events)
    except WriterClosedError:
        raise IngestError(503, "The server is shutting down; retry the request", code="shutting_down") from None
    except Exception:
        error_id = secrets.token_hex(4)
        logger.exception("storing %d events for project %s failed (error id %s)", len(events), project_id, error_id)
        raise IngestError(
            500, f"The events could not be stored; retry later, and quote error id {error_id} if it persists",
            code="store_error",
        ) from None

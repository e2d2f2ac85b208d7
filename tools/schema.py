"""`describe_schema`: what an agent needs to write a correct HogQL query on the first try.

The output lists the events table's columns, the project's event names with counts, and its
property paths with their recorded types, counts, example values and the JSON types their values
were stored as. The queries here are internal ClickHouse SQL against the physical events table,
not user HogQL; every value they use, property paths included, is a bound parameter.

Path statistics come from `JSONAllPathsWithTypes` and examples from `getSubcolumn`. Both get
slower with every path stored in the same data parts, other projects' paths included. This was
measured on chDB 4.4 (2 CPU cores shared with other work, medians of 5 to 7 runs) over all
218,000 events of the demo project. Path statistics took 70 to 90 ms with the demo alone in the
table, and 1.0 to 2.2 s after a 50,000-event project with 300 paths was merged into the same
part. So path
statistics read the latest MAX_SCANNED_EVENTS events, plus the older events of names that do not
occur among them. Examples read fewer events when a project has many paths, and the output states
what each covers. The whole call then took 200 ms on the demo alone and 1.6 s on the merged part.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, Field

from pulseboard.server.settings import Settings
from pulseboard.server.store import Project, Store
from pulseboard.tools.errors import unknown_project_error
from pulseboard.tools.query import execution_settings

logger = logging.getLogger(__name__)

MAX_EVENTS = 200
MAX_PROPERTIES = 200
MAX_PROPERTIES_PER_EVENT = 30
MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 60
MAX_SCANNED_EVENTS = 100_000
# Events times property paths that example queries read at most: all 100,000 scanned events for 20
# paths, or the latest 10,000 events for 200 paths.
EXAMPLE_SCAN_CELLS = 2_000_000
# Property paths per example query, so one query never carries hundreds of aggregates.
EXAMPLE_PATHS_PER_QUERY = 50

# A key that HogQL reads after a dot, as in properties.$browser; other keys need ['...'].
PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")

TOTALS_SQL = """
SELECT count(), min(timestamp), max(timestamp)
FROM events
WHERE project_id = {project:String}
"""

EVENTS_SQL = """
SELECT event, count() AS events, max(timestamp) AS last_seen
FROM events
WHERE project_id = {project:String}
GROUP BY event
ORDER BY events DESC, event
LIMIT {limit:UInt64}
"""

HINTED_EVENTS_SQL = """
SELECT DISTINCT event
FROM events
WHERE project_id = {project:String} AND event IN {names:Array(String)}
"""

# The timestamp of the n-th latest event, with the number of events at or after it (ties included).
WINDOW_START_SQL = """
SELECT count(), min(timestamp)
FROM events
WHERE project_id = {project:String}
  AND timestamp >= (
      SELECT timestamp FROM events WHERE project_id = {project:String}
      ORDER BY timestamp DESC LIMIT 1 OFFSET {offset:UInt64}
  )
"""

WINDOW_EVENTS_SQL = """
SELECT DISTINCT event
FROM events
WHERE project_id = {project:String} AND timestamp >= {since:DateTime64(6, 'UTC')}
"""

# The rows that path statistics and examples read. The second form also reads every event of
# names missing from the window. It is a separate text, so the common case keeps a plain range on
# the sort key.
WINDOW_ROWS = "timestamp >= {since:DateTime64(6, 'UTC')}"
WINDOW_AND_OLDER_ROWS = "(timestamp >= {since:DateTime64(6, 'UTC')} OR event IN {older_names:Array(String)})"

# JSONAllPathsWithTypes returns, for each event, every path with a non-null value and the type it
# is stored as (Int64, String, Bool, Array(Nullable(String)), ...).
PATH_STATS_SQL = """
SELECT event, path, type, count() AS events
FROM (
    SELECT event, JSONAllPathsWithTypes(properties) AS paths
    FROM events
    WHERE project_id = {{project:String}} AND {rows}
)
ARRAY JOIN mapKeys(paths) AS path, mapValues(paths) AS type
GROUP BY event, path, type
"""

# One aggregate per path; getSubcolumn takes the path as a bound parameter, so a key such as
# `odd key` or `$groups.company` needs no quoting. topK gives frequent values (approximately, for
# paths with many distinct values).
EXAMPLES_AGGREGATE = (
    "topKIf({count})(substringUTF8(toString(getSubcolumn(properties, {{path_{index}:String}})), 1, {chars}), "
    "isNotNull(getSubcolumn(properties, {{path_{index}:String}})))"
)
EXAMPLES_SQL = """
SELECT {aggregates}
FROM events
WHERE project_id = {{project:String}} AND {rows}
"""

EVENTS_COLUMNS = [
    ("uuid", "UUID", "Unique id of the event."),
    ("event", "String", "Event name, such as '$pageview' or 'subscription_started'; see `events`."),
    ("distinct_id", "String", "Id of the user who sent the event."),
    (
        "timestamp",
        "DateTime64(6, 'UTC')",
        "When the event happened; stored in UTC and read in the project's timezone.",
    ),
    ("properties", "JSON", "Event properties; read one as properties.name (see properties_note and `properties`)."),
    ("inserted_at", "DateTime64(6, 'UTC')", "When the event was stored; readable by name, not part of SELECT *."),
]

SNAPSHOT_COLUMNS = [
    ("day", "Date", "Day the scores belong to, a date in the project's timezone."),
    ("account", "String", "Account id, as the account_health_score recipe returned it."),
    ("health_score", "Float64", "Score from 0 to 100 on that day."),
    ("status", "String", "Band of the score: critical, warn, ok, healthy or champion."),
    ("top_risk_signal", "String", "Signal that cost the account the most points on that day."),
    ("as_of", "DateTime64(6, 'UTC')", "Time the scores were computed for; read in the project's timezone."),
    ("computed_at", "DateTime64(6, 'UTC')", "When the snapshot was stored; read in the project's timezone."),
]

PROPERTIES_NOTE = (
    "Read a property as properties.name or properties.$browser, a nested one as properties.a.b, and a key "
    "with spaces or other characters as properties['odd key']. Each entry of `properties` gives the exact "
    "spelling in `hogql`. The recorded type decides the read: Numeric reads as Float64, Boolean as Bool, "
    "others as String. A missing property reads as NULL. A property in `mixed_types` was sent as more than "
    "one JSON type; read it as its advice says."
)


@dataclass(frozen=True)
class EventHint:
    event: str
    text: str
    properties: tuple[str, ...] = ()


# Hints for well-known events; a hint appears only when its event exists in the project, and
# names only the properties that event carries.
EVENT_HINTS = (
    EventHint("$exception", "`$exception` events are errors, not usage", ("$exception_message", "$exception_type")),
    EventHint("support_ticket_opened", "`support_ticket_opened` events are support tickets", ("subject", "priority")),
    EventHint("subscription_started", "`subscription_started` events start a paid subscription", ("plan", "mrr")),
    EventHint(
        "plan_changed",
        "`plan_changed` events move an account to another plan",
        ("plan", "mrr", "previous_plan", "previous_mrr"),
    ),
    EventHint("subscription_cancelled", "`subscription_cancelled` events end a subscription", ("mrr", "reason")),
    EventHint("$pageview", "`$pageview` events are page views", ("$pathname", "$current_url")),
)
BILLING_EVENTS = ("subscription_started", "plan_changed", "subscription_cancelled")
PROPERTY_HINTS = {
    "account_id": "properties.account_id is the account (customer company) of an event; group by it for "
    "per-account questions.",
    "$groups.company": "Accounts sent as PostHog groups are in properties.$groups.company.",
}


class SchemaColumn(BaseModel):
    name: str
    type: str = Field(description="ClickHouse type of the column.")
    description: str


class SchemaTable(BaseModel):
    name: str
    description: str
    columns: list[SchemaColumn]
    properties_note: str | None = Field(
        default=None, description="How to read event properties in HogQL; null for a table without properties."
    )


class EventSummary(BaseModel):
    event: str
    count: int = Field(description="Events with this name, over all time.")
    last_seen: str = Field(description="Time of the latest such event, ISO 8601 in UTC.")
    properties: list[str] = Field(
        description=f"Property paths this event carries, most common first, at most {MAX_PROPERTIES_PER_EVENT}; "
        "from the events that `properties_scope` covers."
    )


class StoredType(BaseModel):
    type: str = Field(description="JSON type of the stored values: string, number, boolean or array.")
    count: int = Field(description="Events that store the property with this type.")


class PropertySummary(BaseModel):
    path: str = Field(description="Property path, nested keys joined by '.'.")
    hogql: str = Field(description="How to write this property in HogQL, e.g. properties['odd key'].")
    type: str | None = Field(
        description="Recorded type: String, Numeric, Boolean or DateTime; null when none is recorded "
        "(arrays), which reads as String."
    )
    count: int = Field(description="Events that carry the property.")
    examples: list[str] = Field(
        description=f"Up to {MAX_EXAMPLES} frequent values as text, each cut to {MAX_EXAMPLE_CHARS} characters; "
        "empty when the property is absent from the events that examples come from."
    )
    stored_types: list[StoredType]


class MixedTypeProperty(BaseModel):
    path: str
    stored_types: list[StoredType]
    advice: str


class PropertiesScope(BaseModel):
    all_events: bool = Field(description="True when property counts cover every event.")
    events_scanned: int = Field(description="Events that property counts cover.")
    since: str | None = Field(description="Time of the oldest of the latest events scanned, ISO 8601 in UTC.")
    older_events_of: list[str] = Field(
        description="Event names missing from the latest events whose older events are scanned too."
    )
    examples_from_events: int = Field(description="Events that example values come from.")
    note: str


class SchemaOutput(BaseModel):
    """One project's events table, event names, property paths and hints, for writing HogQL."""

    project_id: str
    timezone: str = Field(description="The project's timezone; timestamps read in it.")
    total_events: int
    first_event_at: str | None = Field(description="Time of the earliest event, ISO 8601 in UTC.")
    last_event_at: str | None = Field(description="Time of the latest event, ISO 8601 in UTC.")
    tables: list[SchemaTable]
    events: list[EventSummary] = Field(description="Event names, most frequent first.")
    events_truncated: bool = Field(description=f"True when the project has more than {MAX_EVENTS} event names.")
    properties: list[PropertySummary] = Field(description="Property paths, most frequent first.")
    properties_truncated: bool = Field(
        description=f"True when the scanned events have more than {MAX_PROPERTIES} property paths."
    )
    properties_scope: PropertiesScope
    mixed_types: list[MixedTypeProperty] = Field(
        description="Properties stored as more than one JSON type, e.g. mrr sent as 750 and as \"750\"."
    )
    hints: list[str]


@dataclass(frozen=True)
class Scan:
    """Events to read: the latest `window` ones, from `since` on, and every event named in
    `older_names`, which do not occur among them."""

    project_id: str
    since: dt.datetime
    window: int
    older_names: tuple[str, ...] = ()
    older_count: int = 0

    @property
    def events(self) -> int:
        return self.window + self.older_count

    def rows_sql(self) -> str:
        return WINDOW_AND_OLDER_ROWS if self.older_names else WINDOW_ROWS

    def parameters(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {"project": self.project_id, "since": time_parameter(self.since)}
        if self.older_names:
            parameters["older_names"] = list(self.older_names)
        return parameters


@dataclass
class PathStats:
    """Counts of one property path over the scanned events."""

    count: int = 0
    stored: dict[str, int] = field(default_factory=dict)


def require_project(store: Store, project_id: str) -> Project:
    """Return the project, or raise the unknown-project error."""
    project = store.get_project(project_id)
    if project is None:
        raise unknown_project_error(project_id)
    return project


def describe_schema(
    store: Store,
    settings: Settings,
    project_id: str,
    *,
    max_scanned_events: int = MAX_SCANNED_EVENTS,
    example_scan_cells: int = EXAMPLE_SCAN_CELLS,
) -> SchemaOutput:
    """Describe a project's events and properties, with hints for writing HogQL."""
    project = require_project(store, project_id)
    run_settings = execution_settings(settings, "UTC")
    params = {"project": project_id}

    total, first_at, last_at = store.query(TOTALS_SQL, params, run_settings).rows[0]
    event_rows = store.query(EVENTS_SQL, {**params, "limit": MAX_EVENTS + 1}, run_settings).rows
    scan = choose_scan(store, project_id, total, first_at, event_rows, max_scanned_events, run_settings)
    stats, event_paths = path_statistics(store, scan, run_settings) if total else ({}, {})

    paths = sorted(stats, key=lambda path: (-stats[path].count, path))
    shown_paths = paths[:MAX_PROPERTIES]
    example_scan = narrow_scan(store, scan, example_scan_cells // max(len(shown_paths), 1), run_settings)
    examples = example_values(store, example_scan, shown_paths, run_settings) if shown_paths else {}
    recorded = store.property_types(project_id)

    properties = [
        PropertySummary(
            path=path,
            hogql=hogql_spelling(path),
            type=recorded.get(path),
            count=stats[path].count,
            examples=examples.get(path, []),
            stored_types=stored_types(stats[path]),
        )
        for path in shown_paths
    ]
    events = [
        EventSummary(
            event=event,
            count=count,
            last_seen=iso_utc(last_seen),
            properties=most_common(event_paths.get(event, {}), MAX_PROPERTIES_PER_EVENT),
        )
        for event, count, last_seen in event_rows[:MAX_EVENTS]
    ]
    hinted = {**params, "names": [hint.event for hint in EVENT_HINTS]}
    present_events = {row[0] for row in store.query(HINTED_EVENTS_SQL, hinted, run_settings).rows}
    logger.debug(
        "described project %s: %d events, %d event names, %d property paths",
        project_id, total, len(event_rows), len(paths),
    )
    return SchemaOutput(
        project_id=project_id,
        timezone=project.timezone,
        total_events=total,
        first_event_at=iso_utc(first_at) if total else None,
        last_event_at=iso_utc(last_at) if total else None,
        tables=[events_table(project.timezone), snapshots_table()],
        events=events,
        events_truncated=len(event_rows) > MAX_EVENTS,
        properties=properties,
        properties_truncated=len(paths) > MAX_PROPERTIES,
        properties_scope=properties_scope(total, scan, example_scan),
        mixed_types=mixed_types(stats, paths),
        hints=hints(present_events, event_paths, set(stats)),
    )


def choose_scan(
    store: Store,
    project_id: str,
    total: int,
    first_at: dt.datetime,
    event_rows: list[list[Any]],
    limit: int,
    run_settings: dict,
) -> Scan:
    """Choose the events that path statistics read: all of them, or the latest `limit` ones plus
    the older events of listed names missing from those, rarest first, up to `limit` more."""
    if total <= limit:
        return Scan(project_id, as_utc(first_at), total)

    window, since = latest_window(store, project_id, limit, run_settings)
    in_window = {
        row[0]
        for row in store.query(
            WINDOW_EVENTS_SQL, {"project": project_id, "since": time_parameter(since)}, run_settings
        ).rows
    }
    missing = sorted((count, event) for event, count, _ in event_rows[:MAX_EVENTS] if event not in in_window)
    older_names: list[str] = []
    older_count = 0
    for count, event in missing:
        if older_count + count > limit:
            break
        older_names.append(event)
        older_count += count
    return Scan(project_id, since, window, tuple(older_names), older_count)


def narrow_scan(store: Store, scan: Scan, limit: int, run_settings: dict) -> Scan:
    """Return the scan with its window cut to the latest `limit` events, when it is wider."""
    if scan.window <= limit:
        return scan

    window, since = latest_window(store, scan.project_id, limit, run_settings)
    return replace(scan, window=window, since=since)


def latest_window(store: Store, project_id: str, limit: int, run_settings: dict) -> tuple[int, dt.datetime]:
    """Return the number of the latest `limit` events, ties at the oldest included, and its time."""
    params = {"project": project_id, "offset": max(limit, 1) - 1}
    window, since = store.query(WINDOW_START_SQL, params, run_settings).rows[0]
    return window, as_utc(since)


def time_parameter(value: dt.datetime) -> str:
    """Format a time as the text a DateTime64(6, 'UTC') query parameter takes."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def path_statistics(
    store: Store, scan: Scan, run_settings: dict
) -> tuple[dict[str, PathStats], dict[str, dict[str, int]]]:
    """Count the scanned events per property path and stored JSON type, and per event and path."""
    stats: dict[str, PathStats] = defaultdict(PathStats)
    event_paths: dict[str, dict[str, int]] = defaultdict(dict)
    sql = PATH_STATS_SQL.format(rows=scan.rows_sql())
    for event, path, stored_type, count in store.query(sql, scan.parameters(), run_settings).rows:
        kind = json_type(stored_type)
        stats[path].count += count
        stats[path].stored[kind] = stats[path].stored.get(kind, 0) + count
        event_paths[event][path] = event_paths[event].get(path, 0) + count
    return stats, event_paths


def properties_scope(total: int, scan: Scan, example_scan: Scan) -> PropertiesScope:
    if total == 0:
        return PropertiesScope(
            all_events=True,
            events_scanned=0,
            since=None,
            older_events_of=[],
            examples_from_events=0,
            note="The project has no events yet.",
        )

    since = iso_utc(scan.since)
    if scan.window >= total:
        note = f"Property counts cover all {total} events."
    else:
        note = f"Property counts cover the latest {scan.window} of {total} events, since {since}"
        if scan.older_names:
            note += f", plus all older events named {', '.join(scan.older_names)} ({scan.older_count})"
        note += "; properties sent only on other events before then are not listed."
    if example_scan.events < scan.events:
        note += f" Examples come from {example_scan.events} of these events, the latest ones."
    return PropertiesScope(
        all_events=scan.window >= total,
        events_scanned=scan.events,
        since=since,
        older_events_of=list(scan.older_names),
        examples_from_events=example_scan.events,
        note=note,
    )


def example_values(store: Store, scan: Scan, paths: list[str], run_settings: dict) -> dict[str, list[str]]:
    """Return up to MAX_EXAMPLES frequent values of each path, as text cut to MAX_EXAMPLE_CHARS."""
    examples: dict[str, list[str]] = {}
    for start in range(0, len(paths), EXAMPLE_PATHS_PER_QUERY):
        chunk = paths[start : start + EXAMPLE_PATHS_PER_QUERY]
        # Only the loop index enters the SQL text; each path is bound as path_<index>.
        aggregates = ", ".join(
            EXAMPLES_AGGREGATE.format(count=MAX_EXAMPLES, index=index, chars=MAX_EXAMPLE_CHARS + 1)
            for index in range(len(chunk))
        )
        sql = EXAMPLES_SQL.format(aggregates=aggregates, rows=scan.rows_sql())
        params = {**scan.parameters(), **{f"path_{index}": path for index, path in enumerate(chunk)}}
        row = store.query(sql, params, run_settings).rows[0]
        for path, values in zip(chunk, row):
            examples[path] = [shorten(value) for value in values]
    return examples


def shorten(text: str) -> str:
    if len(text) <= MAX_EXAMPLE_CHARS:
        return text
    return text[:MAX_EXAMPLE_CHARS] + "…"


def json_type(clickhouse_type: str) -> str:
    """Return the JSON type of values that the JSON column stores as `clickhouse_type`."""
    if clickhouse_type == "String":
        return "string"
    if clickhouse_type == "Bool":
        return "boolean"
    if clickhouse_type.startswith(("Int", "UInt", "Float", "Decimal")):
        return "number"
    if clickhouse_type.startswith("Array("):
        return "array"
    return clickhouse_type


def stored_types(stats: PathStats) -> list[StoredType]:
    ordered = sorted(stats.stored.items(), key=lambda item: (-item[1], item[0]))
    return [StoredType(type=kind, count=count) for kind, count in ordered]


def mixed_types(stats: dict[str, PathStats], paths: Iterable[str]) -> list[MixedTypeProperty]:
    """List the paths stored as more than one JSON type, with how to read them."""
    mixed = []
    for path in paths:
        kinds = set(stats[path].stored)
        if len(kinds) < 2:
            continue

        spelled = hogql_spelling(path)
        if "number" in kinds and "string" in kinds:
            advice = f"Sent both as numbers and as strings: use toFloat({spelled}) for sums and comparisons."
        elif "boolean" in kinds and "string" in kinds:
            advice = f"Sent both as booleans and as strings: compare toString({spelled}) = 'true'."
        else:
            advice = f"Sent as {' and '.join(sorted(kinds))}: read it as text with toString({spelled})."
        mixed.append(MixedTypeProperty(path=path, stored_types=stored_types(stats[path]), advice=advice))
    return mixed


def hints(events: set[str], event_paths: dict[str, dict[str, int]], paths: set[str]) -> list[str]:
    """Return hints about well-known properties and events that this project has."""
    lines = [text for path, text in PROPERTY_HINTS.items() if path in paths]
    for hint in EVENT_HINTS:
        if hint.event not in events:
            continue

        carried = [hogql_spelling(name) for name in hint.properties if name in event_paths.get(hint.event, {})]
        lines.append(f"{hint.text}; they carry {', '.join(carried)}." if carried else f"{hint.text}.")

    billing = [event for event in BILLING_EVENTS if event in events and "mrr" in event_paths.get(event, {})]
    if billing and "account_id" in paths:
        lines.append(
            "An account's current MRR is the mrr of its latest billing event: "
            "SELECT properties.account_id AS account, argMax(toFloat(properties.mrr), timestamp) AS mrr "
            f"FROM events WHERE event IN ({quoted_list(billing)}) GROUP BY account."
        )
    return lines


def quoted_list(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def hogql_spelling(path: str) -> str:
    """Return how HogQL reads a path: properties.a.b, or properties['odd key'] for other keys."""
    spelled = "properties"
    for key in path.split("."):
        if PLAIN_KEY.match(key):
            spelled += f".{key}"
        else:
            escaped = key.replace("\\", "\\\\").replace("'", "\\'")
            spelled += f"['{escaped}']"
    return spelled


def events_table(timezone: str) -> SchemaTable:
    columns = [SchemaColumn(name=name, type=kind, description=text) for name, kind, text in EVENTS_COLUMNS]
    return SchemaTable(
        name="events",
        description=f"One row per event of this project; timestamps read in {timezone}.",
        columns=columns,
        properties_note=PROPERTIES_NOTE,
    )


def snapshots_table() -> SchemaTable:
    columns = [SchemaColumn(name=name, type=kind, description=text) for name, kind, text in SNAPSHOT_COLUMNS]
    return SchemaTable(
        name="health_snapshots",
        description=(
            "One row per account and day of this project's stored account health scores, the latest "
            "version of each; `pulseboard snapshot` writes them. Join to events on account, for example "
            "ON toString(e.properties.account_id) = s.account."
        ),
        columns=columns,
    )


def most_common(counts: dict[str, int], limit: int) -> list[str]:
    return sorted(counts, key=lambda name: (-counts[name], name))[:limit]


def as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def iso_utc(value: dt.datetime) -> str:
    """Format a time as ISO 8601 in UTC with a Z suffix."""
    return as_utc(value).isoformat().replace("+00:00", "Z")

"""describe_schema through the real MCP client, on projects with known events."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from mcp import Client, MCPError

from pulseboard.server.mcp_server import create_mcp
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import EventRow, Store
from pulseboard.tools.schema import describe_schema, hogql_spelling

LONG_MESSAGE = "Cannot read properties of undefined while rendering the revenue chart on the home page"

# (event, account, properties); event i happens on 2024-03-(i + 1) at 10:00 UTC.
KNOWN_EVENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("$pageview", "acme", {"$browser": "Chrome", "$groups": {"company": "acme"}}),
    ("$pageview", "acme", {"$browser": "Chrome", "odd key": "x y"}),
    ("$pageview", "globex", {"$browser": "Chrome"}),
    ("$pageview", "globex", {"$browser": "Firefox"}),
    ("$pageview", "globex", {"$browser": "Firefox"}),
    ("$pageview", "initech", {"$browser": "Safari", "tags": ["a", "b"], "beta": True}),
    ("subscription_started", "acme", {"mrr": 750, "plan": "pro"}),
    ("subscription_started", "globex", {"mrr": 250, "plan": "starter"}),
    ("plan_changed", "globex", {"mrr": "1875", "plan": "scale", "previous_plan": "starter"}),
    ("$exception", "acme", {"$exception_message": LONG_MESSAGE, "$exception_type": "ValueError"}),
]

# (path, hogql, recorded type, count, sorted examples, stored types)
EXPECTED_PROPERTIES = [
    ("account_id", "properties.account_id", "String", 10, ["acme", "globex", "initech"], [("string", 10)]),
    ("$browser", "properties.$browser", "String", 6, ["Chrome", "Firefox", "Safari"], [("string", 6)]),
    ("mrr", "properties.mrr", "Numeric", 3, ["1875", "250", "750"], [("number", 2), ("string", 1)]),
    ("plan", "properties.plan", "String", 3, ["pro", "scale", "starter"], [("string", 3)]),
    (
        "$exception_message",
        "properties.$exception_message",
        "String",
        1,
        [LONG_MESSAGE[:60] + "…"],
        [("string", 1)],
    ),
    ("$exception_type", "properties.$exception_type", "String", 1, ["ValueError"], [("string", 1)]),
    ("$groups.company", "properties.$groups.company", "String", 1, ["acme"], [("string", 1)]),
    ("beta", "properties.beta", "Boolean", 1, ["true"], [("boolean", 1)]),
    ("odd key", "properties['odd key']", "String", 1, ["x y"], [("string", 1)]),
    ("previous_plan", "properties.previous_plan", "String", 1, ["starter"], [("string", 1)]),
    ("tags", "properties.tags", None, 1, ["['a','b']"], [("array", 1)]),
]

EXPECTED_HINTS = [
    "properties.account_id is the account (customer company) of an event; group by it for per-account questions.",
    "Accounts sent as PostHog groups are in properties.$groups.company.",
    "`$exception` events are errors, not usage; they carry properties.$exception_message, "
    "properties.$exception_type.",
    "`subscription_started` events start a paid subscription; they carry properties.plan, properties.mrr.",
    "`plan_changed` events move an account to another plan; they carry properties.plan, properties.mrr, "
    "properties.previous_plan.",
    "`$pageview` events are page views.",
    "An account's current MRR is the mrr of its latest billing event: SELECT properties.account_id AS account, "
    "argMax(toFloat(properties.mrr), timestamp) AS mrr FROM events WHERE event IN ('subscription_started', "
    "'plan_changed') GROUP BY account.",
]

UNKNOWN_PROJECT = (
    "Project 'no_such_project' does not exist; check the project_id, or create it with `pulseboard project create no_such_project`."
)


def event_row(name: str, account: str | None, moment: dt.datetime, properties: dict[str, Any]) -> EventRow:
    account_property = {"account_id": account} if account else {}
    return EventRow(
        uuid=str(uuid.uuid4()),
        event=name,
        distinct_id=f"user-{account}",
        timestamp=moment,
        properties={**account_property, **properties},
    )


def day(index: int) -> dt.datetime:
    return dt.datetime(2024, 3, index + 1, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def runtime(store: Store, project, tmp_path) -> Runtime:
    created, _ = project
    settings = Settings(data_dir=tmp_path, clickhouse_url=store.url, default_project=created.project_id)
    return Runtime(settings, store)


@pytest.fixture
def known(runtime: Runtime) -> Runtime:
    rows = [event_row(name, account, day(index), props) for index, (name, account, props) in enumerate(KNOWN_EVENTS)]
    runtime.store.insert_events(runtime.settings.default_project, rows)
    return runtime


async def call_describe(runtime: Runtime, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    async with Client(create_mcp(runtime)) as client:
        result = await client.call_tool("describe_schema", arguments or {})
    assert result.is_error is False, result.content
    return result.structured_content


@pytest.mark.anyio
async def test_events_counts_and_last_seen(known: Runtime):
    content = await call_describe(known)

    events = [(entry["event"], entry["count"], entry["last_seen"]) for entry in content["events"]]
    assert events == [
        ("$pageview", 6, "2024-03-06T10:00:00Z"),
        ("subscription_started", 2, "2024-03-08T10:00:00Z"),
        ("$exception", 1, "2024-03-10T10:00:00Z"),
        ("plan_changed", 1, "2024-03-09T10:00:00Z"),
    ]
    assert content["events_truncated"] is False
    assert content["total_events"] == 10
    assert content["first_event_at"] == "2024-03-01T10:00:00Z"
    assert content["last_event_at"] == "2024-03-10T10:00:00Z"
    assert content["project_id"] == known.settings.default_project
    assert content["timezone"] == "UTC"


@pytest.mark.anyio
async def test_event_property_lists(known: Runtime):
    content = await call_describe(known)

    carried = {entry["event"]: entry["properties"] for entry in content["events"]}
    assert carried == {
        "$pageview": ["$browser", "account_id", "$groups.company", "beta", "odd key", "tags"],
        "subscription_started": ["account_id", "mrr", "plan"],
        "$exception": ["$exception_message", "$exception_type", "account_id"],
        "plan_changed": ["account_id", "mrr", "plan", "previous_plan"],
    }


@pytest.mark.anyio
async def test_properties_types_counts_examples(known: Runtime):
    content = await call_describe(known)

    properties = content["properties"]
    assert [entry["path"] for entry in properties] == [expected[0] for expected in EXPECTED_PROPERTIES]
    for entry, (path, hogql, kind, count, examples, stored) in zip(properties, EXPECTED_PROPERTIES):
        assert entry["hogql"] == hogql, path
        assert entry["type"] == kind, path
        assert entry["count"] == count, path
        assert sorted(entry["examples"]) == examples, path
        assert [(item["type"], item["count"]) for item in entry["stored_types"]] == stored, path
    assert content["properties_truncated"] is False


@pytest.mark.anyio
async def test_examples_most_frequent_first(known: Runtime):
    content = await call_describe(known)

    examples = {entry["path"]: entry["examples"] for entry in content["properties"]}
    assert examples["$browser"] == ["Chrome", "Firefox", "Safari"]
    assert examples["account_id"] == ["globex", "acme", "initech"]


@pytest.mark.anyio
async def test_mixed_type_report(known: Runtime):
    content = await call_describe(known)

    assert content["mixed_types"] == [
        {
            "path": "mrr",
            "stored_types": [{"type": "number", "count": 2}, {"type": "string", "count": 1}],
            "advice": "Sent both as numbers and as strings: use toFloat(properties.mrr) for sums and comparisons.",
        }
    ]


@pytest.mark.anyio
async def test_hints_only_for_present_events(known: Runtime):
    content = await call_describe(known)

    assert content["hints"] == EXPECTED_HINTS


@pytest.mark.anyio
async def test_hint_query_runs(known: Runtime):
    """The MRR hint's query, run as written, reads the mrr sent as the string "1875" too."""
    content = await call_describe(known)
    hogql = content["hints"][-1].split(": ", 1)[1].removesuffix(".") + " ORDER BY account"

    async with Client(create_mcp(known)) as client:
        result = await client.call_tool("analytics_query", {"hogql": hogql})
    assert result.is_error is False, result.content
    assert result.structured_content["rows"] == [["acme", 750.0], ["globex", 1875.0]]


@pytest.mark.anyio
async def test_hogql_spelling_reads_property(known: Runtime):
    """Each property's `hogql` spelling compiles and finds as many events as its `count`."""
    content = await call_describe(known)

    async with Client(create_mcp(known)) as client:
        for entry in content["properties"]:
            hogql = f"SELECT count() AS n FROM events WHERE isNotNull(toString({entry['hogql']}))"
            result = await client.call_tool("analytics_query", {"hogql": hogql})
            assert result.is_error is False, (entry["path"], result.content)
            assert result.structured_content["rows"] == [[entry["count"]]], entry["path"]


@pytest.mark.anyio
async def test_events_table_description(known: Runtime):
    content = await call_describe(known)

    table, _ = content["tables"]
    assert table["name"] == "events"
    assert [(column["name"], column["type"]) for column in table["columns"]] == [
        ("uuid", "UUID"),
        ("event", "String"),
        ("distinct_id", "String"),
        ("timestamp", "DateTime64(6, 'UTC')"),
        ("properties", "JSON"),
        ("inserted_at", "DateTime64(6, 'UTC')"),
    ]
    assert all(column["description"] for column in table["columns"])
    for spelling in ("properties.name", "properties.$browser", "properties['odd key']", "properties.a.b"):
        assert spelling in table["properties_note"]


@pytest.mark.anyio
async def test_snapshots_table_description(known: Runtime):
    content = await call_describe(known)

    _, table = content["tables"]
    assert table["name"] == "health_snapshots"
    assert [(column["name"], column["type"]) for column in table["columns"]] == [
        ("day", "Date"),
        ("account", "String"),
        ("health_score", "Float64"),
        ("status", "String"),
        ("top_risk_signal", "String"),
        ("as_of", "DateTime64(6, 'UTC')"),
        ("computed_at", "DateTime64(6, 'UTC')"),
    ]
    assert all(column["description"] for column in table["columns"])
    assert table["properties_note"] is None


@pytest.mark.anyio
async def test_scope_covers_all_events(known: Runtime):
    content = await call_describe(known)

    assert content["properties_scope"] == {
        "all_events": True,
        "events_scanned": 10,
        "since": "2024-03-01T10:00:00Z",
        "older_events_of": [],
        "examples_from_events": 10,
        "note": "Property counts cover all 10 events.",
    }


@pytest.mark.anyio
async def test_explicit_project_id(known: Runtime, store: Store):
    other, _ = store.create_project("t" + uuid.uuid4().hex[:12])
    store.insert_events(other.project_id, [event_row("signup", "acme", day(0), {})])

    content = await call_describe(known, {"project_id": other.project_id})

    assert content["project_id"] == other.project_id
    assert [(entry["event"], entry["count"]) for entry in content["events"]] == [("signup", 1)]
    assert [entry["path"] for entry in content["properties"]] == ["account_id"]


def test_scan_window_latest_events(known: Runtime):
    """With a scan limit below the event count, property statistics cover the latest events only."""
    output = describe_schema(known.store, known.settings, known.settings.default_project, max_scanned_events=4)

    assert output.properties_scope.model_dump() == {
        "all_events": False,
        "events_scanned": 4,
        "since": "2024-03-07T10:00:00Z",
        "older_events_of": [],
        "examples_from_events": 4,
        "note": "Property counts cover the latest 4 of 10 events, since 2024-03-07T10:00:00Z; "
        "properties sent only on other events before then are not listed.",
    }
    assert [(entry.path, entry.count) for entry in output.properties] == [
        ("account_id", 4),
        ("mrr", 3),
        ("plan", 3),
        ("$exception_message", 1),
        ("$exception_type", 1),
        ("previous_plan", 1),
    ]
    assert [(entry.event, entry.count) for entry in output.events][0] == ("$pageview", 6)
    assert output.events[0].properties == []


def test_scan_adds_older_rare_events(runtime: Runtime):
    """Event names missing from the latest events are scanned in full, rarest first, within the limit."""
    rows = [event_row("subscription_started", "acme", day(0), {"mrr": 750, "plan": "pro"})]
    rows += [event_row("signup", "acme", day(1), {"source": "ads"}) for _ in range(3)]
    rows += [event_row("$pageview", "acme", day(2 + index), {"$browser": "Chrome"}) for index in range(4)]
    runtime.store.insert_events(runtime.settings.default_project, rows)

    output = describe_schema(runtime.store, runtime.settings, runtime.settings.default_project, max_scanned_events=3)

    assert output.properties_scope.model_dump() == {
        "all_events": False,
        "events_scanned": 4,
        "since": "2024-03-04T10:00:00Z",
        "older_events_of": ["subscription_started"],
        "examples_from_events": 4,
        "note": "Property counts cover the latest 3 of 8 events, since 2024-03-04T10:00:00Z, plus all older "
        "events named subscription_started (1); properties sent only on other events before then are not listed.",
    }
    assert [(entry.path, entry.count) for entry in output.properties] == [
        ("account_id", 4),
        ("$browser", 3),
        ("mrr", 1),
        ("plan", 1),
    ]
    assert {entry.path: entry.examples for entry in output.properties}["mrr"] == ["750"]
    carried = {entry.event: entry.properties for entry in output.events}
    assert carried == {
        "$pageview": ["$browser", "account_id"],
        "signup": [],
        "subscription_started": ["account_id", "mrr", "plan"],
    }


def test_examples_window_for_many_paths(known: Runtime):
    """With 11 paths and room for 22 path reads, examples come from the latest 2 events only."""
    output = describe_schema(known.store, known.settings, known.settings.default_project, example_scan_cells=22)

    assert output.properties_scope.examples_from_events == 2
    assert output.properties_scope.events_scanned == 10
    assert output.properties_scope.note == (
        "Property counts cover all 10 events. Examples come from 2 of these events, the latest ones."
    )
    examples = {entry.path: sorted(entry.examples) for entry in output.properties}
    assert examples["account_id"] == ["acme", "globex"]
    assert examples["mrr"] == ["1875"]
    assert examples["$exception_type"] == ["ValueError"]
    assert examples["$browser"] == []
    assert examples["plan"] == ["scale"]
    assert [entry.count for entry in output.properties][:3] == [10, 6, 3]


@pytest.mark.anyio
async def test_empty_project(runtime: Runtime):
    content = await call_describe(runtime)

    assert content["total_events"] == 0
    assert content["first_event_at"] is None
    assert content["last_event_at"] is None
    assert content["events"] == []
    assert content["properties"] == []
    assert content["mixed_types"] == []
    assert content["hints"] == []
    assert content["properties_scope"] == {
        "all_events": True,
        "events_scanned": 0,
        "since": None,
        "older_events_of": [],
        "examples_from_events": 0,
        "note": "The project has no events yet.",
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("values", "stored", "advice"),
    [
        (
            [750, 300, "750"],
            [("number", 2), ("string", 1)],
            "Sent both as numbers and as strings: use toFloat(properties.value) for sums and comparisons.",
        ),
        (
            [True, "true", "false"],
            [("string", 2), ("boolean", 1)],
            "Sent both as booleans and as strings: compare toString(properties.value) = 'true'.",
        ),
        (
            [["a"], "a"],
            [("array", 1), ("string", 1)],
            "Sent as array and string: read it as text with toString(properties.value).",
        ),
        ([1, 1.5, 2], None, None),
    ],
)
async def test_mixed_type_cases(runtime: Runtime, values: list[Any], stored, advice):
    rows = [event_row("measured", None, day(index), {"value": value}) for index, value in enumerate(values)]
    runtime.store.insert_events(runtime.settings.default_project, rows)

    content = await call_describe(runtime)

    if stored is None:
        assert content["mixed_types"] == []
        return
    assert content["mixed_types"] == [
        {
            "path": "value",
            "stored_types": [{"type": kind, "count": count} for kind, count in stored],
            "advice": advice,
        }
    ]


@pytest.mark.anyio
async def test_limits_truncate(runtime: Runtime):
    wide = {f"p{index:03d}": f"value {index}" for index in range(201)}
    rows = [event_row("wide", None, day(0), wide), event_row("wide", None, day(1), wide)]
    rows += [event_row(f"event_{index:03d}", None, day(1), {}) for index in range(200)]
    runtime.store.insert_events(runtime.settings.default_project, rows)

    content = await call_describe(runtime)

    assert content["events_truncated"] is True
    assert len(content["events"]) == 200
    assert content["events"][0]["event"] == "wide"
    assert content["events"][0]["properties"] == [f"p{index:03d}" for index in range(30)]
    assert content["properties_truncated"] is True
    assert [entry["path"] for entry in content["properties"]] == [f"p{index:03d}" for index in range(200)]
    assert content["properties"][199]["examples"] == ["value 199"]


@pytest.mark.anyio
async def test_unknown_project_error(known: Runtime):
    async with Client(create_mcp(known)) as client:
        result = await client.call_tool("describe_schema", {"project_id": "no_such_project"})

    assert result.is_error is True
    assert result.content[0].text == f"Error executing tool describe_schema: {UNKNOWN_PROJECT}"


@pytest.mark.anyio
async def test_tool_annotations(known: Runtime):
    async with Client(create_mcp(known)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    tool = tools["describe_schema"]
    assert tool.annotations.read_only_hint is True
    assert tool.annotations.idempotent_hint is True
    assert tool.annotations.destructive_hint is not True
    assert "properties" in tool.output_schema["properties"]


@pytest.mark.anyio
async def test_resource_matches_tool(known: Runtime):
    project_id = known.settings.default_project
    async with Client(create_mcp(known)) as client:
        templates = (await client.list_resource_templates()).resource_templates
        tool = await client.call_tool("describe_schema", {})
        read = await client.read_resource(f"schema://{project_id}")

    assert [template.uri_template for template in templates] == ["schema://{project_id}"]
    (contents,) = read.contents
    assert contents.mime_type == "application/json"
    assert json.loads(contents.text) == tool.structured_content


@pytest.mark.anyio
async def test_resource_unknown_project(known: Runtime):
    async with Client(create_mcp(known)) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource("schema://no_such_project")

    assert raised.value.code == -32602
    assert raised.value.message == UNKNOWN_PROJECT


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("plan", "properties.plan"),
        ("$browser", "properties.$browser"),
        ("$groups.company", "properties.$groups.company"),
        ("odd key", "properties['odd key']"),
        ("2fa", "properties['2fa']"),
        ("it's", "properties['it\\'s']"),
        ("a.b c", "properties.a['b c']"),
        ("$feature/new-ui", "properties['$feature/new-ui']"),
    ],
)
def test_hogql_spelling(path: str, expected: str):
    assert hogql_spelling(path) == expected

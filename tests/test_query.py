"""run_hogql on the real store: rows, limits, and ClickHouse errors as the caller sees them."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import pulseboard.tools.query as query_module
from pulseboard.hogql import QueryFilters
from pulseboard.server.settings import Settings
from pulseboard.server.store import EventRow, Store
from pulseboard.tools.errors import QueryFailedError, UserInputError
from pulseboard.tools.query import compile_hogql, run_hogql


@pytest.fixture
def settings(store: Store, project, tmp_path) -> Settings:
    created, _ = project
    return Settings(data_dir=tmp_path, clickhouse_url=store.url, default_project=created.project_id)


@pytest.mark.parametrize(
    ("hogql", "message"),
    [
        (
            "SELECT f.event, count() FROM events f",
            "The query failed in ClickHouse: Column 'f.event' is not under aggregate function and not in "
            "GROUP BY keys. (NOT_AN_AGGREGATE)",
        ),
        (
            "SELECT toDate(timestamp) + 'x' FROM events",
            "The query failed in ClickHouse: Illegal types Date and String of arguments of function plus. "
            "(ILLEGAL_TYPE_OF_ARGUMENT)",
        ),
        (
            "SELECT nosuch FROM events",
            "The query failed in ClickHouse: Unknown expression identifier `nosuch`. (UNKNOWN_IDENTIFIER) "
            "The events table has the columns uuid, event, distinct_id, timestamp and properties; read event "
            "properties as properties.name. The health_snapshots table has the columns day, account, "
            "health_score, status, top_risk_signal, as_of and computed_at.",
        ),
        (
            "SELECT health FROM health_snapshots",
            "The query failed in ClickHouse: Unknown expression identifier `health`. (UNKNOWN_IDENTIFIER) "
            "The events table has the columns uuid, event, distinct_id, timestamp and properties; read event "
            "properties as properties.name. The health_snapshots table has the columns day, account, "
            "health_score, status, top_risk_signal, as_of and computed_at.",
        ),
    ],
)
def test_clickhouse_errors_are_cleaned(store: Store, settings: Settings, hogql: str, message: str):
    with pytest.raises(QueryFailedError) as raised:
        run_hogql(store, settings, settings.default_project, hogql)
    assert str(raised.value) == message
    assert settings.default_project not in str(raised.value)
    assert "pb_" not in str(raised.value)


def test_limit_within_bounds_is_not_truncated(store: Store, settings: Settings):
    output = run_hogql(store, settings, settings.default_project, "SELECT arrayJoin(range(150)) AS n LIMIT 120")
    assert output.row_count == 120
    assert output.truncated is False


def test_limit_above_maximum_is_clamped(store: Store, settings: Settings):
    output = run_hogql(store, settings, settings.default_project, "SELECT arrayJoin(range(10005)) AS n LIMIT 20000")
    assert output.row_count == 10000
    assert output.truncated is True
    assert output.rows[-1] == [9999]


def test_unknown_project_is_an_error(store: Store, settings: Settings):
    with pytest.raises(UserInputError) as raised:
        run_hogql(store, settings, "nope", "SELECT count() FROM events")
    assert str(raised.value) == (
        "Project 'nope' does not exist; check the project_id, or create it with `pulseboard project create nope`."
    )


def test_invalid_project_id_not_in_command(store: Store, settings: Settings):
    with pytest.raises(UserInputError) as raised:
        run_hogql(store, settings, "Acme Corp", "SELECT count() FROM events")
    assert str(raised.value) == (
        "Project 'Acme Corp' does not exist; check the project_id, or create it with "
        "`pulseboard project create <project_id>`."
    )


def test_default_limit_notice(store: Store, settings: Settings):
    output = run_hogql(store, settings, settings.default_project, "SELECT arrayJoin(range(150)) AS n")
    assert output.row_count == 100
    assert output.truncated is True
    assert output.notice == (
        "The result was cut at the default limit of 100 rows. Add LIMIT n (at most 10000) for more rows, "
        "or aggregate with GROUP BY to fewer rows."
    )


def test_maximum_limit_notice(store: Store, settings: Settings):
    output = run_hogql(store, settings, settings.default_project, "SELECT arrayJoin(range(10005)) AS n LIMIT 20000")
    assert output.notice == (
        "The result was cut at the maximum of 10000 rows. Aggregate with GROUP BY, filter, or page with "
        "LIMIT n OFFSET m."
    )


def test_untruncated_result_has_no_notice(store: Store, settings: Settings):
    output = run_hogql(store, settings, settings.default_project, "SELECT 1 AS n")
    assert output.notice is None


NARROW = "add or shorten a time range, such as WHERE timestamp >= now() - INTERVAL 7 DAY"


def test_time_limit_message(store: Store, settings: Settings):
    quick = settings.model_copy(update={"query_timeout_s": 1})
    with pytest.raises(QueryFailedError) as raised:
        run_hogql(
            store, quick, settings.default_project,
            "SELECT sum(cityHash64(a, b)) FROM (SELECT arrayJoin(range(100000)) AS a) AS x "
            "CROSS JOIN (SELECT arrayJoin(range(100001)) AS b) AS y",
        )
    assert str(raised.value) == (
        f"The query exceeded the time limit (1 s). Narrow the query: {NARROW}, filter on event, or aggregate "
        "in a subquery before joining."
    )


def test_memory_limit_message(store: Store, settings: Settings):
    small = settings.model_copy(update={"query_max_memory_mb": 64})
    with pytest.raises(QueryFailedError) as raised:
        run_hogql(store, small, settings.default_project, "SELECT groupArray(x) FROM (SELECT arrayJoin(range(20000000)) AS x)")
    assert str(raised.value) == (
        f"The query exceeded the memory limit (64 MiB). Narrow the query: {NARROW}, group by fewer or coarser "
        "keys, use uniq() instead of uniqExact() or groupArray(), or join smaller subqueries."
    )


def test_rows_read_limit_message(store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch):
    moment = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    events = [EventRow(uuid=str(uuid.uuid4()), event="pageview", distinct_id=f"u{n}", timestamp=moment) for n in range(3_000)]
    store.insert_events(settings.default_project, events)
    monkeypatch.setattr(query_module, "MAX_ROWS_TO_READ", 1_000)

    with pytest.raises(QueryFailedError) as raised:
        run_hogql(store, settings, settings.default_project, "SELECT sum(length(distinct_id)) FROM events")
    assert str(raised.value) == (
        f"The query exceeded the rows read limit (1,000 rows). Narrow the query: {NARROW} or filter on event, "
        "so it reads fewer events."
    )


def test_filters_through_run_hogql(store: Store, settings: Settings):
    days = [datetime.datetime(2024, 1, day, 12, tzinfo=datetime.timezone.utc) for day in (1, 2, 3)]
    events = [EventRow(uuid=str(uuid.uuid4()), event="pageview", distinct_id="u", timestamp=day) for day in days]
    store.insert_events(settings.default_project, events)

    output = run_hogql(
        store, settings, settings.default_project, "SELECT count() AS n FROM events WHERE {filters}",
        filters=QueryFilters(date_from="2024-01-02", date_to="2024-01-03"),
    )
    assert output.rows == [[1]]


def run_cli(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """Run `pulseboard` with its data in `tmp_path`, as a user would from a shell."""
    environment = {**os.environ, "PULSEBOARD_DATA_DIR": str(tmp_path)}
    pulseboard = str(Path(sys.executable).with_name("pulseboard"))
    return subprocess.run([pulseboard, *arguments], env=environment, capture_output=True, text=True, timeout=120)


def test_explain_prints_compiled_sql(tmp_path):
    assert run_cli(tmp_path, "project", "create", "shop").returncode == 0

    explained = run_cli(
        tmp_path, "query", "--project", "shop", "--explain", "SELECT properties.plan AS plan, count() FROM events GROUP BY plan"
    )

    assert explained.returncode == 0, explained.stderr
    assert explained.stdout == (
        "SELECT CAST(properties.\"plan\" AS Nullable(String)) AS plan, count() FROM events AS pb_t0 "
        "WHERE pb_t0.project_id = {pb_project:String} GROUP BY plan LIMIT 101\n"
    )


def test_explain_reports_compile_error(tmp_path):
    assert run_cli(tmp_path, "project", "create", "shop").returncode == 0

    explained = run_cli(tmp_path, "query", "--project", "shop", "--explain", "SELECT * FROM system.tables")

    assert explained.returncode == 2
    assert explained.stdout == ""
    assert explained.stderr.strip().splitlines()[-1] == (
        "pulseboard: Table 'system.tables' is not allowed. Only the events and health_snapshots tables "
        "and the query's own CTEs can be queried, without a database name. Line 1, Col 15."
    )


def test_stored_types_choose_typed_read(store: Store, settings: Settings):
    path = "plan_" + uuid.uuid4().hex[:8]
    moment = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    first = [EventRow(uuid=str(uuid.uuid4()), event="e", distinct_id="u", timestamp=moment, properties={path: "pro"})]
    store.insert_events(settings.default_project, first)
    text = f"SELECT properties.{path} AS plan, count() AS n FROM events GROUP BY plan ORDER BY plan"

    compiled, _ = compile_hogql(store, settings.default_project, text)
    assert f'properties."{path}".:String AS plan' in compiled.sql

    # Another project stores a number at the same path: the typed read would miss it, so the
    # compiler reads the dynamic value again.
    other, _ = store.create_project("o" + uuid.uuid4().hex[:12])
    second = [EventRow(uuid=str(uuid.uuid4()), event="e", distinct_id="u", timestamp=moment, properties={path: 7})]
    store.insert_events(other.project_id, second)

    compiled, _ = compile_hogql(store, settings.default_project, text)
    assert f'CAST(properties."{path}" AS Nullable(String)) AS plan' in compiled.sql
    assert run_hogql(store, settings, settings.default_project, text).rows == [["pro", 1]]
    assert run_hogql(store, settings, other.project_id, text).rows == [[7.0, 1]]

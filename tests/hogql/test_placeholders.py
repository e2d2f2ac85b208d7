"""Placeholders bound as typed server-side parameters, run on real chDB."""

from __future__ import annotations

import datetime

import pytest

from pulseboard.hogql import CompileContext, PlaceholderError, QueryFilters, compile_query

PLACEHOLDERS = {
    "as_of": (datetime.datetime(2024, 3, 1), "DateTime64(6, 'UTC')"),
    "window_days": (10, "Int64"),
    "w_usage": (0.5, "Float64"),
    "plans": (["pro", "team"], "Array(String)"),
    "plan": ("pro", "String"),
    "min_mrr": (50, "Int64"),
    "n": (2, "Int64"),
    "day": ("2024-02-25", "String"),
}

# (query, rows)
CASES = [
    ("SELECT count() FROM events WHERE timestamp >= {as_of} - INTERVAL {window_days} DAY", [(2,)]),
    ("SELECT {w_usage} * count() FROM events", [(2.0,)]),
    ("SELECT count() FROM events WHERE properties.plan IN {plans}", [(3,)]),
    ("SELECT count() FROM events WHERE properties.plan = {variables.plan}", [(2,)]),
    ("SELECT count() FROM events WHERE properties.mrr > {min_mrr}", [(2,)]),
    ("SELECT distinct_id FROM events ORDER BY distinct_id LIMIT {n}", [("u1",), ("u2",)]),
    ("SELECT count() FROM events WHERE timestamp >= toDateTime({day})", [(2,)]),
    ("SELECT '{plan}', {plan}", [("{plan}", "pro")]),
]


@pytest.fixture(scope="module")
def plans_project(new_project):
    project = new_project()
    project.insert(
        {"distinct_id": "u1", "timestamp": "2024-02-10 00:00:00", "properties": {"plan": "pro", "mrr": 100}},
        {"distinct_id": "u2", "timestamp": "2024-02-26 00:00:00", "properties": {"plan": "team", "mrr": "60"}},
        {"distinct_id": "u3", "timestamp": "2024-02-27 00:00:00", "properties": {"plan": "pro", "mrr": 10}},
        {"distinct_id": "u4", "timestamp": "2024-01-01 00:00:00", "properties": {"plan": "free"}},
    )
    return project


@pytest.mark.parametrize(("text", "rows"), CASES)
def test_placeholders_bound_and_run(plans_project, text, rows):
    result = plans_project.run(text, placeholders=PLACEHOLDERS)

    assert result.rows == rows


# Events at 10:00 UTC on 24, 25 and 26 October 2024, and one 3 days ago. In Berlin (UTC+2 in
# October) the 25th starts at 2024-10-24 22:00 UTC. (filters, timezone, distinct ids in the result)
FILTER_CASES = [
    (None, "UTC", ["d24", "d25", "d26", "recent"]),
    (QueryFilters(), "UTC", ["d24", "d25", "d26", "recent"]),
    (QueryFilters(date_from="2024-10-25"), "UTC", ["d25", "d26", "recent"]),
    (QueryFilters(date_to="2024-10-25"), "UTC", ["d24"]),
    (QueryFilters(date_from="2024-10-25", date_to="2024-10-26"), "UTC", ["d25"]),
    (QueryFilters(date_from="2024-10-25T10:00:00Z", date_to="2024-10-26T10:00:00Z"), "UTC", ["d25"]),
    (QueryFilters(date_from="2024-10-25T10:00:01+00:00"), "UTC", ["d26", "recent"]),
    (QueryFilters(date_from="2024-10-25", date_to="2024-10-26"), "Europe/Berlin", ["d25"]),
    (QueryFilters(date_to="2024-10-24T11:00:00"), "Europe/Berlin", []),
    (QueryFilters(date_to="2024-10-24T13:00:00"), "Europe/Berlin", ["d24"]),
    (QueryFilters(date_from="-7d"), "UTC", ["recent"]),
    (QueryFilters(date_from="-2h"), "UTC", []),
]


@pytest.fixture(scope="module")
def dated_project(new_project):
    project = new_project()
    recent = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    project.insert(
        {"distinct_id": "d24", "timestamp": "2024-10-24 10:00:00"},
        {"distinct_id": "d25", "timestamp": "2024-10-25 10:00:00"},
        {"distinct_id": "d26", "timestamp": "2024-10-26 10:00:00"},
        {"distinct_id": "recent", "timestamp": recent.strftime("%Y-%m-%d %H:%M:%S")},
    )
    return project


@pytest.mark.parametrize(("filters", "timezone", "distinct_ids"), FILTER_CASES)
def test_filters_date_range(dated_project, filters, timezone, distinct_ids):
    text = "SELECT distinct_id FROM events WHERE {filters} ORDER BY distinct_id"
    result = dated_project.run(text, filters=filters, timezone=timezone)

    assert [row[0] for row in result.rows] == distinct_ids


def test_filters_qualify_joined_events(dated_project):
    text = (
        "SELECT a.distinct_id, count() FROM events AS a JOIN events AS b ON a.event = b.event "
        "WHERE {filters} GROUP BY a.distinct_id ORDER BY a.distinct_id"
    )
    result = dated_project.run(text, filters=QueryFilters(date_from="2024-10-26"))

    assert result.rows == [("d26", 4), ("recent", 4)]


def test_filters_compile_to_bound_times():
    compiled = compile_query(
        "SELECT count() FROM events WHERE {filters}",
        CompileContext(project_id="p1", filters=QueryFilters(date_from="2024-10-25", date_to="-1d")),
    )

    assert compiled.sql == (
        "SELECT count() FROM events AS pb_t0 WHERE pb_t0.project_id = {pb_project:String} AND "
        "((timestamp >= parseDateTime64BestEffort({pb_s0:String}, 6, {pb_tz:String}) AND "
        "timestamp < now64(6, {pb_tz:String}) - INTERVAL 1 DAY)) LIMIT 101"
    )
    assert compiled.parameters == {"pb_project": "p1", "pb_s0": "2024-10-25", "pb_tz": "UTC"}


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (
            QueryFilters(date_from="last week"),
            "Invalid filters date_from 'last week': write an ISO 8601 date or time such as '2024-10-01' "
            "or '2024-10-01T12:00:00Z', or a relative date such as '-7d' (units h, d, w, m, y).",
        ),
        (
            QueryFilters(date_to="2024-13-01"),
            "Invalid filters date_to '2024-13-01': write an ISO 8601 date or time such as '2024-10-01' "
            "or '2024-10-01T12:00:00Z', or a relative date such as '-7d' (units h, d, w, m, y).",
        ),
    ],
)
def test_filters_invalid_date(filters, message):
    with pytest.raises(PlaceholderError) as raised:
        compile_query("SELECT count() FROM events", CompileContext(project_id="p1", filters=filters))

    assert str(raised.value) == message

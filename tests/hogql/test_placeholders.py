"""Placeholders bound as typed server-side parameters, run on real chDB."""

from __future__ import annotations

import datetime

import pytest

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

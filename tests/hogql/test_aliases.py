"""User aliases named like a table, a column or a lambda parameter: allowed, and never a way out of
the caller's project (real chDB).

Project B's events carry `properties.project_id` set to project A's id. Were the project guard
resolved through a user's expression alias, `<alias>.project_id` would read that JSON key and
project A's queries would return B's rows.
"""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from pulseboard.hogql import CompileContext, compile_query, restore_table_aliases

from .test_isolation import sort_rows

PROJECT_B_EVENTS = [("shared", "ub1"), ("only_b", "ub2")]

# (query run in project A, result column names, rows sorted with None first)
CASES = [
    ("SELECT count() AS events FROM events", ("events",), [(2,)]),
    ("SELECT count() AS e FROM events AS e", ("e",), [(2,)]),
    ("SELECT events.event, count() AS events FROM events GROUP BY events.event", ("event", "events"), [("only_a", 1), ("shared", 1)]),
    ("SELECT e.distinct_id, properties AS e FROM events AS e", ("distinct_id", "e"), [("ua1", {"project_id": "<b>"}), ("ua2", {})]),
    ("SELECT distinct_id, properties AS events FROM events WHERE events.event != ''", ("distinct_id", "events"), [("ua1", {"project_id": "<b>"}), ("ua2", {})]),
    ("WITH properties AS e SELECT e.distinct_id FROM events AS e", ("distinct_id",), [("ua1",), ("ua2",)]),
    ("SELECT e.event AS e FROM events AS e", ("e",), [("only_a",), ("shared",)]),
    ("SELECT count() AS properties FROM events", ("properties",), [(2,)]),
    ("SELECT count() AS distinct_id FROM events AS e", ("distinct_id",), [(2,)]),
    ("SELECT e.distinct_id, e FROM events AS e ARRAY JOIN [1, 2] AS e", ("distinct_id", "e"), [("ua1", 1), ("ua1", 2), ("ua2", 1), ("ua2", 2)]),
    (
        "SELECT arrayMap(e -> e * 2, [1, 2]) AS doubled, e.distinct_id FROM events e",
        ("doubled", "distinct_id"),
        [([2, 4], "ua1"), ([2, 4], "ua2")],
    ),
    ("SELECT e.distinct_id FROM (SELECT distinct_id FROM events AS e) AS e", ("distinct_id",), [("ua1",), ("ua2",)]),
    (
        "SELECT e.distinct_id FROM events AS e WHERE (SELECT count() FROM events AS f WHERE f.event = e.event) = 1",
        ("distinct_id",),
        [("ua1",), ("ua2",)],
    ),
    (
        "SELECT e.event, f.event FROM events e JOIN events f ON e.distinct_id = f.distinct_id",
        ("event", "f.event"),
        [("only_a", "only_a"), ("shared", "shared")],
    ),
    (
        "SELECT f.distinct_id, countIf(f.event = 'shared') FROM events e JOIN events f ON e.distinct_id = f.distinct_id "
        "GROUP BY f.distinct_id",
        ("f.distinct_id", "countIf(f.event = 'shared')"),
        [("ua1", 1), ("ua2", 0)],
    ),
    ("SELECT events.event FROM events WHERE events.distinct_id = 'ua1'", ("event",), [("shared",)]),
    ("SELECT e.event FROM events e WHERE e.distinct_id = 'ua2'", ("event",), [("only_a",)]),
    ("SELECT toString(e.event) FROM events e WHERE e.distinct_id = 'ua2'", ("toString(event)",), [("only_a",)]),
]


@pytest.fixture
def two_projects(new_project):
    project_a, project_b = new_project(), new_project()
    project_a.insert(
        {"event": "shared", "distinct_id": "ua1", "properties": {"project_id": project_b.project_id}},
        {"event": "only_a", "distinct_id": "ua2"},
    )
    project_b.insert(
        *({"event": event, "distinct_id": user, "properties": {"project_id": project_a.project_id}}
          for event, user in PROJECT_B_EVENTS)
    )
    return project_a, project_b


@pytest.mark.parametrize(("text", "columns", "rows"), CASES)
def test_alias_reads_only_own_project(two_projects, text, columns, rows):
    project_a, project_b = two_projects
    expected = [
        tuple({"project_id": project_b.project_id} if value == {"project_id": "<b>"} else value for value in row)
        for row in rows
    ]

    result = project_a.run(text)

    assert result.columns == columns
    assert sort_rows(result.rows) == expected
    assert "pb_t0.project_id = {pb_project:String}" in result.compiled.sql


def test_alias_guard_uses_internal_alias(two_projects):
    project_a, _ = two_projects

    result = project_a.run("SELECT properties AS e, e.distinct_id FROM events AS e WHERE e.event = 'shared'")

    assert result.compiled.sql == (
        'SELECT properties AS e, pb_t0.distinct_id AS "distinct_id" FROM events AS pb_t0 '
        "WHERE pb_t0.project_id = {pb_project:String} AND (pb_t0.event = {pb_s0:String}) LIMIT 101"
    )
    assert [row[1] for row in result.rows] == ["ua1"]


def test_alias_restored_in_clickhouse_error(two_projects):
    project_a, _ = two_projects
    text = "SELECT e.event, f.event FROM events e JOIN events f ON e.uuid = f.uuid GROUP BY e.event"
    compiled = compile_query(text, CompileContext(project_id=project_a.project_id))

    with pytest.raises(DatabaseError) as raised:
        project_a.run(text)
    message = restore_table_aliases(str(raised.value), compiled)

    assert compiled.table_aliases == {"pb_t0": "e", "pb_t1": "f"}
    assert "Column 'f.event' is not under aggregate function and not in GROUP BY keys" in message
    assert "pb_t" not in message

"""Two projects in one store: every query shape reads only the caller's project (real chDB)."""

from __future__ import annotations

import pytest

# Both projects have an event named "shared", so a join on `event` would pair their rows if a
# guard were missing. Distinct ids start with the project's letter.
PROJECT_A_EVENTS = [("shared", "ua1"), ("only_a", "ua2")]
PROJECT_B_EVENTS = [("shared", "ub1"), ("only_b", "ub2")]

# (query run in project A, rows sorted with None first)
CASES = [
    ("SELECT event, distinct_id FROM events", [("only_a", "ua2"), ("shared", "ua1")]),
    ("SELECT distinct_id FROM events WHERE 1 = 1 OR 1 = 1", [("ua1",), ("ua2",)]),
    ("SELECT distinct_id FROM events WHERE distinct_id = 'ub1' OR true", [("ua1",), ("ua2",)]),
    ("SELECT * FROM events WHERE distinct_id = 'ub1'", []),
    ("WITH x AS (SELECT distinct_id FROM events) SELECT distinct_id FROM x", [("ua1",), ("ua2",)]),
    ("SELECT distinct_id FROM (SELECT distinct_id FROM events) AS s", [("ua1",), ("ua2",)]),
    (
        "SELECT count() FROM events WHERE event IN (SELECT event FROM events WHERE distinct_id LIKE 'ub%')",
        [(0,)],
    ),
    ("SELECT (SELECT count() FROM events) AS total", [(2,)]),
    ("SELECT count() FROM events WHERE EXISTS (SELECT 1 FROM events WHERE distinct_id = 'ub1')", [(0,)]),
    (
        "SELECT e.distinct_id, f.distinct_id FROM events AS e JOIN events AS f ON e.event = f.event",
        [("ua1", "ua1"), ("ua2", "ua2")],
    ),
    ("SELECT count() FROM events AS e, events AS f", [(4,)]),
    ("SELECT count() FROM events AS e CROSS JOIN events AS f WHERE 1 = 1 OR 1 = 1", [(4,)]),
    (
        "SELECT e.distinct_id, f.distinct_id FROM events AS e "
        "LEFT JOIN events AS f ON e.event = f.event AND f.distinct_id != e.distinct_id",
        [("ua1", None), ("ua2", None)],
    ),
    (
        "SELECT e.distinct_id, f.distinct_id FROM events AS e LEFT JOIN events AS f USING (event)",
        [("ua1", "ua1"), ("ua2", "ua2")],
    ),
    (
        "SELECT e.distinct_id, f.distinct_id FROM events AS e "
        "RIGHT JOIN events AS f ON e.event = f.event AND e.distinct_id != f.distinct_id",
        [(None, "ua1"), (None, "ua2")],
    ),
    (
        "SELECT e.distinct_id, f.distinct_id FROM events AS e FULL OUTER JOIN events AS f ON e.distinct_id = f.distinct_id",
        [("ua1", "ua1"), ("ua2", "ua2")],
    ),
    (
        "SELECT e.distinct_id, f.distinct_id FROM events AS e "
        "FULL OUTER JOIN events AS f ON e.distinct_id = f.distinct_id AND e.event = 'only_a'",
        [(None, "ua1"), ("ua1", None), ("ua2", "ua2")],
    ),
    (
        "SELECT s.distinct_id FROM (SELECT distinct_id FROM events) AS s JOIN events AS e ON s.distinct_id = e.distinct_id",
        [("ua1",), ("ua2",)],
    ),
    (
        "SELECT distinct_id FROM events UNION ALL SELECT distinct_id FROM events WHERE 1 = 1 OR 1 = 1",
        [("ua1",), ("ua1",), ("ua2",), ("ua2",)],
    ),
    (
        "WITH x AS (SELECT distinct_id FROM events) SELECT distinct_id FROM x UNION ALL SELECT distinct_id FROM x",
        [("ua1",), ("ua1",), ("ua2",), ("ua2",)],
    ),
    (
        "SELECT distinct_id FROM events WHERE event = 'shared' UNION DISTINCT SELECT distinct_id FROM events",
        [("ua1",), ("ua2",)],
    ),
    (
        "SELECT distinct_id FROM events INTERSECT SELECT distinct_id FROM events WHERE 1 = 1 OR 1 = 1",
        [("ua1",), ("ua2",)],
    ),
    ("SELECT distinct_id FROM events EXCEPT SELECT distinct_id FROM events WHERE event = 'shared'", [("ua2",)]),
    ("(SELECT distinct_id FROM events) ORDER BY distinct_id LIMIT 1", [("ua1",)]),
    (
        "SELECT arrayJoin(groupArray(distinct_id)) AS id FROM events",
        [("ua1",), ("ua2",)],
    ),
    # RIGHT joins keep the tables direct and hold the guard in ON and WHERE.
    (
        "SELECT e.distinct_id, f.distinct_id FROM events AS e RIGHT JOIN events AS f "
        "ON e.event = f.event AND e.distinct_id != f.distinct_id",
        [(None, "ua1"), (None, "ua2")],
    ),
    ("SELECT count() FROM events AS e CROSS JOIN events AS f RIGHT JOIN events AS g ON e.event = g.event", [(4,)]),
    (
        "SELECT e.distinct_id, g.distinct_id FROM events AS e JOIN events AS f ON e.uuid = f.uuid "
        "RIGHT JOIN events AS g ON f.event = g.event ORDER BY g.distinct_id",
        [("ua1", "ua1"), ("ua2", "ua2")],
    ),
    # Correlated subqueries in the SELECT list, with an equality and with a range condition.
    (
        "SELECT e.distinct_id, (SELECT count() FROM events AS f WHERE f.event = e.event) AS same FROM events AS e",
        [("ua1", 1), ("ua2", 1)],
    ),
    (
        "SELECT e.distinct_id, (SELECT count() FROM events AS f WHERE f.distinct_id <= e.distinct_id) AS upto "
        "FROM events AS e",
        [("ua1", 1), ("ua2", 2)],
    ),
]


@pytest.fixture
def two_projects(new_project):
    project_a, project_b = new_project(), new_project()
    project_a.insert(*({"event": event, "distinct_id": user} for event, user in PROJECT_A_EVENTS))
    project_b.insert(*({"event": event, "distinct_id": user} for event, user in PROJECT_B_EVENTS))
    return project_a, project_b


def sort_rows(rows):
    return sorted(rows, key=lambda row: tuple((value is not None, value) for value in row))


@pytest.mark.parametrize(("text", "rows"), CASES)
def test_isolation_reads_only_own_project(two_projects, text, rows):
    project_a, _ = two_projects

    result = project_a.run(text)

    assert sort_rows(result.rows) == rows


def test_isolation_other_project_sees_its_own(two_projects):
    _, project_b = two_projects

    result = project_b.run("SELECT e.distinct_id, f.distinct_id FROM events AS e JOIN events AS f ON e.event = f.event")

    assert sort_rows(result.rows) == [("ub1", "ub1"), ("ub2", "ub2")]


def test_isolation_star_hides_project_id(two_projects):
    project_a, _ = two_projects

    result = project_a.run("SELECT * FROM events AS e, events AS f")

    assert result.columns == (
        "uuid", "event", "distinct_id", "timestamp", "properties",
        "f.uuid", "f.event", "f.distinct_id", "f.timestamp", "f.properties",
    )
    assert len(result.rows) == 4

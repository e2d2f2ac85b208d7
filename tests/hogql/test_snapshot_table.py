"""The health_snapshots table in HogQL: every scope reads only the caller's project, and a day
written twice reads its latest version (real chDB)."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any

import pytest

from pulseboard.hogql import UnknownColumnError

# Both projects score an account named "shared", so a join on account would pair their rows if a
# guard were missing. Other accounts start with the project's letter.
PROJECT_A_SNAPSHOTS = [("2025-03-01", "shared", 40.0), ("2025-03-01", "a1", 80.0), ("2025-03-02", "a1", 70.0)]
PROJECT_B_SNAPSHOTS = [("2025-03-01", "shared", 10.0), ("2025-03-02", "b1", 90.0)]
# Events of project A: a distinct id per account, so events join snapshots on distinct_id = account.
PROJECT_A_EVENTS = ["shared", "a1"]
PROJECT_B_EVENTS = ["shared", "b1"]

# (query run in project A, rows sorted with None first)
CASES = [
    (
        "SELECT day, account, health_score FROM health_snapshots",
        [(dt.date(2025, 3, 1), "a1", 80.0), (dt.date(2025, 3, 1), "shared", 40.0), (dt.date(2025, 3, 2), "a1", 70.0)],
    ),
    ("SELECT account FROM health_snapshots WHERE 1 = 1 OR 1 = 1", [("a1",), ("a1",), ("shared",)]),
    ("SELECT account FROM health_snapshots WHERE account = 'b1' OR true", [("a1",), ("a1",), ("shared",)]),
    ("SELECT health_score FROM health_snapshots WHERE account = 'shared'", [(40.0,)]),
    ("SELECT count() FROM health_snapshots AS s WHERE s.account = 'b1'", [(0,)]),
    ("WITH x AS (SELECT account FROM health_snapshots) SELECT DISTINCT account FROM x", [("a1",), ("shared",)]),
    ("SELECT DISTINCT account FROM (SELECT account FROM health_snapshots) AS t", [("a1",), ("shared",)]),
    ("SELECT (SELECT count() FROM health_snapshots) AS total", [(3,)]),
    ("SELECT (SELECT max(health_score) FROM health_snapshots) AS top", [(80.0,)]),
    (
        "SELECT count() FROM events WHERE distinct_id IN (SELECT account FROM health_snapshots WHERE account LIKE 'b%')",
        [(0,)],
    ),
    ("SELECT count() FROM events WHERE EXISTS (SELECT 1 FROM health_snapshots WHERE account = 'b1')", [(0,)]),
    (
        "SELECT a.health_score, b.health_score FROM health_snapshots AS a "
        "JOIN health_snapshots AS b ON a.account = b.account AND a.day = b.day WHERE a.account = 'shared'",
        [(40.0, 40.0)],
    ),
    ("SELECT count() FROM health_snapshots AS a, health_snapshots AS b", [(9,)]),
    (
        "SELECT a.account, b.account FROM health_snapshots AS a "
        "LEFT JOIN health_snapshots AS b ON a.account = b.account AND a.day != b.day WHERE a.account = 'shared'",
        [("shared", None)],
    ),
    (
        "SELECT a.account, b.account FROM health_snapshots AS a "
        "RIGHT JOIN health_snapshots AS b ON a.account = b.account AND a.day != b.day WHERE b.account = 'shared'",
        [(None, "shared")],
    ),
    (
        "SELECT a.account, b.account FROM health_snapshots AS a "
        "FULL OUTER JOIN health_snapshots AS b ON a.account = b.account AND b.account = 'b1'",
        [(None, "a1"), (None, "a1"), (None, "shared"), ("a1", None), ("a1", None), ("shared", None)],
    ),
    (
        "SELECT e.distinct_id, s.health_score FROM events AS e "
        "JOIN health_snapshots AS s ON e.distinct_id = s.account WHERE s.day = '2025-03-01'",
        [("a1", 80.0), ("shared", 40.0)],
    ),
    (
        "SELECT e.distinct_id, s.account FROM events AS e "
        "FULL OUTER JOIN health_snapshots AS s ON e.distinct_id = s.account AND s.day = '2025-03-02'",
        [(None, "a1"), (None, "shared"), ("a1", "a1"), ("shared", None)],
    ),
    (
        "SELECT s.account, e.distinct_id FROM health_snapshots AS s "
        "LEFT JOIN events AS e ON e.distinct_id = s.account AND e.distinct_id = 'b1' WHERE s.day = '2025-03-02'",
        [("a1", None)],
    ),
    (
        "SELECT account FROM health_snapshots WHERE day = '2025-03-02' "
        "UNION ALL SELECT distinct_id FROM events WHERE 1 = 1 OR 1 = 1",
        [("a1",), ("a1",), ("shared",)],
    ),
    (
        "SELECT s.account, (SELECT count() FROM events AS e WHERE e.distinct_id = s.account) AS n "
        "FROM health_snapshots AS s WHERE s.day = '2025-03-01'",
        [("a1", 1), ("shared", 1)],
    ),
    (
        "SELECT e.distinct_id, (SELECT max(health_score) FROM health_snapshots AS s WHERE s.account = e.distinct_id) AS top "
        "FROM events AS e",
        [("a1", 80.0), ("shared", 40.0)],
    ),
    (
        "SELECT account, argMax(health_score, day) AS latest FROM health_snapshots GROUP BY account",
        [("a1", 70.0), ("shared", 40.0)],
    ),
]


def insert_snapshots(client: Any, project_id: str, rows: list[tuple[str, str, float]], version: int = 1) -> None:
    """Insert snapshot rows (day, account, health_score) of one project with one version."""
    lines = [
        json.dumps({
            "project_id": project_id, "day": day, "account": account, "health_score": score,
            "status": "ok", "top_risk_signal": "none", "as_of": f"{day} 23:00:00",
            "computed_at": f"{day} 23:00:01", "version": version,
        })
        for day, account, score in rows
    ]
    client.command("INSERT INTO health_snapshots FORMAT JSONEachRow\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def project_a(new_project, hogql_ch):
    project_a, project_b = new_project(), new_project()
    insert_snapshots(hogql_ch, project_a.project_id, PROJECT_A_SNAPSHOTS)
    insert_snapshots(hogql_ch, project_b.project_id, PROJECT_B_SNAPSHOTS)
    project_a.insert(*[{"event": "pageview", "distinct_id": user} for user in PROJECT_A_EVENTS])
    project_b.insert(*[{"event": "pageview", "distinct_id": user} for user in PROJECT_B_EVENTS])
    return project_a


def sort_key(row: tuple) -> tuple:
    return tuple((value is not None, value) for value in row)


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_snapshots_read_only_caller(project_a, text, expected):
    result = project_a.run(text)

    assert sorted(result.rows, key=sort_key) == sorted(expected, key=sort_key)


def test_snapshots_star_columns(project_a):
    result = project_a.run("SELECT * FROM health_snapshots WHERE account = 'shared'")

    assert result.columns == ("day", "account", "health_score", "status", "top_risk_signal", "as_of", "computed_at")
    # clickhouse-connect returns UTC times without a timezone.
    assert result.rows == [
        (dt.date(2025, 3, 1), "shared", 40.0, "ok", "none", dt.datetime(2025, 3, 1, 23, 0), dt.datetime(2025, 3, 1, 23, 0, 1)),
    ]


def test_snapshots_times_in_project_timezone(project_a):
    result = project_a.run(
        "SELECT as_of, toHour(as_of) FROM health_snapshots WHERE account = 'shared'", timezone="Europe/Berlin"
    )

    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    assert result.rows == [(dt.datetime(2025, 3, 2, 0, 0, tzinfo=berlin), 0)]


def test_snapshots_self_join_column_names(project_a):
    result = project_a.run(
        "SELECT a.account, b.account FROM health_snapshots AS a JOIN health_snapshots AS b "
        "ON a.account = b.account AND a.day = b.day WHERE a.account = 'shared'"
    )

    assert result.columns == ("account", "b.account")
    assert result.rows == [("shared", "shared")]


def test_snapshots_unknown_column(project_a):
    with pytest.raises(UnknownColumnError) as raised:
        project_a.run("SELECT s.health FROM health_snapshots AS s")

    assert raised.value.message == (
        "Unknown column 's.health'. The health_snapshots table has the columns day, account, health_score, "
        "status, top_risk_signal, as_of, computed_at; did you mean s.health_score?"
    )
    assert (raised.value.line, raised.value.column) == (1, 10)


def test_rewritten_day_reads_latest_version(new_project, hogql_ch):
    project = new_project()
    # A merge could remove the older version at any time, so merges stay stopped while the test runs.
    hogql_ch.command("SYSTEM STOP MERGES health_snapshots")
    try:
        insert_snapshots(hogql_ch, project.project_id, [("2025-03-01", "a1", 80.0), ("2025-03-01", "a2", 60.0)], 1)
        insert_snapshots(hogql_ch, project.project_id, [("2025-03-01", "a1", 55.0)], 2)
        stored = hogql_ch.query(
            "SELECT count() FROM health_snapshots WHERE project_id = {p:String}", parameters={"p": project.project_id}
        )
        result = project.run("SELECT account, health_score FROM health_snapshots ORDER BY account")
        counted = project.run("SELECT count() FROM health_snapshots WHERE day = '2025-03-01'")
    finally:
        hogql_ch.command("SYSTEM START MERGES health_snapshots")

    assert stored.result_rows == [(3,)]
    assert result.rows == [("a1", 55.0), ("a2", 60.0)]
    assert counted.rows == [(2,)]

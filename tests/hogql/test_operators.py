"""HogQL's regex operators `=~` and `!~`, compiled to ClickHouse's match() and run on real chDB."""

from __future__ import annotations

import pytest

from pulseboard.hogql import CompileContext, compile_query

# (query, rows)
CASES = [
    ("SELECT distinct_id FROM events WHERE properties.$browser =~ '^Chr' ORDER BY distinct_id", [("u1",), ("u3",)]),
    ("SELECT distinct_id FROM events WHERE properties.$browser !~ '^Chr' ORDER BY distinct_id", [("u2",), ("u4",)]),
    ("SELECT distinct_id FROM events WHERE properties.$browser=~'fox$'", [("u2",)]),
    ("SELECT distinct_id FROM events WHERE NOT properties.$browser =~ 'o' ORDER BY distinct_id", [("u4",)]),
    ("SELECT countIf(properties.$browser =~ '(?i)chrome') FROM events", [(2,)]),
    ("SELECT 'a=~b', 'abc' =~ 'b', 'abc' !~ 'b'", [("a=~b", 1, 0)]),
]


@pytest.fixture(scope="module")
def browsers(new_project):
    project = new_project()
    project.insert(
        {"distinct_id": "u1", "properties": {"$browser": "Chrome"}},
        {"distinct_id": "u2", "properties": {"$browser": "Firefox"}},
        {"distinct_id": "u3", "properties": {"$browser": "Chrome Mobile"}},
        {"distinct_id": "u4", "properties": {"$browser": "Safari"}},
        {"distinct_id": "u5", "properties": {}},
    )
    return project


@pytest.mark.parametrize(("text", "rows"), CASES)
def test_regex_operator_rows(browsers, text, rows):
    assert browsers.run(text).rows == rows


def test_regex_operator_compiles_to_match():
    compiled = compile_query("SELECT event FROM events WHERE event !~ '^\\$'", CompileContext(project_id="p1"))

    assert compiled.sql == (
        "SELECT event FROM events AS pb_t0 WHERE pb_t0.project_id = {pb_project:String} AND "
        "(NOT match(event, {pb_s0:String})) LIMIT 101"
    )
    assert compiled.parameters == {"pb_project": "p1", "pb_s0": "^\\$"}

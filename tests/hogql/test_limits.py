"""Row limits and truncation on real chDB: five events, small default and maximum limits."""

from __future__ import annotations

import pytest

LIMITS = {"default_limit": 3, "max_limit": 4}

# (query, row count returned, truncated, row_cap)
CASES = [
    ("SELECT distinct_id FROM events", 3, True, 3),
    ("SELECT distinct_id FROM events LIMIT 2", 2, False, None),
    ("SELECT distinct_id FROM events LIMIT 4", 4, False, None),
    ("SELECT distinct_id FROM events LIMIT 100", 4, True, 4),
    ("SELECT distinct_id FROM events WHERE distinct_id != 'u1'", 3, True, 3),
    ("SELECT distinct_id FROM events WHERE distinct_id NOT IN ('u1', 'u2')", 3, False, 3),
    ("SELECT distinct_id FROM events LIMIT 1 BY event", 1, False, 3),
    ("SELECT distinct_id FROM events LIMIT 2 OFFSET 4", 1, False, None),
    # Each arm gets the default of 3, the whole union the row cap of 3 (+1 to detect truncation).
    ("SELECT distinct_id FROM events UNION ALL SELECT distinct_id FROM events", 3, True, 3),
    ("SELECT distinct_id FROM events LIMIT 1 UNION ALL SELECT distinct_id FROM events LIMIT 1", 2, False, 3),
]


@pytest.fixture(scope="module")
def five_events(new_project):
    project = new_project()
    project.insert(*({"event": "pageview", "distinct_id": f"u{index}"} for index in range(1, 6)))
    return project


@pytest.mark.parametrize(("text", "count", "truncated", "row_cap"), CASES)
def test_limits_cap_rows(five_events, text, count, truncated, row_cap):
    result = five_events.run(text, **LIMITS)

    assert len(result.rows) == count
    assert result.truncated is truncated
    assert result.compiled.row_cap == row_cap


def test_limits_subqueries_keep_their_rows(five_events):
    result = five_events.run("SELECT count() FROM (SELECT distinct_id FROM events)", **LIMITS)

    assert result.rows == [(5,)]
    assert result.truncated is False

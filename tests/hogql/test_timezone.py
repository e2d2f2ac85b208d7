"""The project timezone on real chDB: local-day buckets, unchanged instant comparisons."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def late_evening(new_project):
    project = new_project()
    # 23:30 UTC on 1 January is 00:30 on 2 January in Berlin.
    project.insert(
        {"distinct_id": "late", "timestamp": "2024-01-01 23:30:00"},
        {"distinct_id": "early", "timestamp": "2024-01-01 08:00:00"},
    )
    return project


def test_timezone_buckets_by_local_day(late_evening):
    result = late_evening.run(
        "SELECT toDate(timestamp) AS day, count() FROM events GROUP BY day ORDER BY day",
        timezone="Europe/Berlin",
    )

    assert result.rows == [(datetime.date(2024, 1, 1), 1), (datetime.date(2024, 1, 2), 1)]


def test_timezone_utc_buckets_by_utc_day(late_evening):
    result = late_evening.run("SELECT toDate(timestamp) AS day, count() FROM events GROUP BY day ORDER BY day")

    assert result.rows == [(datetime.date(2024, 1, 1), 2)]


def test_timezone_selected_timestamp_is_local(late_evening):
    result = late_evening.run(
        "SELECT timestamp FROM events WHERE distinct_id = 'late'",
        timezone="Europe/Berlin",
    )

    assert result.columns == ("timestamp",)
    assert result.rows == [(datetime.datetime(2024, 1, 2, 0, 30, tzinfo=BERLIN),)]


def test_timezone_comparisons_use_instants(late_evening):
    result = late_evening.run(
        "SELECT distinct_id FROM events WHERE timestamp >= toDateTime('2024-01-02 00:00:00')",
        timezone="Europe/Berlin",
    )

    # Midnight in Berlin is 23:00 UTC, so only the 23:30 UTC event is on or after it.
    assert result.rows == [("late",)]


def test_timezone_grouped_timestamp_matches_select(late_evening):
    result = late_evening.run(
        "SELECT timestamp, count() FROM events GROUP BY timestamp ORDER BY timestamp",
        timezone="Europe/Berlin",
    )

    assert result.rows == [
        (datetime.datetime(2024, 1, 1, 9, 0, tzinfo=BERLIN), 1),
        (datetime.datetime(2024, 1, 2, 0, 30, tzinfo=BERLIN), 1),
    ]

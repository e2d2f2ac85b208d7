"""run_hogql on the real store: rows, limits, and ClickHouse errors as the caller sees them."""

from __future__ import annotations

import pytest

from pulseboard.server.settings import Settings
from pulseboard.server.store import Store
from pulseboard.tools.errors import QueryFailedError, UserInputError
from pulseboard.tools.query import run_hogql


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
            "properties as properties.name.",
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
        "Project 'nope' does not exist; check the project_id, or create it with `pulseboard project create`."
    )

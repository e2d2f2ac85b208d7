"""Health score snapshots, score history columns, the score_drops recipe and the drill-down."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from pulseboard.server.demo import ingest_events
from pulseboard.server.settings import Settings
from pulseboard.server.snapshots import SnapshotRow, snapshot_days, write_snapshots
from pulseboard.server.store import Store
from pulseboard.tools.drilldown import account_drilldown
from pulseboard.tools.errors import UserInputError
from pulseboard.tools.query import run_hogql
from pulseboard.tools.recipes import run_recipe
from pulseboard.tools.snapshots import take_snapshot

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 3, 14, 15, 30, tzinfo=UTC)
TODAY = NOW.date()
SECTION_NAMES = [
    "summary", "usage_by_week", "active_users", "top_events", "errors", "tickets", "billing", "score_history",
    "last_activity",
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("snapshot-settings"))


def event(account: str, name: str, when: dt.datetime, user: str = "u1", **properties: Any) -> dict[str, Any]:
    return {
        "event": name, "distinct_id": user, "timestamp": when.isoformat(),
        "properties": {"account_id": account, **properties},
    }


def rows_of(output) -> list[dict[str, Any]]:
    names = [column.name for column in output.columns]
    return [dict(zip(names, row)) for row in output.rows]


def store_scores(store: Store, project_id: str, scores: dict[dt.date, dict[str, float]]) -> None:
    for day, by_account in scores.items():
        rows = [SnapshotRow(account, value, "ok", f"signal {value:g}") for account, value in by_account.items()]
        write_snapshots(store, project_id, day, dt.datetime.combine(day, dt.time(12), tzinfo=UTC), rows)


def subscribe_acme(store: Store, project_id: str) -> None:
    """Store one subscription_started event, so the health score has the account acme."""
    ingest_events(
        store, project_id,
        [event("acme", "subscription_started", NOW - dt.timedelta(days=40), plan="pro", mrr=750)],
        now=NOW,
    )


def test_snapshot_is_idempotent_per_day(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    ingest_events(
        store, project_id,
        [
            event("acme", "subscription_started", NOW - dt.timedelta(days=40), plan="pro", mrr=750),
            event("acme", "query_run", NOW - dt.timedelta(days=1)),
            event("beta", "subscription_started", NOW - dt.timedelta(days=40), plan="pro", mrr=750),
        ],
        now=NOW,
    )

    first = take_snapshot(store, settings, project_id, now=NOW)
    again = take_snapshot(store, settings, project_id, now=NOW + dt.timedelta(hours=1))
    backfilled = take_snapshot(store, settings, project_id, as_of="2025-03-10", now=NOW)

    assert (first.day, first.accounts, first.skipped) == (TODAY, 2, 0)
    assert (again.day, again.accounts) == (TODAY, 2)
    assert backfilled.as_of == dt.datetime(2025, 3, 10, 23, 59, 59, 999999, tzinfo=UTC)
    assert snapshot_days(store, project_id) == [(dt.date(2025, 3, 10), 2), (TODAY, 2)]


def test_rewritten_day_drops_missing_accounts(store: Store, project):
    project_id = project[0].project_id
    store_scores(store, project_id, {TODAY: {"acme": 50.0, "beta": 60.0}})
    store_scores(store, project_id, {TODAY: {"acme": 55.0}})

    assert snapshot_days(store, project_id) == [(TODAY, 1)]


@pytest.mark.parametrize(
    ("as_of", "params", "message"),
    [
        ("2025-03-20", None, "as_of 2025-03-20T23:59:59.999999+00:00 is in the future; snapshots record past or present scores."),
        ("next week", None, "as_of 'next week' is not a date (2025-03-14) or ISO 8601 date-time (2025-03-14T23:00:00Z)."),
        (None, {"limit": 5}, "Parameters limit are set by the snapshot itself; give the time as as_of instead."),
    ],
)
def test_snapshot_rejects_bad_input(store: Store, settings: Settings, project, as_of, params, message):
    with pytest.raises(UserInputError) as raised:
        take_snapshot(store, settings, project[0].project_id, as_of=as_of, params=params, now=NOW)

    assert str(raised.value) == message


def test_score_history_and_changes(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    subscribe_acme(store, project_id)
    history = {TODAY - dt.timedelta(days=days): {"acme": 90.0 - days} for days in (45, 31, 30, 8, 1, 0)}
    store_scores(store, project_id, history)

    row = rows_of(run_recipe(store, settings, project_id, "account_health_score", {"as_of": NOW}))[0]

    # Today's live score is 0: no usage, and usage carries the whole weight.
    assert row["health_score"] == 0.0
    assert row["score_history"] == [82.0, 89.0, 90.0]
    assert row["score_change_7d"] == -82.0
    assert row["score_change_30d"] == -60.0


def test_score_drops(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    yesterday = TODAY - dt.timedelta(days=1)
    store_scores(
        store, project_id,
        {
            TODAY - dt.timedelta(days=3): {"acme": 95.0},
            yesterday: {"acme": 80.0, "beta": 70.0, "gamma": 50.0, "delta": 40.0},
            TODAY: {"acme": 60.0, "beta": 55.0, "gamma": 40.0, "epsilon": 10.0},
        },
    )

    drops = rows_of(run_recipe(store, settings, project_id, "score_drops", {"as_of": NOW}))
    lower = rows_of(run_recipe(store, settings, project_id, "score_drops", {"as_of": NOW, "min_drop": 5}))
    longer = rows_of(run_recipe(store, settings, project_id, "score_drops", {"as_of": NOW, "period_hours": 72}))

    assert drops == [
        {
            "account": "acme", "score_before": 80.0, "score_now": 60.0, "score_drop": 20.0, "status": "ok",
            "top_risk_signal": "signal 60", "day_before": yesterday.isoformat(), "day_now": TODAY.isoformat(),
        }
    ]
    assert [(row["account"], row["score_drop"]) for row in lower] == [("acme", 20.0), ("beta", 15.0), ("gamma", 10.0)]
    assert [(row["account"], row["score_before"], row["score_drop"]) for row in longer] == [("acme", 95.0, 35.0)]


def test_rewritten_day_reads_latest_version(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    subscribe_acme(store, project_id)
    yesterday = TODAY - dt.timedelta(days=1)
    store_scores(store, project_id, {yesterday: {"acme": 80.0}, TODAY: {"acme": 60.0}})
    # An overlapping earlier write of the same day leaves an older version until a merge removes
    # it. Merges stay stopped, so both versions are stored while the recipes run.
    store.client.command("SYSTEM STOP MERGES health_snapshots")
    try:
        store.client.insert(
            "health_snapshots",
            [[project_id, TODAY, "acme", 99.0, "champion", "none", NOW, NOW, 1]],
            column_names=[
                "project_id", "day", "account", "health_score", "status", "top_risk_signal", "as_of", "computed_at",
                "version",
            ],
        )
        stored = store.query(
            "SELECT count() FROM health_snapshots WHERE project_id = {p:String} AND day = {d:Date}",
            {"p": project_id, "d": TODAY},
        )
        drops = rows_of(run_recipe(store, settings, project_id, "score_drops", {"as_of": NOW}))
        health = rows_of(run_recipe(store, settings, project_id, "account_health_score", {"as_of": NOW}))
    finally:
        store.client.command("SYSTEM START MERGES health_snapshots")

    assert stored.rows == [[2]]
    assert [(row["account"], row["score_now"], row["status"]) for row in drops] == [("acme", 60.0, "ok")]
    assert health[0]["score_history"] == [80.0, 60.0]


def test_analytics_query_reads_own_snapshots(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    neighbour = store.create_project("t" + uuid.uuid4().hex[:12])[0].project_id
    store_scores(store, project_id, {TODAY: {"acme": 60.0}})
    store_scores(store, neighbour, {TODAY: {"acme": 10.0, "other": 20.0}})

    output = run_hogql(
        store, settings, project_id,
        "SELECT account, health_score, top_risk_signal FROM health_snapshots WHERE 1 = 1 OR account = 'other'",
    )

    assert output.rows == [["acme", 60.0, "signal 60"]]


def test_drilldown_one_account(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    ingest_events(
        store, project_id,
        [
            event("acme", "subscription_started", NOW - dt.timedelta(days=40), plan="starter", mrr=250),
            event("acme", "plan_changed", NOW - dt.timedelta(days=20), plan="pro", mrr=750),
            event("acme", "query_run", NOW - dt.timedelta(days=2), user="ann"),
            event("acme", "query_run", NOW - dt.timedelta(days=3), user="ann"),
            event("acme", "dashboard_viewed", NOW - dt.timedelta(days=9), user="bob"),
            event("acme", "$exception", NOW - dt.timedelta(days=6), **{"$exception_message": "Timeout"}),
            event("acme", "$exception", NOW - dt.timedelta(days=1), **{"$exception_message": "Timeout"}),
            event("acme", "support_ticket_opened", NOW - dt.timedelta(days=4), subject="Slow", priority="high"),
            event("beta", "query_run", NOW - dt.timedelta(days=2)),
        ],
        now=NOW,
    )
    store_scores(store, project_id, {TODAY - dt.timedelta(days=1): {"acme": 70.0, "beta": 20.0}})

    output = account_drilldown(store, settings, project_id, account_id="acme", as_of=NOW)
    acme = output.accounts[0]
    sections = {section.name: section for section in acme.sections}

    assert [account.account_id for account in output.accounts] == ["acme"]
    assert [section.name for section in acme.sections] == SECTION_NAMES
    assert acme.last_seen == "2025-03-13T15:30:00+00:00"
    assert len(sections["usage_by_week"].rows) == 12
    assert sections["usage_by_week"].rows[-2:] == [["2025-03-03", 1, 1, 1], ["2025-03-10", 3, 2, 1]]
    assert sections["active_users"].rows[0][:2] == ["ann", 2]
    assert sections["errors"].rows == [
        ["Timeout", "", 2, 1, "2025-03-08T15:30:00+00:00", "2025-03-13T15:30:00+00:00"]
    ]
    assert sections["tickets"].rows == [["2025-03-10T15:30:00+00:00", "u1", "Slow", "high"]]
    assert [row[1:] for row in sections["billing"].rows] == [
        ["subscription_started", "starter", 250.0], ["plan_changed", "pro", 750.0],
    ]
    assert sections["score_history"].rows == [["2025-03-13", 70.0, "ok", "signal 70"]]
    summary = dict(sections["summary"].rows)
    assert (summary["plan"], summary["mrr"], summary["errors_30d"], summary["tickets_30d"]) == ("pro", "750", "2", "1")
    assert (acme.health_score, acme.status) == (float(summary["health_score"]), summary["status"])


def test_drilldown_bottom_n_skips_cancelled(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    events = []
    for account, uses in (("low", 1), ("mid", 10), ("high", 100), ("gone", 1)):
        events.append(event(account, "subscription_started", NOW - dt.timedelta(days=40), plan="pro", mrr=750))
        events.extend(event(account, "query_run", NOW - dt.timedelta(days=2, seconds=index)) for index in range(uses))
    events.append(event("gone", "subscription_cancelled", NOW - dt.timedelta(days=1)))
    ingest_events(store, project_id, events, now=NOW)

    output = account_drilldown(store, settings, project_id, bottom_n=2, as_of=NOW)

    assert [account.account_id for account in output.accounts] == ["low", "mid"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "Give exactly one of account_id (one account) or bottom_n (the lowest-scoring accounts)."),
        ({"account_id": "a", "bottom_n": 2}, "Give exactly one of account_id (one account) or bottom_n (the lowest-scoring accounts)."),
        ({"bottom_n": 51}, "bottom_n must be from 1 to 50; got 51."),
        ({"account_id": " "}, "account_id is empty; give the account's id as its events carry it."),
        ({"account_id": "a", "account_property": "x) OR 1"}, "account_property 'x) OR 1' is not a property path such as account_id or $groups.company."),
    ],
)
def test_drilldown_rejects_bad_arguments(store: Store, settings: Settings, project, arguments, message):
    with pytest.raises(UserInputError) as raised:
        account_drilldown(store, settings, project[0].project_id, as_of=NOW, **arguments)

    assert str(raised.value) == message


def test_drilldown_unknown_account(store: Store, settings: Settings, project):
    project_id = project[0].project_id

    with pytest.raises(UserInputError) as raised:
        account_drilldown(store, settings, project_id, account_id="nobody", as_of=NOW)

    assert str(raised.value) == (
        f"Account 'nobody' has no events at or before 2025-03-14T15:30:00+00:00 in project {project_id!r}; "
        "check the id, or the account_property (account_id)."
    )


def test_unknown_project(store: Store, settings: Settings):
    message = "Project 'nope' does not exist; check the project_id, or create it with `pulseboard project create nope`."

    with pytest.raises(UserInputError) as snapshot_error:
        take_snapshot(store, settings, "nope", now=NOW)
    with pytest.raises(UserInputError) as drilldown_error:
        account_drilldown(store, settings, "nope", bottom_n=1, as_of=NOW)

    assert str(snapshot_error.value) == message
    assert str(drilldown_error.value) == message

"""account_health_score on constructed accounts: components, coverage, signals, every parameter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pulseboard.recipes.loader import RecipeParameterError, get_recipe
from pulseboard.server.demo import ingest_events
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store
from pulseboard.tools.query import QueryOutput
from pulseboard.tools.recipes import run_recipe

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 3, 14, 15, 30, tzinfo=UTC)


def events_of(account: str, name: str, count: int, days_ago: float, users: int = 1, **properties: Any) -> list[dict]:
    """`count` events of one name, `days_ago` days before NOW, spread over `users` users."""
    timestamp = NOW - dt.timedelta(days=days_ago)
    return [
        {
            "event": name,
            "distinct_id": f"{account}-user-{index % users + 1}",
            "timestamp": (timestamp + dt.timedelta(seconds=index)).isoformat(),
            "properties": {"account_id": account, **properties},
        }
        for index in range(count)
    ]


def constructed_events() -> list[dict]:
    """Three accounts:

    busy: pro at 750 MRR, 200 events in the last 14 days and 100 in the 14 before, two users,
    4 errors, and five NPS events 10 to 13 days ago (scores 10, 9, 8, 3 and one without a score),
    which count as events too.
    steady: starter at 250 MRR, 10 events in each 14-day period, one user, no errors.
    quiet: starter without an mrr property, no events besides its start 60 days ago.
    """
    events = [
        *events_of("busy", "subscription_started", 1, 50, plan="pro", mrr=750),
        *events_of("busy", "query_run", 200, 3, users=2),
        *events_of("busy", "query_run", 100, 20, users=2),
        *events_of("busy", "$exception", 4, 2, **{"$exception_message": "Query timed out"}),
        *events_of("steady", "subscription_started", 1, 50, plan="starter", mrr=250),
        *events_of("steady", "dashboard_viewed", 10, 5),
        *events_of("steady", "dashboard_viewed", 10, 21),
        *events_of("quiet", "subscription_started", 1, 60, plan="starter"),
    ]
    for index, score in enumerate([10, 9, 8, 3]):
        events.extend(events_of("busy", "nps_submitted", 1, 10 + index, score=score))
    # NPS responses outside the 90-day window and without a score do not count.
    events.extend(events_of("busy", "nps_submitted", 1, 100, score=0))
    events.extend(events_of("busy", "nps_submitted", 1, 11))
    return events


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("health-settings"))


@pytest.fixture(scope="module")
def constructed(store: Store) -> str:
    project, _ = store.create_project("hc" + NOW.strftime("%H%M") + str(id(store))[-6:])
    ingest_events(store, project.project_id, constructed_events(), now=NOW)
    return project.project_id


def score(store: Store, settings: Settings, project_id: str, **params: Any) -> dict[str, dict[str, Any]]:
    output: QueryOutput = run_recipe(store, settings, project_id, "account_health_score", {"as_of": NOW, **params})
    names = [column.name for column in output.columns]
    return {row[0]: dict(zip(names, row)) for row in output.rows}


def test_constructed_defaults(store: Store, settings: Settings, constructed: str):
    rows = score(store, settings, constructed)
    busy, steady, quiet = rows["busy"], rows["steady"], rows["quiet"]

    assert list(rows) == ["quiet", "steady", "busy"]
    # busy: usage 1 (the busiest), trend +105% -> 1, friction 1000 * 4 / 1000 / 5 = 0.8 -> 0.2.
    assert (busy["events_30d"], busy["trend"], busy["errors_30d"], busy["active_users_30d"]) == (305, 105, 4, 2)
    assert (busy["usage_score"], busy["trend_score"], busy["friction_score"]) == (100.0, 100.0, 20.0)
    assert (busy["health_score"], busy["status"]) == (76.0, "healthy")
    assert busy["trend_change_pct"] == 105.0
    assert busy["top_risk_signal"] == "errors: 4 in 30 days, 2x the median"
    assert busy["second_risk_signal"] == "none"
    assert busy["coverage"] == "usage, trend, friction, revenue"
    assert busy["nps"] == 25.0
    assert busy["last_seen_days_ago"] == 1
    # steady: no errors, so friction is whole; log(21) / log(306) = 0.532 for usage.
    assert (steady["friction_score"], steady["trend_score"], steady["trend_change_pct"]) == (100.0, 50.0, 0.0)
    assert (steady["usage_score"], steady["health_score"], steady["status"]) == (53.2, 66.3, "ok")
    assert steady["top_risk_signal"] == "usage: 20 events in 30 days, 7% of the busiest account"
    assert steady["second_risk_signal"] == "little usage growth: +0% (+0 events)"
    assert steady["nps"] is None
    # quiet: no usage, so trend and friction have no data and usage carries the whole score.
    assert (quiet["events_30d"], quiet["mrr"], quiet["plan"]) == (0, None, "starter")
    assert (quiet["health_score"], quiet["status"]) == (0.0, "critical")
    assert quiet["coverage"] == (
        "usage; no data: trend, friction, revenue (60 of 100 weight points moved to the signals with data)"
    )
    assert quiet["top_risk_signal"] == "usage: 0 events in 30 days, 0% of the busiest account"
    assert quiet["last_seen_days_ago"] == 60
    assert quiet["active_users_30d"] == 0
    assert quiet["score_history"] == []
    assert quiet["score_change_7d"] is None


def test_single_account(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    events = [
        *events_of("solo", "subscription_started", 1, 40, plan="pro", mrr=500),
        *events_of("solo", "query_run", 100, 3),
        *events_of("solo", "query_run", 100, 17),
    ]
    ingest_events(store, project_id, events, now=NOW)

    rows = score(store, settings, project_id, w_revenue=10)
    solo = rows["solo"]

    assert list(rows) == ["solo"]
    # Alone, the account is the busiest and has the highest MRR: only the flat trend costs points.
    assert (solo["usage_score"], solo["trend_score"], solo["friction_score"], solo["revenue_score"]) == (
        100.0, 50.0, 100.0, 100.0,
    )
    assert (solo["health_score"], solo["status"]) == (86.4, "champion")
    assert solo["top_risk_signal"] == "little usage growth: +0% (+0 events)"
    assert solo["active_users_30d"] == 1
    assert solo["coverage"] == "usage, trend, friction, revenue"


def test_revenue_weight_redistributed(store: Store, settings: Settings, constructed: str):
    rows = score(store, settings, constructed, w_revenue=100)

    # MRR weighs 100 of 200, half the score; busy has the highest MRR, steady a third of it.
    assert (rows["busy"]["revenue_score"], rows["steady"]["revenue_score"]) == (100.0, 33.3)
    assert rows["busy"]["health_score"] == 88.0
    assert rows["steady"]["health_score"] == 49.8
    # quiet has no mrr: the revenue weight moves with trend and friction, 160 of 200 = 80 of 100.
    assert rows["quiet"]["coverage"] == (
        "usage; no data: trend, friction, revenue (80 of 100 weight points moved to the signals with data)"
    )
    assert rows["quiet"]["health_score"] == 0.0


def test_no_weighted_signal_has_data(store: Store, settings: Settings, constructed: str):
    rows = score(store, settings, constructed, w_usage=0, w_trend=1, w_friction=0, w_revenue=0)

    assert (rows["quiet"]["health_score"], rows["quiet"]["status"]) == (None, "no data")
    assert list(rows)[-1] == "quiet"


@pytest.mark.parametrize(
    ("params", "account", "expected"),
    [
        ({"usage_scale": "plan_tier"}, "steady", {"usage_score": 100.0, "health_score": 85.0}),
        ({"usage_scale": "plan_tier"}, "quiet", {"usage_score": 0.0, "health_score": 0.0}),
        (
            {"usage_scale": "plan_tier", "w_trend": 0, "w_friction": 0},
            "steady",
            {"top_risk_signal": "none", "health_score": 100.0},
        ),
        (
            {"friction_basis": "active_users"},
            "busy",
            {
                "friction_score": 0.0,
                "health_score": 70.0,
                "top_risk_signal": "errors: 4 in 30 days, 2x the median per active user (2)",
            },
        ),
        ({"friction_basis": "active_users", "friction_ceiling_per_user": 4}, "busy", {"friction_score": 50.0}),
        ({"friction_ceiling": 1}, "busy", {"friction_score": 0.0}),
        ({"friction_min_events": 100}, "busy", {"friction_score": 0.0}),
        ({"window_days": 7}, "busy", {"events_30d": 200, "errors_30d": 4, "active_users_30d": 2}),
        ({"window_days": 7}, "steady", {"events_30d": 10, "top_risk_signal": "usage: 10 events in 7 days, 5% of the busiest account"}),
        ({"trend_days": 7}, "busy", {"trend": 195, "trend_change_pct": 390.0}),
        ({"trend_days": 7}, "steady", {"trend": 10, "coverage": "usage, friction, revenue; no data: trend (30 of 100 weight points moved to the signals with data)"}),
        ({"trend_min_base": 200}, "busy", {"trend_change_pct": 52.5, "trend_score": 100.0}),
        ({"trend_full_scale": 2}, "busy", {"trend_score": 76.2}),
        ({"nps_days": 11}, "busy", {"nps": 100.0}),
        ({"band_champion": 76}, "busy", {"status": "champion"}),
    ],
)
def test_parameters(store: Store, settings: Settings, constructed: str, params, account, expected):
    row = score(store, settings, constructed, **params)[account]

    assert {name: row[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"plan": "starter"}, ["quiet", "steady"]),
        ({"plan": "pro"}, ["busy"]),
        ({"plan": "enterprise"}, []),
        ({"sort": "desc"}, ["busy", "steady", "quiet"]),
        ({"limit": 1}, ["quiet"]),
    ],
)
def test_filter_sort_limit(store: Store, settings: Settings, constructed: str, params, expected):
    rows = score(store, settings, constructed, **params)

    assert list(rows) == expected


def test_plan_filter_keeps_scores(store: Store, settings: Settings, constructed: str):
    everyone = score(store, settings, constructed)
    starters = score(store, settings, constructed, plan="starter")

    assert starters == {account: everyone[account] for account in ("quiet", "steady")}


def test_account_without_billing_events(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    ingest_events(store, project_id, events_of("trial", "query_run", 30, 2), now=NOW)

    trial = score(store, settings, project_id, w_revenue=50)["trial"]

    assert (trial["plan"], trial["mrr"], trial["events_30d"]) == (None, None, 30)
    assert trial["coverage"] == (
        "usage, friction; no data: trend, revenue (53.3 of 100 weight points moved to the signals with data)"
    )
    assert trial["health_score"] == 100.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_days": 0}, "Parameter 'window_days' must be an integer from 1 to 365; got 0."),
        ({"trend_days": 183}, "Parameter 'trend_days' must be an integer from 1 to 182; got 183."),
        ({"usage_scale": "tier"}, "Parameter 'usage_scale' must be one of 'all_accounts', 'plan_tier'; got 'tier'."),
        ({"friction_basis": "users"}, "Parameter 'friction_basis' must be one of 'events', 'active_users'; got 'users'."),
        (
            {"friction_ceiling_per_user": 0},
            "Parameter 'friction_ceiling_per_user' must be a number from 0.01 to 100000; got 0.",
        ),
        ({"nps_days": 731}, "Parameter 'nps_days' must be an integer from 1 to 730; got 731."),
        ({"plan": 3}, "Parameter 'plan' must be a string; got 3."),
        ({"health_snapshots": []}, "Unknown parameter 'health_snapshots'"),
    ],
)
def test_bad_new_parameters(params: dict[str, Any], message: str):
    with pytest.raises(RecipeParameterError) as raised:
        get_recipe("account_health_score").bind(params, now=NOW)

    assert str(raised.value).startswith(message)

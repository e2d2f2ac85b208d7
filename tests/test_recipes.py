"""Recipes: header parsing, parameter binding, and account_health_score over the demo data."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pulseboard.recipes.loader import (
    RecipeDefinitionError,
    RecipeNotFoundError,
    RecipeParameterError,
    get_recipe,
    load_recipes,
    parse_recipe,
)
from pulseboard.server.demo import demo_accounts, generate_demo_events, ingest_events, load_demo
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store
from pulseboard.tools.errors import UserInputError
from pulseboard.tools.query import QueryOutput
from pulseboard.tools.recipes import list_recipes, run_recipe

NOW = dt.datetime(2025, 3, 14, 15, 30, tzinfo=dt.timezone.utc)
UTC = dt.timezone.utc

OUTPUT_COLUMNS = [
    "account", "plan", "mrr", "events_30d", "trend", "errors_30d", "tickets_30d", "health_score", "status",
    "top_risk_signal", "usage_score", "trend_score", "friction_score", "revenue_score", "trend_change_pct",
    "active_users_30d", "last_seen_days_ago", "nps", "coverage", "second_risk_signal", "score_change_7d",
    "score_change_30d", "score_history",
]
PARAMETER_NAMES = [
    "as_of", "account_property", "w_usage", "w_trend", "w_friction", "w_revenue", "window_days", "trend_days",
    "usage_scale", "trend_full_scale", "trend_min_base", "friction_basis", "friction_ceiling",
    "friction_min_events", "friction_ceiling_per_user", "nps_days", "band_warn", "band_ok", "band_healthy",
    "band_champion", "plan", "sort", "limit",
]

# account: (plan, mrr, events_30d, trend, errors_30d, tickets_30d)
REFERENCE_FIGURES = {
    "megacorp": ("enterprise", 5000.0, 4200, -800, 89, 6),
    "globex": ("scale", 1875.0, 6800, -210, 22, 3),
    "tinyco": ("starter", 250.0, 120, 30, 2, 1),
    "acme": ("pro", 750.0, 18400, 4100, 4, 1),
    "innovate": ("scale", 1875.0, 22100, 2200, 8, 2),
}
ALLOWED_STATUS = {
    "megacorp": {"critical"},
    "globex": {"warn", "ok"},
    "tinyco": {"ok", "warn"},
    "acme": {"healthy", "champion"},
    "innovate": {"healthy", "champion"},
}
# With the default parameters the busiest account is innovate in both demo sizes, so scores and
# statuses hold with and without the generated accounts. The friction signal compares with the
# median account, which the generated accounts move: MEDIAN_MULTIPLES gives its figure per demo size.
REFERENCE_SCORES = {
    "megacorp": (33.4, "critical", "errors: 89, support tickets: 6 in 30 days, {}x the median"),
    "globex": (54.4, "warn", "errors: 22, support tickets: 3 in 30 days, {}x the median"),
    "tinyco": (61.2, "ok", "usage: 120 events in 30 days, 1% of the busiest account"),
    "innovate": (96.5, "champion", "none"),
    "acme": (97.6, "champion", "none"),
}
MEDIAN_MULTIPLES = {0: {"megacorp": "7.5", "globex": "1.2"}, 40: {"megacorp": "12", "globex": "2"}}

SCORE_PARAMETERS = {
    "as_of": (NOW, "DateTime64(6, 'UTC')"),
    "w_usage": (40.0, "Float64"),
    "w_trend": (30.0, "Float64"),
    "w_friction": (30.0, "Float64"),
    "w_revenue": (0.0, "Float64"),
    "window_days": (30, "Int64"),
    "trend_days": (14, "Int64"),
    "usage_scale": ("all_accounts", "String"),
    "trend_full_scale": (0.25, "Float64"),
    "trend_min_base": (50, "Int64"),
    "friction_basis": ("events", "String"),
    "friction_ceiling": (5.0, "Float64"),
    "friction_min_events": (1000, "Int64"),
    "friction_ceiling_per_user": (2.0, "Float64"),
    "nps_days": (90, "Int64"),
    "band_warn": (40.0, "Float64"),
    "band_ok": (55.0, "Float64"),
    "band_healthy": (70.0, "Float64"),
    "band_champion": (85.0, "Float64"),
    "plan": ("", "String"),
    "sort": ("asc", "String"),
    "limit": (100, "Int64"),
}

PROPERTY_EXPECTATION = (
    "a property path of names made of letters, digits, '_' and '$', joined by '.', "
    "such as account_id or $groups.company"
)
BAD_PARAMETERS = [
    ({"limit": 0}, "Parameter 'limit' must be an integer from 1 to 10000; got 0."),
    ({"limit": 10001}, "Parameter 'limit' must be an integer from 1 to 10000; got 10001."),
    ({"limit": "ten"}, "Parameter 'limit' must be an integer from 1 to 10000; got 'ten'."),
    ({"limit": 2.5}, "Parameter 'limit' must be an integer from 1 to 10000; got 2.5."),
    ({"limit": True}, "Parameter 'limit' must be an integer from 1 to 10000; got True."),
    ({"w_usage": -1}, "Parameter 'w_usage' must be a number from 0 to 1000; got -1."),
    ({"w_usage": "nan"}, "Parameter 'w_usage' must be a number from 0 to 1000; got 'nan'."),
    ({"w_trend": [30]}, "Parameter 'w_trend' must be a number from 0 to 1000; got [30]."),
    ({"trend_full_scale": 0}, "Parameter 'trend_full_scale' must be a number from 0.01 to 10; got 0."),
    ({"sort": "up"}, "Parameter 'sort' must be one of 'asc', 'desc'; got 'up'."),
    ({"sort": "ASC"}, "Parameter 'sort' must be one of 'asc', 'desc'; got 'ASC'."),
    (
        {"as_of": "yesterday"},
        "Parameter 'as_of' must be an ISO 8601 date-time such as 2025-01-31T00:00:00Z, or 'now'; got 'yesterday'.",
    ),
    (
        {"as_of": 1741966200},
        "Parameter 'as_of' must be an ISO 8601 date-time such as 2025-01-31T00:00:00Z, or 'now'; got 1741966200.",
    ),
    (
        {"account_property": "account_id) OR 1=1 --"},
        f"Parameter 'account_property' must be {PROPERTY_EXPECTATION}; got 'account_id) OR 1=1 --'.",
    ),
    (
        {"account_property": "$groups..company"},
        f"Parameter 'account_property' must be {PROPERTY_EXPECTATION}; got '$groups..company'.",
    ),
    (
        {"account_property": "properties.$groups.company"},
        "Parameter 'account_property' is a path inside the event properties; "
        "write '$groups.company' rather than 'properties.$groups.company'.",
    ),
    (
        {"account_property": ""},
        f"Parameter 'account_property' must be {PROPERTY_EXPECTATION}; got ''.",
    ),
    (
        {"colour": "red"},
        "Unknown parameter 'colour' for recipe 'account_health_score'. Known parameters: "
        + ", ".join(PARAMETER_NAMES) + ".",
    ),
    (
        {"colour": "red", "size": 2},
        "Unknown parameters 'colour', 'size' for recipe 'account_health_score'. Known parameters: "
        + ", ".join(PARAMETER_NAMES) + ".",
    ),
    (
        {"w_usage": 0, "w_trend": 0, "w_friction": 0, "w_revenue": 0},
        "Parameters w_usage, w_trend, w_friction and w_revenue must not all be 0; got 0, 0, 0, 0. "
        "Set at least one of them above 0.",
    ),
    (
        {"band_ok": 75},
        "Parameters band_warn, band_ok, band_healthy and band_champion must be in increasing order; "
        "got 40, 75, 70, 85.",
    ),
    (
        {"band_healthy": 55},
        "Parameters band_warn, band_ok, band_healthy and band_champion must be in increasing order; "
        "got 40, 55, 55, 85.",
    ),
]

GOOD_PARAMETERS = [
    ({"limit": "25"}, "limit", (25, "Int64")),
    ({"limit": 25.0}, "limit", (25, "Int64")),
    ({"limit": None}, "limit", (100, "Int64")),
    ({"w_usage": "12.5"}, "w_usage", (12.5, "Float64")),
    ({"w_revenue": 50}, "w_revenue", (50.0, "Float64")),
    ({"sort": "desc"}, "sort", ("desc", "String")),
    ({"as_of": "now"}, "as_of", (NOW, "DateTime64(6, 'UTC')")),
    ({"as_of": "2025-03-01T00:00:00"}, "as_of", (dt.datetime(2025, 3, 1, tzinfo=UTC), "DateTime64(6, 'UTC')")),
    ({"as_of": "2025-03-01T02:00:00+02:00"}, "as_of", (dt.datetime(2025, 3, 1, tzinfo=UTC), "DateTime64(6, 'UTC')")),
    ({"as_of": "2025-03-01T00:00:00Z"}, "as_of", (dt.datetime(2025, 3, 1, tzinfo=UTC), "DateTime64(6, 'UTC')")),
    (
        {"as_of": dt.datetime(2025, 3, 1, 12)},
        "as_of",
        (dt.datetime(2025, 3, 1, 12, tzinfo=UTC), "DateTime64(6, 'UTC')"),
    ),
]

RECIPE_TEMPLATE = """/*
id = "demo"
title = "Demo"
description = "Counts events."
prompt = "Count the events."
{parameters}
[[columns]]
name = "n"
description = "Events."
*/
SELECT count() AS n FROM events WHERE timestamp > {{since}}
"""
SINCE_PARAMETER = """
[[parameters]]
name = "since"
type = "datetime"
default = "now"
description = "Start."
"""
CONSTRAINT = """
[[constraints]]
kind = "{kind}"
parameters = {parameters}
"""
BAD_DEFINITIONS = [
    (
        "SELECT 1",
        "Recipe file demo.sql must start with a /* ... */ comment holding its TOML header.",
    ),
    (
        RECIPE_TEMPLATE.format(parameters=""),
        "Recipe file demo.sql: placeholders without a parameter: since.",
    ),
    (
        RECIPE_TEMPLATE.format(parameters=SINCE_PARAMETER + SINCE_PARAMETER.replace('"since"', '"until"')),
        "Recipe file demo.sql: parameters never used in the query: until.",
    ),
    (
        RECIPE_TEMPLATE.format(parameters=SINCE_PARAMETER.replace('"now"', '"soon"')),
        "Recipe file demo.sql has an invalid default: Parameter 'since' must be an ISO 8601 date-time "
        "such as 2025-01-31T00:00:00Z, or 'now'; got 'soon'.",
    ),
    (
        RECIPE_TEMPLATE.format(
            parameters=SINCE_PARAMETER + CONSTRAINT.format(kind="increasing", parameters='["x", "y"]')
        ),
        "Recipe file demo.sql: increasing constraint names unknown parameters: x, y.",
    ),
    (
        RECIPE_TEMPLATE.format(
            parameters=SINCE_PARAMETER + CONSTRAINT.format(kind="not_all_zero", parameters='["since", "since"]')
        ),
        "Recipe file demo.sql: not_all_zero constraint names parameters that are not numbers: since, since.",
    ),
]


def health() -> Any:
    return get_recipe("account_health_score")


# Loading and binding


def test_load_recipes_lists_account_health_score():
    recipes = load_recipes()
    recipe = recipes["account_health_score"]

    assert list(recipes) == ["account_drilldown", "account_health_score", "score_drops"]
    assert recipe.parameter_names() == PARAMETER_NAMES
    assert [column.name for column in recipe.header.columns] == OUTPUT_COLUMNS
    assert recipe.header.prompt.split()[:12] == (
        "Score every B2B account 0-100 on usage, usage trend, revenue and friction".split()
    )


def test_list_recipes_info():
    infos = list_recipes()
    info = infos[1]
    limit = next(parameter for parameter in info.parameters if parameter.name == "limit")
    sort = next(parameter for parameter in info.parameters if parameter.name == "sort")

    assert [item.recipe_id for item in infos] == ["account_drilldown", "account_health_score", "score_drops"]
    assert info.title == "Account health score"
    assert [parameter.name for parameter in info.parameters] == PARAMETER_NAMES
    assert [column.name for column in info.output_columns] == OUTPUT_COLUMNS
    assert (limit.type, limit.default, limit.min, limit.max) == ("integer", 100, 1, 10000)
    assert (sort.type, sort.default, sort.values) == ("enum", "asc", ["asc", "desc"])
    assert "\n" not in info.prompt


def test_bind_defaults():
    assert health().bind({}, now=NOW) == SCORE_PARAMETERS


@pytest.mark.parametrize(("params", "name", "expected"), GOOD_PARAMETERS)
def test_bind_converts_values(params: dict[str, Any], name: str, expected: tuple[object, str]):
    assert health().bind(params, now=NOW)[name] == expected


@pytest.mark.parametrize(("params", "message"), BAD_PARAMETERS)
def test_bind_rejects_bad_parameters(params: dict[str, Any], message: str):
    with pytest.raises(RecipeParameterError) as raised:
        health().bind(params, now=NOW)

    assert str(raised.value) == message


def test_render_writes_property_path_only():
    hogql, placeholders = health().render({"account_property": "$groups.company", "limit": 5}, now=NOW)

    assert "toString(properties.$groups.company) AS account" in hogql
    assert "{account_property}" not in hogql
    assert "{limit}" in hogql
    assert "account_property" not in placeholders
    assert placeholders["limit"] == (5, "Int64")


def test_unknown_recipe_lists_known_ids():
    with pytest.raises(RecipeNotFoundError) as raised:
        get_recipe("churn_forecast")

    assert str(raised.value) == "Unknown recipe 'churn_forecast'. Known recipes: account_drilldown, account_health_score, score_drops."


@pytest.mark.parametrize(("text", "message"), BAD_DEFINITIONS)
def test_parse_recipe_rejects_bad_definitions(text: str, message: str):
    with pytest.raises(RecipeDefinitionError) as raised:
        parse_recipe(text, "demo.sql")

    assert str(raised.value) == message


def test_required_parameter_without_default():
    required = SINCE_PARAMETER.replace('default = "now"\n', "")
    recipe = parse_recipe(RECIPE_TEMPLATE.format(parameters=required), "demo.sql")

    with pytest.raises(RecipeParameterError) as raised:
        recipe.bind({}, now=NOW)

    assert str(raised.value) == (
        "Parameter 'since' of recipe 'demo' is required: give an ISO 8601 date-time such as "
        "2025-01-31T00:00:00Z, or 'now'."
    )
    assert recipe.bind({"since": "2025-03-01"}, now=NOW) == {
        "since": (dt.datetime(2025, 3, 1, tzinfo=UTC), "DateTime64(6, 'UTC')")
    }


def test_parse_recipe_reports_header_errors():
    with pytest.raises(RecipeDefinitionError) as raised:
        parse_recipe(RECIPE_TEMPLATE.format(parameters=SINCE_PARAMETER.replace('"datetime"', '"date"')), "demo.sql")

    assert str(raised.value).startswith(
        "Recipe file demo.sql has an invalid header: 1 validation error for RecipeHeader"
    )
    assert "parameters.0.type" in str(raised.value)


# account_health_score over the demo data


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("settings"))


@pytest.fixture(scope="module")
def reference_time() -> dt.datetime:
    """The demo's reference time: the load time, as `pulseboard demo` uses."""
    return dt.datetime.now(UTC)


@pytest.fixture(scope="module")
def demo_project(store: Store, reference_time: dt.datetime) -> Callable[[int], str]:
    """Load the demo once per extra-account count into its own project; return the project id."""
    loaded: dict[int, str] = {}

    def load(extra_accounts: int) -> str:
        if extra_accounts not in loaded:
            project, _ = store.create_project("hs" + uuid.uuid4().hex[:10])
            load_demo(store, project.project_id, reference_time, extra_accounts)
            loaded[extra_accounts] = project.project_id
        return loaded[extra_accounts]

    return load


def rows_by_account(output: QueryOutput) -> dict[str, dict[str, Any]]:
    names = [column.name for column in output.columns]
    return {row[0]: dict(zip(names, row)) for row in output.rows}


def score_order(output: QueryOutput) -> list[float]:
    return [row[7] for row in output.rows]


@pytest.mark.parametrize("extra_accounts", [0, 40])
@pytest.mark.parametrize("hours_after", [0, 5])
def test_health_reference_accounts(
    store: Store, settings: Settings, demo_project, reference_time: dt.datetime, extra_accounts: int, hours_after: int
):
    as_of = (reference_time + dt.timedelta(hours=hours_after)).isoformat()

    output = run_recipe(store, settings, demo_project(extra_accounts), "account_health_score", {"as_of": as_of})
    rows = rows_by_account(output)

    assert [column.name for column in output.columns] == OUTPUT_COLUMNS
    for account, figures in REFERENCE_FIGURES.items():
        row = rows[account]
        signals = ("plan", "mrr", "events_30d", "trend", "errors_30d", "tickets_30d")
        assert tuple(row[name] for name in signals) == figures, account
        assert row["status"] in ALLOWED_STATUS[account], account
    for account, (score, status, signal) in REFERENCE_SCORES.items():
        row = rows[account]
        expected_signal = signal.format(MEDIAN_MULTIPLES[extra_accounts].get(account))
        assert (row["health_score"], row["status"], row["top_risk_signal"]) == (score, status, expected_signal)

    reference = sorted(REFERENCE_FIGURES, key=lambda account: rows[account]["health_score"])
    assert reference[:3] == ["megacorp", "globex", "tinyco"]
    assert set(reference[3:]) == {"acme", "innovate"}
    assert [account for account in REFERENCE_FIGURES if rows[account]["status"] == "critical"] == ["megacorp"]


def test_health_default_as_of_is_now(store: Store, settings: Settings, demo_project):
    output = run_recipe(store, settings, demo_project(0), "account_health_score", {})
    rows = rows_by_account(output)

    assert {account: rows[account]["events_30d"] for account in REFERENCE_FIGURES} == {
        account: figures[2] for account, figures in REFERENCE_FIGURES.items()
    }
    assert [row[0] for row in output.rows] == ["megacorp", "globex", "tinyco", "innovate", "acme"]


def test_health_scores_within_bounds(store: Store, settings: Settings, demo_project):
    output = run_recipe(store, settings, demo_project(40), "account_health_score", {"limit": 10000})
    scores = [value for row in output.rows for value in (row[7], *row[10:14])]

    assert output.truncated is False
    assert all(0 <= score <= 100 for score in scores)
    assert {row[8] for row in output.rows} == {"critical", "warn", "ok", "healthy", "champion"}


def test_health_lists_cancelled_accounts(
    store: Store, settings: Settings, demo_project, reference_time: dt.datetime
):
    events = generate_demo_events(reference_time, extra_accounts=40)
    cancelled_on = {
        event["properties"]["account_id"]: dt.datetime.fromisoformat(event["timestamp"]).date().isoformat()
        for event in events
        if event["event"] == "subscription_cancelled"
    }
    # Events are sorted by time, so the last billing event seen per account is its latest.
    last_plan = {
        event["properties"]["account_id"]: event["properties"]["plan"]
        for event in events
        if event["event"] in ("subscription_started", "plan_changed")
    }

    output = run_recipe(store, settings, demo_project(40), "account_health_score", {"limit": 10000})
    rows = rows_by_account(output)

    assert sorted(cancelled_on) == sorted(spec.account for spec in demo_accounts(40, 7) if spec.cancelled)
    assert len(cancelled_on) == 3
    assert sorted(rows) == sorted(spec.account for spec in demo_accounts(40, 7))
    for account, day in cancelled_on.items():
        row = rows[account]
        assert (row["plan"], row["mrr"]) == (last_plan[account], 0.0), account
        assert row["top_risk_signal"] == f"subscription cancelled {day}", account
        assert row["health_score"] == 0, account
        assert row["status"] == "critical", account
    signalled = {
        account for account, row in rows.items() if row["top_risk_signal"].startswith("subscription cancelled")
    }
    assert signalled == set(cancelled_on)


# account: its billing events as (hours after NOW, event, plan, mrr), and the expected
# (plan, mrr, cancelled on) with as_of = NOW, or None when the account gets no row.
BILLING_CASES = {
    "cancelled": (
        [(-960, "subscription_started", "pro", 750), (-240, "subscription_cancelled", None, None)],
        ("pro", 0.0, "2025-03-04"),
    ),
    "came-back": (
        [
            (-960, "subscription_started", "pro", 750),
            (-480, "subscription_cancelled", None, None),
            (-120, "subscription_started", "scale", 1875),
        ],
        ("scale", 1875.0, None),
    ),
    "restarted-same-time": (
        [
            (-960, "subscription_started", "pro", 750),
            (-240, "subscription_cancelled", None, None),
            (-240, "subscription_started", "starter", 250),
        ],
        ("starter", 250.0, None),
    ),
    "changed-then-cancelled": (
        [
            (-960, "subscription_started", "starter", 250),
            (-480, "plan_changed", "pro", 750),
            (-120, "subscription_cancelled", None, None),
        ],
        ("pro", 0.0, "2025-03-09"),
    ),
    "two-starts-same-time": (
        [(-240, "subscription_started", "pro", 750), (-240, "subscription_started", "enterprise", 5000)],
        ("enterprise", 5000.0, None),
    ),
    "cancelled-after-as-of": (
        [(-960, "subscription_started", "pro", 750), (6, "subscription_cancelled", None, None)],
        ("pro", 750.0, None),
    ),
    "cancellation-only": ([(-240, "subscription_cancelled", None, None)], None),
    "started-after-as-of": ([(6, "subscription_started", "pro", 750)], None),
}


def billing_events() -> list[dict[str, Any]]:
    events = []
    for account, (history, _) in BILLING_CASES.items():
        for hours, event, plan, mrr in history:
            properties: dict[str, Any] = {"account_id": account}
            if plan is not None:
                properties.update(plan=plan, mrr=mrr)
            timestamp = NOW + dt.timedelta(hours=hours)
            events.append(
                {"event": event, "distinct_id": account, "timestamp": timestamp.isoformat(), "properties": properties}
            )
    return events


def test_health_billing_rules(store: Store, settings: Settings, project):
    project_id = project[0].project_id
    ingest_events(store, project_id, billing_events(), now=NOW + dt.timedelta(days=1))

    output = run_recipe(store, settings, project_id, "account_health_score", {"as_of": NOW})
    rows = rows_by_account(output)

    assert sorted(rows) == sorted(account for account, (_, expected) in BILLING_CASES.items() if expected)
    for account, (_, expected) in BILLING_CASES.items():
        if expected is None:
            continue
        plan, mrr, cancelled_on = expected
        row = rows[account]
        assert (row["plan"], row["mrr"]) == (plan, mrr), account
        if cancelled_on is None:
            assert not row["top_risk_signal"].startswith("subscription cancelled"), account
        else:
            assert row["top_risk_signal"] == f"subscription cancelled {cancelled_on}", account


def test_health_weights_are_normalised(store: Store, settings: Settings, demo_project):
    project_id = demo_project(40)
    default = run_recipe(store, settings, project_id, "account_health_score", {"limit": 10000})
    scaled_weights = {"limit": 10000, "w_usage": 4, "w_trend": 3, "w_friction": 3}
    scaled = run_recipe(store, settings, project_id, "account_health_score", scaled_weights)

    assert scaled.rows == default.rows


@pytest.mark.parametrize(
    ("weight", "component"),
    [
        ("w_usage", "usage_score"),
        ("w_trend", "trend_score"),
        ("w_friction", "friction_score"),
        ("w_revenue", "revenue_score"),
    ],
)
def test_health_single_weight_scores_one_component(
    store: Store, settings: Settings, demo_project, weight: str, component: str
):
    params: dict[str, Any] = {"w_usage": 0, "w_trend": 0, "w_friction": 0, "w_revenue": 0, "limit": 10000}
    params[weight] = 7

    rows = rows_by_account(run_recipe(store, settings, demo_project(40), "account_health_score", params))

    active = {
        account: row for account, row in rows.items()
        if not row["top_risk_signal"].startswith("subscription cancelled")
    }
    assert len(active) == 42
    assert all(row["health_score"] == row[component] for row in active.values())
    assert all(row["health_score"] == 0 for account, row in rows.items() if account not in active)


def test_health_revenue_component(store: Store, settings: Settings, demo_project):
    rows = rows_by_account(run_recipe(store, settings, demo_project(0), "account_health_score", {"w_revenue": 100}))

    assert {account: row["revenue_score"] for account, row in rows.items()} == {
        "megacorp": 100.0, "globex": 37.5, "tinyco": 5.0, "acme": 15.0, "innovate": 37.5,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["megacorp", "globex", "tinyco", "innovate", "acme"]),
        ({"sort": "desc"}, ["acme", "innovate", "tinyco", "globex", "megacorp"]),
        ({"limit": 2}, ["megacorp", "globex"]),
        ({"sort": "desc", "limit": 1}, ["acme"]),
    ],
)
def test_health_sort_and_limit(store: Store, settings: Settings, demo_project, reference_time, params, expected):
    output = run_recipe(store, settings, demo_project(0), "account_health_score", {"as_of": reference_time, **params})

    assert [row[0] for row in output.rows] == expected
    assert output.truncated is False


def test_health_sort_orders_every_account(store: Store, settings: Settings, demo_project):
    ascending = score_order(run_recipe(store, settings, demo_project(40), "account_health_score", {"limit": 10000}))
    descending = score_order(
        run_recipe(store, settings, demo_project(40), "account_health_score", {"limit": 10000, "sort": "desc"})
    )

    assert ascending == sorted(ascending)
    assert descending == sorted(ascending, reverse=True)


def test_health_band_edges_are_parameters(store: Store, settings: Settings, demo_project):
    params = {"band_warn": 20, "band_ok": 30, "band_healthy": 50, "band_champion": 97}

    rows = rows_by_account(run_recipe(store, settings, demo_project(0), "account_health_score", params))

    assert {account: row["status"] for account, row in rows.items()} == {
        "megacorp": "ok", "globex": "healthy", "tinyco": "healthy", "innovate": "healthy", "acme": "champion",
    }


def test_health_account_from_group_property(store: Store, settings: Settings, demo_project, reference_time):
    events = copy.deepcopy(generate_demo_events(reference_time, extra_accounts=0))
    for event in events:
        event["properties"]["$groups"] = {"company": event["properties"].pop("account_id")}
    project, _ = store.create_project("grp" + uuid.uuid4().hex[:10])
    ingest_events(store, project.project_id, events, now=reference_time)
    as_of = {"as_of": reference_time}

    group_params = {**as_of, "account_property": "$groups.company"}
    grouped = run_recipe(store, settings, project.project_id, "account_health_score", group_params)
    by_account_id = run_recipe(store, settings, demo_project(0), "account_health_score", as_of)
    missing = run_recipe(store, settings, project.project_id, "account_health_score", as_of)

    assert grouped.rows == by_account_id.rows
    assert missing.rows == []


@pytest.mark.parametrize(
    ("recipe_id", "params", "message"),
    [
        ("nope", {}, "Unknown recipe 'nope'. Known recipes: account_drilldown, account_health_score, score_drops."),
        ("account_health_score", {"limit": 0}, "Parameter 'limit' must be an integer from 1 to 10000; got 0."),
    ],
)
def test_run_recipe_rejects_bad_requests(store: Store, settings: Settings, project, recipe_id, params, message):
    with pytest.raises(UserInputError) as raised:
        run_recipe(store, settings, project[0].project_id, recipe_id, params)

    assert str(raised.value) == message


def test_health_empty_project(store: Store, settings: Settings, project):
    created, _ = project
    output = run_recipe(store, settings, created.project_id, "account_health_score", {})
    assert output.rows == []
    assert [column.name for column in output.columns][:3] == ["account", "plan", "mrr"]


def test_health_reads_properties_of_any_first_type(store: Store, settings: Settings, project):
    """The first type recorded for account_id, mrr and plan must not hide values sent as another type."""
    created, _ = project
    now = dt.datetime.now(dt.timezone.utc)
    events = [
        {"event": "subscription_started", "distinct_id": "u1", "timestamp": (now - dt.timedelta(days=40)).isoformat(),
         "properties": {"account_id": 42, "mrr": "750", "plan": 3}},
        {"event": "subscription_started", "distinct_id": "u2", "timestamp": (now - dt.timedelta(days=40)).isoformat(),
         "properties": {"account_id": "beta", "mrr": 250, "plan": "pro"}},
        {"event": "report_exported", "distinct_id": "u1", "timestamp": (now - dt.timedelta(days=3)).isoformat(),
         "properties": {"account_id": "42"}},
    ]
    ingest_events(store, created.project_id, events, now=now)
    assert store.property_types(created.project_id) == {"account_id": "Numeric", "mrr": "String", "plan": "Numeric"}

    rows = rows_by_account(run_recipe(store, settings, created.project_id, "account_health_score", {}))
    assert sorted(rows) == ["42", "beta"]
    assert (rows["42"]["plan"], rows["42"]["mrr"], rows["42"]["events_30d"]) == ("3", 750.0, 1)
    assert (rows["beta"]["plan"], rows["beta"]["mrr"], rows["beta"]["events_30d"]) == ("pro", 250.0, 0)

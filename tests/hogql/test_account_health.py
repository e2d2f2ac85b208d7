"""The account-health query compiles verbatim and computes the expected scores on real chDB."""

from __future__ import annotations

import datetime

import pytest

ACCOUNT_HEALTH = (
    "WITH usage AS (SELECT properties.account_id AS aid, count() AS cnt_30d, countIf(timestamp >= now() - "
    "INTERVAL 14 DAY) - countIf(timestamp < now() - INTERVAL 14 DAY AND timestamp >= now() - INTERVAL 28 DAY) "
    "AS trend FROM events WHERE timestamp >= now() - INTERVAL 30 DAY AND event != '$exception' GROUP BY aid), "
    "friction AS (SELECT properties.account_id AS aid, count() AS errors_30d FROM events WHERE event = "
    "'$exception' AND timestamp >= now() - INTERVAL 30 DAY GROUP BY aid), revenue AS (SELECT "
    "properties.account_id AS aid, argMax(properties.mrr, timestamp) AS mrr, argMax(properties.plan, "
    "timestamp) AS plan FROM events WHERE event IN ('plan_changed','seat_count_set','subscription_started') "
    "GROUP BY aid), maxes AS (SELECT max(cnt_30d) AS max_usage, max(errors_30d) AS max_friction FROM usage, "
    "friction) SELECT r.aid AS account, r.plan AS plan, r.mrr AS mrr, COALESCE(u.cnt_30d, 0) AS events_30d, "
    "COALESCE(u.trend, 0) AS trend, COALESCE(f.errors_30d, 0) AS errors_30d, round( 40 * "
    "COALESCE(u.cnt_30d, 0) / m.max_usage + 30 * least(greatest(COALESCE(u.trend, 0) / 1000 * 30, -30), 30) "
    "+ 30 * (1 - COALESCE(f.errors_30d, 0) / nullIf(m.max_friction, 0)), 1 ) AS health_score FROM revenue r "
    "LEFT JOIN usage u ON r.aid = u.aid LEFT JOIN friction f ON r.aid = f.aid CROSS JOIN maxes m WHERE "
    "r.mrr > 0 ORDER BY health_score ASC LIMIT 30"
)
PROPERTY_TYPES = {"mrr": "Numeric", "account_id": "String", "plan": "String"}


def days_ago(days: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def account_events(account: str, event: str, days: list[float], **properties) -> list[dict]:
    return [
        {"event": event, "timestamp": days_ago(day), "properties": {"account_id": account, **properties}}
        for day in days
    ]


def revenue(account: str, day: float, mrr, plan: str, event: str = "plan_changed") -> dict:
    return {
        "event": event,
        "timestamp": days_ago(day),
        "properties": {"account_id": account, "mrr": mrr, "plan": plan},
    }


# Revenue events are older than 30 days, so they do not count as usage. acme's latest MRR is
# stored as the string "500", which the Numeric read accepts.
DATASET = [
    revenue("acme", 40, 400, "basic", "subscription_started"),
    revenue("acme", 35, "500", "pro"),
    revenue("globex", 38, "100", "basic", "subscription_started"),
    revenue("umbrella", 36, 300, "pro", "seat_count_set"),
    revenue("initech", 37, 0, "free", "subscription_started"),
    *account_events("acme", "pageview", [1, 2, 3, 5, 20, 21]),
    *account_events("globex", "pageview", [15, 16, 29]),
    *account_events("initech", "pageview", [2]),
    *account_events("acme", "$exception", [3]),
    *account_events("globex", "$exception", [1, 2, 10]),
    *account_events("initech", "$exception", [1, 2, 3, 4]),
    # Outside every window: counted by no CTE.
    *account_events("acme", "pageview", [45]),
    *account_events("globex", "$exception", [31]),
]

# max_usage = 6 (acme) and max_friction = 4 (initech, which is then dropped for mrr = 0):
#   acme:     40 * 6/6 + 30 * (2/1000*30)  + 30 * (1 - 1/4) = 40 + 1.8 + 22.5 = 64.3
#   globex:   40 * 3/6 + 30 * (-2/1000*30) + 30 * (1 - 3/4) = 20 - 1.8 + 7.5  = 25.7
#   umbrella: 0 + 0 + 30 * (1 - 0/4) = 30.0
EXPECTED_COLUMNS = ("account", "plan", "mrr", "events_30d", "trend", "errors_30d", "health_score")
EXPECTED_ROWS = [
    ("globex", "basic", 100.0, 3, -2, 3, 25.7),
    ("umbrella", "pro", 300.0, 0, 0, 0, 30.0),
    ("acme", "pro", 500.0, 6, 2, 1, 64.3),
]


@pytest.fixture(scope="module")
def health_projects(new_project):
    project, neighbour = new_project(), new_project()
    project.insert(*DATASET)
    # The same accounts in another project, with far more activity: none of it may count.
    neighbour.insert(*DATASET, *account_events("acme", "pageview", [1] * 50), revenue("acme", 34, 9999, "enterprise"))
    return project, neighbour


def test_account_health_scores(health_projects):
    project, _ = health_projects

    result = project.run(ACCOUNT_HEALTH, property_types=PROPERTY_TYPES)

    assert result.columns == EXPECTED_COLUMNS
    assert result.rows == EXPECTED_ROWS
    assert result.truncated is False
    assert result.compiled.row_cap is None


def test_account_health_neighbour_sees_its_own(health_projects):
    _, neighbour = health_projects

    result = neighbour.run(ACCOUNT_HEALTH, property_types=PROPERTY_TYPES)

    assert [row[0] for row in result.rows] == ["globex", "umbrella", "acme"]
    assert result.rows[2][:4] == ("acme", "enterprise", 9999.0, 56)


def test_account_health_guards_every_cte(health_projects):
    project, _ = health_projects

    compiled = project.run(ACCOUNT_HEALTH, property_types=PROPERTY_TYPES).compiled

    for index in range(3):
        assert compiled.sql.count(f"FROM events AS pb_t{index} WHERE pb_t{index}.project_id = {{pb_project:String}}") == 1
    assert compiled.sql.count("project_id") == 3
    assert compiled.parameters["pb_project"] == project.project_id
    assert compiled.parameters["pb_s0"] == "$exception"

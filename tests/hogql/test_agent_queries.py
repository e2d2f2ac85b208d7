"""Queries as LLM agents write them against PostHog-style events, run on real chDB.

One project contains a small product's events: four users in three accounts, page views, signups,
purchases and exceptions in January 2024, and two page views 30 and 54 hours before the test runs
(for `now() - INTERVAL 7 DAY`). A neighbour project contains copies of some of those events, so
every case also checks that nothing from the neighbour is counted.
"""

from __future__ import annotations

import datetime
import uuid
from zoneinfo import ZoneInfo

import pytest

from pulseboard.hogql import HogQLError

BERLIN = ZoneInfo("Europe/Berlin")
PROPERTY_TYPES = {"amount": "Numeric", "account_id": "String", "plan": "String"}

HOME = "https://app.example.com/home"
PRICING = "https://app.example.com/pricing"
TYPE_ERROR = "TypeError: x is undefined"

# (timestamp in UTC, distinct_id, event, properties); "recent" times are set by the fixture.
EVENTS = [
    ("2024-01-01 09:00:00", "u1", "$pageview", {"account_id": "acme", "$browser": "Chrome", "plan": "pro", "$current_url": HOME}),
    ("2024-01-01 10:00:00", "u2", "$pageview", {"account_id": "acme", "$browser": "Firefox", "plan": "free", "$current_url": PRICING}),
    ("2024-01-01 11:00:00", "u1", "signup", {"account_id": "acme", "plan": "pro"}),
    ("2024-01-02 09:30:00", "u3", "$pageview", {"account_id": "globex", "$browser": "Safari", "plan": "free", "$current_url": HOME}),
    ("2024-01-02 12:00:00", "u3", "signup", {"account_id": "globex", "plan": "free"}),
    ("2024-01-02 13:00:00", "u3", "$exception", {"account_id": "globex", "$exception_message": TYPE_ERROR}),
    ("2024-01-03 08:00:00", "u1", "purchase", {"account_id": "acme", "amount": "49.5", "plan": "pro"}),
    ("2024-01-03 09:00:00", "u2", "$pageview", {"account_id": "acme", "$browser": "Firefox", "plan": "pro"}),
    ("2024-01-03 10:00:00", "u2", "purchase", {"account_id": "acme", "amount": 20, "plan": "pro"}),
    ("2024-01-04 14:00:00", "u4", "$pageview", {"account_id": "initech", "$browser": "Chrome"}),
    ("2024-01-04 15:00:00", "u4", "$exception", {"account_id": "initech", "$exception_message": TYPE_ERROR}),
    ("2024-01-05 16:00:00", "u3", "$exception", {"account_id": "globex", "$exception_message": "NetworkError: timeout"}),
    ("2024-01-08 09:00:00", "u1", "$pageview", {"account_id": "acme", "$browser": "Chrome", "plan": "pro"}),
    ("recent 30", "u1", "$pageview", {"account_id": "acme", "$browser": "Chrome"}),
    ("recent 54", "u3", "$pageview", {"account_id": "globex", "$browser": "Safari"}),
]

JAN = "timestamp < '2024-02-01'"


def day(number: int) -> datetime.datetime:
    return datetime.datetime(2024, 1, number)


# (HogQL, result column names, rows)
CASES = [
    # Activity over time
    (
        "SELECT toStartOfDay(timestamp) AS day, uniq(distinct_id) AS dau FROM events "
        "WHERE timestamp >= '2024-01-01' AND timestamp < '2024-01-06' GROUP BY day ORDER BY day",
        ("day", "dau"),
        [(day(1), 2), (day(2), 1), (day(3), 2), (day(4), 1), (day(5), 1)],
    ),
    (
        f"SELECT toStartOfWeek(timestamp) AS week, uniq(distinct_id) AS wau FROM events WHERE {JAN} "
        "GROUP BY week ORDER BY week",
        ("week", "wau"),
        [(datetime.date(2023, 12, 31), 4), (datetime.date(2024, 1, 7), 1)],
    ),
    (
        "SELECT toDate(timestamp) AS day, count() FROM events WHERE toDate(timestamp) = '2024-01-03' GROUP BY day",
        ("day", "count()"),
        [(datetime.date(2024, 1, 3), 3)],
    ),
    (
        f"SELECT formatDateTime(timestamp, '%Y-%m') AS month, count() AS n FROM events WHERE {JAN} GROUP BY month",
        ("month", "n"),
        [("2024-01", 13)],
    ),
    (
        "SELECT day, dau, sum(dau) OVER (ORDER BY day) AS running FROM (SELECT toDate(timestamp) AS day, "
        "uniq(distinct_id) AS dau FROM events WHERE timestamp < '2024-01-06' GROUP BY day) ORDER BY day",
        ("day", "dau", "running"),
        [
            (datetime.date(2024, 1, 1), 2, 2), (datetime.date(2024, 1, 2), 1, 3), (datetime.date(2024, 1, 3), 2, 5),
            (datetime.date(2024, 1, 4), 1, 6), (datetime.date(2024, 1, 5), 1, 7),
        ],
    ),
    (
        "SELECT date_trunc('day', timestamp) AS day, count() FROM events WHERE timestamp < '2024-01-03' "
        "GROUP BY day ORDER BY day",
        ("day", "count()"),
        [(day(1), 3), (day(2), 3)],
    ),
    (
        "SELECT toDate(e.timestamp) AS day, count(DISTINCT e.distinct_id) AS users FROM events AS e "
        "WHERE e.timestamp < '2024-01-03' GROUP BY day ORDER BY day",
        ("day", "users"),
        [(datetime.date(2024, 1, 1), 2), (datetime.date(2024, 1, 2), 1)],
    ),
    (
        "SELECT toStartOfDay(timestamp) AS timestamp, count() AS n FROM events "
        "WHERE timestamp >= '2024-01-04' AND timestamp < '2024-02-01' GROUP BY timestamp ORDER BY timestamp",
        ("timestamp", "n"),
        [(day(4), 2), (day(5), 1), (day(8), 1)],
    ),
    # Top events and counts
    (
        f"SELECT event, count() AS events FROM events WHERE {JAN} GROUP BY event ORDER BY events DESC, event LIMIT 10",
        ("event", "events"),
        [("$pageview", 6), ("$exception", 3), ("purchase", 2), ("signup", 2)],
    ),
    (
        f"SELECT event, count() AS n FROM events WHERE {JAN} GROUP BY ALL ORDER BY n DESC, event",
        ("event", "n"),
        [("$pageview", 6), ("$exception", 3), ("purchase", 2), ("signup", 2)],
    ),
    (
        "SELECT event, count() FROM events GROUP BY 1 ORDER BY 2 DESC, 1",
        ("event", "count()"),
        [("$pageview", 8), ("$exception", 3), ("purchase", 2), ("signup", 2)],
    ),
    ("SELECT count() AS events FROM events", ("events",), [(15,)]),
    ("SELECT uniq(distinct_id) AS users, count() AS events FROM events", ("users", "events"), [(4, 15)]),
    (
        "SELECT e.event, count() AS events FROM events e GROUP BY e.event ORDER BY events DESC LIMIT 1",
        ("event", "events"),
        [("$pageview", 8)],
    ),
    (
        "SELECT count(DISTINCT distinct_id) AS users FROM events WHERE event = '$pageview'",
        ("users",),
        [(4,)],
    ),
    ("SELECT count() FROM events WHERE event IN ('signup', 'purchase')", ("count()",), [(4,)]),
    (
        "SELECT distinct_id, count() AS n FROM events GROUP BY distinct_id HAVING n >= 4 ORDER BY n DESC, distinct_id",
        ("distinct_id", "n"),
        [("u1", 5), ("u3", 5)],
    ),
    (
        "SELECT event, count() AS cnt FROM events GROUP BY event HAVING count() > 2 ORDER BY cnt",
        ("event", "cnt"),
        [("$exception", 3), ("$pageview", 8)],
    ),
    (
        "SELECT event, count() AS n FROM events GROUP BY event ORDER BY n DESC, event LIMIT 3 OFFSET 1",
        ("event", "n"),
        [("$exception", 3), ("purchase", 2), ("signup", 2)],
    ),
    # Funnels, conversion and retention
    (
        f"SELECT countIf(event = '$pageview') AS pageviews, countIf(event = 'signup') AS signups, "
        f"countIf(event = 'purchase') AS purchases, round(signups / pageviews * 100, 1) AS signup_rate "
        f"FROM events WHERE {JAN}",
        ("pageviews", "signups", "purchases", "signup_rate"),
        [(6, 2, 2, 33.3)],
    ),
    (
        "SELECT level, count() AS users FROM (SELECT distinct_id, windowFunnel(604800)(timestamp, "
        "event = '$pageview', event = 'signup', event = 'purchase') AS level FROM events GROUP BY distinct_id) "
        "GROUP BY level ORDER BY level",
        ("level", "users"),
        [(1, 2), (2, 1), (3, 1)],
    ),
    (
        "SELECT count() FILTER (WHERE event = 'signup') AS signups FROM events",
        ("signups",),
        [(2,)],
    ),
    (
        "SELECT uniqIf(distinct_id, event = 'purchase') / uniq(distinct_id) AS conversion FROM events",
        ("conversion",),
        [(0.5,)],
    ),
    (
        f"SELECT distinct_id, dateDiff('day', min(timestamp), max(timestamp)) AS active_span_days FROM events "
        f"WHERE {JAN} GROUP BY distinct_id ORDER BY distinct_id",
        ("distinct_id", "active_span_days"),
        [("u1", 7), ("u2", 2), ("u3", 3), ("u4", 0)],
    ),
    (
        "SELECT count() AS retained FROM (SELECT distinct_id FROM events WHERE timestamp < '2024-01-07' "
        "GROUP BY distinct_id) AS w1 JOIN (SELECT distinct_id FROM events WHERE timestamp >= '2024-01-07' "
        "GROUP BY distinct_id) AS w2 ON w1.distinct_id = w2.distinct_id",
        ("retained",),
        [(2,)],
    ),
    (
        "SELECT distinct_id FROM events WHERE event = 'signup' AND distinct_id NOT IN "
        "(SELECT distinct_id FROM events WHERE event = 'purchase')",
        ("distinct_id",),
        [("u3",)],
    ),
    (
        "SELECT count(DISTINCT s.distinct_id) AS signed_up, count(DISTINCT p.distinct_id) AS purchased "
        "FROM events s LEFT JOIN events p ON s.distinct_id = p.distinct_id AND p.event = 'purchase' "
        "AND p.timestamp > s.timestamp WHERE s.event = 'signup'",
        ("signed_up", "purchased"),
        [(2, 1)],
    ),
    (
        "SELECT count() FROM events WHERE distinct_id IN (SELECT distinct_id FROM events WHERE event = 'purchase') "
        "AND event = '$pageview'",
        ("count()",),
        [(5,)],
    ),
    (
        "WITH first_seen AS (SELECT distinct_id, min(timestamp) AS first_ts FROM events GROUP BY distinct_id) "
        "SELECT e.distinct_id, count() AS events_after_first_day FROM events e JOIN first_seen f "
        "ON e.distinct_id = f.distinct_id WHERE e.timestamp > f.first_ts + INTERVAL 1 DAY "
        "GROUP BY e.distinct_id ORDER BY e.distinct_id",
        ("distinct_id", "events_after_first_day"),
        [("u1", 3), ("u2", 2), ("u3", 2)],
    ),
    (
        "SELECT e.event, f.event, count() FROM events e JOIN events f ON e.distinct_id = f.distinct_id "
        "AND f.timestamp > e.timestamp WHERE e.event = 'signup' GROUP BY e.event, f.event ORDER BY f.event",
        ("event", "f.event", "count()"),
        [("signup", "$exception", 2), ("signup", "$pageview", 3), ("signup", "purchase", 1)],
    ),
    (
        "WITH signups AS (SELECT distinct_id, min(timestamp) AS signed_up_at FROM events WHERE event = 'signup' "
        "GROUP BY distinct_id), purchases AS (SELECT distinct_id, sum(toFloat(properties.amount)) AS revenue "
        "FROM events WHERE event = 'purchase' GROUP BY distinct_id) SELECT s.distinct_id, p.revenue FROM signups s "
        "LEFT JOIN purchases p ON s.distinct_id = p.distinct_id ORDER BY s.distinct_id",
        ("distinct_id", "revenue"),
        [("u1", 49.5), ("u3", None)],
    ),
    # Accounts and properties
    (
        "SELECT properties.account_id AS account, count() AS events FROM events GROUP BY account "
        "ORDER BY events DESC, account",
        ("account", "events"),
        [("acme", 8), ("globex", 5), ("initech", 2)],
    ),
    (
        "SELECT properties.$browser AS browser, count() AS pageviews FROM events WHERE event = '$pageview' "
        "GROUP BY browser ORDER BY pageviews DESC, browser",
        ("browser", "pageviews"),
        [("Chrome", 4), ("Firefox", 2), ("Safari", 2)],
    ),
    (
        "SELECT properties.$browser, count() FROM events WHERE event = '$pageview' GROUP BY properties.$browser "
        "ORDER BY count() DESC, properties.$browser LIMIT 10",
        ("properties.$browser", "count()"),
        [("Chrome", 4), ("Firefox", 2), ("Safari", 2)],
    ),
    (
        "SELECT properties.$exception_message AS message, count() AS occurrences, uniq(distinct_id) AS users "
        "FROM events WHERE event = '$exception' GROUP BY message ORDER BY occurrences DESC",
        ("message", "occurrences", "users"),
        [(TYPE_ERROR, 2, 2), ("NetworkError: timeout", 1, 1)],
    ),
    (
        "SELECT distinct_id, argMax(properties.plan, timestamp) AS plan FROM events WHERE properties.plan != '' "
        "GROUP BY distinct_id ORDER BY distinct_id",
        ("distinct_id", "plan"),
        [("u1", "pro"), ("u2", "pro"), ("u3", "free")],
    ),
    (
        "SELECT a.account, a.users, b.errors FROM (SELECT properties.account_id AS account, uniq(distinct_id) AS users "
        "FROM events GROUP BY account) a LEFT JOIN (SELECT properties.account_id AS account, count() AS errors "
        "FROM events WHERE event = '$exception' GROUP BY account) b ON a.account = b.account ORDER BY a.account",
        ("account", "users", "errors"),
        [("acme", 2, None), ("globex", 1, 2), ("initech", 1, 1)],
    ),
    (
        "SELECT properties.account_id AS account, sumIf(toFloat(properties.amount), event = 'purchase') AS revenue "
        "FROM events GROUP BY account HAVING revenue > 0 ORDER BY revenue DESC",
        ("account", "revenue"),
        [("acme", 69.5)],
    ),
    (
        "SELECT COUNT(DISTINCT properties.account_id), avg(properties.amount) FROM events",
        ("count(DISTINCT properties.account_id)", "avg(properties.amount)"),
        [(3, 34.75)],
    ),
    ("SELECT sum(properties.amount::Float64) AS revenue FROM events", ("revenue",), [(69.5,)]),
    (
        "SELECT properties.amount::Float64 AS amount FROM events WHERE event = 'purchase' ORDER BY amount",
        ("amount",),
        [(20.0,), (49.5,)],
    ),
    (
        "SELECT properties.amount::String AS amount, properties.amount::Int64 AS whole FROM events "
        "WHERE distinct_id = 'u2' ORDER BY timestamp",
        ("amount", "whole"),
        [(None, None), (None, None), ("20", 20)],
    ),
    ("SELECT count() FROM events WHERE properties.amount >= 20 AND properties.amount < 50", ("count()",), [(2,)]),
    (
        f"SELECT coalesce(properties.plan, 'unknown') AS plan, count() AS n FROM events WHERE {JAN} "
        "GROUP BY plan ORDER BY plan",
        ("plan", "n"),
        [("free", 3), ("pro", 6), ("unknown", 4)],
    ),
    (
        "SELECT JSONExtractString(properties, 'plan') AS plan, count() AS n FROM events GROUP BY plan ORDER BY plan",
        ("plan", "n"),
        [("", 6), ("free", 3), ("pro", 6)],
    ),
    (
        "SELECT countIf(properties.$browser = 'Chrome') / count() AS chrome_share FROM events WHERE event = '$pageview'",
        ("chrome_share",),
        [(0.5,)],
    ),
    ("SELECT count() FROM events WHERE properties.$exception_message LIKE 'TypeError%'", ("count()",), [(2,)]),
    ("SELECT distinct_id FROM events WHERE properties.$current_url ILIKE '%PRICING%'", ("distinct_id",), [("u2",)]),
    ("SELECT count() FROM events WHERE event NOT LIKE '$%'", ("count()",), [(4,)]),
    (
        "SELECT properties.$current_url AS url, count() AS n FROM events WHERE url LIKE '%pricing%' GROUP BY url",
        ("url", "n"),
        [(PRICING, 1)],
    ),
    # Expressions, percentages and conditionals
    (
        "SELECT if(event = '$exception', 'error', 'ok') AS kind, count() FROM events GROUP BY kind ORDER BY kind",
        ("kind", "count()"),
        [("error", 3), ("ok", 12)],
    ),
    (
        "SELECT multiIf(event = '$pageview', 'view', event IN ('signup', 'purchase'), 'conversion', 'other') "
        "AS category, count() AS n FROM events GROUP BY category ORDER BY category",
        ("category", "n"),
        [("conversion", 4), ("other", 3), ("view", 8)],
    ),
    (
        "SELECT CASE WHEN event = 'purchase' THEN 'money' ELSE 'other' END AS kind, count() FROM events "
        "GROUP BY kind ORDER BY kind",
        ("kind", "count()"),
        [("money", 2), ("other", 13)],
    ),
    (
        "SELECT event, round(100 * count() / (SELECT count() FROM events), 1) AS pct FROM events GROUP BY event "
        "ORDER BY pct DESC, event",
        ("event", "pct"),
        [("$pageview", 53.3), ("$exception", 20.0), ("purchase", 13.3), ("signup", 13.3)],
    ),
    # Windows and paths
    (
        "SELECT distinct_id, event, row_number() OVER (PARTITION BY distinct_id ORDER BY timestamp) AS step "
        "FROM events WHERE distinct_id = 'u2' ORDER BY step",
        ("distinct_id", "event", "step"),
        [("u2", "$pageview", 1), ("u2", "$pageview", 2), ("u2", "purchase", 3)],
    ),
    (
        f"SELECT distinct_id, arrayMap(x -> x.2, arraySort(groupArray((timestamp, event)))) AS path FROM events "
        f"WHERE {JAN} GROUP BY distinct_id ORDER BY distinct_id",
        ("distinct_id", "path"),
        [
            ("u1", ["$pageview", "signup", "purchase", "$pageview"]),
            ("u2", ["$pageview", "$pageview", "purchase"]),
            ("u3", ["$pageview", "signup", "$exception", "$exception"]),
            ("u4", ["$pageview", "$exception"]),
        ],
    ),
    # Time ranges written in every common form
    ("SELECT count() FROM events WHERE timestamp > '2024-01-04'", ("count()",), [(6,)]),
    ("SELECT count() FROM events WHERE timestamp >= '2024-01-03T00:00:00Z'", ("count()",), [(9,)]),
    (
        "SELECT e.timestamp FROM events e WHERE timestamp >= '2024-01-08T09:00:00Z' AND timestamp < '2024-01-09'",
        ("timestamp",),
        [(datetime.datetime(2024, 1, 8, 9),)],
    ),
    (
        "SELECT count() FROM events WHERE timestamp BETWEEN '2024-01-02' AND '2024-01-03 23:59:59'",
        ("count()",),
        [(6,)],
    ),
    (
        "SELECT count() FROM events WHERE timestamp BETWEEN '2024-01-02T00:00:00Z' AND '2024-01-03T23:59:59+00:00'",
        ("count()",),
        [(6,)],
    ),
    (
        "SELECT count() FROM events WHERE timestamp >= toDateTime('2024-01-03') AND timestamp < toDateTime('2024-01-04')",
        ("count()",),
        [(3,)],
    ),
    (
        "SELECT count() FROM events WHERE timestamp >= '2024-01-01' AND timestamp < '2024-01-01' + INTERVAL 2 DAY",
        ("count()",),
        [(6,)],
    ),
    ("SELECT count() FROM events WHERE timestamp > now() - INTERVAL 7 DAY", ("count()",), [(2,)]),
    ("SELECT count() FROM events WHERE timestamp > now() - interval '7 days'", ("count()",), [(2,)]),
    ("SELECT count() FROM events WHERE timestamp > now() - toIntervalDay(7)", ("count()",), [(2,)]),
    ("SELECT count() FROM events WHERE timestamp > NOW() - INTERVAL 1 MONTH", ("count()",), [(2,)]),
    ("SELECT count() FROM events WHERE toDate(timestamp) >= today() - 7", ("count()",), [(2,)]),
    ("SELECT count() FROM events WHERE timestamp > CURRENT_DATE - INTERVAL '7 days'", ("count()",), [(2,)]),
    ("SELECT count() FROM events WHERE timestamp > current_timestamp() - INTERVAL 7 DAY", ("count()",), [(2,)]),
    ("SELECT count() FROM events WHERE timestamp > CURRENT_TIMESTAMP - INTERVAL 7 DAY", ("count()",), [(2,)]),
    (
        "SELECT distinct_id, intDiv(dateDiff('second', max(timestamp), now()), 3600) AS hours_since FROM events "
        "GROUP BY distinct_id HAVING hours_since < 100 ORDER BY distinct_id",
        ("distinct_id", "hours_since"),
        [("u1", 30), ("u3", 54)],
    ),
    (
        "SELECT * FROM events WHERE event = 'signup' ORDER BY timestamp LIMIT 1",
        ("uuid", "event", "distinct_id", "timestamp", "properties"),
        [(uuid.UUID(int=3), "signup", "u1", datetime.datetime(2024, 1, 1, 11), {"account_id": "acme", "plan": "pro"})],
    ),
]



def berlin_midnight(number: int) -> datetime.datetime:
    """Midnight of 2024-01-<number> in Berlin, as clickhouse-connect 1.12 returns a
    DateTime('Europe/Berlin') value: a naive datetime in UTC (DateTime64 values come back aware)."""
    local = datetime.datetime(2024, 1, number, tzinfo=BERLIN)
    return local.astimezone(datetime.timezone.utc).replace(tzinfo=None)


# (HogQL run in Europe/Berlin, result column names, rows)
BERLIN_CASES = [
    (
        "SELECT toStartOfDay(timestamp) AS day, count() AS n FROM events WHERE timestamp < '2024-01-03' "
        "GROUP BY day ORDER BY day",
        ("day", "n"),
        [(berlin_midnight(1), 3), (berlin_midnight(2), 3)],
    ),
    (
        # Midnight in Berlin is 23:00 UTC the day before, so the 08:00 UTC purchase on 3 January is in.
        "SELECT count() FROM events WHERE timestamp >= '2024-01-03' AND timestamp < '2024-01-04'",
        ("count()",),
        [(3,)],
    ),
    (
        "SELECT count() FROM events WHERE timestamp >= '2024-01-03T00:00:00Z' AND timestamp < '2024-01-04T00:00:00Z'",
        ("count()",),
        [(3,)],
    ),
    (
        "SELECT toStartOfDay(timestamp), count() FROM events WHERE event = 'signup' GROUP BY toStartOfDay(timestamp) "
        "ORDER BY toStartOfDay(timestamp)",
        ("toStartOfDay(timestamp)", "count()"),
        [(berlin_midnight(1), 1), (berlin_midnight(2), 1)],
    ),
    (
        "SELECT level, count() AS users FROM (SELECT distinct_id, windowFunnel(3600)(timestamp, "
        "event = '$pageview', event = 'signup') AS level FROM events GROUP BY distinct_id) GROUP BY level ORDER BY level",
        ("level", "users"),
        [(1, 4)],
    ),
]


def event_rows(now: datetime.datetime) -> list[dict]:
    rows = []
    for index, (timestamp, user, event, properties) in enumerate(EVENTS):
        if timestamp.startswith("recent "):
            hours = int(timestamp.split()[1])
            timestamp = (now - datetime.timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")
        rows.append({
            "uuid": str(uuid.UUID(int=index + 1)),
            "timestamp": timestamp,
            "distinct_id": user,
            "event": event,
            "properties": properties,
        })
    return rows


@pytest.fixture(scope="module")
def product(new_project):
    project, neighbour = new_project(), new_project()
    rows = event_rows(datetime.datetime.now(datetime.timezone.utc))
    project.insert(*rows)
    neighbour.insert(*({**row, "uuid": str(uuid.uuid4())} for row in rows[:6]))
    return project


@pytest.mark.parametrize(("text", "columns", "rows"), CASES)
def test_agent_query(product, text, columns, rows):
    result = product.run(text, property_types=PROPERTY_TYPES)

    assert result.columns == columns
    assert result.rows == rows


@pytest.mark.parametrize(("text", "columns", "rows"), BERLIN_CASES)
def test_agent_query_in_project_timezone(product, text, columns, rows):
    result = product.run(text, property_types=PROPERTY_TYPES, timezone="Europe/Berlin")

    assert result.columns == columns
    assert result.rows == rows


# (HogQL, message) for mistakes agents make, each with a message that names what to write instead.
MISTAKES = [
    (
        "SELECT sum(properties.amount::numeric) FROM events",
        "Decimal needs a precision and scale, such as Decimal(18, 4); or cast to Float64.",
    ),
    (
        "SELECT person.properties.email FROM events",
        "Unknown table 'person' in 'person.properties'. Only event properties can be read, as properties.<key> "
        "or <events alias>.properties.<key>; person and group tables are not available.",
    ),
    (
        "SELECT e.plan FROM events e",
        "Unknown column 'e.plan'. The events table has the columns uuid, event, distinct_id, timestamp, "
        "properties, inserted_at; read an event property as e.properties.plan.",
    ),
]


@pytest.mark.parametrize(("text", "message"), MISTAKES)
def test_agent_mistake_message(product, text, message):
    with pytest.raises(HogQLError) as raised:
        product.run(text, property_types=PROPERTY_TYPES)

    assert raised.value.message == message

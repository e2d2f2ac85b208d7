"""Compile HogQL without a database: exact SQL, exact parameters, exact row caps."""

from __future__ import annotations

import datetime

import pytest

from pulseboard.hogql import CompileContext, compile_query

PLACEHOLDERS = {
    "as_of": (datetime.datetime(2024, 3, 1), "DateTime64(6, 'UTC')"),
    "window_days": (30, "Int64"),
    "w_usage": (0.4, "Float64"),
    "plans": (["pro", "team"], "Array(String)"),
    "plan": ("pro", "String"),
    "n": (5, "Int64"),
    "big": (50000, "Int64"),
}
PROPERTY_TYPES = {"mrr": "Numeric", "is_paid": "Boolean", "signed_up_at": "DateTime", "plan": "String"}
GUARD = "pb_t0.project_id = {pb_project:String}"
GUARD_1 = "pb_t1.project_id = {pb_project:String}"
WRAPPED = (
    "(SELECT uuid, event, distinct_id, timestamp, properties, inserted_at FROM events "
    "WHERE project_id = {pb_project:String})"
)


def compile_text(text: str, **context):
    context.setdefault("property_types", PROPERTY_TYPES)
    context.setdefault("placeholders", PLACEHOLDERS)
    return compile_query(text, CompileContext(project_id="p1", **context))


# (HogQL, ClickHouse SQL, parameters besides pb_project, row_cap)
CASES = [
    (
        "SELECT event FROM events",
        f"SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "select * from events",
        f"SELECT uuid, event, distinct_id, timestamp, properties FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.* FROM events AS e",
        'SELECT pb_t0.uuid AS "uuid", pb_t0.event AS "event", pb_t0.distinct_id AS "distinct_id", '
        'pb_t0.timestamp AS "timestamp", pb_t0.properties AS "properties" '
        f"FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT event FROM events WHERE event = 'signup' OR 1 = 1",
        f"SELECT event FROM events AS pb_t0 WHERE {GUARD} AND (event = {{pb_s0:String}} OR 1 = 1) LIMIT 101",
        {"pb_s0": "signup"},
        100,
    ),
    (
        "SELECT properties.$browser, properties['$feature/flag'] FROM events",
        'SELECT CAST(properties."$browser" AS Nullable(String)) AS "properties.$browser", '
        'CAST(properties."$feature/flag" AS Nullable(String)) AS "properties.$feature/flag" '
        f"FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT properties.a.b.c, properties.items[1].sku, properties.items.2, properties.$groups.company FROM events",
        'SELECT CAST(properties."a"."b"."c" AS Nullable(String)) AS "properties.a.b.c", '
        'CAST(properties."items"[1]."sku" AS Nullable(String)) AS "properties.items[1].sku", '
        'CAST(properties."items"[2] AS Nullable(String)) AS "properties.items[2]", '
        'CAST(properties."$groups"."company" AS Nullable(String)) AS "properties.$groups.company" '
        f"FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.properties.plan FROM events AS e",
        'SELECT CAST(pb_t0.properties."plan" AS Nullable(String)) AS "e.properties.plan" FROM events AS pb_t0 '
        f"WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT properties.mrr, properties.is_paid, properties.signed_up_at FROM events",
        "SELECT accurateCastOrNull(properties.\"mrr\", 'Float64') AS \"properties.mrr\", "
        "transform(CAST(properties.\"is_paid\" AS Nullable(String)), ['true', 'false'], [TRUE, FALSE], NULL) "
        'AS "properties.is_paid", '
        'parseDateTime64BestEffortOrNull(CAST(properties."signed_up_at" AS Nullable(String)), 6, {pb_tz:String}) '
        f'AS "properties.signed_up_at" FROM events AS pb_t0 WHERE {GUARD} LIMIT 101',
        {"pb_tz": "UTC"},
        100,
    ),
    (
        "SELECT count() FROM events WHERE properties.status = 200 AND properties.code IN (1, 2) AND properties.flag = true",
        f"SELECT count() FROM events AS pb_t0 WHERE {GUARD} AND ("
        "accurateCastOrNull(properties.\"status\", 'Float64') = 200 AND "
        "accurateCastOrNull(properties.\"code\", 'Float64') IN (1, 2) AND "
        "transform(CAST(properties.\"flag\" AS Nullable(String)), ['true', 'false'], [TRUE, FALSE], NULL) = TRUE"
        ") LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT properties.project_id FROM events",
        'SELECT CAST(properties."project_id" AS Nullable(String)) AS "properties.project_id" '
        f"FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT properties FROM events",
        f"SELECT properties FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT count() FROM events WHERE timestamp >= {as_of} - INTERVAL {window_days} DAY",
        f"SELECT count() FROM events AS pb_t0 WHERE {GUARD} AND "
        "(timestamp >= {as_of:DateTime64(6, 'UTC')} - INTERVAL ({window_days:Int64}) DAY) LIMIT 101",
        {"as_of": datetime.datetime(2024, 3, 1), "window_days": 30},
        100,
    ),
    (
        "SELECT {w_usage} * count() FROM events WHERE properties.plan IN {plans} OR event = {variables.plan}",
        "SELECT {w_usage:Float64} * count() FROM events AS pb_t0 WHERE "
        f'{GUARD} AND (CAST(properties."plan" AS Nullable(String)) IN {{plans:Array(String)}} '
        "OR event = {plan:String}) LIMIT 101",
        {"w_usage": 0.4, "plans": ["pro", "team"], "plan": "pro"},
        100,
    ),
    (
        "SELECT count() FROM events WHERE distinct_id IN (SELECT distinct_id FROM events WHERE event = 'signup')",
        f"SELECT count() FROM events AS pb_t0 PREWHERE {GUARD} WHERE distinct_id IN "
        f"(SELECT distinct_id FROM events AS pb_t1 WHERE {GUARD_1} AND (event = {{pb_s0:String}})) LIMIT 101",
        {"pb_s0": "signup"},
        100,
    ),
    (
        "WITH signups AS (SELECT distinct_id FROM events WHERE event = 'signup') SELECT count() FROM signups",
        f"WITH signups AS (SELECT distinct_id FROM events AS pb_t0 WHERE {GUARD} AND (event = {{pb_s0:String}})) "
        "SELECT count() FROM signups LIMIT 101",
        {"pb_s0": "signup"},
        100,
    ),
    (
        "SELECT (SELECT count() FROM events) AS total",
        f"SELECT (SELECT count() FROM events AS pb_t0 WHERE {GUARD}) AS total LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.event, f.event FROM events AS e JOIN events AS f ON e.distinct_id = f.distinct_id",
        'SELECT pb_t0.event AS "event", pb_t1.event AS "f.event" FROM events AS pb_t0 JOIN events AS pb_t1 '
        f"ON pb_t0.distinct_id = pb_t1.distinct_id WHERE {GUARD} AND {GUARD_1} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.event, f.event FROM events AS e, events AS f",
        'SELECT pb_t0.event AS "event", pb_t1.event AS "f.event" FROM events AS pb_t0 CROSS JOIN events AS pb_t1 '
        f"WHERE {GUARD} AND {GUARD_1} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.event, f.event FROM events AS e LEFT JOIN events AS f ON e.distinct_id = f.distinct_id",
        'SELECT pb_t0.event AS "event", pb_t1.event AS "f.event" FROM events AS pb_t0 LEFT JOIN events AS pb_t1 '
        f"ON (pb_t0.distinct_id = pb_t1.distinct_id) AND {GUARD_1} WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.event FROM events AS e LEFT JOIN events AS f USING (distinct_id)",
        f'SELECT pb_t0.event AS "event" FROM events AS pb_t0 LEFT JOIN {WRAPPED} AS pb_t1 USING (distinct_id) '
        f"WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.event, f.event FROM events AS e RIGHT JOIN events AS f ON e.distinct_id = f.distinct_id",
        'SELECT pb_t0.event AS "event", pb_t1.event AS "f.event" FROM events AS pb_t0 RIGHT JOIN events AS pb_t1 '
        f"ON (pb_t0.distinct_id = pb_t1.distinct_id) AND {GUARD} WHERE {GUARD_1} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.event, f.event FROM events AS e JOIN events AS f ON e.uuid = f.uuid "
        "RIGHT JOIN events AS g ON f.distinct_id = g.distinct_id",
        'SELECT pb_t0.event AS "event", pb_t1.event AS "f.event" FROM events AS pb_t0 JOIN events AS pb_t1 '
        f"ON (pb_t0.uuid = pb_t1.uuid) AND {GUARD_1} RIGHT JOIN events AS pb_t2 "
        f"ON (pb_t1.distinct_id = pb_t2.distinct_id) AND {GUARD} WHERE pb_t2.project_id = {{pb_project:String}} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT e.event, f.event FROM events AS e FULL OUTER JOIN events AS f ON e.distinct_id = f.distinct_id",
        f'SELECT pb_t0.event AS "event", pb_t1.event AS "f.event" FROM {WRAPPED} AS pb_t0 FULL OUTER JOIN {WRAPPED} AS pb_t1 '
        "ON pb_t0.distinct_id = pb_t1.distinct_id LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT event FROM events UNION ALL SELECT event FROM events",
        f"SELECT * FROM (SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT 100 UNION ALL "
        f"SELECT event FROM events AS pb_t1 WHERE {GUARD_1} LIMIT 100) AS _l_0 LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT event FROM events LIMIT 30",
        f"SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT 30",
        {},
        None,
    ),
    (
        "SELECT event FROM events LIMIT 50000",
        f"SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT 10001",
        {},
        10000,
    ),
    (
        "SELECT event FROM events LIMIT {n}",
        f"SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT {{n:Int64}}",
        {"n": 5},
        None,
    ),
    (
        "SELECT event FROM events LIMIT {big}",
        f"SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT 10001",
        {},
        10000,
    ),
    (
        "SELECT event FROM events LIMIT 10 OFFSET 20",
        f"SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT 10 OFFSET 20",
        {},
        None,
    ),
    (
        "SELECT event FROM events LIMIT 1 BY event",
        f"SELECT * FROM (SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT 1 BY event) AS limited_by LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT toFloat(properties.mrr), toInt(event), toDateTime('2024-01-01'), toDateTime(timestamp), "
        "toDate('2024-01-01'), now(), today(), yesterday() FROM events",
        'SELECT toFloat64OrNull(CAST(properties."mrr" AS Nullable(String))) AS "toFloat(properties.mrr)", '
        'toInt64OrNull(toString(event)) AS "toInt(event)", '
        """parseDateTime64BestEffortOrNull({pb_s0:String}, 6, {pb_tz:String}) AS "toDateTime('2024-01-01')", """
        'toDateTime(timestamp, {pb_tz:String}) AS "toDateTime(timestamp)", '
        """toDateOrNull({pb_s1:String}) AS "toDate('2024-01-01')", now64(6, {pb_tz:String}) AS "now()", """
        'toDate(now64(6, {pb_tz:String})) AS "today()", '
        'subtractDays(toDate(now64(6, {pb_tz:String})), 1) AS "yesterday()" '
        f"FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {"pb_s0": "2024-01-01", "pb_s1": "2024-01-01", "pb_tz": "UTC"},
        100,
    ),
    (
        "SELECT COUNT(*), countif(event = 'a'), quantile(0.9)(properties.mrr), uniqExactIf(distinct_id, event = 'b') FROM events",
        "SELECT count(*), countIf(event = {pb_s0:String}), quantile(0.9)(accurateCastOrNull(properties.\"mrr\", 'Float64')) "
        'AS "quantile(0.9)(properties.mrr)", '
        f"uniqExactIf(distinct_id, event = {{pb_s1:String}}) FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {"pb_s0": "a", "pb_s1": "b"},
        100,
    ),
    (
        "SELECT event -- a comment with {braces} and $dollars\nFROM events /* block */",
        f"SELECT event FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT 'it''s {x} $y', 'a\\'b' FROM events",
        f"SELECT {{pb_s0:String}}, {{pb_s1:String}} FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {"pb_s0": "it's {x} $y", "pb_s1": "a'b"},
        100,
    ),
    (
        "SELECT 1",
        "SELECT 1 LIMIT 101",
        None,
        100,
    ),
    (
        "SELECT count() AS events FROM events AS e WHERE e.event = 'a'",
        f"SELECT count() AS events FROM events AS pb_t0 WHERE {GUARD} AND (pb_t0.event = {{pb_s0:String}}) LIMIT 101",
        {"pb_s0": "a"},
        100,
    ),
    (
        "SELECT windowFunnel(3600)(timestamp, event = 'a', event = 'b') AS level FROM events",
        "SELECT windowFunnel(3600)(toDateTime(timestamp, {pb_tz:String}), event = {pb_s0:String}, "
        f"event = {{pb_s1:String}}) AS level FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {"pb_tz": "UTC", "pb_s0": "a", "pb_s1": "b"},
        100,
    ),
    (
        "SELECT count() FROM events WHERE timestamp > CURRENT_DATE - INTERVAL 7 DAY AND timestamp < current_timestamp()",
        f"SELECT count() FROM events AS pb_t0 WHERE {GUARD} AND (timestamp > toDate(now64(6, {{pb_tz:String}})) "
        "- INTERVAL 7 DAY AND timestamp < now64(6, {pb_tz:String})) LIMIT 101",
        {"pb_tz": "UTC"},
        100,
    ),
    (
        "SELECT CURRENT_TIMESTAMP, CURRENT_DATE FROM events",
        'SELECT now64(6, {pb_tz:String}) AS "CURRENT_TIMESTAMP", toDate(now64(6, {pb_tz:String})) AS "CURRENT_DATE()" '
        f"FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {"pb_tz": "UTC"},
        100,
    ),
    (
        "SELECT sum(properties.mrr::Float64) AS total, properties.note::Int64 AS note FROM events",
        "SELECT sum(CAST(accurateCastOrNull(properties.\"mrr\", 'Float64') AS Nullable(Float64))) AS total, "
        "CAST(accurateCastOrNull(properties.\"note\", 'Float64') AS Nullable(Int64)) AS note "
        f"FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {},
        100,
    ),
    (
        "SELECT count() FROM events WHERE timestamp >= '2024-01-01T00:00:00Z' AND inserted_at BETWEEN '2024-01-01' AND {plan}",
        f"SELECT count() FROM events AS pb_t0 WHERE {GUARD} AND ("
        "timestamp >= parseDateTime64BestEffort({pb_s0:String}, 6, {pb_tz:String}) AND inserted_at BETWEEN "
        "parseDateTime64BestEffort({pb_s1:String}, 6, {pb_tz:String}) AND "
        "parseDateTime64BestEffort({plan:String}, 6, {pb_tz:String})) LIMIT 101",
        {"pb_s0": "2024-01-01T00:00:00Z", "pb_tz": "UTC", "pb_s1": "2024-01-01", "plan": "pro"},
        100,
    ),
    (
        "SELECT avg(properties.mrr), event = 'x', e.event = 'y' FROM events e",
        """SELECT avg(accurateCastOrNull(properties."mrr", 'Float64')) AS "avg(properties.mrr)", """
        "event = {pb_s0:String}, pb_t0.event = {pb_s1:String} "
        f"FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {"pb_s0": "x", "pb_s1": "y"},
        100,
    ),
    (
        "SELECT count() FILTER (WHERE event = 'a') FROM events",
        f"SELECT count() FILTER(WHERE event = {{pb_s0:String}}) FROM events AS pb_t0 WHERE {GUARD} LIMIT 101",
        {"pb_s0": "a"},
        100,
    ),
]


@pytest.mark.parametrize(("text", "sql", "parameters", "row_cap"), CASES)
def test_compile_sql_and_parameters(text, sql, parameters, row_cap):
    compiled = compile_text(text)

    assert compiled.sql == sql
    expected = {} if parameters is None else {"pb_project": "p1", **parameters}
    assert compiled.parameters == expected
    assert compiled.row_cap == row_cap


# (HogQL, echoed HogQL with the applied limit)
ECHO_CASES = [
    ("SELECT event FROM events", "SELECT event FROM events LIMIT 100"),
    ("select * from events", "SELECT * FROM events LIMIT 100"),
    ("SELECT event FROM events LIMIT 50000", "SELECT event FROM events LIMIT 10000"),
    ("SELECT event FROM events LIMIT 30", "SELECT event FROM events LIMIT 30"),
    (
        "SELECT properties.$browser FROM events WHERE event = '$pageview'",
        "SELECT properties.\"$browser\" FROM events WHERE event = '$pageview' LIMIT 100",
    ),
    (
        "SELECT count() FROM events WHERE timestamp >= {as_of} - INTERVAL 7 DAY",
        "SELECT count() FROM events WHERE timestamp >= {as_of} - INTERVAL 7 DAY LIMIT 100",
    ),
    (
        "SELECT event FROM events UNION ALL SELECT event FROM events",
        "SELECT * FROM (SELECT event FROM events LIMIT 100 UNION ALL SELECT event FROM events LIMIT 100) "
        "AS _l_0 LIMIT 100",
    ),
    ("SELECT event -- note\nFROM events", "SELECT event FROM events LIMIT 100"),
]


@pytest.mark.parametrize(("text", "hogql"), ECHO_CASES)
def test_compile_echoes_normalised_hogql(text, hogql):
    assert compile_text(text).hogql == hogql


def test_compile_custom_limits():
    compiled = compile_text("SELECT event FROM events", default_limit=7, max_limit=20)

    assert compiled.sql.endswith(" LIMIT 8")
    assert compiled.row_cap == 7
    assert compile_text("SELECT event FROM events LIMIT 21", default_limit=7, max_limit=20).row_cap == 20
    assert compile_text("SELECT event FROM events LIMIT 20", default_limit=7, max_limit=20).row_cap is None


def test_compile_timezone_wraps_timestamps():
    compiled = compile_text(
        "SELECT toStartOfDay(timestamp) AS day, timestamp, count() FROM events "
        "WHERE timestamp > '2024-01-01' GROUP BY day, timestamp ORDER BY timestamp",
        timezone="Europe/Berlin",
    )

    assert compiled.sql == (
        "SELECT toStartOfDay(toTimeZone(timestamp, {pb_tz:String})) AS day, "
        'toTimeZone(timestamp, {pb_tz:String}) AS "timestamp", count() FROM events AS pb_t0 '
        f"WHERE {GUARD} AND (timestamp > parseDateTime64BestEffort({{pb_s0:String}}, 6, {{pb_tz:String}})) "
        "GROUP BY day, timestamp ORDER BY timestamp LIMIT 101"
    )
    assert compiled.parameters == {"pb_project": "p1", "pb_tz": "Europe/Berlin", "pb_s0": "2024-01-01"}


def test_compile_utc_leaves_timestamps_alone():
    compiled = compile_text("SELECT toStartOfDay(timestamp) FROM events")

    assert compiled.sql == (
        f'SELECT toStartOfDay(timestamp) AS "toStartOfDay(timestamp)" FROM events AS pb_t0 WHERE {GUARD} LIMIT 101'
    )


def test_compile_binds_user_literals():
    compiled = compile_text("SELECT event FROM events WHERE event = 'x'' OR 1=1 --' AND distinct_id LIKE '%a%'")

    assert "OR 1=1" not in compiled.sql
    assert "%a%" not in compiled.sql
    assert compiled.parameters == {"pb_project": "p1", "pb_s0": "x' OR 1=1 --", "pb_s1": "%a%"}


def test_compile_binds_placeholder_values():
    compiled = compile_text("SELECT count() FROM events WHERE event = {plan}", placeholders={"plan": ("x' OR '1", "String")})

    assert "x' OR" not in compiled.sql
    assert compiled.parameters == {"pb_project": "p1", "plan": "x' OR '1"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"project_id": ""}, "Invalid CompileContext: project_id must be a non-empty string."),
        (
            {"timezone": "UTC'; DROP"},
            "Invalid CompileContext: timezone \"UTC'; DROP\" is not a timezone name such as 'Europe/Berlin'.",
        ),
        (
            {"default_limit": 0},
            "Invalid CompileContext: default_limit (0) must be at least 1 and at most max_limit (10000).",
        ),
        (
            {"placeholders": {"pb_x": (1, "Int64")}},
            "Invalid CompileContext: placeholder name 'pb_x' must match [A-Za-z][A-Za-z0-9_]* and not start with 'pb_'.",
        ),
        (
            {"placeholders": {"x": (1, "Int64}")}},
            "Invalid CompileContext: placeholder 'x' has an invalid ClickHouse type 'Int64}'.",
        ),
    ],
)
def test_compile_rejects_invalid_context(changes, message):
    context = {"project_id": "p1", **changes}

    with pytest.raises(ValueError) as raised:
        compile_query("SELECT 1", CompileContext(**context))

    assert str(raised.value) == message

"""The function allowlist: names exist in ClickHouse, lookups, and calls that print as written."""

from __future__ import annotations

import datetime

import pytest

from pulseboard.hogql import functions
from pulseboard.hogql.functions import FunctionName, lookup_function

# HogQL names that the compiler rewrites (see rewrite.py), and calls the ClickHouse parser
# handles itself, so system.functions does not list them.
NOT_IN_SYSTEM_FUNCTIONS = {"toFloat", "toInt", "untuple"}


def system_functions(client) -> dict[str, tuple[bool, bool]]:
    rows = client.query("SELECT name, is_aggregate, case_insensitive FROM system.functions").result_rows
    return {name: (bool(is_aggregate), bool(case_insensitive)) for name, is_aggregate, case_insensitive in rows}


def test_functions_scalars_exist_in_clickhouse(hogql_ch):
    known = system_functions(hogql_ch)
    lowercase = {name.lower() for name, (_, insensitive) in known.items() if insensitive}

    missing = [
        name for name in sorted(functions.SCALAR_FUNCTIONS - NOT_IN_SYSTEM_FUNCTIONS)
        if name not in known and name.lower() not in lowercase
    ]

    assert missing == []


def test_functions_aggregates_exist_in_clickhouse(hogql_ch):
    known = system_functions(hogql_ch)

    not_aggregates = [name for name in sorted(functions.AGGREGATE_FUNCTIONS) if not known.get(name, (False,))[0]]

    assert not_aggregates == []


def test_functions_table_and_scalar_overlap():
    assert functions.TABLE_FUNCTIONS & functions.SCALAR_FUNCTIONS == {"format"}
    assert not functions.TABLE_FUNCTIONS & functions.AGGREGATE_FUNCTIONS


def test_functions_names_unique_ignoring_case():
    names = [name.lower() for name in functions.SCALAR_FUNCTIONS | functions.AGGREGATE_FUNCTIONS]

    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("count", FunctionName("count", is_aggregate=True)),
        ("COUNT", FunctionName("count", is_aggregate=True)),
        ("countIf", FunctionName("countIf", is_aggregate=True)),
        ("countif", FunctionName("countIf", is_aggregate=True)),
        ("uniqExactIf", FunctionName("uniqExactIf", is_aggregate=True)),
        ("sumArrayIf", FunctionName("sumArrayIf", is_aggregate=True)),
        ("sumMap", FunctionName("sumMap", is_aggregate=True)),
        ("avgOrNull", FunctionName("avgOrNull", is_aggregate=True)),
        ("uniqMergeState", FunctionName("uniqMergeState", is_aggregate=True)),
        ("quantilesTDigestMerge", FunctionName("quantilesTDigestMerge", is_aggregate=True)),
        ("argMaxIf", FunctionName("argMaxIf", is_aggregate=True)),
        ("toStartOfDay", FunctionName("toStartOfDay", is_aggregate=False)),
        ("TOSTARTOFDAY", FunctionName("toStartOfDay", is_aggregate=False)),
        ("lagInFrame", FunctionName("lagInFrame", is_aggregate=False)),
        ("sumIfIfIfIf", None),
        ("sleep", None),
        ("url", None),
        ("remote", None),
        ("dictGet", None),
        ("If", FunctionName("if", is_aggregate=False)),
    ],
)
def test_functions_lookup(name, expected):
    assert lookup_function(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("s3", "Table functions cannot be used; query the events table instead."),
        ("mysql", "Table functions cannot be used; query the events table instead."),
        ("dictGetOrDefault", "Dictionaries are not available."),
        ("sleep", "Functions that pause the query are not allowed."),
        ("getSetting", "Server settings cannot be read."),
        ("toStartOfDya", "Similar allowed functions: toStartOfDay, toStartOfYear, toStartOfWeek."),
        ("xyzzy", ""),
    ],
)
def test_functions_rejection_reason(name, reason):
    assert functions.rejection_reason(name) == reason


# (HogQL expression, value ClickHouse returns); each runs as `SELECT <expression>`.
CALLS = [
    ("toTypeName(rand())", "UInt32"),
    ("splitByChar(',', 'a,b')", ["a", "b"]),
    ("toStartOfDay(toDateTime('2024-01-02 03:04:05'))", datetime.datetime(2024, 1, 2, 0, 0)),
    ("toStartOfMonth(toDate('2024-03-05'))", datetime.date(2024, 3, 1)),
    ("toMonday(toDate('2024-03-07'))", datetime.date(2024, 3, 4)),
    ("dateDiff('day', toDate('2024-01-01'), toDate('2024-01-31'))", 30),
    ("toYYYYMM(toDate('2024-03-05'))", 202403),
    ("formatDateTime(toDate('2024-03-05'), '%Y-%m')", "2024-03"),
    ("toTypeName(now())", "DateTime64(6, 'UTC')"),
    ("toTypeName(today())", "Date"),
    ("toFloat('1.5')", 1.5),
    ("toFloat('abc')", None),
    ("toInt('42')", 42),
    ("toInt(42)", 42),
    ("toDate('not a date')", None),
    ("toDateTime('2024-01-02T03:04:05Z')", datetime.datetime(2024, 1, 2, 3, 4, 5)),
    ("arraySum([1, 2, 3])", 6),
    ("arrayMap(x -> x * 2, [1, 2])", [2, 4]),
    ("arrayFilter((x, y) -> y > 1, ['a', 'b'], [1, 2])", ["b"]),
    ("if(1 > 0, 'yes', 'no')", "yes"),
    ("multiIf(0, 'a', 1, 'b', 'c')", "b"),
    ("coalesce(NULL, 2)", 2),
    ("ifNull(NULL, 'x')", "x"),
    ("nullIf(1, 1)", None),
    ("NULL ?? 'fallback'", "fallback"),
    ("1 > 0 ? 'a' : 'b'", "a"),
    ("round(1.26, 1)", 1.3),
    ("greatest(1, 3) + least(2, 5) + abs(-4)", 9),
    ("log(1)", 0.0),
    ("substring('hello', 2, 3)", "ell"),
    ("lower('AbC') || upper('d')", "abcD"),
    ("concat('a', 'b')", "ab"),
    ("replaceAll('aXa', 'X', '-')", "a-a"),
    ("extract('abc123', '[0-9]+')", "123"),
    ("position('hello', 'l')", 3),
    ("JSONExtractString('{\"a\": \"b\"}', 'a')", "b"),
    ("tuple(1, 'a')", (1, "a")),
    ("map('k', 1)['k']", 1),
    ("CAST('7' AS Int64) + CAST('1', 'Int64')", 8),
    ("EXTRACT(YEAR FROM toDate('2024-03-05'))", 2024),
    ("trim(BOTH 'x' FROM 'xxaxx')", "a"),
    ("'abc' LIKE '%b%' AND 'ABC' ILIKE '%b%'", True),
    ("CASE WHEN 1 = 2 THEN 'a' ELSE 'b' END", "b"),
    ("toStartOfInterval(toDateTime('2024-01-02 03:04:05'), INTERVAL 1 HOUR)", datetime.datetime(2024, 1, 2, 3, 0)),
]


@pytest.mark.parametrize(("expression", "value"), CALLS)
def test_functions_run_as_written(new_project, expression, value):
    result = new_project().run(f"SELECT {expression}")

    assert result.rows == [(value,)]


# (query over three numbers, rows)
AGGREGATE_CALLS = [
    ("SELECT quantile(0.5)(x), quantiles(0.5, 1)(x) FROM numbers_table", [(2.0, [2.0, 3.0])]),
    ("SELECT countIf(x > 1), sumIf(x, x > 1), uniqExact(x), argMax(x, -x) FROM numbers_table", [(2, 5, 3, 1)]),
    ("SELECT avgOrNull(x), groupArray(x), median(x), topK(1)(x) FROM numbers_table WHERE x = 2", [(2.0, [2], 2.0, [2])]),
    (
        "SELECT x, row_number() OVER (ORDER BY x DESC), lagInFrame(x) OVER (ORDER BY x ROWS BETWEEN "
        "UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM numbers_table ORDER BY x",
        [(1, 3, 0), (2, 2, 1), (3, 1, 2)],
    ),
]


@pytest.mark.parametrize(("text", "rows"), AGGREGATE_CALLS)
def test_functions_aggregates_run(new_project, text, rows):
    query = "WITH numbers_table AS (SELECT arrayJoin([1, 2, 3]) AS x) " + text

    assert new_project().run(query).rows == rows

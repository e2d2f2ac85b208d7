"""Typed reads of `properties.x` on real chDB, over values stored as every JSON type."""

from __future__ import annotations

import datetime

import pytest

from pulseboard.hogql import CompileContext, compile_query

# One event per distinct_id; the same keys hold numbers, strings, booleans, arrays, null or nothing.
STORED = {
    "r1": {
        "status": 200, "mrr": 42, "paid": True, "when": "2024-02-03T04:05:06Z",
        "nested": {"a": {"b": "deep"}}, "$browser": "Chrome", "$feature/flag": "on",
        "items": [{"sku": "A"}, {"sku": "B"}], "tags": ["x", "y"], "$groups": {"company": "acme"},
        "account_id": 42, "x\"y": "quote", "x\\y": "backslash", "x'y": "apostrophe", "dotted.key": "dot",
    },
    "r2": {"status": "200", "mrr": "42.5", "paid": "true", "when": "2024-02-03 10:00:00", "account_id": "42"},
    "r3": {"status": "abc", "mrr": "abc", "paid": "false", "when": "junk"},
    "r4": {"status": [1, 2], "mrr": [1], "paid": "yes"},
    "r5": {"status": None, "mrr": None, "paid": None},
    "r6": {},
    "r7": {"status": 201, "mrr": 7, "paid": False},
}
TYPES = {"mrr": "Numeric", "paid": "Boolean", "when": "DateTime"}
ORDER = " ORDER BY distinct_id"

# (query, rows); each query lists distinct_id first and orders by it.
READS = [
    (
        "SELECT distinct_id, properties.status FROM events",
        [("r1", "200"), ("r2", "200"), ("r3", "abc"), ("r4", "[1,2]"), ("r5", None), ("r6", None), ("r7", "201")],
    ),
    (
        "SELECT distinct_id, properties.mrr FROM events",
        [("r1", 42.0), ("r2", 42.5), ("r3", None), ("r4", None), ("r5", None), ("r6", None), ("r7", 7.0)],
    ),
    (
        "SELECT distinct_id, properties.paid FROM events",
        [("r1", True), ("r2", True), ("r3", False), ("r4", None), ("r5", None), ("r6", None), ("r7", False)],
    ),
    (
        "SELECT distinct_id, properties.when FROM events WHERE distinct_id IN ('r1', 'r2', 'r3', 'r6')",
        [
            ("r1", datetime.datetime(2024, 2, 3, 4, 5, 6)),
            ("r2", datetime.datetime(2024, 2, 3, 10, 0, 0)),
            ("r3", None),
            ("r6", None),
        ],
    ),
    ("SELECT distinct_id FROM events WHERE properties.status = 200", [("r1",), ("r2",)]),
    ("SELECT distinct_id FROM events WHERE properties.status > 100", [("r1",), ("r2",), ("r7",)]),
    ("SELECT distinct_id FROM events WHERE properties.status IN (200, 201)", [("r1",), ("r2",), ("r7",)]),
    ("SELECT distinct_id FROM events WHERE properties.status BETWEEN 199 AND 200", [("r1",), ("r2",)]),
    ("SELECT distinct_id FROM events WHERE properties.status = '200'", [("r1",), ("r2",)]),
    ("SELECT distinct_id FROM events WHERE properties.account_id = '42'", [("r1",), ("r2",)]),
    ("SELECT distinct_id FROM events WHERE properties.paid = true", [("r1",), ("r2",)]),
    ("SELECT distinct_id FROM events WHERE properties.status IS NULL", [("r5",), ("r6",)]),
    ("SELECT distinct_id FROM events WHERE properties.mrr > 10", [("r1",), ("r2",)]),
    (
        "SELECT distinct_id, toFloat(properties.mrr) FROM events WHERE distinct_id IN ('r1', 'r2', 'r3', 'r4')",
        [("r1", 42.0), ("r2", 42.5), ("r3", None), ("r4", None)],
    ),
    (
        "SELECT distinct_id, properties.nested.a.b, properties.$browser, properties['$feature/flag'], "
        "properties.`$feature/flag`, properties.$groups.company FROM events WHERE distinct_id IN ('r1', 'r2')",
        [("r1", "deep", "Chrome", "on", "on", "acme"), ("r2", None, None, None, None, None)],
    ),
    (
        "SELECT distinct_id, properties.items[2].sku, properties.items.1.sku, properties.tags[1], "
        "properties.tags[-1], properties.items[5].sku FROM events WHERE distinct_id IN ('r1', 'r2')",
        [("r1", "B", "A", "x", "y", None), ("r2", None, None, None, None, None)],
    ),
    (
        "SELECT distinct_id, properties['x\"y'], properties['x\\\\y'], properties['x''y'], properties['dotted.key'], "
        "properties.dotted.key FROM events WHERE distinct_id = 'r1'",
        [("r1", "quote", "backslash", "apostrophe", "dot", "dot")],
    ),
    ("SELECT distinct_id FROM events WHERE properties.mrr = '42'", [("r1",)]),
    ("SELECT distinct_id, properties.nothing FROM events WHERE distinct_id IN ('r1', 'r6')", [("r1", None), ("r6", None)]),
    ("SELECT distinct_id, properties FROM events WHERE distinct_id = 'r6'", [("r6", {})]),
    (
        "SELECT e.distinct_id, e.properties.$browser FROM events AS e JOIN events AS f ON e.uuid = f.uuid "
        "WHERE f.properties.$browser = 'Chrome'",
        [("r1", "Chrome")],
    ),
    (
        "WITH x AS (SELECT distinct_id, properties FROM events) "
        "SELECT distinct_id, properties.$browser FROM x WHERE properties.$browser IS NOT NULL",
        [("r1", "Chrome")],
    ),
]


@pytest.fixture(scope="module")
def typed_project(new_project):
    project = new_project()
    project.insert(*({"distinct_id": key, "properties": value} for key, value in STORED.items()))
    return project


@pytest.mark.parametrize(("text", "rows"), READS)
def test_properties_read_as_typed(typed_project, text, rows):
    query = text if "ORDER BY" in text else text + ORDER

    result = typed_project.run(query, property_types=TYPES)

    assert result.rows == rows


def test_properties_numeric_aggregates(typed_project):
    result = typed_project.run("SELECT sum(properties.mrr), count(properties.mrr) FROM events", property_types=TYPES)

    assert result.rows == [(91.5, 3)]


def test_properties_group_by_string_read(typed_project):
    result = typed_project.run("SELECT properties.status AS status, count() AS n FROM events GROUP BY status")

    assert sorted(result.rows, key=lambda row: (row[0] is not None, row[0])) == [
        (None, 2), ("200", 2), ("201", 1), ("[1,2]", 1), ("abc", 1),
    ]


def test_properties_column_named_after_path(typed_project):
    result = typed_project.run(
        "SELECT properties.$browser, e.properties.mrr FROM events AS e WHERE distinct_id = 'r1'",
        property_types=TYPES,
    )

    assert result.columns == ("properties.$browser", "e.properties.mrr")
    assert result.rows == [("Chrome", 42.0)]


def test_properties_datetime_in_project_timezone(typed_project):
    result = typed_project.run(
        "SELECT toString(properties.when) FROM events WHERE distinct_id IN ('r1', 'r2') ORDER BY distinct_id",
        property_types=TYPES,
        timezone="America/New_York",
    )

    # ClickHouse's JSON type stored both strings as DateTime64 instants at insert (in UTC),
    # so the read shows those instants in the project's timezone.
    assert result.rows == [("2024-02-02 23:05:06.000000",), ("2024-02-03 05:00:00.000000",)]


def test_properties_to_string_reads_text_as_sent(typed_project):
    # mrr is recorded Numeric, yet toString must show "abc" and "[1]" as sent, not NULL.
    result = typed_project.run(
        "SELECT distinct_id, toString(properties.mrr) FROM events WHERE distinct_id IN ('r1', 'r2', 'r3', 'r4')"
        + ORDER,
        property_types=TYPES,
    )

    assert result.rows == [("r1", "42"), ("r2", "42.5"), ("r3", "abc"), ("r4", "[1]")]


# Each path stores one type in every event, so typed subcolumn reads are exact.
SINGLE_TYPED = [
    {"distinct_id": "s1", "properties": {"account": "acme", "seats": 3, "price": 9.5, "flag": "true"}},
    {"distinct_id": "s2", "properties": {"account": "globex", "seats": 12, "price": 20.25, "flag": "false"}},
    {"distinct_id": "s3", "properties": {"account": "42", "seats": 7, "price": 1.0}},
    {"distinct_id": "s4", "properties": {}},
]
STORED_TYPES = {
    "account": frozenset({"String"}), "seats": frozenset({"Int64"}), "price": frozenset({"Float64"}),
    "flag": frozenset({"String"}),
}
SINGLE_TYPES = {"account": "String", "seats": "Numeric", "price": "Numeric", "flag": "Boolean"}

# (query, rows) on SINGLE_TYPED, ordered by distinct_id
TYPED_SUBCOLUMN_READS = [
    ("SELECT properties.account FROM events", [("acme",), ("globex",), ("42",), (None,)]),
    ("SELECT properties.seats, properties.price FROM events", [(3.0, 9.5), (12.0, 20.25), (7.0, 1.0), (None, None)]),
    ("SELECT toString(properties.seats), toString(properties.price) FROM events", [("3", "9.5"), ("12", "20.25"), ("7", "1"), (None, None)]),
    ("SELECT toFloat(properties.account), toInt(properties.seats) FROM events", [(None, 3), (None, 12), (42.0, 7), (None, None)]),
    ("SELECT properties.flag = true, properties.flag = false FROM events", [(1, 0), (0, 1), (None, None), (None, None)]),
    ("SELECT properties.seats > 5, properties.account = 'acme' FROM events", [(0, 1), (1, 0), (1, 0), (None, None)]),
    ("SELECT properties.price::Float64 FROM events", [(9.5,), (20.25,), (1.0,), (None,)]),
]


def test_properties_keyword_key(new_project):
    project = new_project()
    project.insert({"distinct_id": "k1", "properties": {"when": "later", "from": "email"}}, {"distinct_id": "k2"})

    result = project.run("SELECT properties.when, properties.from FROM events WHERE properties.from IS NOT NULL")

    assert result.columns == ("properties.when", "properties.from")
    assert result.rows == [("later", "email")]


@pytest.fixture(scope="module")
def single_typed_project(new_project, hogql_ch):
    project = new_project()
    project.insert(*SINGLE_TYPED)
    stored = hogql_ch.query(
        "SELECT distinctJSONPathsAndTypes(properties) FROM events WHERE project_id = {p:String}",
        parameters={"p": project.project_id},
    ).result_rows[0][0]
    assert {path: frozenset(types) for path, types in stored.items()} == STORED_TYPES
    return project


@pytest.mark.parametrize(("text", "rows"), TYPED_SUBCOLUMN_READS)
def test_properties_typed_subcolumn_matches_dynamic_read(single_typed_project, text, rows):
    text += " ORDER BY distinct_id"
    typed = single_typed_project.run(text, property_types=SINGLE_TYPES, stored_types=STORED_TYPES)
    dynamic = single_typed_project.run(text, property_types=SINGLE_TYPES)

    assert ".:" in typed.compiled.sql
    assert ".:" not in dynamic.compiled.sql
    assert typed.rows == rows
    assert dynamic.rows == rows


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        (frozenset({"String"}), 'properties."account".:String'),
        (frozenset({"String", "Int64"}), 'CAST(properties."account" AS Nullable(String))'),
        (frozenset({"Array(Nullable(String))"}), 'CAST(properties."account" AS Nullable(String))'),
        (frozenset({"Int64"}), 'CAST(properties."account".:Int64 AS Nullable(String))'),
        (frozenset({"Bool"}), 'CAST(properties."account" AS Nullable(String))'),
    ],
)
def test_properties_typed_subcolumn_only_for_one_plain_type(stored, read):
    compiled = compile_query(
        "SELECT properties.account AS a FROM events",
        CompileContext(project_id="p1", stored_types={"account": stored}),
    )
    assert compiled.sql == (
        f"SELECT {read} AS a FROM events AS pb_t0 WHERE pb_t0.project_id = {{pb_project:String}} LIMIT 101"
    )


def test_properties_array_index_reads_dynamic_value():
    compiled = compile_query(
        "SELECT properties.items[1].sku AS sku FROM events",
        CompileContext(project_id="p1", stored_types={"items.sku": frozenset({"String"})}),
    )
    assert ".:" not in compiled.sql

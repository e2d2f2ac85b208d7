"""Queries the compiler rejects: exact error type, message, line, column and offending text."""

from __future__ import annotations

import pytest

from pulseboard.hogql import (
    CompileContext,
    HogQLError,
    HogQLSyntaxError,
    NotAllowedError,
    PlaceholderError,
    PropertyAccessError,
    UnknownColumnError,
    UnknownFunctionError,
    UnknownTableError,
    UnsupportedError,
    compile_query,
)

TABLE_RULE = "Only the events and health_snapshots tables and the query's own CTEs can be queried, without a database name."
TABLE_FUNCTION = "Table functions cannot be used; query the events table instead."
PROJECT_ID = "'project_id' cannot be used; every query already reads only the caller's project."
RESERVED = "Names starting with 'pb_' are reserved for the compiler; rename '{}'."
EVENTS_COLUMNS = "uuid, event, distinct_id, timestamp, properties, inserted_at"

# (query, error class, message, line, column, fragment)
BAD_QUERIES = [
    ("SELECT * FROM system.tables", NotAllowedError, f"Table 'system.tables' is not allowed. {TABLE_RULE}", 1, 15, "system.tables"),
    ("SELECT event FROM other.events", NotAllowedError, f"Table 'other.events' is not allowed. {TABLE_RULE}", 1, 19, "other.events"),
    ("SELECT * FROM url('http://x', CSV, 'a String')", NotAllowedError, f"Function 'url' is not allowed. {TABLE_FUNCTION}", 1, 15, "url"),
    ("SELECT * FROM file('data.csv')", NotAllowedError, f"Function 'file' is not allowed. {TABLE_FUNCTION}", 1, 15, "file"),
    ("SELECT number FROM numbers(10)", NotAllowedError, f"Function 'numbers' is not allowed. {TABLE_FUNCTION}", 1, 20, "numbers"),
    ("SELECT file('/etc/passwd')", UnknownFunctionError, f"Function 'file' is not allowed. {TABLE_FUNCTION}", 1, 8, "file"),
    ("SELECT * FROM sessions", UnknownTableError, "Unknown table 'sessions'. Tables that can be queried: events, health_snapshots.", 1, 15, "sessions"),
    (
        "WITH a AS (SELECT 1) SELECT * FROM b",
        UnknownTableError,
        "Unknown table 'b'. Tables that can be queried: events, health_snapshots, a.",
        1,
        36,
        "b",
    ),
    ("SELECT 1; DROP TABLE events", NotAllowedError, "Only one statement is allowed. Remove the text after ';'.", 1, 9, ";"),
    ("INSERT INTO events VALUES (1)", NotAllowedError, "Only SELECT queries are allowed; found INSERT.", 1, 1, "INSERT"),
    ("EXPLAIN SELECT 1", NotAllowedError, "Only SELECT queries are allowed; found EXPLAIN.", 1, 1, "EXPLAIN"),
    ("SELECT 1 SETTINGS max_threads=1", NotAllowedError, "SETTINGS is not allowed; pulseboard sets query limits itself.", 1, 10, "SETTINGS"),
    (
        "SELECT 1 UNION ALL SELECT 2 SETTINGS max_threads=1",
        NotAllowedError,
        "SETTINGS is not allowed; pulseboard sets query limits itself.",
        1,
        29,
        "SETTINGS",
    ),
    ("SELECT event FROM events FORMAT JSON", NotAllowedError, "FORMAT is not allowed; pulseboard chooses the output format.", 1, 26, "FORMAT"),
    (
        "SELECT event FROM events INTO OUTFILE 'x.csv'",
        NotAllowedError,
        "INTO OUTFILE is not allowed; results are returned to the caller.",
        1,
        26,
        "INTO OUTFILE",
    ),
    (
        "SELECT sleepEachRow(1) FROM events",
        UnknownFunctionError,
        "Function 'sleepEachRow' is not allowed. Functions that pause the query are not allowed.",
        1,
        8,
        "sleepEachRow",
    ),
    (
        "SELECT dictGet('dict', 'attr', 1)",
        UnknownFunctionError,
        "Function 'dictGet' is not allowed. Dictionaries are not available.",
        1,
        8,
        "dictGet",
    ),
    (
        "SELECT dictGetString('dict', 'attr', 1)",
        UnknownFunctionError,
        "Function 'dictGetString' is not allowed. Dictionaries are not available.",
        1,
        8,
        "dictGetString",
    ),
    (
        "SELECT throwIf(1)",
        UnknownFunctionError,
        "Function 'throwIf' is not allowed. Functions that raise errors on purpose are not allowed.",
        1,
        8,
        "throwIf",
    ),
    (
        "SELECT cuont() FROM events",
        UnknownFunctionError,
        "Function 'cuont' is not allowed. Similar allowed functions: count, concat, sumCount.",
        1,
        8,
        "cuont",
    ),
    ("SELECT COLUMNS('.*') FROM events", UnknownFunctionError, "Function 'COLUMNS' is not allowed.", 1, 8, "COLUMNS"),
    ("SELECT project_id FROM events", NotAllowedError, PROJECT_ID, 1, 8, "project_id"),
    ("SELECT e.project_id FROM events e", NotAllowedError, PROJECT_ID, 1, 10, "project_id"),
    ("SELECT `project_id` FROM events", NotAllowedError, PROJECT_ID, 1, 8, "`project_id`"),
    ("SELECT count() FROM events WHERE project_id = 'other'", NotAllowedError, PROJECT_ID, 1, 34, "project_id"),
    ("SELECT event AS project_id FROM events", NotAllowedError, PROJECT_ID, 1, 17, "project_id"),
    ("SELECT properties AS e FROM events e WHERE e.project_id = 'other'", NotAllowedError, PROJECT_ID, 1, 46, "project_id"),
    (
        "SELECT properties.items[0] FROM events",
        PropertyAccessError,
        "Array indexes start at 1, not 0: write properties.items[1] for the first item.",
        1,
        8,
        "properties.items",
    ),
    (
        "SELECT properties.x.0 FROM events",
        PropertyAccessError,
        "Array indexes start at 1, not 0: write properties.items[1] for the first item.",
        1,
        8,
        "properties.x.0",
    ),
    (
        "SELECT properties[concat('a', 'b')] FROM events",
        PropertyAccessError,
        "Property keys must be constants, such as properties['plan'] or properties.items[1].",
        1,
        19,
        "concat('a', 'b'",
    ),
    (
        "SELECT {missing} FROM events",
        PlaceholderError,
        "Placeholder {missing} has no value. Placeholders given: days, plan.",
        1,
        8,
        "{missing}",
    ),
    (
        "SELECT {variables.other} FROM events",
        PlaceholderError,
        "Placeholder {other} has no value. Placeholders given: days, plan.",
        1,
        8,
        "{variables.other}",
    ),
    (
        "SELECT event FROM events WHERE {variables.filters}",
        PlaceholderError,
        "Placeholder {filters} has no value. Placeholders given: days, plan.",
        1,
        32,
        "{variables.filters}",
    ),
    (
        "SELECT {x:String}",
        PlaceholderError,
        "Unsupported '{' in '{x:String}'. Placeholders are written {name} or {variables.name}; "
        "map literals are not supported, use map('key', value) instead.",
        1,
        8,
        "{x:String}",
    ),
    (
        "SELECT {pb_project}",
        PlaceholderError,
        "Placeholder names starting with 'pb_' are reserved; rename {pb_project}.",
        1,
        8,
        "{pb_project}",
    ),
    ("SELECT 1 }", PlaceholderError, "Unexpected '}'. Placeholders are written {name} or {variables.name}.", 1, 10, "}"),
    (
        "SELECT event FROM events LIMIT {plan}",
        UnsupportedError,
        "LIMIT must be a whole number of 0 or more, or a placeholder holding one; found '{plan}'.",
        1,
        32,
        "{plan}",
    ),
    (
        "SELECT event FROM events LIMIT 10 + 1",
        UnsupportedError,
        "LIMIT must be a whole number of 0 or more, or a placeholder holding one; found '10 + 1'.",
        1,
        32,
        "10 + 1",
    ),
    (
        "SELECT event\nFROM events\nWHERE sleep(1)",
        UnknownFunctionError,
        "Function 'sleep' is not allowed. Functions that pause the query are not allowed.",
        3,
        7,
        "sleep",
    ),
    # The column is counted in the text as written, before `$browser` is quoted for sqlglot.
    ("SELECT properties.$browser, nope(1) FROM events", UnknownFunctionError, "Function 'nope' is not allowed.", 1, 29, "nope"),
    ("SELECT {days}, nope(1)", UnknownFunctionError, "Function 'nope' is not allowed.", 1, 16, "nope"),
    (
        "SELECT FROM WHERE",
        HogQLSyntaxError,
        "Incomplete SELECT: expected a column or expression after SELECT.",
        1,
        1,
        "SELECT",
    ),
    (
        "SELECT 'abc",
        HogQLSyntaxError,
        "Unterminated string literal: the quote that opens it is never closed. "
        "Write a quote inside a string as \\' or ''.",
        1,
        8,
        "'",
    ),
    (
        "SELECT 1 FROM events /* open",
        HogQLSyntaxError,
        "Unterminated comment: the /* that opens it is never closed with */.",
        1,
        22,
        "/*",
    ),
    (
        "SELECT $$x$$",
        HogQLSyntaxError,
        "Dollar-quoted strings are not supported. Write string literals in single quotes.",
        1,
        8,
        "$$x$$",
    ),
    ("", HogQLSyntaxError, "The query is empty. Write a SELECT statement.", None, None, None),
    ("  -- only a comment\n", HogQLSyntaxError, "The query contains only comments. Write a SELECT statement.", None, None, None),
    (
        "SELECT 1 FROM events AS uuid",
        NotAllowedError,
        "Table alias 'uuid' is also a column of the events table; choose another alias.",
        1,
        25,
        "uuid",
    ),
    (
        "WITH events AS (SELECT 1) SELECT * FROM events",
        NotAllowedError,
        "A CTE cannot be named 'events', because that name is the events table; choose another name.",
        1,
        6,
        "events",
    ),
    (
        "WITH events AS (SELECT distinct_id FROM events WHERE event = 'signup') SELECT count() FROM events",
        NotAllowedError,
        "A CTE cannot be named 'events', because that name is the events table; choose another name.",
        1,
        6,
        "events",
    ),
    (
        "SELECT n FROM (SELECT count() AS n FROM events) AS events",
        NotAllowedError,
        "A subquery cannot be aliased 'events', because that name is the events table; choose another alias.",
        1,
        52,
        "events",
    ),
    (
        "WITH s AS (SELECT 1 AS x) SELECT count() FROM events AS e, s AS events",
        NotAllowedError,
        "Only the events table can have the alias 'events', because that name is the events table; "
        "choose another alias.",
        1,
        65,
        "events",
    ),
    ("SELECT count() AS pb_t0 FROM events", NotAllowedError, RESERVED.format("pb_t0"), 1, 19, "pb_t0"),
    ("SELECT 1 FROM events AS pb_t1", NotAllowedError, RESERVED.format("pb_t1"), 1, 25, "pb_t1"),
    ("WITH pb_x AS (SELECT 1) SELECT 1", NotAllowedError, RESERVED.format("pb_x"), 1, 6, "pb_x"),
    ("SELECT arrayMap(pb_t0 -> 1, [1]) FROM events", NotAllowedError, RESERVED.format("pb_t0"), 1, 17, "pb_t0"),
    ('SELECT "PB_T0".event FROM events', NotAllowedError, RESERVED.format("PB_T0"), 1, 8, '"PB_T0"'),
    (
        "SELECT e.evnt FROM events e",
        UnknownColumnError,
        f"Unknown column 'e.evnt'. The events table has the columns {EVENTS_COLUMNS}; did you mean e.event?",
        1,
        10,
        "evnt",
    ),
    (
        "SELECT count() FROM events WHERE events.plan = 'pro'",
        UnknownColumnError,
        f"Unknown column 'events.plan'. The events table has the columns {EVENTS_COLUMNS}; "
        "read an event property as events.properties.plan.",
        1,
        41,
        "plan",
    ),
    (
        "SELECT 1 FROM events JOIN events ON 1 = 1",
        NotAllowedError,
        "Two tables in one FROM clause are both named 'events'; give each an alias of its own, "
        "such as FROM events AS a JOIN events AS b.",
        1,
        27,
        "events",
    ),
    ("SELECT * EXCEPT (uuid) FROM events", UnsupportedError, "* EXCEPT is not supported; list the columns instead.", 1, 10, "EXCEPT"),
    ("SELECT properties->'a' FROM events", UnsupportedError, "The '->' operator is not supported.", 1, 8, "properties"),
    ("SELECT 1 FROM events e GLOBAL JOIN events f ON 1", UnsupportedError, "GLOBAL JOIN is not supported.", 1, 24, "GLOBAL"),
    ("SELECT 1 FROM events e PASTE JOIN events f", UnsupportedError, "PASTE JOIN is not supported.", 1, 24, "PASTE"),
    ("SELECT event FROM events PREWHERE event = 'a'", UnsupportedError, "PREWHERE is not supported.", 1, 35, "event = 'a'"),
    ("SELECT 1 FROM events FINAL", UnsupportedError, "FINAL is not supported.", 1, 15, "events"),
    (
        "SELECT 1 FROM events WHERE distinct_id IN events",
        UnsupportedError,
        "IN with a table name is not supported; write IN (SELECT ... FROM ...).",
        1,
        43,
        "events",
    ),
    (
        "SELECT 1 FROM (events e JOIN events f ON 1)",
        UnsupportedError,
        "Parenthesised joins are not supported; write the joins without parentheses.",
        1,
        16,
        "events e JOIN events f ON 1",
    ),
    ("SELECT toFloat(1, 2)", UnsupportedError, "Function 'toFloat' takes 1 argument, found 2.", 1, 8, "toFloat"),
]


@pytest.mark.parametrize(("text", "error_class", "message", "line", "column", "fragment"), BAD_QUERIES)
def test_compile_rejects_query(text, error_class, message, line, column, fragment):
    context = CompileContext(project_id="p1", placeholders={"days": (7, "Int64"), "plan": ("pro", "String")})

    with pytest.raises(HogQLError) as raised:
        compile_query(text, context)

    error = raised.value
    assert type(error) is error_class
    assert error.message == message
    assert error.line == line
    assert error.column == column
    assert error.fragment == fragment


def test_error_text_reads_with_position():
    with pytest.raises(HogQLError) as raised:
        compile_query("SELECT * FROM url('http://x', CSV, 'a String')", CompileContext(project_id="p1"))

    assert str(raised.value) == (
        "Function 'url' is not allowed. Table functions cannot be used; query the events table instead. "
        "Line 1, Col 15."
    )


def test_error_text_without_position():
    assert str(HogQLSyntaxError("The query is empty. Write a SELECT statement.")) == (
        "The query is empty. Write a SELECT statement."
    )


def test_placeholder_error_without_placeholders():
    with pytest.raises(PlaceholderError) as raised:
        compile_query("SELECT {x}", CompileContext(project_id="p1"))

    assert raised.value.message == "Placeholder {x} has no value. Placeholders given: none."


def test_error_classes_share_base():
    for error_class in (HogQLSyntaxError, NotAllowedError, UnknownFunctionError, UnknownTableError,
                        PlaceholderError, PropertyAccessError, UnsupportedError, UnknownColumnError):
        assert issubclass(error_class, HogQLError)
    assert issubclass(UnknownFunctionError, NotAllowedError)
    assert issubclass(UnknownTableError, NotAllowedError)

"""Malformed queries as agents write them: exact message, line, column and offending text.

Also the malformed-looking queries the compiler accepts on purpose (a trailing semicolon, a
Markdown code fence, a trailing comma in the SELECT list), and a sweep over deterministically
mangled versions of valid queries that no message leaks parser internals.
"""

from __future__ import annotations

import re

import pytest

from pulseboard.hogql import CompileContext, HogQLError, HogQLSyntaxError, compile_query

CONTEXT = CompileContext(project_id="p1", placeholders={"days": (7, "Int64")})
CLAUSE_ORDER = "each clause can appear once, in the order SELECT, FROM, JOIN, WHERE, GROUP BY, HAVING, ORDER BY, LIMIT."
ADVICE = "Check for a missing comma, operator or parenthesis, or a misspelled keyword."
UNITS = "write INTERVAL 7 DAY, with one of the units SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or YEAR."
UNTERMINATED_STRING = (
    "Unterminated string literal: the quote that opens it is never closed. Write a quote inside a string as \\' or ''."
)
FENCE = "Remove the Markdown code fence (```) around the query; send only the SQL."
JOIN_CONDITION = (
    "JOIN without ON or USING: add a join condition such as ON a.distinct_id = b.distinct_id after the "
    "joined table, or write CROSS JOIN to pair every row."
)

# (query, message, line, column, fragment); every one raises HogQLSyntaxError.
SYNTAX_ERRORS = [
    # Clauses and operators with nothing after them.
    ("SELECT event FROM events WHERE", "Incomplete WHERE clause: expected a condition after WHERE.", 1, 26, "WHERE"),
    ("SELECT event FROM events WHERE event = 'a' AND", "Incomplete condition: expected a condition after AND.", 1, 44, "AND"),
    ("SELECT event FROM events WHERE event = 'a' OR", "Incomplete condition: expected a condition after OR.", 1, 44, "OR"),
    ("SELECT event FROM events WHERE event = 'a' AND AND event = 'b'", "Incomplete condition: expected a condition after AND.", 1, 44, "AND"),
    ("SELECT event FROM events WHERE AND event = 'a'", "Incomplete WHERE clause: expected a condition after WHERE.", 1, 26, "WHERE"),
    ("SELECT event FROM events WHERE event NOT", "Incomplete condition: expected a condition after NOT.", 1, 38, "NOT"),
    ("SELECT event FROM events WHERE event = ", "Incomplete expression: expected a value after '='.", 1, 38, "="),
    ("SELECT event FROM events WHERE = 'a'", "Incomplete expression: expected a value before '='.", 1, 32, "="),
    ("SELECT event FROM events WHERE {days} > AND", "Incomplete expression: expected a value after '>'.", 1, 39, ">"),
    ("SELECT 1 +", "Incomplete expression: expected a value after '+'.", 1, 10, "+"),
    ("SELECT event FROM events WHERE event IN", "Incomplete IN: expected a list in parentheses or a subquery after IN.", 1, 38, "IN"),
    ("SELECT event FROM events WHERE event IS", "Incomplete IS: expected NULL or NOT NULL after IS.", 1, 38, "IS"),
    ("SELECT event FROM events WHERE event IS NOT", "Incomplete IS NOT: expected NULL after NOT.", 1, 41, "NOT"),
    ("SELECT event FROM events WHERE event LIKE", "Incomplete LIKE: expected a pattern after LIKE.", 1, 38, "LIKE"),
    (
        "SELECT event FROM events WHERE timestamp BETWEEN '2024-01-01' AND",
        "Incomplete BETWEEN: expected an upper bound after AND.",
        1,
        63,
        "AND",
    ),
    ("SELECT count() FROM events GROUP BY", "Incomplete GROUP BY clause: expected a column or expression after GROUP BY.", 1, 28, "GROUP BY"),
    (
        "SELECT event, count() FROM events GROUP BY ORDER BY 1",
        "Incomplete GROUP BY clause: expected a column or expression after GROUP BY.",
        1,
        35,
        "GROUP BY",
    ),
    ("SELECT event FROM events ORDER BY", "Incomplete ORDER BY clause: expected a column or expression after ORDER BY.", 1, 26, "ORDER BY"),
    ("SELECT event FROM events ORDER BY DESC", "Incomplete ORDER BY clause: expected a column or expression after ORDER BY.", 1, 26, "ORDER BY"),
    (
        "SELECT event FROM events WHERE event = 'a' ORDER BY LIMIT 10",
        "Incomplete ORDER BY clause: expected a column or expression after ORDER BY.",
        1,
        44,
        "ORDER BY",
    ),
    ("SELECT event FROM events HAVING", "Incomplete HAVING clause: expected a condition after HAVING.", 1, 26, "HAVING"),
    ("SELECT count() FROM events GROUP event", "Expected BY after GROUP: write GROUP BY.", 1, 28, "GROUP"),
    ("SELECT event FROM events e ORDER", "Expected BY after ORDER: write ORDER BY.", 1, 28, "ORDER"),
    ("SELECT event FROM events LIMIT", "Incomplete LIMIT clause: expected a number after LIMIT.", 1, 26, "LIMIT"),
    ("SELECT event FROM events LIMIT 10 OFFSET", "Incomplete OFFSET clause: expected a number after OFFSET.", 1, 35, "OFFSET"),
    ("SELECT event FROM events LIMIT 10 BY", "Incomplete LIMIT BY: expected a column or expression after BY.", 1, 35, "BY"),
    ("SELECT event FROM", "Incomplete FROM clause: expected a table after FROM.", 1, 14, "FROM"),
    ("SELECT event FROM WHERE event = 'a'", "Incomplete FROM clause: expected a table after FROM.", 1, 14, "FROM"),
    ("SELECT FROM WHERE", "Incomplete SELECT: expected a column or expression after SELECT.", 1, 1, "SELECT"),
    ("SELECT FROM events", "Incomplete SELECT: expected a column or expression after SELECT.", 1, 1, "SELECT"),
    ("SELECT DISTINCT FROM events", "Incomplete SELECT: expected a column or expression after SELECT DISTINCT.", 1, 1, "SELECT DISTINCT"),
    ("SELECT", "Incomplete SELECT: expected a column or expression after SELECT.", 1, 1, "SELECT"),
    ("WITH a AS (SELECT 1) SELECT", "Incomplete SELECT: expected a column or expression after SELECT.", 1, 22, "SELECT"),
    ("SELECT count(DISTINCT) FROM events", "Incomplete DISTINCT: expected a column or expression after DISTINCT.", 1, 14, "DISTINCT"),
    ("SELECT event FROM events AS", "Incomplete alias: expected a name after AS.", 1, 26, "AS"),
    ("SELECT properties. FROM events", "Incomplete name: expected a column or property name after '.'.", 1, 18, "."),
    (
        "SELECT event FROM events WHERE properties.plan = 'pro' AND properties.",
        "Incomplete name: expected a column or property name after '.'.",
        1,
        70,
        ".",
    ),
    ("SELECT event FROM events UNION ALL", "Incomplete UNION: expected a SELECT after UNION ALL.", 1, 26, "UNION ALL"),
    (
        "SELECT event FROM events UNION SELECT event FROM events",
        "UNION needs ALL or DISTINCT: write UNION ALL to keep duplicate rows, or UNION DISTINCT to remove them.",
        1,
        26,
        "UNION",
    ),
    (
        "SELECT count() OVER FROM events",
        "Incomplete window: expected a window name or definition after OVER, as in OVER (ORDER BY timestamp).",
        1,
        16,
        "OVER",
    ),
    ("SELECT count() OVER (PARTITION BY) FROM events", "Incomplete window: expected a column or expression after PARTITION BY.", 1, 22, "PARTITION BY"),
    (
        "WITH",
        "Incomplete WITH clause: expected a name and a subquery after WITH, as in WITH name AS (SELECT ...).",
        1,
        1,
        "WITH",
    ),
    ("WITH a AS SELECT 1 SELECT * FROM a", "WITH needs a subquery in parentheses: write WITH name AS (SELECT ...).", 1, 20, "SELECT"),
    ("WITH a AS (SELECT 1)", "Expected a SELECT after the WITH clause.", 1, 20, ")"),
    # Commas.
    ("SELECT event,, count() FROM events", "Unexpected ',': two commas in a row. Remove one, or add the missing item between them.", 1, 14, ","),
    ("SELECT , event FROM events", "Incomplete SELECT: expected a column or expression after SELECT.", 1, 1, "SELECT"),
    ("SELECT count(, event) FROM events", "Unexpected ',' after '(': add the missing item before the comma, or remove it.", 1, 14, ","),
    (
        "SELECT event, count() FROM events GROUP BY event,",
        "Trailing comma at the end of the GROUP BY list: remove it, or add the missing item after it.",
        1,
        49,
        ",",
    ),
    (
        "SELECT event FROM events ORDER BY timestamp,",
        "Trailing comma at the end of the ORDER BY list: remove it, or add the missing item after it.",
        1,
        44,
        ",",
    ),
    (
        "SELECT count() FROM events WHERE event IN ('a', )",
        "Trailing comma before ')': remove it, or add the missing item after it.",
        1,
        47,
        ",",
    ),
    # Brackets.
    ("SELECT count( FROM events", "Unbalanced parenthesis: '(' is never closed; add the missing ')'.", 1, 13, "("),
    ("SELECT count()) FROM events", "Unbalanced parenthesis: ')' has no matching '('; remove it.", 1, 15, ")"),
    ("SELECT countIf(event = 'a' FROM events", "Unbalanced parenthesis: '(' is never closed; add the missing ')'.", 1, 15, "("),
    ("SELECT * FROM (SELECT event FROM events", "Unbalanced parenthesis: '(' is never closed; add the missing ')'.", 1, 15, "("),
    ("SELECT * FROM (SELECT event FROM events))", "Unbalanced parenthesis: ')' has no matching '('; remove it.", 1, 41, ")"),
    ("SELECT [1, 2 FROM events", "Unbalanced bracket: '[' is never closed; add the missing ']'.", 1, 8, "["),
    ("SELECT [1, 2) FROM events", "Mismatched brackets: ')' closes the '[' at Line 1, Col 8; expected ']'.", 1, 13, ")"),
    (
        "SELECT count(event event) FROM events",
        "Syntax error near 'event': expected ',' or ')' inside the '(' at Line 1, Col 13.",
        1,
        20,
        "event",
    ),
    # Strings, identifiers and comments that do not end.
    ("SELECT event FROM events WHERE event = 'abc", UNTERMINATED_STRING, 1, 40, "'"),
    ("SELECT event FROM events WHERE event = 'it's'", UNTERMINATED_STRING, 1, 45, "'"),
    ("SELECT 'abc", UNTERMINATED_STRING, 1, 8, "'"),
    ('SELECT "event FROM events', 'Unterminated quoted identifier: the " that opens it is never closed.', 1, 8, '"'),
    ("SELECT 1 FROM events /* open", "Unterminated comment: the /* that opens it is never closed with */.", 1, 22, "/*"),
    # Joins.
    ("SELECT 1 FROM events a JOIN events b", JOIN_CONDITION, 1, 24, "JOIN"),
    ("SELECT 1 FROM events a JOIN events b WHERE a.event = 'x'", JOIN_CONDITION, 1, 24, "JOIN"),
    ("SELECT 1 FROM events a LEFT JOIN events b ON", "Incomplete JOIN: expected a join condition after ON.", 1, 43, "ON"),
    (
        "SELECT 1 FROM events a JOIN events b USING",
        "Incomplete JOIN: expected a column list after USING, as in USING (distinct_id).",
        1,
        38,
        "USING",
    ),
    ("SELECT 1 FROM events a JOIN", "Incomplete JOIN: expected a table after JOIN.", 1, 24, "JOIN"),
    (
        "SELECT 1 FROM events a LEFT events b ON a.uuid = b.uuid",
        "Incomplete JOIN: expected JOIN after LEFT, as in LEFT JOIN events AS b ON a.distinct_id = b.distinct_id.",
        1,
        24,
        "LEFT",
    ),
    # CASE, CAST and INTERVAL.
    (
        "SELECT CASE WHEN event = 'a' THEN 1 ELSE 0 FROM events",
        "Incomplete CASE expression: expected END before 'FROM' to close the CASE at Line 1, Col 8.",
        1,
        44,
        "FROM",
    ),
    ("SELECT CASE WHEN THEN 1 END FROM events", "Incomplete CASE expression: expected a condition after WHEN.", 1, 13, "WHEN"),
    ("SELECT CASE WHEN event = 'a' THEN END FROM events", "Incomplete CASE expression: expected a value after THEN.", 1, 30, "THEN"),
    ("SELECT CAST(event AS) FROM events", "Incomplete CAST: expected a type after AS, as in CAST(x AS String).", 1, 19, "AS"),
    ("SELECT CAST(event) FROM events", "Incomplete CAST: write CAST(value AS Type), such as CAST(x AS String).", 1, 18, ")"),
    ("SELECT count() FROM events WHERE timestamp > now() - INTERVAL 7", f"INTERVAL needs a unit: {UNITS}", 1, 54, "INTERVAL 7"),
    (
        "SELECT count() FROM events WHERE timestamp > now() - INTERVAL",
        "Incomplete INTERVAL: expected a number and a unit after INTERVAL, as in INTERVAL 7 DAY.",
        1,
        54,
        "INTERVAL",
    ),
    (
        "SELECT count() FROM events WHERE timestamp > now() - INTERVAL 7 FORTNIGHT",
        f"Unknown INTERVAL unit 'FORTNIGHT': {UNITS}",
        1,
        54,
        "INTERVAL 7 FORTNIGHT",
    ),
    # Text that cannot continue the query.
    ("SELECT event event2 event3 FROM events", f"Unexpected 'event3' after 'event2'. {ADVICE}", 1, 21, "event3"),
    ("SELECT event FROM events ORDER BY timestamp DESCC", f"Unexpected 'DESCC' after 'timestamp'. {ADVICE}", 1, 45, "DESCC"),
    ("SELECT event FROM events WHERE event ~ 'a'", f"Unexpected '~' after 'event'. {ADVICE}", 1, 38, "~"),
    ("SELECT event FROM events LIMIT 10 10", f"Unexpected '10' after '10'. {ADVICE}", 1, 35, "10"),
    ("SELECT event FROM events WHERE event IN ('a' 'b')", "Unexpected 'b' right after another string. Add the missing comma or operator.", 1, 46, "'b'"),
    ("SELECT event FROM events WHERE event = 'a' LIMIT 10 WHERE event = 'b'", f"Unexpected WHERE: {CLAUSE_ORDER}", 1, 53, "WHERE"),
    ("SELECT event FROM events FROM events", f"Unexpected FROM: {CLAUSE_ORDER}", 1, 26, "FROM"),
    ("SELEC event FROM events", "The query must start with SELECT or WITH; found 'SELEC'.", 1, 1, "SELEC"),
    (
        "`SELECT event FROM events`",
        "The query must start with SELECT or WITH; found '`SELECT event FROM events`'. Remove the backticks around the query.",
        1,
        1,
        "`SELECT event FROM events`",
    ),
    # Markdown fences that are not lines of their own.
    ("```sql SELECT event FROM events```", FENCE, 1, 1, "```"),
    ("SELECT 1 FROM events WHERE x = ```", FENCE, 1, 32, "```"),
    # Positions count lines and columns in the text as written: fence lines, `$` names.
    ("```sql\nSELECT event FROM events WHERE\n```", "Incomplete WHERE clause: expected a condition after WHERE.", 2, 26, "WHERE"),
    ("SELECT event\nFROM events\nWHERE", "Incomplete WHERE clause: expected a condition after WHERE.", 3, 1, "WHERE"),
    ("SELECT properties.$browser FROM events WHERE", "Incomplete WHERE clause: expected a condition after WHERE.", 1, 40, "WHERE"),
    # Nothing to run.
    ("", "The query is empty. Write a SELECT statement.", None, None, None),
    (";", "The query is empty. Write a SELECT statement.", None, None, None),
    ("```sql\n```", "The query is empty. Write a SELECT statement.", None, None, None),
    ("  -- only a comment\n", "The query contains only comments. Write a SELECT statement.", None, None, None),
    ("/* nothing */", "The query contains only comments. Write a SELECT statement.", None, None, None),
]


@pytest.mark.parametrize(("text", "message", "line", "column", "fragment"), SYNTAX_ERRORS)
def test_syntax_error_message(text, message, line, column, fragment):
    with pytest.raises(HogQLError) as raised:
        compile_query(text, CONTEXT)

    error = raised.value
    assert type(error) is HogQLSyntaxError
    assert error.message == message
    assert error.line == line
    assert error.column == column
    assert error.fragment == fragment


def test_syntax_error_text_with_position():
    with pytest.raises(HogQLSyntaxError) as raised:
        compile_query("SELECT event FROM events WHERE", CONTEXT)

    assert str(raised.value) == "Incomplete WHERE clause: expected a condition after WHERE. Line 1, Col 26."


@pytest.mark.parametrize(
    ("text", "message", "column", "fragment"),
    [
        (
            "SELECT event FROM events LIMIT -1",
            "LIMIT must be a whole number of 0 or more, or a placeholder holding one; found '-1'.",
            32,
            "-1",
        ),
        (
            "SELECT event FROM events LIMIT 1.5",
            "LIMIT must be a whole number of 0 or more, or a placeholder holding one; found '1.5'.",
            32,
            "1.5",
        ),
        (
            "SELECT event FROM events LIMIT 'a'",
            "LIMIT must be a whole number of 0 or more, or a placeholder holding one; found \"'a'\".",
            32,
            "'a'",
        ),
    ],
)
def test_unsupported_value_message(text, message, column, fragment):
    with pytest.raises(HogQLError) as raised:
        compile_query(text, CONTEXT)

    error = raised.value
    assert error.message == message
    assert error.line == 1
    assert error.column == column
    assert error.fragment == fragment


def test_unknown_syntax_named_by_text():
    with pytest.raises(HogQLError) as raised:
        compile_query("SELECT @x FROM events", CONTEXT)

    assert raised.value.message == "The syntax '@x' is not supported."


# (query, HogQL echoed back): forms that look malformed but are accepted on purpose, and valid
# queries that use keywords as names, which the syntax checks must not reject.
ACCEPTED = [
    # Trailing semicolons, as agents often add them; text after one is rejected elsewhere.
    ("SELECT event FROM events;", "SELECT event FROM events LIMIT 100"),
    ("SELECT event FROM events ;\n", "SELECT event FROM events LIMIT 100"),
    ("SELECT event FROM events;;", "SELECT event FROM events LIMIT 100"),
    # Markdown code fences around the query.
    ("```sql\nSELECT event FROM events\n```", "SELECT event FROM events LIMIT 100"),
    ("```\nSELECT event FROM events\n```\n", "SELECT event FROM events LIMIT 100"),
    ("  ```hogql\r\nSELECT event FROM events\r\n```  ", "SELECT event FROM events LIMIT 100"),
    ("```sql\nSELECT event FROM events", "SELECT event FROM events LIMIT 100"),
    ("```sql\nSELECT event FROM events```", "SELECT event FROM events LIMIT 100"),
    ("SELECT event FROM events WHERE event = '```'", "SELECT event FROM events WHERE event = '```' LIMIT 100"),
    # One trailing comma in the SELECT list, as ClickHouse and PostHog accept.
    ("SELECT event, FROM events", "SELECT event FROM events LIMIT 100"),
    ("SELECT event, count(),", "SELECT event, count() LIMIT 100"),
    # An alias without AS, and `==`.
    ("SELECT event events FROM events", "SELECT event AS events FROM events LIMIT 100"),
    ("SELECT event FROM events WHERE event == 'a'", "SELECT event FROM events WHERE event = 'a' LIMIT 100"),
    # Keywords used as names.
    ("SELECT limit FROM (SELECT 1 AS limit)", "SELECT limit FROM (SELECT 1 AS limit) LIMIT 100"),
    ("SELECT offset, end FROM (SELECT 1 AS offset, 2 AS end)", "SELECT offset, end FROM (SELECT 1 AS offset, 2 AS end) LIMIT 100"),
    ("SELECT interval FROM (SELECT 1 AS interval)", "SELECT interval FROM (SELECT 1 AS interval) LIMIT 100"),
    (
        "SELECT properties.order, properties.group, properties.limit, properties.where FROM events",
        "SELECT properties.order, properties.group, properties.\"limit\", properties.\"where\" FROM events LIMIT 100",
    ),
    ("SELECT event AS from FROM events", "SELECT event AS from FROM events LIMIT 100"),
    ("SELECT and(1, 0), or(1, 0)", "SELECT and(1, 0), or(1, 0) LIMIT 100"),
    # Operators and clauses next to each other where they are valid.
    (
        "SELECT count() FROM events WHERE event NOT IN ('a') AND event NOT LIKE 'b%' "
        "AND timestamp NOT BETWEEN '2024-01-01' AND '2024-02-01'",
        "SELECT count() FROM events WHERE NOT (event IN ('a')) AND event NOT LIKE 'b%' "
        "AND NOT timestamp BETWEEN '2024-01-01' AND '2024-02-01' LIMIT 100",
    ),
    ("SELECT count() FROM events WHERE properties.plan IS NOT NULL", "SELECT count() FROM events WHERE NOT (properties.plan IS NULL) LIMIT 100"),
    (
        "SELECT sum(1) OVER (PARTITION BY event ORDER BY timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM events",
        "SELECT sum(1) OVER (PARTITION BY event ORDER BY timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
        "FROM events LIMIT 100",
    ),
    ("SELECT count(*), count(DISTINCT distinct_id) FROM events", "SELECT count(*), count(DISTINCT distinct_id) FROM events LIMIT 100"),
    ("SELECT e.* FROM events e", "SELECT e.* FROM events AS e LIMIT 100"),
    ("SELECT -1, - 2, +3", "SELECT -1, -2, 3 LIMIT 100"),
    ("SELECT CAST(event AS String), event::String FROM events", "SELECT CAST(event AS String), CAST(event AS String) FROM events LIMIT 100"),
    ("SELECT event FROM events ORDER BY timestamp DESC, event ASC", "SELECT event FROM events ORDER BY timestamp DESC, event ASC LIMIT 100"),
    ("SELECT event, count() FROM events GROUP BY ALL", "SELECT event, count() FROM events GROUP BY ALL LIMIT 100"),
    ("SELECT event FROM events LIMIT 1 BY event", "SELECT * FROM (SELECT event FROM events LIMIT 1 BY event) AS limited_by LIMIT 100"),
    ("FROM events SELECT event", "SELECT event FROM events LIMIT 100"),
    ("SELECT event FROM events WHERE event IN ()", "SELECT event FROM events WHERE event IN () LIMIT 100"),
    # Joins that need no condition, and the two USING forms.
    ("SELECT 1 FROM events a CROSS JOIN events b", "SELECT 1 FROM events AS a CROSS JOIN events AS b LIMIT 100"),
    ("SELECT 1 FROM events a, events b", "SELECT 1 FROM events AS a CROSS JOIN events AS b LIMIT 100"),
    ("SELECT x FROM events ARRAY JOIN [1, 2] AS x", "SELECT x FROM events ARRAY JOIN [1, 2] AS x LIMIT 100"),
    ("SELECT 1 FROM events a JOIN events b USING (distinct_id)", "SELECT 1 FROM events AS a JOIN events AS b USING (distinct_id) LIMIT 100"),
    ("SELECT 1 FROM events a JOIN events b USING distinct_id", "SELECT 1 FROM events AS a JOIN events AS b USING (distinct_id) LIMIT 100"),
    # Interval units as ClickHouse reads them, plural and in a string.
    (
        "SELECT count() FROM events WHERE timestamp > now() - INTERVAL 7 DAYS",
        "SELECT count() FROM events WHERE timestamp > now() - INTERVAL 7 DAYS LIMIT 100",
    ),
    (
        "SELECT count() FROM events WHERE timestamp > now() - INTERVAL '7 days'",
        "SELECT count() FROM events WHERE timestamp > now() - INTERVAL 7 DAYS LIMIT 100",
    ),
    (
        "SELECT toStartOfInterval(timestamp, INTERVAL 15 minute) AS t FROM events",
        "SELECT toStartOfInterval(timestamp, INTERVAL 15 MINUTE) AS t FROM events LIMIT 100",
    ),
]


@pytest.mark.parametrize(("text", "hogql"), ACCEPTED)
def test_accepted_query(text, hogql):
    assert compile_query(text, CONTEXT).hogql == hogql


# Valid queries from the compiler's other tests, mangled below.
VALID_QUERIES = [
    "SELECT toStartOfDay(timestamp) AS day, uniq(distinct_id) AS dau FROM events GROUP BY day ORDER BY day",
    "SELECT toDate(timestamp) AS day, count() FROM events WHERE toDate(timestamp) = '2024-01-03' GROUP BY day",
    "SELECT day, dau, sum(dau) OVER (ORDER BY day) AS running FROM (SELECT toDate(timestamp) AS day, "
    "uniq(distinct_id) AS dau FROM events GROUP BY day) ORDER BY day",
    "SELECT event, count() AS events FROM events WHERE timestamp >= '2024-01-01' GROUP BY event "
    "ORDER BY events DESC, event LIMIT 10",
    "SELECT event, count() AS n FROM events GROUP BY ALL ORDER BY n DESC, event",
    "SELECT e.event, count() AS events FROM events e GROUP BY e.event ORDER BY events DESC LIMIT 1",
    "SELECT count(DISTINCT distinct_id) AS users FROM events WHERE event = '$pageview'",
    "SELECT count() FROM events WHERE event IN ('signup', 'purchase')",
    "SELECT distinct_id, count() AS n FROM events GROUP BY distinct_id HAVING n >= 4 ORDER BY n DESC, distinct_id",
    "SELECT event, count() AS n FROM events GROUP BY event ORDER BY n DESC, event LIMIT 3 OFFSET 1",
    "SELECT count() FILTER (WHERE event = 'signup') AS signups FROM events",
    "SELECT uniqIf(distinct_id, event = 'purchase') / uniq(distinct_id) AS conversion FROM events",
    "SELECT count() AS retained FROM (SELECT distinct_id FROM events WHERE timestamp < '2024-01-07' "
    "GROUP BY distinct_id) AS w1 JOIN (SELECT distinct_id FROM events WHERE timestamp >= '2024-01-07' "
    "GROUP BY distinct_id) AS w2 ON w1.distinct_id = w2.distinct_id",
    "SELECT distinct_id FROM events WHERE event = 'signup' AND distinct_id NOT IN "
    "(SELECT distinct_id FROM events WHERE event = 'purchase')",
    "WITH first_seen AS (SELECT distinct_id, min(timestamp) AS first_ts FROM events GROUP BY distinct_id) "
    "SELECT e.distinct_id, count() AS n FROM events e JOIN first_seen f ON e.distinct_id = f.distinct_id "
    "WHERE e.timestamp > f.first_ts + INTERVAL 1 DAY GROUP BY e.distinct_id",
    "SELECT properties.$browser AS browser, count() AS pageviews FROM events WHERE event = '$pageview' "
    "GROUP BY browser ORDER BY pageviews DESC",
    "SELECT a.account, a.users, b.errors FROM (SELECT properties.account_id AS account, uniq(distinct_id) AS users "
    "FROM events GROUP BY account) a LEFT JOIN (SELECT properties.account_id AS account, count() AS errors "
    "FROM events WHERE event = '$exception' GROUP BY account) b ON a.account = b.account ORDER BY a.account",
    "SELECT sum(properties.amount::Float64) AS revenue FROM events",
    "SELECT count() FROM events WHERE properties.amount >= 20 AND properties.amount < 50",
    "SELECT coalesce(properties.plan, 'unknown') AS plan, count() AS n FROM events GROUP BY plan ORDER BY plan",
    "SELECT count() FROM events WHERE properties.$exception_message LIKE 'TypeError%'",
    "SELECT count() FROM events WHERE event NOT LIKE '$%'",
    "SELECT if(event = '$exception', 'error', 'ok') AS kind, count() FROM events GROUP BY kind ORDER BY kind",
    "SELECT CASE WHEN event = 'purchase' THEN 'money' ELSE 'other' END AS kind, count() FROM events "
    "GROUP BY kind ORDER BY kind",
    "SELECT event, round(100 * count() / (SELECT count() FROM events), 1) AS pct FROM events GROUP BY event "
    "ORDER BY pct DESC",
    "SELECT distinct_id, event, row_number() OVER (PARTITION BY distinct_id ORDER BY timestamp) AS step "
    "FROM events ORDER BY distinct_id, step",
    "SELECT distinct_id, arrayMap(x -> x.2, arraySort(groupArray((timestamp, event)))) AS path FROM events "
    "GROUP BY distinct_id",
    "SELECT count() FROM events WHERE timestamp BETWEEN '2024-01-02' AND '2024-01-03 23:59:59'",
    "SELECT count() FROM events WHERE timestamp > now() - INTERVAL 7 DAY",
    "SELECT count() FROM events WHERE timestamp > now() - interval '7 days'",
    "SELECT * FROM events WHERE event = 'signup' ORDER BY timestamp LIMIT 1",
    "SELECT event FROM events UNION ALL SELECT distinct_id FROM events",
    "SELECT properties.items[1] AS first, properties['plan'] AS plan FROM events WHERE properties.paid = true",
    "SELECT event, count() FROM events WHERE {days} > 0 GROUP BY event LIMIT {days}",
]
# A word, a quoted string, a multi-character operator or one other character.
_MANGLE_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|\$?\w+|::|->|>=|<=|!=|\S")
_KEYWORDS = {
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET", "JOIN", "LEFT",
    "ON", "AND", "OR", "NOT", "IN", "AS", "WITH", "CASE", "WHEN", "THEN", "ELSE", "END", "INTERVAL",
    "BETWEEN", "LIKE", "DISTINCT", "OVER", "PARTITION", "FILTER", "UNION", "ALL",
}
# Text that belongs to the parser or the compiler, never to a message.
INTERNALS = (
    "<class", "sqlglot", "'this'", "'expression'", "'expressions'", "Required keyword", "SENTINEL",
    "<Token", "TokenType", "Invalid expression", "Unexpected token", "pb_",
)


def mangle(query: str) -> list[str]:
    """Return the query with each token dropped, and cut before and after each keyword."""
    spans = [match.span() for match in _MANGLE_TOKEN.finditer(query)]
    dropped = [query[:start] + query[end:] for start, end in spans]
    cut = [
        piece
        for start, end in spans
        if query[start:end].upper() in _KEYWORDS
        for piece in (query[:start].rstrip(), query[:end])
    ]
    return dropped + cut


@pytest.mark.parametrize("query", VALID_QUERIES)
def test_mangled_query_messages_are_clean(query):
    compile_query(query, CONTEXT)
    mangled = mangle(query)
    assert len(mangled) > len(_MANGLE_TOKEN.findall(query))

    for text in mangled:
        try:
            compile_query(text, CONTEXT)
        except HogQLError as error:
            message = str(error)
            leaked = [marker for marker in INTERNALS if marker.lower() in message.lower()]
            assert leaked == [], f"{text!r} -> {message!r}"
            if text.strip():
                assert error.line is not None, f"{text!r} -> {message!r} has no position"
                assert error.column is not None, f"{text!r} -> {message!r} has no position"

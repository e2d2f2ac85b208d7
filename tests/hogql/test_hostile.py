"""Hostile queries: each is rejected before it reaches ClickHouse, with the exact message and position.

The table covers other tables and databases, table functions, clauses that change settings or
output, statements other than SELECT (also hidden after a comment), functions that read the
server, any use of the project column, and aggregates nested in aggregates. The last rows do the
same for the health_snapshots table.
"""

from __future__ import annotations

import pytest

from pulseboard.hogql import (
    CompileContext,
    HogQLError,
    NotAllowedError,
    PlaceholderError,
    UnknownFunctionError,
    UnknownTableError,
    UnsupportedError,
    compile_query,
)

TABLE_RULE = "Only the events and health_snapshots tables and the query's own CTEs can be queried, without a database name."
TABLE_FUNCTION = "Table functions cannot be used; query the events table instead."
SERVER_FUNCTION = "Functions that describe the server are not allowed."
PROJECT_ID = "'project_id' cannot be used; every query already reads only the caller's project."
ONLY_SELECT = "Only SELECT queries are allowed; found {}."
ONE_STATEMENT = "Only one statement is allowed. Remove the text after ';'."

# (query, error class, message, line, column, offending text)
HOSTILE_QUERIES = [
    ('SELECT * FROM system.tables', NotAllowedError, f"Table 'system.tables' is not allowed. {TABLE_RULE}", 1, 15, 'system.tables'),
    ('SELECT name FROM system.users', NotAllowedError, f"Table 'system.users' is not allowed. {TABLE_RULE}", 1, 18, 'system.users'),
    ('SELECT * FROM default.events', NotAllowedError, f"Table 'default.events' is not allowed. {TABLE_RULE}", 1, 15, 'default.events'),
    ('SELECT * FROM `system`.`processes`', NotAllowedError, f"Table 'system.processes' is not allowed. {TABLE_RULE}", 1, 15, '`system`.`processes`'),
    ('SELECT * FROM events e JOIN system.one o ON 1 = 1', NotAllowedError, f"Table 'system.one' is not allowed. {TABLE_RULE}", 1, 29, 'system.one o'),
    ("SELECT * FROM url('http://127.0.0.1/x', CSV, 'a String')", NotAllowedError, f"Function 'url' is not allowed. {TABLE_FUNCTION}", 1, 15, 'url'),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", NotAllowedError, f"Function 'file' is not allowed. {TABLE_FUNCTION}", 1, 15, 'file'),
    ("SELECT * FROM s3('http://127.0.0.1/b/k', 'CSV')", NotAllowedError, f"Function 's3' is not allowed. {TABLE_FUNCTION}", 1, 15, 's3'),
    ("SELECT * FROM remote('127.0.0.1', default, events)", NotAllowedError, f"Function 'remote' is not allowed. {TABLE_FUNCTION}", 1, 15, 'remote'),
    ("SELECT * FROM remoteSecure('127.0.0.1', default, events)", NotAllowedError, f"Function 'remoteSecure' is not allowed. {TABLE_FUNCTION}", 1, 15, 'remoteSecure'),
    ("SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')", NotAllowedError, f"Function 'mysql' is not allowed. {TABLE_FUNCTION}", 1, 15, 'mysql'),
    ("SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')", NotAllowedError, f"Function 'postgresql' is not allowed. {TABLE_FUNCTION}", 1, 15, 'postgresql'),
    ("SELECT * FROM jdbc('jdbc:mysql://127.0.0.1/db', 't')", NotAllowedError, f"Function 'jdbc' is not allowed. {TABLE_FUNCTION}", 1, 15, 'jdbc'),
    ("SELECT * FROM cluster('default', default, events)", NotAllowedError, f"Function 'cluster' is not allowed. {TABLE_FUNCTION}", 1, 15, 'cluster'),
    ("SELECT * FROM input('a String')", NotAllowedError, f"Function 'input' is not allowed. {TABLE_FUNCTION}", 1, 15, 'input'),
    ("SELECT * FROM executable('run.sh', 'CSV', 'a String')", NotAllowedError, f"Function 'executable' is not allowed. {TABLE_FUNCTION}", 1, 15, 'executable'),
    ("SELECT * FROM hdfs('hdfs://127.0.0.1/x', 'CSV')", NotAllowedError, f"Function 'hdfs' is not allowed. {TABLE_FUNCTION}", 1, 15, 'hdfs'),
    ("SELECT * FROM merge('default', '.*')", NotAllowedError, f"Function 'merge' is not allowed. {TABLE_FUNCTION}", 1, 15, 'merge'),
    ("SELECT count() FROM events WHERE distinct_id IN (SELECT * FROM url('http://127.0.0.1/x', CSV, 'a String'))", NotAllowedError, f"Function 'url' is not allowed. {TABLE_FUNCTION}", 1, 64, 'url'),
    ('WITH s AS (SELECT * FROM system.parts) SELECT * FROM s', NotAllowedError, f"Table 'system.parts' is not allowed. {TABLE_RULE}", 1, 26, 'system.parts'),
    ('SELECT 1 SETTINGS readonly = 0', NotAllowedError, 'SETTINGS is not allowed; pulseboard sets query limits itself.', 1, 10, 'SETTINGS'),
    ('SELECT event FROM events FORMAT TabSeparated', NotAllowedError, 'FORMAT is not allowed; pulseboard chooses the output format.', 1, 26, 'FORMAT'),
    ("SELECT event FROM events INTO OUTFILE '/tmp/x'", NotAllowedError, 'INTO OUTFILE is not allowed; results are returned to the caller.', 1, 26, 'INTO OUTFILE'),
    ('SET readonly = 0', NotAllowedError, ONLY_SELECT.format("SET"), 1, 1, 'SET'),
    ('INSERT INTO events SELECT * FROM events', NotAllowedError, ONLY_SELECT.format("INSERT"), 1, 1, 'INSERT'),
    ('ALTER TABLE events DELETE WHERE 1', NotAllowedError, ONLY_SELECT.format("ALTER"), 1, 1, 'ALTER'),
    ('DROP TABLE events', NotAllowedError, ONLY_SELECT.format("DROP"), 1, 1, 'DROP'),
    ('TRUNCATE TABLE events', NotAllowedError, ONLY_SELECT.format("TRUNCATE"), 1, 1, 'TRUNCATE'),
    ('CREATE TABLE t (a Int8) ENGINE = Memory', NotAllowedError, ONLY_SELECT.format("CREATE"), 1, 1, 'CREATE'),
    ('DELETE FROM events WHERE 1', NotAllowedError, ONLY_SELECT.format("DELETE"), 1, 1, 'DELETE'),
    ('OPTIMIZE TABLE events FINAL', NotAllowedError, ONLY_SELECT.format("OPTIMIZE"), 1, 1, 'OPTIMIZE'),
    ('SYSTEM SHUTDOWN', NotAllowedError, ONLY_SELECT.format("SYSTEM"), 1, 1, 'SYSTEM'),
    ('KILL QUERY WHERE 1', NotAllowedError, ONLY_SELECT.format("KILL"), 1, 1, 'KILL'),
    ('GRANT ALL ON *.* TO default', NotAllowedError, ONLY_SELECT.format("GRANT"), 1, 1, 'GRANT'),
    ('SELECT 1; SELECT 2', NotAllowedError, ONE_STATEMENT, 1, 9, ';'),
    ('SELECT 1 /* harmless */; DROP TABLE events', NotAllowedError, ONE_STATEMENT, 1, 24, ';'),
    ('SELECT 1 -- comment\n; DROP TABLE events', NotAllowedError, ONE_STATEMENT, 2, 1, ';'),
    ("SELECT dictGet('d', 'a', 1)", UnknownFunctionError, "Function 'dictGet' is not allowed. Dictionaries are not available.", 1, 8, 'dictGet'),
    ("SELECT dictGetOrDefault('d', 'a', 1, 'x')", UnknownFunctionError, "Function 'dictGetOrDefault' is not allowed. Dictionaries are not available.", 1, 8, 'dictGetOrDefault'),
    ('SELECT sleep(3)', UnknownFunctionError, "Function 'sleep' is not allowed. Functions that pause the query are not allowed.", 1, 8, 'sleep'),
    ('SELECT sleepEachRow(1) FROM events', UnknownFunctionError, "Function 'sleepEachRow' is not allowed. Functions that pause the query are not allowed.", 1, 8, 'sleepEachRow'),
    ('SELECT currentUser()', UnknownFunctionError, f"Function 'currentUser' is not allowed. {SERVER_FUNCTION}", 1, 8, 'currentUser'),
    ('SELECT version()', UnknownFunctionError, f"Function 'version' is not allowed. {SERVER_FUNCTION}", 1, 8, 'version'),
    ('SELECT hostName()', UnknownFunctionError, f"Function 'hostName' is not allowed. {SERVER_FUNCTION}", 1, 8, 'hostName'),
    ('SELECT currentDatabase()', UnknownFunctionError, f"Function 'currentDatabase' is not allowed. {SERVER_FUNCTION}", 1, 8, 'currentDatabase'),
    ("SELECT getSetting('readonly')", UnknownFunctionError, "Function 'getSetting' is not allowed. Server settings cannot be read.", 1, 8, 'getSetting'),
    ("SELECT joinGet('j', 'v', 1)", UnknownFunctionError, "Function 'joinGet' is not allowed. Join-engine tables are not available.", 1, 8, 'joinGet'),
    ('SELECT throwIf(1)', UnknownFunctionError, "Function 'throwIf' is not allowed. Functions that raise errors on purpose are not allowed.", 1, 8, 'throwIf'),
    ('SELECT project_id FROM events', NotAllowedError, PROJECT_ID, 1, 8, 'project_id'),
    ("SELECT count() FROM events WHERE project_id = 'other' OR 1 = 1", NotAllowedError, PROJECT_ID, 1, 34, 'project_id'),
    ("SELECT count() FROM events e WHERE e.project_id != ''", NotAllowedError, PROJECT_ID, 1, 38, 'project_id'),
    ('SELECT event AS project_id FROM events', NotAllowedError, PROJECT_ID, 1, 17, 'project_id'),
    ('SELECT count() FROM events GROUP BY `project_id`', NotAllowedError, PROJECT_ID, 1, 37, '`project_id`'),
    ('SELECT pb_t0.event FROM events', NotAllowedError, "Names starting with 'pb_' are reserved for the compiler; rename 'pb_t0'.", 1, 8, 'pb_t0'),
    ('SELECT {pb_project}', PlaceholderError, "Placeholder names starting with 'pb_' are reserved; rename {pb_project}.", 1, 8, '{pb_project}'),
    ('SELECT sum(count()) FROM events', NotAllowedError, "Aggregate function 'count' cannot be used inside aggregate function 'sum'. Aggregate in a subquery first, as in SELECT sum(n) FROM (SELECT count(...) AS n FROM events GROUP BY ...).", 1, 12, 'count'),
    ('SELECT avg(uniq(distinct_id)) FROM events', NotAllowedError, "Aggregate function 'uniq' cannot be used inside aggregate function 'avg'. Aggregate in a subquery first, as in SELECT avg(n) FROM (SELECT uniq(...) AS n FROM events GROUP BY ...).", 1, 12, 'uniq'),
    ('SELECT * FROM numbers(1000000000)', NotAllowedError, f"Function 'numbers' is not allowed. {TABLE_FUNCTION}", 1, 15, 'numbers'),
    ('SELECT * FROM events FINAL', UnsupportedError, 'FINAL is not supported.', 1, 15, 'events'),
    ('SELECT * FROM events SAMPLE 0.1', UnsupportedError, 'SAMPLE is not supported.', 1, 29, '0.1'),
    ('SELECT count() FROM events a JOIN events b ON a.project_id = b.project_id', NotAllowedError, PROJECT_ID, 1, 49, 'project_id'),
    ('SELECT * FROM events WHERE 1 = 1 UNION ALL SELECT * FROM system.tables', NotAllowedError, f"Table 'system.tables' is not allowed. {TABLE_RULE}", 1, 58, 'system.tables'),
    ('SELECT (SELECT name FROM system.databases LIMIT 1)', NotAllowedError, f"Table 'system.databases' is not allowed. {TABLE_RULE}", 1, 26, 'system.databases'),
    ("SELECT 1 INTO OUTFILE 'x' FORMAT CSV", NotAllowedError, 'INTO OUTFILE is not allowed; results are returned to the caller.', 1, 10, 'INTO OUTFILE'),
    ('SELECT * FROM events AS project_id', NotAllowedError, "Table alias 'project_id' is also a column of the events table; choose another alias.", 1, 25, 'project_id'),
    ('WITH project_id AS (SELECT 1) SELECT * FROM project_id', NotAllowedError, PROJECT_ID, 1, 45, 'project_id'),
    ("SELECT * FROM generateRandom('a String')", NotAllowedError, f"Function 'generateRandom' is not allowed. {TABLE_FUNCTION}", 1, 15, 'generateRandom'),
    ('SELECT * FROM view(SELECT 1)', NotAllowedError, f"Function 'view' is not allowed. {TABLE_FUNCTION}", 1, 15, 'view'),
    ("SELECT * FROM dictionary('d')", UnknownTableError, "Unknown table 'dictionary'. Tables that can be queried: events, health_snapshots.", 1, 15, 'dictionary'),
    ('EXPLAIN SELECT 1', NotAllowedError, ONLY_SELECT.format("EXPLAIN"), 1, 1, 'EXPLAIN'),
    ('DESCRIBE TABLE events', NotAllowedError, ONLY_SELECT.format("DESCRIBE"), 1, 1, 'DESCRIBE'),
    ('SHOW TABLES', NotAllowedError, ONLY_SELECT.format("SHOW"), 1, 1, 'SHOW'),
    ('ATTACH TABLE x', NotAllowedError, ONLY_SELECT.format("ATTACH"), 1, 1, 'ATTACH'),
    ('RENAME TABLE events TO e2', NotAllowedError, ONLY_SELECT.format("RENAME"), 1, 1, 'RENAME'),
    ('USE system', NotAllowedError, ONLY_SELECT.format("USE"), 1, 1, 'USE'),
    # The health_snapshots table: the project column, database names, FINAL and names taken from tables.
    ('SELECT project_id FROM health_snapshots', NotAllowedError, PROJECT_ID, 1, 8, 'project_id'),
    ("SELECT * FROM health_snapshots AS s WHERE s.project_id = 'other' OR 1 = 1", NotAllowedError, PROJECT_ID, 1, 45, 'project_id'),
    ('SELECT * FROM default.health_snapshots', NotAllowedError, f"Table 'default.health_snapshots' is not allowed. {TABLE_RULE}", 1, 15, 'default.health_snapshots'),
    ('SELECT * FROM system.health_snapshots', NotAllowedError, f"Table 'system.health_snapshots' is not allowed. {TABLE_RULE}", 1, 15, 'system.health_snapshots'),
    ('SELECT * FROM health_snapshots FINAL', UnsupportedError, 'FINAL is not supported.', 1, 15, 'health_snapshots'),
    ('SELECT * FROM health_snapshots SAMPLE 0.5', UnsupportedError, 'SAMPLE is not supported.', 1, 39, '0.5'),
    (
        'WITH health_snapshots AS (SELECT 1 AS x) SELECT x FROM health_snapshots', NotAllowedError,
        "A CTE cannot be named 'health_snapshots', because that name is the health_snapshots table; choose another name.",
        1, 6, 'health_snapshots',
    ),
    (
        'SELECT * FROM (SELECT 1 AS x) AS health_snapshots', NotAllowedError,
        "A subquery cannot be aliased 'health_snapshots', because that name is the health_snapshots table; "
        "choose another alias.",
        1, 34, 'health_snapshots',
    ),
    (
        'SELECT * FROM events AS health_snapshots', NotAllowedError,
        "Only the health_snapshots table can have the alias 'health_snapshots', because that name is the "
        "health_snapshots table; choose another alias.",
        1, 25, 'health_snapshots',
    ),
    (
        'SELECT * FROM health_snapshots AS events', NotAllowedError,
        "Only the events table can have the alias 'events', because that name is the events table; choose another alias.",
        1, 35, 'events',
    ),
    ('SELECT pb_h0.account FROM health_snapshots', NotAllowedError, "Names starting with 'pb_' are reserved for the compiler; rename 'pb_h0'.", 1, 8, 'pb_h0'),
    (
        'SELECT count() FROM events WHERE distinct_id IN health_snapshots', UnsupportedError,
        'IN with a table name is not supported; write IN (SELECT ... FROM ...).', 1, 49, 'health_snapshots',
    ),
]


@pytest.mark.parametrize(("text", "error_class", "message", "line", "column", "fragment"), HOSTILE_QUERIES)
def test_hostile_query_rejected(text, error_class, message, line, column, fragment):
    with pytest.raises(HogQLError) as raised:
        compile_query(text, CompileContext(project_id="p1"))

    assert type(raised.value) is error_class
    assert raised.value.message == message
    assert (raised.value.line, raised.value.column) == (line, column)
    assert raised.value.fragment == fragment


def test_hostile_table_size():
    assert len(HOSTILE_QUERIES) >= 40
    assert len({row[0] for row in HOSTILE_QUERIES}) == len(HOSTILE_QUERIES)

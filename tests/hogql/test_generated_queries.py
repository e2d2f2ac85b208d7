"""Generated queries (hypothesis): the compiler raises only HogQLError, and the guard holds.

Queries nest SELECTs, subqueries in FROM and IN, CTEs, UNION ALL and every join kind over
`events` and `health_snapshots`. Each compiled query runs twice on real chDB: on the shared tables,
which also contain a neighbour project, and on copies of the tables with the caller's rows only. A
query that reads only the caller's project returns the same rows from both. Any difference, or a
neighbour's distinct id in the result, is a hole in the project guard.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulseboard.hogql import CompileContext, HogQLError, compile_query

CALLER_EVENTS = [
    ("a1", "pageview", "pro"), ("a1", "signup", "pro"), ("a2", "pageview", "free"),
    ("a3", "purchase", "pro"), ("shared", "pageview", "free"), ("shared", "signup", "team"),
]
# The neighbour shares event names, plans and one distinct id with the caller, so any join or IN
# that crosses projects finds partners.
NEIGHBOUR_EVENTS = [
    ("b1", "pageview", "pro"), ("b1", "purchase", "pro"), ("b2", "signup", "free"),
    ("shared", "pageview", "team"), ("shared", "purchase", "pro"), ("b3", "pageview", "free"),
]
NEIGHBOUR_ONLY_IDS = {"b1", "b2", "b3"}
# Snapshots as (account, status). Accounts are distinct ids and statuses are event names, so a
# snapshot row reads as a (distinct_id, event) row and the neighbour's rows find partners too.
CALLER_SNAPSHOTS = [("a1", "pageview"), ("a2", "signup"), ("shared", "purchase")]
NEIGHBOUR_SNAPSHOTS = [("b1", "pageview"), ("shared", "signup"), ("b3", "purchase")]
COPY_DATABASE = "caller_only_copy"
# Compiled SQL names the tables only as tables: column aliases never take these names here.
COPIED_TABLES = re.compile(r"\b(events|health_snapshots)\b")

PROFILE = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

EVENT_NAMES = st.sampled_from(["pageview", "signup", "purchase"])


@st.composite
def conditions(draw: st.DrawFn, alias: str, is_events: bool, depth: int) -> str:
    """A WHERE condition on the source named `alias`."""
    choices = [
        f"{alias}.event = '{draw(EVENT_NAMES)}'",
        f"{alias}.distinct_id != ''",
        f"{alias}.event = 'signup' OR 1 = 1",
        f"NOT ({alias}.distinct_id LIKE 'b%')",
    ]
    if is_events:
        choices += [f"{alias}.properties.plan = 'pro'", f"{alias}.timestamp >= '2024-01-01'"]
    if depth > 0:
        inner = draw(selects(depth - 1))
        join = draw(st.sampled_from(["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]))
        choices += [
            f"{alias}.distinct_id IN (SELECT account FROM health_snapshots WHERE status != 'x' OR 1 = 1)",
            f"{alias}.distinct_id IN (SELECT s.account FROM health_snapshots AS s {join} ({inner}) AS q "
            "ON s.account = q.distinct_id)",
            f"{alias}.distinct_id IN (SELECT distinct_id FROM ({inner}))",
            f"({alias}.distinct_id, {alias}.event) IN (SELECT distinct_id, event FROM events)",
        ]
    return draw(st.sampled_from(choices))


@st.composite
def sources(draw: st.DrawFn, alias: str, depth: int) -> tuple[str, bool]:
    """A FROM or JOIN source named `alias` with the columns distinct_id and event, and
    whether it is the events table itself."""
    if depth == 0 or draw(st.booleans()):
        return f"events AS {alias}", True

    if draw(st.integers(0, 3)) == 0:
        join = draw(st.sampled_from(["", "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]))
        snapshots = f"health_snapshots AS s{alias}"
        if join:
            snapshots += f" {join} events AS e{alias} ON s{alias}.account = e{alias}.distinct_id"
        return f"(SELECT s{alias}.account AS distinct_id, s{alias}.status AS event FROM {snapshots}) AS {alias}", False

    inner = draw(selects(depth - 1))
    if draw(st.booleans()):
        other = draw(selects(depth - 1))
        return f"({inner} UNION ALL {other}) AS {alias}", False
    return f"({inner}) AS {alias}", False


@st.composite
def selects(draw: st.DrawFn, depth: int) -> str:
    """A SELECT with exactly the columns distinct_id and event."""
    left, left_is_events = draw(sources(f"t{depth}a", depth))
    text = f"FROM {left}"
    right_alias = f"t{depth}b"
    columns = f"t{depth}a.distinct_id AS distinct_id, t{depth}a.event AS event"

    join = draw(st.sampled_from(["", "", "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN", "CROSS JOIN", ",", "USING"]))
    if join:
        right, _ = draw(sources(right_alias, depth))
        if join == "CROSS JOIN":
            text += f" CROSS JOIN {right}"
        elif join == ",":
            text += f", {right}"
        elif join == "USING":
            kind = draw(st.sampled_from(["", "LEFT ", "RIGHT ", "FULL "]))
            text += f" {kind}JOIN {right} USING (distinct_id)"
            columns = f"distinct_id, t{depth}a.event AS event"
        else:
            text += f" {join} {right} ON t{depth}a.distinct_id = {right_alias}.distinct_id"
        if join in ("RIGHT JOIN", "FULL JOIN") and draw(st.booleans()):
            columns = f"{right_alias}.distinct_id AS distinct_id, {right_alias}.event AS event"

    if draw(st.booleans()):
        text += f" WHERE {draw(conditions(f't{depth}a', left_is_events, depth))}"
    if draw(st.integers(0, 3)) == 0:
        return f"SELECT min(distinct_id) AS distinct_id, event FROM (SELECT {columns} {text}) GROUP BY event"
    return f"SELECT {columns} {text}"


@st.composite
def queries(draw: st.DrawFn) -> str:
    """A whole query: a SELECT, a UNION ALL of two, optionally with CTEs used in every arm."""
    depth = draw(st.integers(0, 2))
    body = draw(selects(depth))
    if draw(st.booleans()):
        body = f"{body} UNION ALL {draw(selects(depth))}"

    if draw(st.booleans()):
        cte = draw(selects(min(depth, 1)))
        chained = "c2 AS (SELECT distinct_id, event FROM c1 WHERE event != 'x')"
        reader = draw(st.sampled_from(["c1", "c2"]))
        body = f"WITH c1 AS ({cte}), {chained} SELECT distinct_id, event FROM {reader} UNION ALL {body}"
    return body


@pytest.fixture(scope="module")
def caller_project(new_project, hogql_ch):
    caller, neighbour = new_project(), new_project()
    for project, events in ((caller, CALLER_EVENTS), (neighbour, NEIGHBOUR_EVENTS)):
        project.insert(*[
            {"distinct_id": distinct_id, "event": event, "properties": {"plan": plan}, "timestamp": "2024-03-01 10:00:00"}
            for distinct_id, event, plan in events
        ])

    for project, snapshots in ((caller, CALLER_SNAPSHOTS), (neighbour, NEIGHBOUR_SNAPSHOTS)):
        hogql_ch.insert(
            "health_snapshots",
            [[project.project_id, dt.date(2024, 3, 1), account, 50.0, status, "none", 1] for account, status in snapshots],
            column_names=["project_id", "day", "account", "health_score", "status", "top_risk_signal", "version"],
        )

    hogql_ch.command(f"CREATE DATABASE IF NOT EXISTS {COPY_DATABASE}")
    for table in ("events", "health_snapshots"):
        hogql_ch.command(f"DROP TABLE IF EXISTS {COPY_DATABASE}.{table}")
        hogql_ch.command(f"CREATE TABLE {COPY_DATABASE}.{table} AS {table}")
        hogql_ch.command(
            f"INSERT INTO {COPY_DATABASE}.{table} SELECT * FROM {table} WHERE project_id = {{p:String}}",
            parameters={"p": caller.project_id},
        )
    yield caller
    for table in ("events", "health_snapshots"):
        hogql_ch.command(f"DROP TABLE IF EXISTS {COPY_DATABASE}.{table}")


def _run(client: Any, sql: str, parameters: dict[str, Any]) -> Counter | str:
    """Return the rows as a multiset, or the ClickHouse error code when the query fails."""
    try:
        result = client.query(sql, parameters=parameters, settings={"readonly": 2, "join_use_nulls": 1})
    except DatabaseError as error:
        code = re.search(r"\(([A-Z_]+)\)", str(error))
        return code.group(1) if code else str(error)
    return Counter(tuple(row) for row in result.result_rows)


@PROFILE
@given(text=queries())
def test_generated_query_reads_only_caller(caller_project, hogql_ch, text):
    context = CompileContext(project_id=caller_project.project_id, default_limit=10_000)
    try:
        compiled = compile_query(text, context)
    except HogQLError:
        return

    rows = _run(hogql_ch, compiled.sql, compiled.parameters)
    caller_only_rows = _run(hogql_ch, COPIED_TABLES.sub(rf"{COPY_DATABASE}.\1", compiled.sql), compiled.parameters)

    assert rows == caller_only_rows
    if isinstance(rows, Counter):
        values = {value for row in rows for value in row}
        assert not values & NEIGHBOUR_ONLY_IDS


def test_generated_queries_mostly_compile(caller_project, hogql_ch):
    """The generator is useful only if most of its queries compile and run."""
    examples: list[str] = []

    @PROFILE
    @given(text=queries())
    def collect(text: str) -> None:
        examples.append(text)

    collect()
    outcomes = Counter()
    for text in examples:
        try:
            compiled = compile_query(text, CompileContext(project_id=caller_project.project_id, default_limit=10_000))
        except HogQLError:
            outcomes["rejected"] += 1
            continue
        outcomes["ran" if isinstance(_run(hogql_ch, compiled.sql, compiled.parameters), Counter) else "failed"] += 1

    assert outcomes["ran"] >= 0.6 * len(examples), outcomes


# Pieces that turn a generated query into text the compiler must reject or read as a mistake.
MUTATIONS = [
    "project_id", "system.tables", "url('http://127.0.0.1/')", "; DROP TABLE events", "SETTINGS max_threads = 1",
    "FORMAT JSON", "(", ")", ",", "'", "`", "{x}", "sleep(1)", "count(count())", "properties.items[0]", "$",
    "INTERVAL", "JOIN", "-- ", "/*", "UNION", "pb_t0", "numbers(10)", "ARRAY JOIN", "WITH", "::", "?", ":",
]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    text=queries(),
    mutation=st.sampled_from(MUTATIONS),
    position=st.floats(min_value=0, max_value=1),
    replace=st.booleans(),
)
def test_mutated_query_raises_only_hogql_error(text, mutation, position, replace):
    words = text.split(" ")
    index = int(position * (len(words) - 1))
    words[index : index + (1 if replace else 0)] = [mutation]
    mutated = " ".join(words)

    try:
        compile_query(mutated, CompileContext(project_id="p" + uuid.uuid4().hex[:6]))
    except HogQLError as error:
        assert error.message

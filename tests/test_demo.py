"""The demo data generator: determinism, window edges, and the exact reference figures in chDB."""

from __future__ import annotations

import collections
import datetime as dt
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest

from pulseboard.server.demo import (
    EDGE_MARGIN,
    AccountSpec,
    demo_accounts,
    format_summary_table,
    format_table,
    generate_demo_events,
    load_demo,
    reference_accounts,
)
from pulseboard.server.ingest import parse_events
from pulseboard.server.store import Store

REFERENCE_TIME = dt.datetime(2025, 3, 14, 15, 30, tzinfo=dt.timezone.utc)

# account: (plan, mrr, events_30d, trend, errors_30d, tickets_30d)
REFERENCE_FIGURES = {
    "megacorp": ("enterprise", 5000.0, 4200, -800, 89, 6),
    "globex": ("scale", 1875.0, 6800, -210, 22, 3),
    "tinyco": ("starter", 250.0, 120, 30, 2, 1),
    "acme": ("pro", 750.0, 18400, 4100, 4, 1),
    "innovate": ("scale", 1875.0, 22100, 2200, 8, 2),
}

# The same figures, counted with plain ClickHouse SQL straight from the events table.
FIGURES_SQL = """
SELECT
    CAST(properties.account_id AS String) AS account,
    argMaxIf(CAST(properties.plan AS Nullable(String)), timestamp, is_billing) AS plan,
    argMaxIf(accurateCastOrNull(properties.mrr, 'Float64'), timestamp, is_billing) AS mrr,
    countIf(is_activity AND in_30d) AS events_30d,
    toInt64(countIf(is_activity AND timestamp > {as_of:DateTime64(6, 'UTC')} - INTERVAL 14 DAY AND in_30d))
        - toInt64(countIf(is_activity AND timestamp > {as_of:DateTime64(6, 'UTC')} - INTERVAL 28 DAY
                          AND timestamp <= {as_of:DateTime64(6, 'UTC')} - INTERVAL 14 DAY)) AS trend,
    countIf(event = '$exception' AND in_30d) AS errors_30d,
    countIf(event = 'support_ticket_opened' AND in_30d) AS tickets_30d
FROM (
    SELECT
        *,
        event != '$exception' AS is_activity,
        event IN ('subscription_started', 'plan_changed') AND timestamp <= {as_of:DateTime64(6, 'UTC')} AS is_billing,
        timestamp > {as_of:DateTime64(6, 'UTC')} - INTERVAL 30 DAY
            AND timestamp <= {as_of:DateTime64(6, 'UTC')} AS in_30d
    FROM events
    WHERE project_id = {project:String}
)
GROUP BY account
ORDER BY account
"""


def count_figures(store: Store, project_id: str, as_of: dt.datetime) -> dict[str, tuple]:
    result = store.query(FIGURES_SQL, {"project": project_id, "as_of": as_of})
    return {row[0]: tuple(row[1:]) for row in result.rows}


@pytest.fixture(scope="module")
def demo_project(store: Store) -> Callable[[int], str]:
    """Load the demo once per extra-account count into its own project; return the project id."""
    loaded: dict[int, str] = {}

    def load(extra_accounts: int) -> str:
        if extra_accounts not in loaded:
            project, _ = store.create_project("demo" + uuid.uuid4().hex[:10])
            load_demo(store, project.project_id, REFERENCE_TIME, extra_accounts)
            loaded[extra_accounts] = project.project_id
        return loaded[extra_accounts]

    return load


def test_generator_is_deterministic():
    first = generate_demo_events(REFERENCE_TIME, extra_accounts=5, seed=3)
    again = generate_demo_events(REFERENCE_TIME, extra_accounts=5, seed=3)
    other_seed = generate_demo_events(REFERENCE_TIME, extra_accounts=5, seed=4)

    assert first == again
    assert first != other_seed
    assert [event["uuid"] for event in first] != [event["uuid"] for event in other_seed]


def test_generated_events_pass_ingestion():
    events = generate_demo_events(REFERENCE_TIME, extra_accounts=3)
    rows = parse_events({"batch": events[:1000]}, now=REFERENCE_TIME)

    assert len(rows) == 1000
    assert {tuple(sorted(event)) for event in events} == {("distinct_id", "event", "properties", "timestamp", "uuid")}
    assert all(event["properties"]["account_id"] for event in events)


def test_events_keep_clear_of_window_edges():
    events = generate_demo_events(REFERENCE_TIME, extra_accounts=40)
    edges = [REFERENCE_TIME - dt.timedelta(days=days) for days in (0, 14, 28, 30)]
    closest = min(abs(dt.datetime.fromisoformat(event["timestamp"]) - edge) for event in events for edge in edges)
    oldest = min(dt.datetime.fromisoformat(event["timestamp"]) for event in events)
    newest = max(dt.datetime.fromisoformat(event["timestamp"]) for event in events)

    assert closest >= EDGE_MARGIN
    assert oldest >= REFERENCE_TIME - dt.timedelta(days=60)
    assert newest <= REFERENCE_TIME - EDGE_MARGIN


def test_event_mix_per_reference_account():
    events = generate_demo_events(REFERENCE_TIME, extra_accounts=0)
    megacorp = [event for event in events if event["properties"]["account_id"] == "megacorp"]
    names = collections.Counter(event["event"] for event in megacorp)
    billing = [event for event in megacorp if event["event"] in ("subscription_started", "plan_changed")]
    exceptions = [event for event in megacorp if event["event"] == "$exception"]

    assert {"dashboard_viewed", "report_exported", "query_run", "$pageview"} <= set(names)
    assert names["subscription_started"] == 1
    assert names["plan_changed"] == 1
    assert [(event["properties"]["plan"], event["properties"]["mrr"]) for event in billing] == [
        ("scale", 1875), ("enterprise", 5000)
    ]
    assert all(event["properties"]["$exception_message"] for event in exceptions)
    assert len({event["distinct_id"] for event in megacorp}) >= 5


def test_shipped_accounts_match_reference_figures():
    shipped = {
        spec.account: (spec.plan, float(spec.mrr), spec.events_30d, spec.trend, spec.errors_30d, spec.tickets_30d)
        for spec in reference_accounts()
    }

    assert shipped == REFERENCE_FIGURES


@pytest.mark.parametrize("extra_accounts", [0, 40])
@pytest.mark.parametrize("hours_after", [0, 5])
def test_reference_figures_exact_in_store(store: Store, demo_project, extra_accounts: int, hours_after: int):
    project_id = demo_project(extra_accounts)
    as_of = REFERENCE_TIME + dt.timedelta(hours=hours_after)

    figures = count_figures(store, project_id, as_of)

    for account, expected in REFERENCE_FIGURES.items():
        assert figures[account] == expected, account
    assert len(figures) == 5 + extra_accounts


def test_load_demo_returns_stored_count(store: Store, demo_project):
    project_id = demo_project(0)

    stored = store.query("SELECT count() FROM events WHERE project_id = {p:String}", {"p": project_id}).rows[0][0]

    assert stored == len(generate_demo_events(REFERENCE_TIME, extra_accounts=0))


def test_extra_accounts_vary():
    extras = demo_accounts(40, 7)[5:]
    plans = collections.Counter(spec.plan for spec in extras)

    assert len({spec.account for spec in extras}) == 40
    assert set(plans) == {"starter", "pro", "scale", "enterprise"}
    assert any(spec.trend < 0 for spec in extras)
    assert any(spec.trend > 0 for spec in extras)
    assert any(spec.cancelled for spec in extras)
    assert any(spec.previous_plan for spec in extras)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: demo_accounts(-1, 7), "extra_accounts must be from 0 to 1000; got -1."),
        (lambda: demo_accounts(1001, 7), "extra_accounts must be from 0 to 1000; got 1001."),
        (
            lambda: generate_demo_events(dt.datetime(2025, 3, 14)),
            "reference_time must be timezone-aware, e.g. datetime.now(timezone.utc).",
        ),
        (
            lambda: AccountSpec("x", "pro", 750, 100, 150, 0, 0).window_counts(),
            "Account 'x': trend 150 must lie within ±events_30d (100).",
        ),
    ],
)
def test_invalid_generator_input(call, message: str):
    with pytest.raises(ValueError) as raised:
        call()

    assert str(raised.value) == message


def test_format_table_aligns_and_formats():
    columns = ["account", "mrr", "events_30d", "trend", "health_score", "status"]
    rows = [
        ["megacorp", 5000.0, 4200, -800, 33.4, "critical"],
        ["acme", 750.0, 18400, 4100, 97.6, "champion"],
        ["newco", None, 0, 0, 50.0, "warn"],
    ]

    assert format_table(columns, rows) == "\n".join([
        "account      mrr  events_30d   trend  health_score  status",
        "--------  ------  ----------  ------  ------------  --------",
        "megacorp  $5,000       4,200    -800          33.4  critical",
        "acme        $750      18,400  +4,100          97.6  champion",
        "newco                      0       0          50.0  warn",
    ])


def test_summary_table_shows_lead_columns():
    columns = ["account", "plan", "mrr", "trend", "health_score", "status", "top_risk_signal", "coverage"]
    rows = [
        ["megacorp", "enterprise", 5000.0, -800, 33.4, "critical", "errors: 89 in 30 days", "usage, trend"],
        ["acme", "pro", 750.0, 4100, 97.6, "champion", "none", "usage, trend"],
    ]

    assert format_summary_table(columns, rows) == "\n".join([
        "account   health_score  status     trend  top_risk_signal           mrr",
        "--------  ------------  --------  ------  ---------------------  ------",
        "megacorp          33.4  critical    -800  errors: 89 in 30 days  $5,000",
        "acme              97.6  champion  +4,100  none                     $750",
        "6 of 8 columns shown. The dashboard below has all of them; add &format=csv or &format=json to its URL "
        "for a file.",
    ])


def test_summary_table_without_hidden_columns():
    columns = ["account", "health_score"]
    rows = [["acme", 97.6]]

    assert format_summary_table(columns, rows) == "\n".join([
        "account  health_score",
        "-------  ------------",
        "acme             97.6",
    ])


def test_demo_command_prints_summary(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSEBOARD_")}
    env["PULSEBOARD_LOG_LEVEL"] = "WARNING"
    data_dir = tmp_path / "data"

    result = subprocess.run(
        [sys.executable, "-m", "pulseboard.server.cli", "demo", "--no-serve", "--extra-accounts", "0",
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("account_health_score (lowest first):")
    assert re.split(r"\s+", lines[start + 1]) == ["account", "health_score", "status", "trend", "top_risk_signal", "mrr"]
    table = lines[start + 3 : start + 8]
    assert sorted(line.split()[0] for line in table) == ["acme", "globex", "innovate", "megacorp", "tinyco"]
    assert lines[start + 8] == (
        "6 of 23 columns shown. The dashboard below has all of them; add &format=csv or &format=json to its URL "
        "for a file."
    )
    dashboard = re.fullmatch(r"Public dashboard: (http://127\.0\.0\.1:\d+/q/pub_[0-9a-f]{16})\?(key=\S+)", lines[start + 10])
    assert dashboard is not None
    base, key = dashboard.groups()
    assert lines[start + 12] == f"  Drill-down of the lowest-scoring accounts: {base}/drilldown?{key}"

"""Data generators for the benchmarks: deterministic events, a SQL bulk generator and a CSV file.

Mixed-type events (bench_property_reads.py)
    Row `i` of a project has these properties; the SQL generator and `mixed_properties` follow the
    same rules, so rows stored either way look alike:

    - `account_id`: the string "acct-<i % 1000>", except every 100th row (i % 100 == 50), which
      stores the number i % 1000 as Int64, as a client that sends an id unquoted does.
    - `mrr`: by i % 10, Int64 (0-3), Float64 with .5 (4-6), a numeric string such as "1234" (7-8)
      or the non-numeric string "n/a" (9). So 40 % Int64, 30 % Float64, 20 % numeric strings and
      10 % text.
    - `plan`, `$browser`, `$os` and `$pathname`: strings from short lists, and `$session_id`, one
      per 50 rows. With them a row has seven paths, like a small SDK event; reading the whole
      JSON column costs more the more paths it stores.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pulseboard.server.ingest import MAX_BATCH_EVENTS, parse_events
from pulseboard.server.store import EventRow, Store

EVENT_NAMES = ("$pageview", "dashboard_viewed", "query_run", "report_exported", "$exception")
PLANS = ("starter", "pro", "scale", "enterprise")
BROWSERS = ("Chrome", "Firefox", "Safari")
OPERATING_SYSTEMS = ("Windows", "Mac OS X", "Linux", "iOS", "Android")
PAGES = ("/home", "/dashboards", "/insights", "/reports", "/settings", "/alerts")
SESSION_ROWS = 50
ACCOUNTS = 1000
USERS = 5000
MRR_VALUES = 5000
SPAN = dt.timedelta(days=30)

# Row `number` of `count` rows, numbered from `first`, spread evenly over the 30 days before
# `end`. Keep in step with `mixed_properties`.
MIXED_EVENTS_SQL = """
INSERT INTO events (project_id, uuid, event, distinct_id, timestamp, properties)
SELECT
    {project:String},
    generateUUIDv4(number),
    ['$pageview', 'dashboard_viewed', 'query_run', 'report_exported', '$exception'][number % 5 + 1],
    concat('user-', toString(number % 5000)),
    {end:DateTime64(6, 'UTC')} - toIntervalMillisecond({span_ms:UInt64})
        + toIntervalMillisecond(intDiv(number * {span_ms:UInt64}, {total:UInt64})),
    CAST(concat(
        '{"account_id":',
        if(number % 100 = 50, toString(number % 1000), concat('"acct-', toString(number % 1000), '"')),
        ',"mrr":',
        multiIf(
            number % 10 < 4, toString(number % 5000),
            number % 10 < 7, concat(toString(number % 5000), '.5'),
            number % 10 < 9, concat('"', toString(number % 5000), '"'),
            '"n/a"'
        ),
        ',"plan":"', ['starter', 'pro', 'scale', 'enterprise'][number % 4 + 1],
        '","$browser":"', ['Chrome', 'Firefox', 'Safari'][number % 3 + 1],
        '","$os":"', ['Windows', 'Mac OS X', 'Linux', 'iOS', 'Android'][number % 5 + 1],
        '","$pathname":"', ['/home', '/dashboards', '/insights', '/reports', '/settings', '/alerts'][number % 6 + 1],
        '","$session_id":"s-', toString(intDiv(number, 50)),
        '"}'
    ) AS JSON)
FROM numbers({first:UInt64}, {count:UInt64})
"""


def mixed_properties(index: int) -> dict[str, Any]:
    """Return the properties of row `index` of the mixed-type data set (see the module docstring)."""
    account: int | str = index % ACCOUNTS if index % 100 == 50 else f"acct-{index % ACCOUNTS}"
    kind = index % 10
    amount = index % MRR_VALUES
    if kind < 4:
        mrr: int | float | str = amount
    elif kind < 7:
        mrr = amount + 0.5
    elif kind < 9:
        mrr = str(amount)
    else:
        mrr = "n/a"
    return {
        "account_id": account,
        "mrr": mrr,
        "plan": PLANS[index % len(PLANS)],
        "$browser": BROWSERS[index % len(BROWSERS)],
        "$os": OPERATING_SYSTEMS[index % len(OPERATING_SYSTEMS)],
        "$pathname": PAGES[index % len(PAGES)],
        "$session_id": f"s-{index // SESSION_ROWS}",
    }


def mixed_event_rows(first: int, count: int, total: int, end: dt.datetime) -> list[EventRow]:
    """Return rows `first` to `first + count - 1` of the mixed-type data set of `total` rows."""
    start = end - SPAN
    return [
        EventRow(
            uuid=str(uuid.uuid4()),
            event=EVENT_NAMES[index % len(EVENT_NAMES)],
            distinct_id=f"user-{index % USERS}",
            timestamp=start + SPAN * index / total,
            properties=mixed_properties(index),
        )
        for index in range(first, first + count)
    ]


def insert_mixed_events(store: Store, project_id: str, total: int, end: dt.datetime, *, through_api: int) -> None:
    """Store `total` mixed-type events in a project.

    The first `through_api` rows go through `Store.insert_events`, which also records the property
    types that the compiler reads. The rest are generated inside ClickHouse by one INSERT ... SELECT,
    which stored about 240,000 events/s on the machine described in BENCHMARKS.md, against about
    45,000 events/s for `insert_events` with 1,000 prepared events per call.
    """
    seeded = min(through_api, total)
    if seeded:
        store.insert_events(project_id, mixed_event_rows(0, seeded, total, end))
    if total == seeded:
        return

    store.client.command(
        MIXED_EVENTS_SQL,
        parameters={
            "project": project_id,
            "end": end,
            "span_ms": int(SPAN.total_seconds() * 1000),
            "total": total,
            "first": seeded,
            "count": total - seeded,
        },
    )


# Usage events, as an SDK sends them (bench_ingest.py)

USAGE_EVENTS = ("$pageview", "dashboard_viewed", "query_run", "filter_applied", "report_exported")


def usage_event(rng: random.Random, end: dt.datetime) -> dict[str, Any]:
    """Return one API-shaped usage event of a random account, within the 30 days before `end`."""
    account = rng.randrange(ACCOUNTS)
    moment = end - SPAN * rng.random()
    return {
        "event": rng.choice(USAGE_EVENTS),
        "distinct_id": f"acct-{account}-user-{rng.randrange(20)}",
        "timestamp": moment.isoformat(timespec="microseconds"),
        "properties": {
            "account_id": f"acct-{account}",
            "$pathname": rng.choice(PAGES),
            "duration_ms": rng.randint(40, 4000),
            "plan": PLANS[account % len(PLANS)],
        },
    }


def usage_events(count: int, *, seed: int, end: dt.datetime) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [usage_event(rng, end) for _ in range(count)]


def usage_event_rows(count: int, *, seed: int, end: dt.datetime) -> list[EventRow]:
    """Return validated rows of `count` usage events, parsed as the ingestion API parses them."""
    rows: list[EventRow] = []
    events = usage_events(count, seed=seed, end=end)
    for start in range(0, count, MAX_BATCH_EVENTS):
        rows.extend(parse_events({"batch": events[start : start + MAX_BATCH_EVENTS]}, now=end))
    return rows


# Feature-usage CSV and its import mapping (bench_ingest.py)

USAGE_CSV_COLUMNS = (
    "usage_date", "account_id", "user_id", "feature_name", "usage_duration_secs", "plan_tier", "mrr_amount",
    "is_beta_feature",
)
FEATURES = ("dashboards", "alerts", "exports", "sql_editor", "funnels", "retention", "sharing", "api")

USAGE_CSV_MAPPING = """\
format = "csv"
timestamp = "usage_date"
account = "account_id"
user = "user_id"

[properties]
feature_name = "string"
plan = { column = "plan_tier" }
mrr = { column = "mrr_amount", type = "number" }
is_beta_feature = "boolean"

[[events]]
name = "feature_used"

[events.properties]
usage_duration_secs = "number"
"""


def usage_csv_rows(count: int, *, seed: int, end: dt.datetime) -> Iterator[list[str]]:
    """Yield `count` CSV rows of feature usage, one event each, within the 30 days before `end`."""
    rng = random.Random(seed)
    for _ in range(count):
        account = rng.randrange(ACCOUNTS)
        plan = PLANS[account % len(PLANS)]
        moment = end - SPAN * rng.random()
        yield [
            moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            f"acct-{account}",
            f"acct-{account}-user-{rng.randrange(20)}",
            rng.choice(FEATURES),
            str(rng.randint(1, 900)),
            plan,
            str((PLANS.index(plan) + 1) * 250),
            rng.choice(("true", "false")),
        ]


def write_usage_csv(folder: Path, rows: int, *, seed: int, end: dt.datetime) -> tuple[Path, Path]:
    """Write `feature_usage.csv` with `rows` rows and its mapping `feature_usage.toml`; return both paths."""
    csv_path = folder / "feature_usage.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(USAGE_CSV_COLUMNS)
        writer.writerows(usage_csv_rows(rows, seed=seed, end=end))

    mapping_path = folder / "feature_usage.toml"
    mapping_path.write_text(USAGE_CSV_MAPPING, encoding="utf-8")
    return csv_path, mapping_path

"""File import: mapping validation, row errors, and the RavenStack dataset loaded end to end.

RavenStack is a synthetic SaaS dataset by River @ Rivalytics. Expected numbers are computed here
from the CSV files with the `csv` module, independently of the importer.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.ravenstack import FILES, MAPPINGS, RAVENSTACK, import_ravenstack, read_csv

from pulseboard.server.importer import (
    IMPORT_NAMESPACE,
    ImportFileError,
    ImportReport,
    MappingError,
    event_uuid,
    import_file,
    load_mapping,
)
from pulseboard.server.store import Store

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

# The account with the most subscriptions, the one with the most cancellations, and one with no
# tickets and no cancellations. Each has one latest subscription (no tie on start_date).
CHOSEN_ACCOUNTS = ["A-592832", "A-180abf", "A-91e948"]


def new_project(store: Store) -> str:
    project, _ = store.create_project("ti" + uuid.uuid4().hex[:12])
    return project.project_id


def events_by_name(store: Store, project_id: str, where: str = "", parameters: dict[str, Any] | None = None) -> dict[str, int]:
    rows = store.query(
        f"SELECT event, count() FROM events WHERE project_id = {{p:String}} {where} GROUP BY event ORDER BY event",
        {"p": project_id, **(parameters or {})},
    ).rows
    return dict(rows)


# RavenStack


@pytest.fixture(scope="module")
def csv_rows() -> dict[str, list[dict[str, str]]]:
    return {name: read_csv(name) for name in FILES}


@pytest.fixture(scope="module")
def ravenstack(store: Store) -> tuple[str, dict[str, ImportReport], dict[str, float]]:
    """One project with all five RavenStack files imported, their reports, and wall-clock seconds per file."""
    project_id = new_project(store)
    reports, seconds = import_ravenstack(store, project_id, now=NOW)
    return project_id, reports, seconds


def expected_counts(rows: dict[str, list[dict[str, str]]]) -> dict[str, dict[str, int]]:
    usage = rows["feature_usage"]
    return {
        "accounts": {"account_created": len(rows["accounts"])},
        "subscriptions": {"subscription_started": len(rows["subscriptions"])},
        "feature_usage": {
            "$exception": sum(int(row["error_count"]) for row in usage),
            "feature_used": sum(int(row["usage_count"]) for row in usage),
        },
        "support_tickets": {"support_ticket_opened": len(rows["support_tickets"])},
        "churn_events": {"subscription_cancelled": len(rows["churn_events"])},
    }


def test_ravenstack_reports_match_csv(ravenstack, csv_rows):
    _, reports, _ = ravenstack
    expected = expected_counts(csv_rows)

    for name in FILES:
        report = reports[name]
        assert report.rows_read == len(csv_rows[name]), name
        assert report.events_by_name == expected[name], name
        assert report.events_stored == sum(expected[name].values()), name


def test_ravenstack_exact_numbers(ravenstack):
    _, reports, _ = ravenstack

    assert {name: report.events_by_name for name, report in reports.items()} == {
        "accounts": {"account_created": 500},
        "subscriptions": {"subscription_started": 5000},
        "feature_usage": {"$exception": 14107, "feature_used": 250525},
        "support_tickets": {"support_ticket_opened": 2000},
        "churn_events": {"subscription_cancelled": 600},
    }


def test_ravenstack_stored_counts(ravenstack, store: Store, csv_rows):
    project_id, _, _ = ravenstack
    expected: dict[str, int] = {}
    for counts in expected_counts(csv_rows).values():
        expected.update(counts)

    assert events_by_name(store, project_id) == dict(sorted(expected.items()))


def test_ravenstack_import_time(ravenstack):
    _, reports, seconds = ravenstack

    # 25,000 usage rows expand to 264,632 events; this bound is several times the measured time.
    assert seconds["feature_usage"] < 60
    assert reports["feature_usage"].elapsed_s <= seconds["feature_usage"]


def account_expectations(rows: dict[str, list[dict[str, str]]], account_id: str) -> dict[str, Any]:
    subscriptions = [row for row in rows["subscriptions"] if row["account_id"] == account_id]
    subscription_ids = {row["subscription_id"] for row in subscriptions}
    usage = [row for row in rows["feature_usage"] if row["subscription_id"] in subscription_ids]
    latest = max(subscriptions, key=lambda row: row["start_date"])
    account = next(row for row in rows["accounts"] if row["account_id"] == account_id)
    counts = {
        "account_created": 1,
        "subscription_started": len(subscriptions),
        "feature_used": sum(int(row["usage_count"]) for row in usage),
        "$exception": sum(int(row["error_count"]) for row in usage),
        "support_ticket_opened": sum(1 for row in rows["support_tickets"] if row["account_id"] == account_id),
        "subscription_cancelled": sum(1 for row in rows["churn_events"] if row["account_id"] == account_id),
    }
    return {
        "counts": {name: count for name, count in sorted(counts.items()) if count},
        "latest_mrr": int(latest["mrr_amount"]),
        "latest_plan": latest["plan_tier"],
        "latest_start": latest["start_date"],
        "industry": account["industry"],
        "country": account["country"],
        "plan": account["plan_tier"],
        "duration_secs": sum(int(row["usage_duration_secs"]) for row in usage if int(row["usage_count"]) > 0),
    }


@pytest.mark.parametrize("account_id", CHOSEN_ACCOUNTS)
def test_ravenstack_account_matches_csv(ravenstack, store: Store, csv_rows, account_id: str):
    project_id, _, _ = ravenstack
    expected = account_expectations(csv_rows, account_id)
    account_filter = "AND properties.account_id.:String = {a:String}"
    parameters = {"p": project_id, "a": account_id}

    assert events_by_name(store, project_id, account_filter, {"a": account_id}) == expected["counts"]

    latest = store.query(
        "SELECT argMax(properties.mrr.:Int64, timestamp), argMax(properties.plan.:String, timestamp), "
        "toString(toDate(max(timestamp))) FROM events "
        f"WHERE project_id = {{p:String}} AND event = 'subscription_started' {account_filter}",
        parameters,
    ).rows
    assert latest == [[expected["latest_mrr"], expected["latest_plan"], expected["latest_start"]]]

    created = store.query(
        "SELECT properties.industry.:String, properties.country.:String, properties.plan.:String, distinct_id "
        f"FROM events WHERE project_id = {{p:String}} AND event = 'account_created' {account_filter}",
        parameters,
    ).rows
    assert created == [[expected["industry"], expected["country"], expected["plan"], f"account:{account_id}"]]

    usage = store.query(
        "SELECT sum(properties.usage_duration_secs.:Float64), uniqExact(distinct_id) FROM events "
        f"WHERE project_id = {{p:String}} AND event = 'feature_used' {account_filter}",
        parameters,
    ).rows
    assert usage[0][0] == pytest.approx(expected["duration_secs"], rel=1e-9)
    assert usage[0][1] == 1


def test_ravenstack_typed_properties(ravenstack, store: Store):
    project_id, _, _ = ravenstack

    # Date-time properties are read through parseDateTime64BestEffort, because the JSON column may
    # store ISO 8601 text as a DateTime, which prints differently from the text that was sent.
    rows = store.query(
        "SELECT event, toString(properties), "
        "toString(parseDateTime64BestEffortOrNull(toString(properties.end_date), 0, 'UTC')), "
        "toString(parseDateTime64BestEffortOrNull(toString(properties.closed_at), 0, 'UTC')) "
        "FROM events WHERE project_id = {p:String} "
        "AND (properties.subscription_id.:String = 'S-8cec59' AND event = 'subscription_started' "
        "OR properties.ticket_id.:String = 'T-0024de' OR properties.churn_event_id.:String = 'C-5a81e7') "
        "ORDER BY event",
        {"p": project_id},
    ).rows
    dates = {"end_date", "closed_at"}

    assert [row[2:] for row in rows] == [[None, None], ["2024-04-12 00:00:00", None], [None, "2023-07-28 03:00:00"]]
    assert [
        (name, {key: value for key, value in json.loads(properties).items() if key not in dates})
        for name, properties, _, _ in rows
    ] == [
        ("subscription_cancelled", {
            "account_id": "A-37f969", "churn_event_id": "C-5a81e7", "reason_code": "support",
            "refund_amount_usd": 96.45, "preceding_upgrade_flag": True, "preceding_downgrade_flag": False,
            "is_reactivation": False,
        }),
        ("subscription_started", {
            "account_id": "A-3c1a3f", "subscription_id": "S-8cec59", "plan": "Enterprise", "seats": 14,
            "mrr": 2786, "arr": 33432, "is_trial": False,
            "upgrade_flag": False, "downgrade_flag": False, "churn_flag": True, "billing_frequency": "monthly",
            "auto_renew": True,
        }),
        ("support_ticket_opened", {
            "account_id": "A-712f1c", "ticket_id": "T-0024de", "priority": "high",
            "resolution_time_hours": 27, "first_response_time_minutes": 74,
            "escalation_flag": False,
        }),
    ]


def test_ravenstack_usage_row_expands(ravenstack, store: Store):
    project_id, _, _ = ravenstack
    # U-1c6c24: subscription S-0fcf7d, 2023-07-27, feature_20, 9 uses over 5004 s, no errors.
    rows = store.query(
        "SELECT event, toString(uuid), toString(timestamp), properties.usage_duration_secs.:Float64 FROM events "
        "WHERE project_id = {p:String} AND properties.usage_id.:String = 'U-1c6c24' ORDER BY toString(uuid)",
        {"p": project_id},
    ).rows
    row_number = 1
    expected_uuids = sorted(
        str(uuid.uuid5(IMPORT_NAMESPACE, f"ravenstack_feature_usage.csv\n{row_number}\n0\n{copy}")) for copy in range(9)
    )

    assert [row[1] for row in rows] == expected_uuids
    assert {(row[0], row[2], row[3]) for row in rows} == {("feature_used", "2023-07-27 00:00:00.000000", 556.0)}


def test_ravenstack_reimport_is_rejected(ravenstack, store: Store):
    project_id, _, _ = ravenstack
    before = events_by_name(store, project_id)

    with pytest.raises(ImportFileError) as raised:
        import_file(
            store, project_id, RAVENSTACK / "ravenstack_accounts.csv", MAPPINGS / "ravenstack_accounts.toml", now=NOW
        )

    assert raised.value.message == (
        f"ravenstack_accounts.csv was already imported into project {project_id} "
        f"(event {event_uuid('ravenstack_accounts.csv', 1, 0, 0)} is stored); importing it again would store "
        "its events twice. Pass allow_duplicates to import anyway."
    )
    assert events_by_name(store, project_id) == before


def test_mappings_load():
    for name in FILES:
        mapping = load_mapping(MAPPINGS / f"ravenstack_{name}.toml")
        assert mapping.user_template == "account:{account_id}", name
        assert mapping.account == "account_id", name


# Small files written per test


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


USAGE_MAPPING = """
timestamp = "day"
account = "account"
user = "user"
user_template = "account:{account}"

[properties]
plan = { column = "plan_tier" }

[[events]]
name = "feature_used"
count = "uses"

[events.properties]
seconds = { type = "number", split = true }

[[events]]
name = "$exception"
count = "errors"

[events.templates]
"$exception_message" = "Error on {plan_tier}"
"""


def test_count_expands_and_splits(store: Store, tmp_path: Path):
    project_id = new_project(store)
    data = write(tmp_path, "usage.csv", "day,account,user,plan_tier,uses,seconds,errors\n"
                 "2024-03-05,A-1,u1,pro,4,10,1\n"
                 "2024-03-06,A-2,,basic,0,0,2\n")
    mapping = write(tmp_path, "usage.toml", USAGE_MAPPING)

    report = import_file(store, project_id, data, mapping, now=NOW)

    assert report.rows_read == 2
    assert report.events_stored == 7
    assert report.events_by_name == {"$exception": 3, "feature_used": 4}
    rows = store.query(
        "SELECT event, distinct_id, toString(timestamp), toString(properties), count() FROM events "
        "WHERE project_id = {p:String} GROUP BY ALL ORDER BY ALL",
        {"p": project_id},
    ).rows
    assert [(event, user, day, json.loads(properties), count) for event, user, day, properties, count in rows] == [
        ("$exception", "account:A-2", "2024-03-06 00:00:00.000000",
         {"account_id": "A-2", "plan": "basic", "$exception_message": "Error on basic"}, 2),
        ("$exception", "u1", "2024-03-05 00:00:00.000000",
         {"account_id": "A-1", "plan": "pro", "$exception_message": "Error on pro"}, 1),
        ("feature_used", "u1", "2024-03-05 00:00:00.000000", {"account_id": "A-1", "plan": "pro", "seconds": 2.5}, 4),
    ]


def test_jsonl_import(store: Store, tmp_path: Path):
    project_id = new_project(store)
    lines = [
        {"ts": 1714564800, "kind": "signed_up", "uid": 7, "score": "4.5", "beta": "yes", "seen": "01/05/2024"},
        {"ts": 1714564801, "kind": "paid", "uid": "u8", "score": 3, "beta": False, "seen": None},
    ]
    data = write(tmp_path, "events.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    mapping = write(tmp_path, "events.toml", """
timestamp = "ts"
timestamp_format = "unix"
user = "uid"

[properties]
score = "number"
beta = "boolean"
seen = { type = "datetime", format = "%d/%m/%Y" }

[[events]]
name_column = "kind"
""")

    report = import_file(store, project_id, data, mapping, now=NOW)

    assert report.events_by_name == {"paid": 1, "signed_up": 1}
    rows = store.query(
        "SELECT event, distinct_id, toString(timestamp), toString(uuid), properties.score, properties.beta, "
        "toString(parseDateTime64BestEffortOrNull(toString(properties.seen), 0, 'UTC')) FROM events "
        "WHERE project_id = {p:String} ORDER BY timestamp",
        {"p": project_id},
    ).rows
    assert rows == [
        ["signed_up", "7", "2024-05-01 12:00:00.000000", event_uuid("events.jsonl", 1, 0, 0), 4.5, True,
         "2024-05-01 00:00:00"],
        ["paid", "u8", "2024-05-01 12:00:01.000000", event_uuid("events.jsonl", 2, 0, 0), 3, False, None],
    ]


def test_name_template_and_lookup(store: Store, tmp_path: Path):
    project_id = new_project(store)
    write(tmp_path, "owners.csv", "sub,owner\nS-1,A-1\nS-2,A-2\n")
    data = write(tmp_path, "actions.csv", "when,sub,action\n2024-01-02T03:04:05+01:00,S-2,export\n")
    mapping = write(tmp_path, "actions.toml", """
timestamp = "when"
account = "owner"
user_template = "account:{owner}"

[lookups.owner]
file = "owners.csv"
match = "sub"

[[events]]
name_template = "{action}_clicked"
""")

    import_file(store, project_id, data, mapping, now=NOW)

    rows = store.query(
        "SELECT event, distinct_id, toString(timestamp), toString(properties) FROM events WHERE project_id = {p:String}",
        {"p": project_id},
    ).rows
    assert rows == [["export_clicked", "account:A-2", "2024-01-02 02:04:05.000000", '{"account_id":"A-2"}']]


BAD_ROWS_CSV = (
    "day,account,user,plan_tier,uses,seconds,errors\n"
    "2024-03-05,A-1,u1,pro,4,10,1\n"
    "yesterday,A-1,u1,pro,1,10,0\n"
    '2024-03-05,A-1,u1,"multi\nline",1,ten,0\n'
    "2024-03-05,A-1,u1,pro\n"
    "2024-03-05,,,pro,1,1,0\n"
    "2024-03-05,A-1,u1,pro,-1,1,0\n"
    "2024-03-05,A-1,u1,pro,2000,1,0\n"
    "2099-01-01,A-1,u1,pro,1,1,0\n"
)


def test_bad_rows_store_nothing(store: Store, tmp_path: Path):
    project_id = new_project(store)
    data = write(tmp_path, "usage.csv", BAD_ROWS_CSV)
    mapping = write(tmp_path, "usage.toml", USAGE_MAPPING)

    with pytest.raises(ImportFileError) as raised:
        import_file(store, project_id, data, mapping, now=NOW)

    assert raised.value.problems == [
        {"line": 3, "field": "timestamp",
         "message": "timestamp 'yesterday' is not an ISO 8601 date-time; send e.g. 2024-05-01T12:00:00Z"},
        {"line": 4, "field": "properties.seconds", "message": "column seconds: 'ten' is not a number"},
        {"line": 6, "field": "row", "message": "the row has 4 fields; the header has 7"},
        {"line": 7, "field": "user_template",
         "message": "user_template 'account:{account}' needs column account, which is empty in this row"},
        {"line": 8, "field": "count", "message": "column uses: '-1' is not a whole number of events (0 or more)"},
        {"line": 9, "field": "count", "message": "column uses is 2000; a row can expand to at most 1000 events"},
        {"line": 10, "field": "timestamp",
         "message": "timestamp '2099-01-01' is more than 1 day after the server time 2026-01-15T12:00:00Z; "
         "check the sender's clock, or the unit of an epoch number"},
    ]
    assert raised.value.message.startswith(f"{data} has 7 invalid rows; nothing was imported:\n  line 3, timestamp: ")
    assert events_by_name(store, project_id) == {}


def test_missing_columns_named(store: Store, tmp_path: Path):
    project_id = new_project(store)
    data = write(tmp_path, "usage.csv", "day,account,uses,errors\n2024-03-05,A-1,1,0\n")
    mapping = write(tmp_path, "usage.toml", USAGE_MAPPING)

    with pytest.raises(ImportFileError) as raised:
        import_file(store, project_id, data, mapping, now=NOW)

    assert raised.value.message == (
        f"The mapping reads columns that {data} does not have: plan_tier, seconds, user. "
        "Its columns are: day, account, uses, errors"
    )


def test_missing_lookup_key_is_a_row_error(store: Store, tmp_path: Path):
    project_id = new_project(store)
    write(tmp_path, "owners.csv", "sub,owner\nS-1,A-1\n")
    data = write(tmp_path, "actions.csv", "when,sub\n2024-01-02,S-1\n2024-01-02,S-9\n")
    mapping = write(tmp_path, "actions.toml", """
timestamp = "when"
account = "owner"
user_template = "account:{owner}"

[lookups.owner]
file = "owners.csv"
match = "sub"

[[events]]
name = "opened"
""")

    with pytest.raises(ImportFileError) as raised:
        import_file(store, project_id, data, mapping, now=NOW)

    assert raised.value.problems == [
        {"line": 3, "field": "sub", "message": "sub 'S-9' is not in owners.csv (column sub), so lookups.owner has no value"},
        {"line": 3, "field": "user_template",
         "message": "user_template 'account:{owner}' needs column owner, which is empty in this row"},
    ]
    assert events_by_name(store, project_id) == {}


def test_missing_lookup_file_named(store: Store, tmp_path: Path):
    project_id = new_project(store)
    data = write(tmp_path, "actions.csv", "when,sub\n2024-01-02,S-1\n")
    mapping = write(tmp_path, "actions.toml", """
timestamp = "when"
user_template = "account:{owner}"

[lookups.owner]
file = "owners.csv"
match = "sub"

[[events]]
name = "opened"
""")

    with pytest.raises(ImportFileError) as raised:
        import_file(store, project_id, data, mapping, now=NOW)

    assert raised.value.message == (
        f"Lookup file {tmp_path / 'owners.csv'} (lookups.owner.file) does not exist; "
        "its path is relative to the folder of the imported file"
    )


def test_invalid_jsonl_lines_listed(store: Store, tmp_path: Path):
    project_id = new_project(store)
    data = write(tmp_path, "events.jsonl", '{"ts": "2024-05-01", "uid": "u1"}\n[1, 2]\n{"ts": \n')
    mapping = write(tmp_path, "events.toml", 'timestamp = "ts"\nuser = "uid"\n[[events]]\nname = "seen"\n')

    with pytest.raises(ImportFileError) as raised:
        import_file(store, project_id, data, mapping, now=NOW)

    assert raised.value.problems == [
        {"line": 2, "field": "row", "message": "the line must be a JSON object"},
        {"line": 3, "field": "row",
         "message": "the line is not valid JSON: Expecting value at column 8"},
    ]
    assert events_by_name(store, project_id) == {}


def test_reimport_allowed_on_request(store: Store, tmp_path: Path):
    project_id = new_project(store)
    data = write(tmp_path, "usage.csv", "day,account,user,plan_tier,uses,seconds,errors\n2024-03-05,A-1,u1,pro,1,1,0\n")
    mapping = write(tmp_path, "usage.toml", USAGE_MAPPING)

    import_file(store, project_id, data, mapping, now=NOW)
    import_file(store, project_id, data, mapping, now=NOW, allow_duplicates=True)

    rows = store.query(
        "SELECT toString(uuid), count() FROM events WHERE project_id = {p:String} GROUP BY uuid", {"p": project_id}
    ).rows
    assert rows == [[event_uuid("usage.csv", 1, 0, 0), 2]]


MAPPING_ERRORS = [
    (
        "missing timestamp",
        'user = "u"\n[[events]]\nname = "x"\n',
        "timestamp: required key is missing; add it (see the mapping format in pulseboard.server.importer)",
    ),
    (
        "unknown key",
        'timestamp = "t"\nuser = "u"\ncolumns = 1\n[[events]]\nname = "x"\n',
        "columns: unknown key; remove it or correct its spelling",
    ),
    (
        "no events",
        'timestamp = "t"\nuser = "u"\n',
        "events: required key is missing; add it (see the mapping format in pulseboard.server.importer)",
    ),
    (
        "empty events",
        'timestamp = "t"\nuser = "u"\nevents = []\n',
        'events: the mapping has no [[events]] table; add one with name = "<event name>"',
    ),
    (
        "no user",
        'timestamp = "t"\n[[events]]\nname = "x"\n',
        '(top level): set user = "<column>" or user_template, e.g. user_template = "account:{account_id}"',
    ),
    (
        "two event names",
        'timestamp = "t"\nuser = "u"\n[[events]]\nname = "x"\nname_column = "kind"\n',
        "events[0]: set exactly one of name, name_column or name_template; found name, name_column",
    ),
    (
        "bad property type",
        'timestamp = "t"\nuser = "u"\n[properties]\nmrr = "integer"\n[[events]]\nname = "x"\n',
        "properties.mrr.type: Input should be 'string', 'number', 'boolean' or 'datetime'",
    ),
    (
        "misspelt property option",
        'timestamp = "t"\nuser = "u"\n[[events]]\nname = "x"\n[events.properties]\nmrr = { colum = "m" }\n',
        "events[0].properties.mrr.colum: unknown key; remove it or correct its spelling",
    ),
    (
        "format on a number",
        'timestamp = "t"\nuser = "u"\n[properties]\nmrr = { type = "number", format = "%d" }\n[[events]]\nname = "x"\n',
        "properties.mrr: format applies only to type = \"datetime\", not 'number'; remove it",
    ),
    (
        "split without count",
        'timestamp = "t"\nuser = "u"\n[[events]]\nname = "x"\n[events.properties]\nsecs = { type = "number", split = true }\n',
        "events[0]: split properties (secs) need a count column; set count or remove split",
    ),
    (
        "template with a format spec",
        'timestamp = "t"\nuser_template = "account:{account_id:>5}"\n[[events]]\nname = "x"\n',
        "(top level): template 'account:{account_id:>5}' may contain only {column} fields; found {account_id}",
    ),
    (
        "account_id set twice",
        'timestamp = "t"\nuser = "u"\naccount = "a"\n[properties]\naccount_id = "string"\n[[events]]\nname = "x"\n',
        "(top level): property account_id is already set by `account`; remove one of them",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [case[1:] for case in MAPPING_ERRORS], ids=[case[0] for case in MAPPING_ERRORS]
)
def test_mapping_errors(tmp_path: Path, text: str, message: str):
    path = write(tmp_path, "bad.toml", text)

    with pytest.raises(MappingError) as raised:
        load_mapping(path)

    assert str(raised.value) == f"Mapping file {path} is invalid:\n  {message}"


def test_mapping_not_toml(tmp_path: Path):
    path = write(tmp_path, "bad.toml", 'timestamp = "t\n')

    with pytest.raises(MappingError) as raised:
        load_mapping(path)

    assert str(raised.value) == f"Mapping file {path} is not valid TOML: Illegal character '\\n' (at line 1, column 15)"


def test_report_summary():
    report = ImportReport(
        path="/data/usage.csv",
        project_id="acme",
        rows_read=25000,
        events_stored=264632,
        events_by_name={"$exception": 14107, "feature_used": 250525},
        elapsed_s=5.71,
    )

    assert report.summary() == (
        "Imported usage.csv into project acme: 25000 rows, 264632 events in 5.7 s\n"
        "  $exception       14,107\n"
        "  feature_used    250,525"
    )

"""The `pulseboard` command line as a user runs it, and the admin API it uses while a server runs.

The CLI tests start real subprocesses on their own data folder. chDB lets one process open a
folder, so a module fixture uses the folder in two phases. First every command opens the store
itself. Then `pulseboard serve` keeps the folder open and the same commands go through its HTTP
API. The fixture records every result, so the tests below only compare, in any order. The admin API tests at the end run the app in process on the
session store.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from pulseboard.hogql import CompileContext, HogQLError, compile_query
from pulseboard.server.app import create_app
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store

COMMAND_TIMEOUT_S = 60
HEALTH_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20

EVENTS_CSV = """\
ts,user,account,action,times,amount
2025-03-01T10:00:00Z,u1,acme,login,1,
2025-03-02T11:30:00Z,u2,acme,export,2,120.5
2025-03-02T12:00:00Z,u3,globex,login,3,
"""
# Line 3 has an amount that is not a number, line 4 a negative count.
INVALID_CSV = """\
ts,user,account,action,times,amount
2025-03-01T10:00:00Z,u1,acme,login,1,
2025-03-02T11:30:00Z,u2,acme,export,2,lots
2025-03-02T12:00:00Z,u3,globex,login,-1,
"""
MAPPING_TOML = """\
timestamp = "ts"
account = "account"
user = "user"

[[events]]
name_column = "action"
count = "times"

[events.properties]
amount = { type = "number" }
"""

# 1,700 events, the first 1,000 with a 6,000-character note: more than the server's 5 MiB body
# limit for one batch of 1,000 events, so the CLI splits that batch into two requests.
LARGE_CSV = "ts,user,account,action,times,note\n" + "\n".join([
    f"2025-03-04T09:00:00Z,u7,initech,sync,1000,{'n' * 6000}",
    "2025-03-04T10:00:00Z,u8,initech,sync,700,",
]) + "\n"
LARGE_MAPPING_TOML = """\
timestamp = "ts"
account = "account"
user = "user"

[properties]
note = "string"

[[events]]
name_column = "action"
count = "times"
"""

QUERY = (
    "SELECT event, properties.account_id AS account, count() AS n, sum(properties.amount) AS amount "
    "FROM events GROUP BY event, account ORDER BY event, account"
)
QUERY_LINES = [
    "event   account  n  amount",
    "------  -------  -  ------",
    "export  acme     2     241",
    "login   acme     1",
    "login   globex   3",
]
IMPORT_COUNT_LINES = ["  export          2", "  login           4"]
COUNT_QUERY = "SELECT count() AS n FROM events"
BAD_QUERY = "SELECT nope( FROM events"

KEY = r"pbi_[A-Za-z0-9_-]{43}"
CREATED_AT = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
MISSING_NOPE = "pulseboard: Project 'nope' does not exist; create it with `pulseboard project create nope`.\n"


# Running the CLI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSEBOARD_")}
    env["PULSEBOARD_LOG_LEVEL"] = "WARNING"
    env.update(variables)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulseboard.server.cli", *args],
        capture_output=True, text=True, env=env or child_env(), timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )


def run_all(commands: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent commands at once; only those that go through the server may share a folder."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(command) for name, command in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@dataclass
class Files:
    events: Path
    invalid: Path
    mapping: Path
    large: Path
    large_mapping: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("input")
    written = Files(
        folder / "events.csv", folder / "invalid.csv", folder / "mapping.toml", folder / "large.csv", folder / "large.toml"
    )
    written.events.write_text(EVENTS_CSV)
    written.invalid.write_text(INVALID_CSV)
    written.mapping.write_text(MAPPING_TOML)
    written.large.write_text(LARGE_CSV)
    written.large_mapping.write_text(LARGE_MAPPING_TOML)
    return written


def hogql_message(text: str) -> str:
    """Return the compiler's own message for an invalid query."""
    with pytest.raises(HogQLError) as raised:
        compile_query(text, CompileContext(project_id="acme"))
    return str(raised.value)


def bad_inputs(files: Files) -> dict[str, tuple[list[str], str]]:
    """Map each case that reaches the store to its CLI arguments and the exact stderr, with or without a server."""
    invalid_rows = (
        f"pulseboard: {files.invalid} has 2 invalid rows; nothing was imported:\n"
        "  line 3, properties.amount: column amount: 'lots' is not a number\n"
        "  line 4, count: column times: '-1' is not a whole number of events (0 or more)\n"
    )
    reimport = (
        "pulseboard: events.csv was already imported into project acme (event {uuid} is stored); importing it "
        "again would store its events twice. Add --allow-duplicates to import anyway.\n"
    )
    importing = ["import", str(files.events), "--mapping", str(files.mapping)]
    return {
        "unknown project query": (["query", "SELECT 1", "--project", "nope"], MISSING_NOPE),
        "unknown project import": ([*importing, "--project", "nope"], MISSING_NOPE),
        "existing project": (["project", "create", "acme"], "pulseboard: Project 'acme' already exists; choose another id.\n"),
        "bad hogql": (["query", BAD_QUERY, "--project", "acme"], f"pulseboard: {hogql_message(BAD_QUERY)}\n"),
        "invalid rows": (["import", str(files.invalid), "--mapping", str(files.mapping), "--project", "acme"], invalid_rows),
        "second import": ([*importing, "--project", "acme"], reimport),
    }


# These fail before the CLI looks for a server, so they run once.
ARGUMENT_ERRORS = {
    "invalid project id": (
        ["project", "create", "Bad Id"],
        "pulseboard: 'Bad Id' is not a valid project id; use 1-63 lowercase letters, digits, '_' or '-'.\n",
    ),
    "invalid timezone": (
        ["project", "create", "berlin", "--timezone", "Mars/Olympus"],
        "pulseboard: 'Mars/Olympus' is not an IANA time zone; use a name such as UTC or Europe/Berlin.\n",
    ),
    "param without value": (
        ["publish", "--recipe", "account_health_score", "--param", "w_revenue", "--project", "acme"],
        "pulseboard: --param 'w_revenue' is not NAME=VALUE; e.g. --param w_revenue=50.\n",
    ),
}


def first_event_uuid() -> str:
    """Return the uuid the importer gives the first event of events.csv."""
    from pulseboard.server.importer import event_uuid

    return event_uuid("events.csv", 1, 0, 0)


# The two phases


@dataclass
class Phases:
    data_dir: Path
    port: int
    local: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    served: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    after_stop: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    publications: dict[str, httpx2.Response] = field(default_factory=dict)
    server_exit: int | None = None
    server_stdout: str = ""
    server_stderr: str = ""
    api_token: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def phases(tmp_path_factory: pytest.TempPathFactory, files: Files) -> Phases:
    root = tmp_path_factory.mktemp("cli")
    recorded = Phases(root / "data", free_port())
    run_local_phase(recorded, files)
    run_server_phase(recorded, files, root)
    recorded.after_stop["count acme"] = run_cli("query", COUNT_QUERY, "--project", "acme", "--data-dir", str(recorded.data_dir))
    return recorded


def run_local_phase(recorded: Phases, files: Files) -> None:
    """Run every command with no server, one after another, since each opens the store."""
    folder = ["--data-dir", str(recorded.data_dir)]
    local = recorded.local
    local["create"] = run_cli("project", "create", "acme", *folder)
    local["import"] = run_cli("import", str(files.events), "--mapping", str(files.mapping), "--project", "acme", *folder)
    local["query"] = run_cli("query", QUERY, "--project", "acme", *folder)
    local["list"] = run_cli("project", "list", *folder)
    # --port makes the link point at the server started in the next phase.
    local["publish"] = run_cli("publish", "--hogql", COUNT_QUERY, "--project", "acme", "--port", str(recorded.port), *folder)
    local["recipe param"] = run_cli(
        "publish", "--recipe", "account_health_score", "--param", "w_nope=1", "--project", "acme", *folder
    )
    for name, (args, _) in bad_inputs(files).items():
        local[name] = run_cli(*args, *folder)
    local.update(run_all({name: lambda args=args: run_cli(*args, *folder) for name, (args, _) in ARGUMENT_ERRORS.items()}))


def run_server_phase(recorded: Phases, files: Files, root: Path) -> None:
    """Start `pulseboard serve` on the folder, run the commands through it, and stop it."""
    folder = ["--data-dir", str(recorded.data_dir)]
    stdout_path = root / "serve.out"
    stderr_path = root / "serve.err"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "pulseboard.server.cli", "serve", "--port", str(recorded.port), *folder],
            stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=child_env(PULSEBOARD_LOG_LEVEL="INFO"),
        )
    try:
        wait_for_health(server, recorded.base, stderr_path)
        recorded.api_token = (recorded.data_dir / "api_token").read_text().strip()
        run_through_server(recorded, files, folder)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            recorded.server_exit = server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    recorded.server_stdout = stdout_path.read_text()
    recorded.server_stderr = stderr_path.read_text()


def wait_for_health(server: subprocess.Popen[bytes], base: str, stderr_path: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"pulseboard serve exited with {server.returncode}:\n{stderr_path.read_text()}")
        try:
            if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"pulseboard serve did not answer /health in {HEALTH_TIMEOUT_S} s:\n{stderr_path.read_text()}")


def run_through_server(recorded: Phases, files: Files, folder: list[str]) -> None:
    served = recorded.served
    local_url = lines(recorded.local["publish"])[0] if recorded.local["publish"].returncode == 0 else ""
    cli: dict[str, Callable[[], Any]] = {
        "query": lambda: run_cli("query", QUERY, "--project", "acme", *folder),
        "list": lambda: run_cli("project", "list", *folder),
        "publish": lambda: run_cli("publish", "--hogql", COUNT_QUERY, "--project", "acme", *folder),
        "recipe param": lambda: run_cli(
            "publish", "--recipe", "account_health_score", "--param", "w_nope=1", "--project", "acme", *folder
        ),
        "mcp": lambda: run_cli("mcp", *folder),
        "wrong token": lambda: run_cli("project", "list", *folder, env=child_env(PULSEBOARD_API_TOKEN="pbt_wrong")),
        "local publication": lambda: httpx2.get(local_url + "&format=json", timeout=10),
    }
    for name, (args, _) in bad_inputs(files).items():
        cli[name] = lambda args=args: run_cli(*args, *folder)
    results = run_all(cli)
    recorded.publications["local"] = results.pop("local publication")
    served.update(results)

    # These depend on each other, so they run in order.
    served["create"] = run_cli("project", "create", "globex", "--timezone", "Europe/Berlin", *folder)
    served["import"] = run_cli(
        "import", str(files.events), "--mapping", str(files.mapping), "--project", "globex", *folder
    )
    served["query globex"] = run_cli("query", QUERY, "--project", "globex", *folder)
    served["import large"] = run_cli(
        "import", str(files.large), "--mapping", str(files.large_mapping), "--project", "globex", *folder
    )
    served["count globex"] = run_cli("query", COUNT_QUERY, "--project", "globex", *folder)
    served["list after create"] = run_cli("project", "list", "--format", "json", *folder)
    if served["publish"].returncode == 0:
        recorded.publications["served"] = httpx2.get(lines(served["publish"])[0] + "&format=json", timeout=10)


# Without a server


def test_local_project_create(phases: Phases):
    result = phases.local["create"]
    assert result.returncode == 0, describe(result)
    assert lines(result)[0] == "Created project acme."
    assert re.fullmatch(rf"Ingestion key \(shown only now; store it safely\): {KEY}", lines(result)[1])
    assert len(lines(result)) == 2
    assert result.stderr == ""


def test_local_import_counts(phases: Phases, files: Files):
    result = phases.local["import"]
    assert result.returncode == 0, describe(result)
    assert re.fullmatch(r"Imported events\.csv into project acme: 3 rows, 6 events in \d+\.\d s", lines(result)[0])
    assert lines(result)[1:] == IMPORT_COUNT_LINES
    assert result.stderr == ""


def test_local_query_table(phases: Phases):
    result = phases.local["query"]
    assert result.returncode == 0, describe(result)
    assert lines(result) == QUERY_LINES
    assert result.stderr == ""


def test_local_project_list(phases: Phases):
    result = phases.local["list"]
    assert result.returncode == 0, describe(result)
    assert lines(result)[:2] == [
        "project_id  name  timezone  created_at",
        "----------  ----  --------  ---------------------------",
    ]
    assert re.fullmatch(rf"acme        acme  UTC       {CREATED_AT}", lines(result)[2])
    assert len(lines(result)) == 3


def test_local_publish_url_serves_rows(phases: Phases):
    result = phases.local["publish"]
    assert result.returncode == 0, describe(result)
    assert re.fullmatch(rf"{re.escape(phases.base)}/q/pub_[0-9a-f]{{16}}\?key=[A-Za-z0-9_-]{{43}}", result.stdout.strip())
    page = phases.publications["local"]
    assert page.status_code == 200
    assert page.json()["rows"] == [[6]]


# Through a running server


def test_served_query_matches_local(phases: Phases):
    result = phases.served["query"]
    assert result.returncode == 0, describe(result)
    assert result.stdout == phases.local["query"].stdout
    assert result.stderr == ""


def test_served_project_list_matches_local(phases: Phases):
    result = phases.served["list"]
    assert result.returncode == 0, describe(result)
    assert result.stdout == phases.local["list"].stdout


def test_served_project_create(phases: Phases):
    result = phases.served["create"]
    assert result.returncode == 0, describe(result)
    assert lines(result)[0] == "Created project globex."
    assert re.fullmatch(rf"Ingestion key \(shown only now; store it safely\): {KEY}", lines(result)[1])
    listed = json.loads(phases.served["list after create"].stdout)
    assert [(p["project_id"], p["name"], p["timezone"]) for p in listed] == [
        ("acme", "acme", "UTC"), ("globex", "globex", "Europe/Berlin"),
    ]


def test_served_import_and_query(phases: Phases):
    imported = phases.served["import"]
    assert imported.returncode == 0, describe(imported)
    assert re.fullmatch(r"Imported events\.csv into project globex: 3 rows, 6 events in \d+\.\d s", lines(imported)[0])
    assert lines(imported)[1:] == IMPORT_COUNT_LINES
    queried = phases.served["query globex"]
    assert queried.returncode == 0, describe(queried)
    assert lines(queried) == QUERY_LINES


def test_served_import_splits_large_batch(phases: Phases):
    imported = phases.served["import large"]
    assert imported.returncode == 0, describe(imported)
    assert re.fullmatch(r"Imported large\.csv into project globex: 2 rows, 1700 events in \d+\.\d s", lines(imported)[0])
    assert lines(imported)[1:] == ["  sync      1,700"]
    assert lines(phases.served["count globex"]) == ["    n", "-----", "1,706"]

    requests = re.findall(r"ingest analytics project=globex events=(\d+) status=200", phases.server_stderr)
    sizes = [int(size) for size in requests]
    assert sizes[0] == 6
    assert sizes[-1] == 700
    assert len(sizes) == 4
    assert sizes[1] + sizes[2] == 1000
    assert sizes[1] > 0
    assert sizes[2] > 0


def test_served_publish_url_serves_rows(phases: Phases):
    result = phases.served["publish"]
    assert result.returncode == 0, describe(result)
    assert re.fullmatch(rf"{re.escape(phases.base)}/q/pub_[0-9a-f]{{16}}\?key=[A-Za-z0-9_-]{{43}}", result.stdout.strip())
    page = phases.publications["served"]
    assert page.status_code == 200
    assert page.json()["rows"] == [[6]]


def test_mcp_beside_server_fails(phases: Phases):
    result = phases.served["mcp"]
    assert result.returncode == 2, describe(result)
    assert str(phases.data_dir / "clickhouse") in result.stderr
    assert f"Connect MCP clients to the running server instead: {phases.base}/mcp" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_api_token_rejected(phases: Phases):
    result = phases.served["wrong token"]
    assert result.returncode == 2, describe(result)
    assert result.stderr == (
        f"pulseboard: The server at {phases.base} rejected the API token (Invalid API token). Give the CLI the "
        "token the server uses: PULSEBOARD_API_TOKEN, or the api_token file in the server's data folder.\n"
    )
    assert result.stdout == ""


def test_server_log_has_no_secrets(phases: Phases):
    log = phases.server_stderr
    keys = [lines(phases.local["create"])[1].rsplit(" ", 1)[1], lines(phases.served["create"])[1].rsplit(" ", 1)[1]]
    publication_keys = [lines(phases.local["publish"])[0].split("key=")[1], lines(phases.served["publish"])[0].split("key=")[1]]
    for secret in [phases.api_token, *keys, *publication_keys]:
        assert secret not in log
        assert secret not in phases.server_stdout
    assert "Traceback" not in log


def test_server_logs_start_stop_errors(phases: Phases):
    log = phases.server_stderr
    assert phases.server_exit == 0
    assert f"pulseboard web app started; public URL {phases.base}" in log
    assert "pulseboard web app stopped" in log
    assert "pulseboard serve stopped and closed the store" in log
    assert "admin POST /v1/projects rejected with 409: Project 'acme' already exists; choose another id." in log
    assert f"tool analytics_query rejected the request: {hogql_message(BAD_QUERY)}" in log
    assert "admin GET /v1/projects rejected with 401: Invalid API token" in log


# Bad input, both ways


@pytest.mark.parametrize(
    "case", ["unknown project query", "unknown project import", "existing project", "bad hogql", "invalid rows", "second import"]
)
@pytest.mark.parametrize("mode", ["local", "served"])
def test_bad_input(phases: Phases, files: Files, mode: str, case: str):
    _, expected = bad_inputs(files)[case]
    result = getattr(phases, mode)[case]
    assert result.returncode == 2, describe(result)
    assert result.stderr == expected.replace("{uuid}", first_event_uuid())
    assert result.stdout == ""


@pytest.mark.parametrize("case", list(ARGUMENT_ERRORS))
def test_bad_argument(phases: Phases, case: str):
    result = phases.local[case]
    assert result.returncode == 2, describe(result)
    assert result.stderr == ARGUMENT_ERRORS[case][1]
    assert result.stdout == ""


def test_unknown_recipe_param_same_both_ways(phases: Phases):
    local = phases.local["recipe param"]
    served = phases.served["recipe param"]
    assert local.returncode == 2, describe(local)
    assert served.returncode == 2, describe(served)
    assert "w_nope" in local.stderr
    assert served.stderr == local.stderr
    assert "Traceback" not in local.stderr


def test_store_reopens_after_stop(phases: Phases):
    # The query opens the store itself once the server is gone. Both imports of invalid.csv and the
    # second import of events.csv were rejected, so acme holds only the six events of the first.
    result = phases.after_stop["count acme"]
    assert result.returncode == 0, describe(result)
    assert lines(result) == ["n", "-", "6"]


# Help


HELP_CASES = {
    (): ["usage: pulseboard", "go through the HTTP API of a running `pulseboard serve`"],
    ("serve",): ["--port PORT TCP port (PULSEBOARD_PORT); default 8787.", "--create-project"],
    ("mcp",): ["usage: pulseboard mcp", "--data-dir DATA_DIR"],
    ("project",): ["usage: pulseboard project", "create", "list"],
    ("project", "create"): ["IANA time zone", "default UTC"],
    ("project", "list"): ["--format {table,json,csv}"],
    ("query",): ["usage: pulseboard query", "HogQL SELECT over the events table."],
    ("import",): ["--mapping MAPPING", "--allow-duplicates"],
    ("publish",): ["--cache-ttl CACHE_TTL Seconds a computed result is reused", "--param PARAM"],
    ("demo",): ["--extra-accounts EXTRA_ACCOUNTS", "--port PORT TCP port"],
}


@pytest.fixture(scope="module")
def help_texts() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    return run_all({command: lambda command=command: run_cli(*command, "--help") for command in HELP_CASES})


@pytest.mark.parametrize("command", list(HELP_CASES), ids=lambda command: " ".join(command) or "pulseboard")
def test_help_exits_zero(help_texts: dict[tuple[str, ...], subprocess.CompletedProcess[str]], command: tuple[str, ...]):
    result = help_texts[command]
    assert result.returncode == 0, describe(result)
    text = " ".join(result.stdout.split())
    for expected in HELP_CASES[command]:
        assert expected in text


# Admin API, in process


TOKEN = "pbt_" + "t" * 43


@pytest.fixture
def admin(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    runtime = Runtime(Settings(data_dir=tmp_path, clickhouse_url=store.url), store)
    with TestClient(create_app(runtime, api_token=TOKEN), base_url="http://127.0.0.1") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_id() -> str:
    return "ta" + uuid.uuid4().hex[:12]


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


MISSING_TOKEN = error_body("missing_token", "Missing API token; send the header Authorization: Bearer <API token>")
INVALID_TOKEN = error_body("invalid_token", "Invalid API token")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, MISSING_TOKEN),
        ({"Authorization": "Bearer "}, MISSING_TOKEN),
        ({"Authorization": f"Basic {TOKEN}"}, MISSING_TOKEN),
        (bearer("wrong"), INVALID_TOKEN),
        (bearer(TOKEN + "x"), INVALID_TOKEN),
    ],
)
@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/projects"), ("POST", "/v1/projects"), ("GET", "/v1/projects/x")])
def test_admin_requires_token(admin: TestClient, headers: dict[str, str], expected: dict[str, Any], method: str, path: str):
    response = admin.request(method, path, headers=headers, json={"project_id": new_id()})
    assert response.status_code == 401
    assert response.json() == expected
    assert response.headers["www-authenticate"] == "Bearer"


def test_admin_rejects_ingestion_key(admin: TestClient, project):
    _, key = project
    response = admin.get("/v1/projects", headers=bearer(key))
    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN


def test_admin_create_then_get(admin: TestClient):
    project_id = new_id()
    created = admin.post(
        "/v1/projects", headers=bearer(TOKEN), json={"project_id": project_id, "name": "Acme", "timezone": "Asia/Tokyo"}
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"project", "ingestion_key"}
    assert re.fullmatch(KEY, body["ingestion_key"])
    assert {name: value for name, value in body["project"].items() if name != "created_at"} == {
        "project_id": project_id, "name": "Acme", "timezone": "Asia/Tokyo",
    }
    assert re.fullmatch(CREATED_AT, body["project"]["created_at"])

    fetched = admin.get(f"/v1/projects/{project_id}", headers=bearer(TOKEN))
    assert fetched.status_code == 200
    assert fetched.json() == {"project": body["project"]}
    listed = admin.get("/v1/projects", headers=bearer(TOKEN)).json()["projects"]
    assert body["project"] in listed
    assert [p["project_id"] for p in listed] == sorted(p["project_id"] for p in listed)

    ingested = admin.post(
        f"/v1/analytics/{project_id}/", headers=bearer(body["ingestion_key"]), json={"event": "e", "distinct_id": "u"}
    )
    assert ingested.json() == {"status": "ok", "stored": 1}


def test_admin_create_defaults(admin: TestClient):
    project_id = new_id()
    created = admin.post("/v1/projects", headers=bearer(TOKEN), json={"project_id": project_id})
    assert created.status_code == 201
    assert created.json()["project"]["name"] == project_id
    assert created.json()["project"]["timezone"] == "UTC"


def test_admin_create_existing(admin: TestClient):
    project_id = new_id()
    first = admin.post("/v1/projects", headers=bearer(TOKEN), json={"project_id": project_id})
    second = admin.post("/v1/projects", headers=bearer(TOKEN), json={"project_id": project_id})
    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json() == error_body("project_exists", f"Project {project_id!r} already exists; choose another id.")


BAD_ID = "'Acme Corp' is not a valid project id; use 1-63 lowercase letters, digits, '_' or '-'."
BAD_ZONE = "'Mars/Olympus' is not an IANA time zone; use a name such as UTC or Europe/Berlin."


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"project_id": "Acme Corp"}, 422, error_body("invalid_project", BAD_ID)),
        ({"project_id": "x" * 64}, 422, error_body("invalid_project", BAD_ID.replace("Acme Corp", "x" * 64))),
        ({"project_id": "ok", "timezone": "Mars/Olympus"}, 422, error_body("invalid_project", BAD_ZONE)),
        ({"project_id": "ok", "timezone": "../etc/passwd"}, 422, error_body(
            "invalid_project", BAD_ZONE.replace("Mars/Olympus", "../etc/passwd"))),
        ({"project_id": "Acme Corp", "timezone": "Mars/Olympus"}, 422, error_body("invalid_project", f"{BAD_ID} {BAD_ZONE}")),
        ({}, 422, error_body(
            "invalid_body", "Invalid request body: project_id: Field required",
            [{"field": "project_id", "message": "Field required"}])),
        ({"project_id": "ok", "owner": "me"}, 422, error_body(
            "invalid_body", "Invalid request body: owner: Extra inputs are not permitted",
            [{"field": "owner", "message": "Extra inputs are not permitted"}])),
        ({"project_id": 7}, 422, error_body(
            "invalid_body", "Invalid request body: project_id: Input should be a valid string",
            [{"field": "project_id", "message": "Input should be a valid string"}])),
        (["ok"], 422, error_body(
            "invalid_body", "Invalid request body: (body): Input should be a valid dictionary or instance of NewProject",
            [{"field": "(body)", "message": "Input should be a valid dictionary or instance of NewProject"}])),
    ],
)
def test_admin_create_invalid(admin: TestClient, body: Any, status: int, expected: dict[str, Any]):
    response = admin.post("/v1/projects", headers=bearer(TOKEN), json=body)
    assert response.status_code == status
    assert response.json() == expected


def test_admin_create_not_json(admin: TestClient):
    response = admin.post("/v1/projects", headers=bearer(TOKEN), content=b"{nope")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert response.json()["error"]["message"].startswith("Body is not valid UTF-8 JSON: Expecting property name")


def test_admin_unknown_project(admin: TestClient):
    response = admin.get("/v1/projects/nope", headers=bearer(TOKEN))
    assert response.status_code == 404
    assert response.json() == error_body(
        "unknown_project", "Project 'nope' does not exist; create it with `pulseboard project create nope`."
    )


def test_ingest_with_api_token(admin: TestClient, store: Store, project):
    created, _ = project
    event_id = str(uuid.uuid4())
    other_id = str(uuid.uuid4())
    stored = admin.post(
        f"/v1/analytics/{created.project_id}/", headers=bearer(TOKEN),
        json={"batch": [{"event": "e", "distinct_id": "u", "uuid": event_id}]},
    )
    assert stored.status_code == 200
    assert stored.json() == {"status": "ok", "stored": 1}
    counted = store.query("SELECT count() FROM events WHERE project_id = {p:String}", {"p": created.project_id}).rows
    assert counted == [[1]]

    lookup = admin.post(
        f"/v1/projects/{created.project_id}/events/lookup", headers=bearer(TOKEN), json={"uuids": [other_id, event_id]}
    )
    assert lookup.status_code == 200
    assert lookup.json() == {"stored": [event_id]}


@pytest.mark.parametrize(("project_id", "logged"), [("nope", "nope"), ("Not Valid", "(invalid)")])
def test_ingest_api_token_unknown_project(admin: TestClient, caplog: pytest.LogCaptureFixture, project_id: str, logged: str):
    caplog.set_level(logging.INFO)
    response = admin.post(f"/v1/analytics/{project_id}/", headers=bearer(TOKEN), json={"event": "e", "distinct_id": "u"})
    assert response.status_code == 404
    assert response.json() == error_body(
        "unknown_project", f"Project '{project_id}' does not exist; create it with POST /v1/projects"
    )
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        re.fullmatch(rf"ingest analytics project={re.escape(logged)} events=0 status=404 ms=[\d.]+ error=unknown_project", m)
        for m in messages
    ), messages
    assert not [message for message in messages if TOKEN in message]


def test_admin_log_has_no_token(admin: TestClient, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    created = admin.post("/v1/projects", headers=bearer(TOKEN), json={"project_id": new_id()})
    rejected = admin.get("/v1/projects", headers=bearer(TOKEN + "x"))
    assert created.status_code == 201
    assert rejected.status_code == 401
    messages = [record.getMessage() for record in caplog.records]
    assert "admin GET /v1/projects rejected with 401: Invalid API token" in messages
    for secret in (TOKEN, created.json()["ingestion_key"]):
        assert not [message for message in messages if secret in message]


def test_event_lookup_limits(admin: TestClient, project):
    created, _ = project
    path = f"/v1/projects/{created.project_id}/events/lookup"
    empty = admin.post(path, headers=bearer(TOKEN), json={"uuids": []})
    too_many = admin.post(path, headers=bearer(TOKEN), json={"uuids": ["x"] * 1001})
    assert empty.status_code == 422
    assert empty.json()["error"]["details"] == [{"field": "uuids", "message": "List should have at least 1 item after validation, not 0"}]
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "invalid_body"


def test_empty_api_token_matches_nothing(store: Store, tmp_path: Path, project):
    created, _ = project
    runtime = Runtime(Settings(data_dir=tmp_path, clickhouse_url=store.url), store)
    with TestClient(create_app(runtime, api_token=""), base_url="http://127.0.0.1") as client:
        listed = client.get("/v1/projects", headers=bearer("anything"))
        ingested = client.post(
            f"/v1/analytics/{created.project_id}/", headers=bearer("anything"), json={"event": "e", "distinct_id": "u"}
        )
    assert listed.status_code == 401
    assert listed.json() == INVALID_TOKEN
    assert ingested.status_code == 401
    assert ingested.json()["error"]["code"] == "invalid_key"


def test_serve_busy_port_fails_early(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--data-dir", str(tmp_path / "data"), "--port", str(port))
    assert result.returncode == 2
    assert "pulseboard serving" not in result.stderr
    assert f"pulseboard: Cannot listen on 127.0.0.1:{port}: Address already in use." in result.stderr
    assert "--port N or PULSEBOARD_PORT" in result.stderr


def test_query_empty_result_says_so(tmp_path: Path):
    data = str(tmp_path / "data")
    assert run_cli("project", "create", "empty", "--data-dir", data).returncode == 0
    result = run_cli("query", "SELECT event, count() AS n FROM events GROUP BY event", "--project", "empty",
                     "--data-dir", data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["event  n", "-----  -", "(0 rows)"]
    assert result.stderr == ""

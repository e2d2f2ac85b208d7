"""The demo as a user runs it: a real server process on 127.0.0.1, MCP over HTTP and stdio."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

EXAMPLE_QUERY = (
    "WITH usage AS (SELECT properties.account_id AS aid, count() AS cnt_30d, countIf(timestamp >= now() - "
    "INTERVAL 14 DAY) - countIf(timestamp < now() - INTERVAL 14 DAY AND timestamp >= now() - INTERVAL 28 DAY) "
    "AS trend FROM events WHERE timestamp >= now() - INTERVAL 30 DAY AND event != '$exception' GROUP BY aid), "
    "friction AS (SELECT properties.account_id AS aid, count() AS errors_30d FROM events WHERE event = "
    "'$exception' AND timestamp >= now() - INTERVAL 30 DAY GROUP BY aid), revenue AS (SELECT "
    "properties.account_id AS aid, argMax(properties.mrr, timestamp) AS mrr, argMax(properties.plan, timestamp) "
    "AS plan FROM events WHERE event IN ('plan_changed','seat_count_set','subscription_started') GROUP BY aid), "
    "maxes AS (SELECT max(cnt_30d) AS max_usage, max(errors_30d) AS max_friction FROM usage, friction) SELECT "
    "r.aid AS account, r.plan AS plan, r.mrr AS mrr, COALESCE(u.cnt_30d, 0) AS events_30d, COALESCE(u.trend, 0) "
    "AS trend, COALESCE(f.errors_30d, 0) AS errors_30d, round( 40 * COALESCE(u.cnt_30d, 0) / m.max_usage + 30 * "
    "least(greatest(COALESCE(u.trend, 0) / 1000 * 30, -30), 30) + 30 * (1 - COALESCE(f.errors_30d, 0) / "
    "nullIf(m.max_friction, 0)), 1 ) AS health_score FROM revenue r LEFT JOIN usage u ON r.aid = u.aid LEFT JOIN "
    "friction f ON r.aid = f.aid CROSS JOIN maxes m WHERE r.mrr > 0 ORDER BY health_score ASC LIMIT 30"
)

REFERENCE = json.loads((SHARED_DATA / "reference_accounts.json").read_text())["accounts"]
EXPECTED = {
    row["account"]: {"events_30d": row["events_30d"], "trend": row["trend"], "errors_30d": row["errors_30d"],
                     "mrr": row["mrr"], "plan": row["plan"]}
    for row in REFERENCE
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pulseboard_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pulseboard.server.cli", *args]


def child_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSEBOARD_")}
    env["PULSEBOARD_LOG_LEVEL"] = "WARNING"
    return env


class DemoServer:
    def __init__(self, data_dir: Path, port: int, process: subprocess.Popen, output: list[str]) -> None:
        self.data_dir = data_dir
        self.base = f"http://127.0.0.1:{port}"
        self.process = process
        self.output = output

    @property
    def token(self) -> str:
        return (self.data_dir / "api_token").read_text().strip()

    @property
    def public_url(self) -> str:
        for line in self.output:
            match = re.search(r"Public dashboard: (\S+)", line)
            if match:
                return match.group(1)
        raise AssertionError("the demo printed no public URL:\n" + "".join(self.output))


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    port = free_port()
    process = subprocess.Popen(
        pulseboard_command("demo", "--extra-accounts", "0", "--data-dir", str(data_dir), "--port", str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env(),
    )
    output: list[str] = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "Press Ctrl+C" in line:
            break
    server = DemoServer(data_dir, port, process, output)
    try:
        for _ in range(100):
            try:
                if httpx2.get(f"{server.base}/health", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the demo server did not answer /health:\n" + "".join(output))
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rows_by_account(columns: list[str], rows: list[list]) -> dict[str, dict]:
    return {row[columns.index("account")]: dict(zip(columns, row)) for row in rows}


def test_demo_prints_table_and_url(demo_server: DemoServer):
    text = "".join(demo_server.output)
    assert "account_health_score" in text
    for account in EXPECTED:
        assert account in text
    assert demo_server.public_url.startswith(f"{demo_server.base}/q/pub_")


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_example_query_over_http(demo_server: DemoServer, mode: str):
    headers = {"Authorization": f"Bearer {demo_server.token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with Client(streamable_http_client(f"{demo_server.base}/mcp", http_client=http), mode=mode) as client:
            result = await client.call_tool("analytics_query", {"hogql": EXAMPLE_QUERY})
    assert result.is_error is False, result.content
    content = result.structured_content
    columns = [column["name"] for column in content["columns"]]
    found = rows_by_account(columns, content["rows"])
    assert set(found) == set(EXPECTED)
    for account, expected in EXPECTED.items():
        row = found[account]
        assert row["events_30d"] == expected["events_30d"], account
        assert row["trend"] == expected["trend"], account
        assert row["errors_30d"] == expected["errors_30d"], account
        assert row["mrr"] == expected["mrr"], account
        assert row["plan"] == expected["plan"], account


@pytest.mark.anyio
async def test_published_recipe_matches_run_recipe(demo_server: DemoServer):
    headers = {"Authorization": f"Bearer {demo_server.token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with Client(streamable_http_client(f"{demo_server.base}/mcp", http_client=http)) as client:
            ran = await client.call_tool("run_recipe", {"recipe_id": "account_health_score"})
            published = await client.call_tool(
                "publish_query", {"recipe_id": "account_health_score", "description": "Health of every account"}
            )
    assert ran.is_error is False, ran.content
    assert published.is_error is False, published.content
    url = published.structured_content["public_url"]
    expected_rows = ran.structured_content["rows"]
    columns = [column["name"] for column in ran.structured_content["columns"]]

    async with httpx2.AsyncClient(timeout=60) as http:
        as_json = await http.get(url, headers={"Accept": "application/json"})
        as_csv = await http.get(url + "&format=csv")
        as_html = await http.get(url)
        wrong_key = await http.get(re.sub(r"key=[^&]+", "key=wrong", url) + "&format=json")
        no_key = await http.get(url.split("?")[0] + "?format=json")
        no_key_page = await http.get(url.split("?")[0])

    assert as_json.status_code == 200
    assert as_json.json()["rows"] == expected_rows
    assert as_json.json()["computed_at"]
    assert as_json.headers["access-control-allow-origin"] == "*"

    reader = list(csv.reader(io.StringIO(as_csv.text)))
    assert reader[0] == columns
    assert len(reader) - 1 == len(expected_rows)
    assert [row[0] for row in reader[1:]] == [str(row[0]) for row in expected_rows]

    assert as_html.status_code == 200
    assert as_html.headers["content-type"].startswith("text/html")
    for row in expected_rows:
        assert str(row[0]) in as_html.text

    assert wrong_key.status_code == 404
    assert no_key.status_code == 404
    assert wrong_key.text == no_key.text
    assert no_key_page.status_code == 404
    assert "Publication not found" in no_key_page.text


def test_second_process_fails_with_guidance(demo_server: DemoServer):
    result = subprocess.run(
        pulseboard_command("mcp", "--data-dir", str(demo_server.data_dir)),
        capture_output=True, text=True, env=child_env(), timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert str(demo_server.data_dir / "clickhouse") in result.stderr
    assert f"{demo_server.base}/mcp" in result.stderr


@pytest.mark.anyio
async def test_example_query_over_stdio(tmp_path: Path):
    data_dir = tmp_path / "data"
    subprocess.run(
        pulseboard_command("demo", "--extra-accounts", "0", "--data-dir", str(data_dir), "--no-serve"),
        check=True, capture_output=True, env=child_env(), timeout=180,
    )
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "pulseboard.server.cli", "mcp"],
        env={"PULSEBOARD_DATA_DIR": str(data_dir), "PULSEBOARD_LOG_LEVEL": "WARNING"},
    )
    async with Client(params) as client:
        result = await client.call_tool("analytics_query", {"hogql": EXAMPLE_QUERY})
        tools = {tool.name for tool in (await client.list_tools()).tools}
        recipe = await client.call_tool("get_recipe", {"recipe_id": "account_health_score"})
        resource = await client.read_resource("recipe://account_health_score")
        schema = await client.call_tool("describe_schema", {})
    assert result.is_error is False, result.content
    assert {
        "describe_schema", "analytics_query", "list_recipes", "get_recipe", "run_recipe", "publish_query",
        "list_publications", "revoke_publication", "rotate_publication_key",
    } <= tools
    assert json.loads(resource.contents[0].text) == recipe.structured_content
    assert schema.structured_content["project_id"] == "default"
    assert sorted(entry["event"] for entry in schema.structured_content["events"])[:2] == ["$exception", "$pageview"]
    columns = [column["name"] for column in result.structured_content["columns"]]
    found = rows_by_account(columns, result.structured_content["rows"])
    assert {account: row["events_30d"] for account, row in found.items()} == {
        account: expected["events_30d"] for account, expected in EXPECTED.items()
    }

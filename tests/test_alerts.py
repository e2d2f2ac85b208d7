"""Score drop alerts against a webhook receiver on 127.0.0.1, in process and through the CLI."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulseboard.server.alerts import Drop, WebhookError, build_message, post_webhook

CLI_TIMEOUT_S = 120
DROPS = [
    Drop("acme", 80.0, 60.0, 20.0, "ok", "errors: 12 in 30 days, 3x the median"),
    Drop("beta", 70.0, 52.5, 17.5, "warn", "usage down 40% (-120 events)"),
]
TABLE = """\
account  score_before  score_now  score_drop  status  top_risk_signal
-------  ------------  ---------  ----------  ------  ------------------------------------
acme               80       60.0        20.0  ok      errors: 12 in 30 days, 3x the median
beta               70       52.5        17.5  warn    usage down 40% (-120 events)"""


class Receiver:
    """A webhook receiver on 127.0.0.1 that responds with scripted statuses and records each body."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                body = b"ok" if status < 400 else b"invalid_token"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_message_has_table_and_link():
    message = build_message(
        DROPS, project_id="acme-co", min_drop=15, period_hours=24, dashboard_url="http://127.0.0.1:8787/q/pub_1?key=k"
    )

    heading = "2 accounts in project acme-co lost more than 15 health points in 24 hours."
    assert message["text"] == f"{heading}\n```\n{TABLE}\n```\nDashboard: http://127.0.0.1:8787/q/pub_1?key=k"
    assert message["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"```\n{TABLE}\n```"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "<http://127.0.0.1:8787/q/pub_1?key=k|Open the health dashboard>"}},
    ]


def test_message_without_link_and_long_table():
    drops = [Drop(f"account-{index:03d}", 90.0, 10.0, 80.0, "critical", "x" * 60) for index in range(100)]

    message = build_message(drops, project_id="p", min_drop=15, period_hours=72, dashboard_url="")
    table = message["blocks"][1]["text"]["text"]

    assert message["blocks"][0]["text"]["text"] == "*100 accounts in project p lost more than 15 health points in 3 days.*"
    assert message["blocks"][2]["text"]["text"] == "No dashboard link: pass --dashboard-url."
    assert len(table) <= 2_808
    assert table.endswith(" more\n```")
    assert "account-000" in table


def test_post_retries_server_errors():
    waits: list[float] = []
    with Receiver([500, 502, 200]) as receiver:
        status = post_webhook(receiver.url, {"text": "hi"}, retries=3, backoff_s=0.5, sleep=waits.append)

    assert status == 200
    assert waits == [0.5, 1.0]
    assert receiver.bodies == [{"text": "hi"}] * 3


def test_post_gives_up_after_retries():
    waits: list[float] = []
    with Receiver([503, 503, 503, 200]) as receiver:
        with pytest.raises(WebhookError) as raised:
            post_webhook(receiver.url, {"text": "hi"}, retries=2, backoff_s=0.1, sleep=waits.append)
        host = receiver.url.split("/services")[0]

    assert str(raised.value) == f"Posting to the webhook at {host} failed after 3 tries: HTTP 503: 'invalid_token'"
    assert waits == [0.1, 0.2]
    assert len(receiver.bodies) == 3


def test_post_client_error_is_not_retried():
    waits: list[float] = []
    with Receiver([404]) as receiver:
        with pytest.raises(WebhookError) as raised:
            post_webhook(receiver.url, {"text": "hi"}, sleep=waits.append)
        host = receiver.url.split("/services")[0]

    assert str(raised.value) == (
        f"The webhook at {host} rejected the message with HTTP 404: 'invalid_token'. Check that the URL is "
        "the full incoming webhook URL and that the webhook is still enabled."
    )
    assert "secret" not in str(raised.value)
    assert waits == []
    assert len(receiver.bodies) == 1


def test_post_unreachable_is_retried():
    waits: list[float] = []
    url = f"http://127.0.0.1:{closed_port()}/hook"

    with pytest.raises(WebhookError) as raised:
        post_webhook(url, {"text": "hi"}, retries=1, backoff_s=0.01, timeout_s=2, sleep=waits.append)

    assert str(raised.value).startswith(f"Posting to the webhook at {url.removesuffix('/hook')} failed after 2 tries: ConnectError")
    assert waits == [0.01]


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("hooks.example/x", "''"),
        ("ftp://127.0.0.1/x", "'ftp'"),
        ("https:///no-host", "'https'"),
    ],
)
def test_post_rejects_bad_url(url: str, scheme: str):
    with pytest.raises(WebhookError) as raised:
        post_webhook(url, {"text": "hi"})

    assert str(raised.value) == (
        f"The webhook URL must start with http:// or https:// and name a host; got scheme {scheme}. "
        "Give the full incoming webhook URL, e.g. https://hooks.slack.com/services/..."
    )


# Through the CLI, on a data folder of its own


def run_cli(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PULSEBOARD_DATA_DIR": str(data_dir), "PULSEBOARD_PORT": str(closed_port())}
    return subprocess.run(
        [sys.executable, "-m", "pulseboard.server.cli", *arguments],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env, check=False,
    )


CANCELLATION_MAPPING = """\
timestamp = "time"
account = "account"
user_template = "account:{account}"

[properties]
mrr = { column = "mrr", type = "number" }
plan = { column = "plan" }

[[events]]
name_column = "event"
"""


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Demo accounts with a snapshot from 30 hours ago, after which megacorp cancels.

    The cancellation scores megacorp 0 from then on, so every later snapshot shows a drop whatever
    the demo's random usage does.
    """
    folder = tmp_path_factory.mktemp("alerts-cli")
    loaded = run_cli(folder, "demo", "--no-serve", "--extra-accounts", "0", "--data-dir", str(folder))
    assert loaded.returncode == 0, loaded.stderr

    now = dt.datetime.now(dt.timezone.utc)
    before = run_cli(folder, "snapshot", "--as-of", (now - dt.timedelta(hours=30)).isoformat())
    yesterday_day = (now - dt.timedelta(hours=30)).date().isoformat()
    assert before.stdout == f"stored the scores of 5 accounts for {yesterday_day} in project default\n", before.stderr

    export = folder.parent / "cancellation.csv"
    cancelled_at = (now - dt.timedelta(minutes=5)).isoformat()
    export.write_text(f"time,account,event,mrr,plan\n{cancelled_at},megacorp,subscription_cancelled,0,enterprise\n")
    mapping = folder.parent / "cancellation.toml"
    mapping.write_text(CANCELLATION_MAPPING)
    imported = run_cli(folder, "import", str(export), "--mapping", str(mapping))
    assert imported.returncode == 0, imported.stderr
    yield folder


def test_cli_snapshot_and_alerts(demo_folder: Path):
    now = dt.datetime.now(dt.timezone.utc)
    today = run_cli(demo_folder, "snapshot")
    with Receiver([500, 200]) as receiver:
        posted = run_cli(
            demo_folder, "alerts", "--webhook", receiver.url, "--min-drop", "0", "--period-hours", "24",
            "--backoff", "0.01", "--dashboard-url", "http://127.0.0.1:8787/q/pub_x?key=k",
        )

    assert today.stdout == f"stored the scores of 5 accounts for {now.date().isoformat()} in project default\n"
    assert posted.returncode == 0, posted.stderr
    assert len(receiver.bodies) == 2
    message = receiver.bodies[-1]
    lines = message["text"].splitlines()
    count = int(lines[0].split()[0])
    assert lines[0].endswith(" in project default lost more than 0 health points in 24 hours.")
    assert lines[2].startswith("account ")
    assert len(lines) == 4 + count + 2
    assert lines[-1] == "Dashboard: http://127.0.0.1:8787/q/pub_x?key=k"
    assert any(line.split()[0] == "megacorp" for line in lines[3:-2] if line.strip())
    noun = "account" if count == 1 else "accounts"
    assert posted.stdout == f"posted the score drops of {count} {noun} in project default\n"


def test_cli_alerts_client_error(demo_folder: Path):
    today = run_cli(demo_folder, "snapshot")
    assert today.returncode == 0, today.stderr
    with Receiver([403]) as receiver:
        result = run_cli(demo_folder, "alerts", "--webhook", receiver.url, "--min-drop", "0")
        host = receiver.url.split("/services")[0]

    assert result.returncode == 2
    assert "secret" not in result.stderr
    assert result.stderr.endswith(
        f"pulseboard: The webhook at {host} rejected the message with HTTP 403: 'invalid_token'. Check that the URL "
        "is the full incoming webhook URL and that the webhook is still enabled.\n"
    )


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pulseboard serve exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"pulseboard serve did not listen on 127.0.0.1:{port} within {timeout_s} s")


def test_cli_goes_through_running_server(demo_folder: Path):
    port = closed_port()
    env = {**os.environ, "PULSEBOARD_DATA_DIR": str(demo_folder), "PULSEBOARD_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "pulseboard.server.cli", "serve"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_port(port, server)
        snapshot = subprocess.run(
            [sys.executable, "-m", "pulseboard.server.cli", "snapshot"],
            capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env, check=False,
        )
        with Receiver([]) as receiver:
            nothing = subprocess.run(
                [sys.executable, "-m", "pulseboard.server.cli", "alerts", "--webhook", receiver.url, "--min-drop", "100"],
                capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env, check=False,
            )
    finally:
        server.terminate()
        _, server_log = server.communicate(timeout=30)

    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert snapshot.stdout == f"stored the scores of 5 accounts for {today} in project default\n", snapshot.stderr
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout == "no account in project default lost more than 100 points; nothing posted\n"
    assert receiver.bodies == []
    assert "tool snapshot_health_scores ok" in server_log
    assert "tool run_recipe ok" in server_log

"""The README's command-line steps as a new user runs them, each `pulseboard` command in its own process.

No server runs here, so every command opens the temporary data folder itself, as the README describes.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_alerts import Receiver

CLI_TIMEOUT_S = 120

MAPPING = """\
timestamp = "time"
account = "account"
user_template = "account:{account}"

[properties]
mrr = { column = "mrr", type = "number" }
plan = { column = "plan" }

[[events]]
name_column = "event"
"""


def run_cli(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSEBOARD_")}
    env["PULSEBOARD_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "pulseboard.server.cli", *arguments],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env, check=False,
    )


def write_billing_export(folder: Path, today_start: dt.datetime) -> tuple[Path, Path]:
    """Write a CSV where acme-corp subscribes, uses the product, and cancels at today_start + 1 s."""
    rows = [
        ("time", "account", "event", "mrr", "plan"),
        ((today_start - dt.timedelta(days=20)).isoformat(), "acme-corp", "subscription_started", "750", "pro"),
        *(
            ((today_start - dt.timedelta(days=days)).isoformat(), "acme-corp", "report_exported", "", "")
            for days in (12, 9, 6, 4, 2)
        ),
        ((today_start + dt.timedelta(seconds=1)).isoformat(), "acme-corp", "subscription_cancelled", "750", "pro"),
    ]
    export = folder / "billing.csv"
    export.write_text("".join(",".join(row) + "\n" for row in rows))
    mapping = folder / "billing.toml"
    mapping.write_text(MAPPING)
    return export, mapping


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    created = run_cli(folder, "project", "create", "acme")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Created project acme.\n")
    yield folder


def test_alerts_reports_one_drop(data_dir: Path, tmp_path: Path):
    today_start = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = (today_start - dt.timedelta(days=1)).date().isoformat()
    export, mapping = write_billing_export(tmp_path, today_start)

    imported = run_cli(data_dir, "import", str(export), "--mapping", str(mapping), "--project", "acme")
    before = run_cli(data_dir, "snapshot", "--project", "acme", "--as-of", yesterday)
    after = run_cli(data_dir, "snapshot", "--project", "acme")
    with Receiver([]) as receiver:
        alerted = run_cli(data_dir, "alerts", "--project", "acme", "--webhook", receiver.url)

    assert imported.returncode == 0, imported.stderr
    assert before.stdout == f"stored the scores of 1 account for {yesterday} in project acme\n", before.stderr
    assert after.stdout == f"stored the scores of 1 account for {today_start.date().isoformat()} in project acme\n"
    assert alerted.returncode == 0, alerted.stderr
    assert alerted.stdout == "posted the score drops of 1 account in project acme\n"
    assert len(receiver.bodies) == 1
    first_line = receiver.bodies[0]["text"].splitlines()[0]
    assert first_line == "1 account in project acme lost more than 15 health points in 24 hours."

"""A 2xx means stored: kill `pulseboard serve` with SIGKILL under load, restart it, and count every event."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

BATCHES = 80
EVENTS_PER_BATCH = 100  # 8,000 events in all, within the 10,000 rows one query may return
CLIENTS = 4
KILL_AFTER_OK = 12
LOAD_TIME_LIMIT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSEBOARD_")}
    env["PULSEBOARD_DATA_DIR"] = str(data_dir)
    env["PULSEBOARD_LOG_LEVEL"] = "WARNING"
    return env


@dataclass
class Server:
    process: subprocess.Popen
    base: str
    key: str = ""


def start_server(data_dir: Path, port: int, *, create_project: bool) -> Server:
    command = [sys.executable, "-m", "pulseboard.server.cli", "serve", "--port", str(port)]
    if create_project:
        command.append("--create-project")
    log_path = data_dir.parent / f"serve-{time.monotonic_ns()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=child_env(data_dir), stdout=subprocess.PIPE, stderr=log, text=True)
    server = Server(process, f"http://127.0.0.1:{port}")
    if create_project:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"ingestion key \(shown once\): (\S+)", line)
        assert match, f"serve printed no ingestion key: {line!r}"
        server.key = match.group(1)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited with {process.returncode}:\n{log_path.read_text()}"
        try:
            if httpx2.get(f"{server.base}/health", timeout=1).status_code == 200:
                return server
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise AssertionError("serve did not answer /health within 60 s")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@dataclass
class Load:
    """Batches of events with their uuids, and the status each got (None when no response came)."""

    batches: list[list[dict[str, Any]]]
    statuses: dict[int, int | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_index: int = 0

    def take(self) -> int | None:
        with self.lock:
            if self.next_index >= len(self.batches):
                return None
            self.next_index += 1
            return self.next_index - 1

    def ok_count(self) -> int:
        with self.lock:
            return sum(1 for status in self.statuses.values() if status == 200)

    def uuids(self, indexes: Iterator[int] | list[int]) -> set[str]:
        return {event["uuid"] for index in indexes for event in self.batches[index]}


def make_batches() -> list[list[dict[str, Any]]]:
    return [
        [
            {"event": "page_viewed", "distinct_id": f"u{number % 17}", "uuid": str(uuid.uuid4()),
             "timestamp": "2026-01-10T10:00:00Z", "properties": {"batch": index, "n": number}}
            for number in range(EVENTS_PER_BATCH)
        ]
        for index in range(BATCHES)
    ]


def send(base: str, key: str, events: list[dict[str, Any]]) -> int | None:
    try:
        response = httpx2.post(
            f"{base}/v1/analytics/default/",
            content=json.dumps({"batch": events}),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
            timeout=15,
        )
    except httpx2.HTTPError:
        return None
    return response.status_code


def run_clients(load: Load, base: str, key: str, deadline: float) -> None:
    def client() -> None:
        while time.monotonic() < deadline:
            index = load.take()
            if index is None:
                return
            status = send(base, key, load.batches[index])
            with load.lock:
                load.statuses[index] = status
            if status is None:
                return  # the server is gone

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 20)


def query(data_dir: Path, hogql: str) -> list[dict[str, Any]]:
    """Run HogQL with `pulseboard query`, which goes through the running server's analytics_query tool."""
    result = subprocess.run(
        [sys.executable, "-m", "pulseboard.server.cli", "query", hogql, "--format", "json"],
        env=child_env(data_dir), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stored_counts(data_dir: Path) -> dict[str, int]:
    rows = query(data_dir, "SELECT toString(uuid) AS id, count() AS copies FROM events GROUP BY id LIMIT 10000")
    return {row["id"]: row["copies"] for row in rows}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_sigkill_loses_no_acknowledged_event(data_dir: Path):
    port = free_port()
    first = start_server(data_dir, port, create_project=True)
    load = Load(make_batches())
    killer = threading.Thread(target=lambda: kill_when_loaded(first, load))
    try:
        killer.start()
        run_clients(load, first.base, first.key, time.monotonic() + LOAD_TIME_LIMIT_S)
        killer.join(timeout=LOAD_TIME_LIMIT_S)
    finally:
        if first.process.poll() is None:
            first.process.kill()
        first.process.wait(timeout=30)

    assert first.process.returncode == -signal.SIGKILL
    acknowledged = [index for index, status in load.statuses.items() if status == 200]
    unanswered = [index for index in range(BATCHES) if load.statuses.get(index) != 200]
    assert len(acknowledged) >= KILL_AFTER_OK
    assert unanswered, "the kill came after the last request; nothing was interrupted"

    second = start_server(data_dir, port, create_project=False)
    try:
        counts = stored_counts(data_dir)
        assert {uuid_: counts.get(uuid_) for uuid_ in load.uuids(acknowledged)} == {
            uuid_: 1 for uuid_ in load.uuids(acknowledged)
        }
        assert set(counts.values()) == {1}

        # Clients retry what got no 2xx, and one client resends everything once more.
        retried = [send(second.base, first.key, load.batches[index]) for index in unanswered]
        resent = [send(second.base, first.key, batch) for batch in load.batches]
        assert retried == [200] * len(unanswered)
        assert resent == [200] * BATCHES

        counts = stored_counts(data_dir)
        assert len(counts) == BATCHES * EVENTS_PER_BATCH
        assert set(counts) == load.uuids(range(BATCHES))
        assert set(counts.values()) == {1}
    finally:
        stop(second)


def kill_when_loaded(server: Server, load: Load) -> None:
    deadline = time.monotonic() + LOAD_TIME_LIMIT_S
    while load.ok_count() < KILL_AFTER_OK and time.monotonic() < deadline:
        time.sleep(0.005)
    server.process.send_signal(signal.SIGKILL)

"""Benchmark ingestion: direct inserts by batch size, the HTTP endpoint under concurrent clients,
and the file importer.

Usage: .venv/bin/python bench/bench_ingest.py [--requests N] [--concurrency 1 16 64] [--import-rows N]
       [--cache-ingest-keys] [--pure-python-http] [--batches N] [--batch-clients K] [--profile FILE]

(a) `Store.insert_events` with batches of 1, 100 and 1,000 events, and with 8 threads inserting one
    event each, in this process's store.
(b) The web app (`create_app`) under uvicorn on 127.0.0.1, in a child process with a store of its
    own (bench/ingest_server.py). For each concurrency K, K async clients send single events to
    `POST /v1/analytics/<project>/` until N requests are sent or the time cap is reached. The table
    shows requests/s, client-side latency, and how many inserts the group commit made.
    With --cache-ingest-keys, (b) runs again against a server whose key check queries the store
    once per key; this shows what the per-request key query costs. With --pure-python-http, (b)
    runs again with uvicorn on h11 and asyncio, without httptools and uvloop.
(c) `import_file` on a generated CSV of feature usage, one event per row.
(d) Batches of 1,000 events over HTTP: K clients post N batches in all (each with uuids, so the
    server's duplicate check runs) to a fresh server, plain and gzip-compressed. In the same run,
    the store's own rate for the same rows: `parse_events` plus `Store.insert_events` of the same
    batches in this process's store, which is the ceiling the HTTP path can approach.
With --profile FILE, the server of (b) runs under pyinstrument and writes its report to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import uuid
import logging
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from generators import usage_event_rows, usage_events, write_usage_csv
from harness import (
    PERCENTILE_HEADERS,
    Timings,
    markdown_table,
    percentile,
    percentile_cells,
    print_end_load,
    print_machine,
    temporary_store,
    time_interleaved,
)

from pulseboard.server.importer import import_file
from pulseboard.server.ingest import parse_events
from pulseboard.server.store import EventRow, Store

HOST = "127.0.0.1"
PROJECT = "bench"
IMPORT_PROJECT = "import"
BATCH_PROJECT = "batched"
BATCH_EVENTS = 1_000
SERVER_SCRIPT = Path(__file__).with_name("ingest_server.py")
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
INSERT_TIME_CAP_S = 20.0
THREADS = 8
REQUEST_WORK_RUNS = 200
SERVER_LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class InsertCase:
    label: str
    batch_size: int
    inserts: int
    threads: int = 1


INSERT_CASES = [
    InsertCase("1 event per insert", 1, 300),
    InsertCase("100 events per insert", 100, 100),
    InsertCase("1,000 events per insert", 1000, 50),
    InsertCase(f"1 event per insert, {THREADS} threads", 1, 400, THREADS),
]


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    end = dt.datetime.now(dt.timezone.utc)

    with temporary_store("pulseboard-bench-ingest-") as (store, folder):
        print_machine(store)
        _, key = store.create_project(PROJECT)
        store.create_project(IMPORT_PROJECT)
        store.create_project(BATCH_PROJECT)
        print_direct_inserts(store, end)
        print_request_work(store, key, end)
        print_import(store, folder, args.import_rows, end)

        print_http(args.concurrency, args.requests, args.level_seconds, end, cache_keys=False, profile=args.profile)
        if args.cache_ingest_keys:
            print_http(args.concurrency, args.requests, args.level_seconds, end, cache_keys=True)
        if args.pure_python_http:
            print_http(args.concurrency, args.requests, args.level_seconds, end, cache_keys=False, pure_python=True)
        print_batched(store, args.batches, args.batch_clients, args.level_seconds, end)
    print_end_load()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=5000, help="maximum requests sent at each concurrency (default 5,000)"
    )
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16, 64],
        help="numbers of concurrent HTTP clients, one measurement each (default: 1 16 64)",
    )
    parser.add_argument(
        "--level-seconds", type=float, default=30.0, help="time cap of each concurrency level in seconds (default 30)"
    )
    parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the imported CSV (default 100,000)")
    parser.add_argument(
        "--cache-ingest-keys", action="store_true",
        help="run (b) again against a server that checks each ingestion key once and then caches it",
    )
    parser.add_argument("--batches", type=int, default=100, help="batches of 1,000 events sent in (d) (default 100)")
    parser.add_argument("--batch-clients", type=int, default=4, help="concurrent clients in (d) (default 4)")
    parser.add_argument("--profile", help="run the server of (b) under pyinstrument and write its report to this file")
    parser.add_argument(
        "--pure-python-http", action="store_true", help="run (b) again with uvicorn on h11 and asyncio"
    )
    args = parser.parse_args()
    if args.batches < 1 or args.batch_clients < 1:
        parser.error("--batches and --batch-clients must be at least 1")
    if args.requests < 1 or args.import_rows < 1 or args.level_seconds <= 0:
        parser.error("--requests and --import-rows must be at least 1, and --level-seconds above 0")
    if any(count < 1 for count in args.concurrency):
        parser.error("--concurrency takes counts of 1 or more")
    return args


# (a) Direct inserts


def print_direct_inserts(store: Store, end: dt.datetime) -> None:
    needed = sum(case.batch_size * case.inserts for case in INSERT_CASES)
    rows = usage_event_rows(needed, seed=1, end=end)
    # The first insert of a project also records its property definitions, so it runs before timing.
    store.insert_events(PROJECT, usage_event_rows(10, seed=2, end=end))

    table = []
    offset = 0
    for case in INSERT_CASES:
        batches = [
            rows[offset + index * case.batch_size : offset + (index + 1) * case.batch_size]
            for index in range(case.inserts)
        ]
        offset += case.batch_size * case.inserts
        timings, elapsed_s, done = time_inserts(store, batches, case.threads)
        events = done * case.batch_size
        table.append([case.label, *percentile_cells(timings), done / elapsed_s, events / elapsed_s])

    print("## (a) Store.insert_events")
    print(markdown_table(["case", *PERCENTILE_HEADERS, "inserts/s", "events/s"], table))
    print()


def time_inserts(store: Store, batches: list[list[EventRow]], threads: int) -> tuple[Timings, float, int]:
    """Insert the batches from `threads` threads until done or INSERT_TIME_CAP_S; return timings, seconds and count."""
    deadline = time.monotonic() + INSERT_TIME_CAP_S

    def insert(batch: list[EventRow]) -> float | None:
        if time.monotonic() > deadline:
            return None
        started = time.perf_counter()
        store.insert_events(PROJECT, batch)
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        durations = [duration for duration in pool.map(insert, batches) if duration is not None]
    return Timings(tuple(durations)), time.perf_counter() - started, len(durations)


def print_request_work(store: Store, key: str, end: dt.datetime) -> None:
    """Time the steps of one ingestion request other than the insert: the key check and the parse."""
    body = json.dumps(usage_events(1, seed=4, end=end)[0])
    measured = time_interleaved(
        {
            "Store.check_ingest_key (one query per request)": lambda: store.check_ingest_key(PROJECT, key),
            "parse_events of one event": lambda: parse_events(json.loads(body), now=end),
        },
        runs=REQUEST_WORK_RUNS,
    )
    table = [[name, *percentile_cells(timings)] for name, (timings, _) in measured.items()]
    print("Other work of one ingestion request, in the same store:")
    print()
    print(markdown_table(["step", *PERCENTILE_HEADERS], table))
    print()


# (c) File import


def print_import(store: Store, folder: Path, rows: int, end: dt.datetime) -> None:
    started = time.perf_counter()
    csv_path, mapping_path = write_usage_csv(folder, rows, seed=3, end=end)
    written = time.perf_counter() - started

    report = import_file(store, IMPORT_PROJECT, csv_path, mapping_path, now=end)
    stored = store.query("SELECT count() FROM events WHERE project_id = {p:String}", {"p": IMPORT_PROJECT}).rows[0][0]

    print("## (c) import_file on a CSV")
    print(
        f"Generated {rows:,} rows ({csv_path.stat().st_size / 1e6:.1f} MB) in {written:.1f} s; "
        "the mapping makes one `feature_used` event per row."
    )
    print()
    table = [[report.rows_read, report.events_stored, stored, report.elapsed_s,
              report.rows_read / report.elapsed_s, report.events_stored / report.elapsed_s]]
    print(markdown_table(["rows read", "events stored", "events in the store", "seconds", "rows/s", "events/s"], table))
    print()


# (b) HTTP ingestion


@dataclass
class LevelResult:
    concurrency: int
    sent: int
    statuses: Counter[int]
    elapsed_s: float
    latencies_ms: list[float]
    inserts: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0


def print_http(
    levels: list[int], max_requests: int, level_seconds: float, end: dt.datetime, *, cache_keys: bool,
    profile: str | None = None, pure_python: bool = False,
) -> None:
    with tempfile.TemporaryDirectory(prefix="pulseboard-bench-server-") as folder:
        port = free_port()
        log_path = Path(folder) / "server.log"
        try:
            with log_path.open("w") as log:
                server, key = start_server(
                    Path(folder) / "data", port, log, cache_keys=cache_keys, profile=profile, pure_python=pure_python
                )
                try:
                    results, stored = asyncio.run(
                        drive_levels(f"http://{HOST}:{port}", server.pid, key, levels, max_requests, level_seconds, end)
                    )
                finally:
                    stop_server(server)
        except (RuntimeError, httpx2.HTTPError):
            tail = log_path.read_text().splitlines()[-SERVER_LOG_TAIL_LINES:]
            print("Last lines of the server log:", *tail, sep="\n", file=sys.stderr)
            raise
        server_errors = [line for line in log_path.read_text().splitlines() if " ERROR " in line]

    table = []
    for result in results:
        ok = sum(count for status, count in result.statuses.items() if 200 <= status < 300)
        table.append([
            result.concurrency, result.sent, ok, result.sent - ok, result.elapsed_s, result.sent / result.elapsed_s,
            percentile(result.latencies_ms, 50), percentile(result.latencies_ms, 99), result.inserts,
            ok / result.inserts if result.inserts else None,
            1000 * result.server_cpu_s / result.sent, 1000 * result.client_cpu_s / result.sent,
        ])

    if pure_python:
        print("## (b) What if: the same, with uvicorn on h11 and asyncio (no httptools, no uvloop)")
    elif cache_keys:
        print("## (b) What if: the same, with ingestion keys cached in the server's memory")
        print("Each key is checked with a query once and then accepted from memory; pulseboard has no such cache.")
    else:
        print("## (b) POST /v1/analytics/<project>/, one event per request")
        print(
            f"Server: `create_app` under uvicorn on {HOST} in a child process; clients: httpx2.AsyncClient in "
            "this process, one connection per client. Both share the machine's CPUs."
        )
    print()
    print(markdown_table(
        ["clients", "requests", "2xx", "other", "seconds", "requests/s", "p50 ms", "p99 ms", "inserts",
         "events per insert", "server CPU ms per request", "client CPU ms per request"],
        table,
    ))
    print()
    total_ok = sum(row[2] for row in table)
    print(f"Events in the server's store: {stored:,} (2xx responses: {total_ok:,}); ERROR lines in its log: "
          f"{len(server_errors)}")
    print()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(
    data_dir: Path, port: int, log: Any, *, cache_keys: bool = False, profile: str | None = None,
    pure_python: bool = False,
) -> tuple[subprocess.Popen[str], str]:
    """Start bench/ingest_server.py and return the process and the project's ingestion key."""
    command = [sys.executable, str(SERVER_SCRIPT), "--data-dir", str(data_dir), "--port", str(port), "--project", PROJECT]
    if cache_keys:
        command.append("--cache-ingest-keys")
    if profile:
        command += ["--profile", profile]
    if pure_python:
        command.append("--pure-python-http")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], SERVER_START_TIMEOUT_S)
    line = server.stdout.readline() if ready else ""
    if not line:
        stop_server(server)
        raise RuntimeError(
            f"bench/ingest_server.py printed no ingestion key within {SERVER_START_TIMEOUT_S:.0f} s"
        )
    return server, json.loads(line)["ingestion_key"]


def stop_server(server: subprocess.Popen[str]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


async def drive_levels(
    base_url: str, server_pid: int, key: str, levels: list[int], max_requests: int, level_seconds: float, end: dt.datetime
) -> tuple[list[LevelResult], int]:
    """Run each concurrency level in turn; return the results and the server's stored event count."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx2.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as control:
        await wait_healthy(control)
        results = []
        for index, concurrency in enumerate(levels):
            bodies = [json.dumps(event).encode() for event in usage_events(max_requests, seed=100 + index, end=end)]
            before = (await control.get("/bench/stats")).json()
            server_cpu_before, client_cpu_before = process_cpu_s(server_pid), own_cpu_s()
            result = await drive_level(base_url, headers, bodies, concurrency, level_seconds)
            result.server_cpu_s = process_cpu_s(server_pid) - server_cpu_before
            result.client_cpu_s = own_cpu_s() - client_cpu_before
            after = (await control.get("/bench/stats")).json()
            result.inserts = after["insert_count"] - before["insert_count"]
            results.append(result)
        stored = (await control.get("/bench/stats")).json()["stored_events"]
    return results, stored


def process_cpu_s(pid: int) -> float:
    """Return the user plus system CPU seconds of a process and all its threads, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the stat line; the split above starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wait_healthy(client: httpx2.AsyncClient) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not respond to /health within {SERVER_START_TIMEOUT_S:.0f} s")


async def drive_level(
    base_url: str, headers: dict[str, str], bodies: list[bytes], concurrency: int, level_seconds: float
) -> LevelResult:
    """Send the bodies from `concurrency` clients until all are sent or `level_seconds` have passed."""
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    next_index = 0
    deadline = time.monotonic() + level_seconds
    url = f"/v1/analytics/{PROJECT}/"

    async def client_loop(client: httpx2.AsyncClient) -> None:
        nonlocal next_index
        while next_index < len(bodies) and time.monotonic() < deadline:
            body = bodies[next_index]
            next_index += 1
            started = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
                statuses[response.status_code] += 1
            except httpx2.TransportError:
                statuses[0] += 1
            latencies.append((time.perf_counter() - started) * 1000)

    async with httpx2.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed_s = time.perf_counter() - started
    return LevelResult(concurrency, len(latencies), statuses, elapsed_s, latencies)



# (d) Batches of 1,000 events


@dataclass
class BatchedResult:
    label: str
    batches: int
    ok: int
    elapsed_s: float
    latencies_ms: list[float]
    body_bytes: int
    server_cpu_s: float = 0.0


def make_batches(count: int, end: dt.datetime) -> list[list[dict[str, Any]]]:
    """Return `count` batches of BATCH_EVENTS usage events, each event with its own uuid."""
    events = usage_events(count * BATCH_EVENTS, seed=7, end=end)
    for event in events:
        event["uuid"] = str(uuid.uuid4())
    return [events[index * BATCH_EVENTS : (index + 1) * BATCH_EVENTS] for index in range(count)]


def print_batched(store: Store, count: int, clients: int, level_seconds: float, end: dt.datetime) -> None:
    batches = make_batches(count, end)
    bodies = [json.dumps({"batch": batch}).encode() for batch in batches]
    # The gzip run sends the same events again, so it gets fresh uuids; otherwise the server would skip them all.
    regzipped = [
        gzip.compress(json.dumps({"batch": [dict(event, uuid=str(uuid.uuid4())) for event in batch]}).encode(), 1)
        for batch in batches
    ]

    with tempfile.TemporaryDirectory(prefix="pulseboard-bench-batched-") as folder:
        port = free_port()
        with (Path(folder) / "server.log").open("w") as log:
            server, key = start_server(Path(folder) / "data", port, log)
            try:
                results, stored = asyncio.run(drive_batched(
                    f"http://{HOST}:{port}", server.pid, key, {"JSON": bodies, "gzip": regzipped}, clients, level_seconds
                ))
            finally:
                stop_server(server)

    direct_s, direct_events = time_direct_batches(store, batches, level_seconds, check_duplicates=True)
    unchecked_s, unchecked_events = time_direct_batches(store, batches, level_seconds, check_duplicates=False)

    print(f"## (d) Batches of {BATCH_EVENTS:,} events: HTTP and the store's own insert rate, same rows")
    print(
        f"{clients} httpx2 clients post up to {count} batches each run (time cap {level_seconds:.0f} s) to "
        f"`POST /v1/analytics/<project>/` of a fresh server. The store row is `parse_events` plus "
        "`Store.insert_events` of the same batches, one at a time, in this process."
    )
    print()
    table = []
    for result in results:
        events = result.ok * BATCH_EVENTS
        table.append([
            f"HTTP, {result.label} bodies", result.batches, result.ok, result.elapsed_s, events / result.elapsed_s,
            percentile(result.latencies_ms, 50), percentile(result.latencies_ms, 99),
            result.body_bytes / result.batches / 1024, 1000 * result.server_cpu_s / max(result.ok, 1),
        ])
    table.append([
        "store: parse_events + insert_events", direct_events // BATCH_EVENTS, direct_events // BATCH_EVENTS,
        direct_s, direct_events / direct_s, None, None, None, None,
    ])
    table.append([
        "store: the same without the duplicate check", unchecked_events // BATCH_EVENTS,
        unchecked_events // BATCH_EVENTS, unchecked_s, unchecked_events / unchecked_s, None, None, None, None,
    ])
    print(markdown_table(
        ["path", "batches", "2xx", "seconds", "events/s", "p50 ms", "p99 ms", "KiB per body",
         "server CPU ms per batch"],
        table,
    ))
    print()
    total_ok = sum(result.ok for result in results) * BATCH_EVENTS
    print(f"Events in the server's store: {stored:,} (events in 2xx responses: {total_ok:,})")
    print()


async def drive_batched(
    base_url: str, server_pid: int, key: str, runs: dict[str, list[bytes]], clients: int, level_seconds: float
) -> tuple[list[BatchedResult], int]:
    url = f"/v1/analytics/{PROJECT}/"
    results = []
    async with httpx2.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as control:
        await wait_healthy(control)
        for label, bodies in runs.items():
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            if label == "gzip":
                headers["Content-Encoding"] = "gzip"
            cpu_before = process_cpu_s(server_pid)
            result = await post_bodies(base_url, url, headers, bodies, clients, level_seconds)
            result.label = label
            result.server_cpu_s = process_cpu_s(server_pid) - cpu_before
            results.append(result)
        stored = (await control.get("/bench/stats")).json()["stored_events"]
    return results, stored


async def post_bodies(
    base_url: str, url: str, headers: dict[str, str], bodies: list[bytes], clients: int, level_seconds: float
) -> BatchedResult:
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    ok = 0
    sent_bytes = 0
    next_index = 0
    deadline = time.monotonic() + level_seconds

    async def client_loop(client: httpx2.AsyncClient) -> None:
        nonlocal next_index, ok, sent_bytes
        while next_index < len(bodies) and time.monotonic() < deadline:
            body = bodies[next_index]
            next_index += 1
            started = time.perf_counter()
            response = await client.post(url, content=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            sent_bytes += len(body)
            ok += response.status_code == 200

    async with httpx2.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        elapsed_s = time.perf_counter() - started
    return BatchedResult("", len(latencies), ok, elapsed_s, latencies, sent_bytes)


def time_direct_batches(
    store: Store, batches: list[list[dict[str, Any]]], level_seconds: float, *, check_duplicates: bool
) -> tuple[float, int]:
    """Parse and insert the batches into this process's store; return seconds and events stored.

    Without `check_duplicates`, each batch gets fresh uuids and `insert_events` runs without
    `skip_stored`, so it makes no query for stored uuids.
    """
    deadline = time.monotonic() + level_seconds
    stored = 0
    started = time.perf_counter()
    for batch in batches:
        if time.monotonic() > deadline:
            break
        rows = parse_events({"batch": batch}, now=dt.datetime.now(dt.timezone.utc))
        if check_duplicates:
            stored += store.insert_events(BATCH_PROJECT, rows, skip_stored=True)
            continue
        for row in rows:
            row.uuid = str(uuid.uuid4())
        stored += store.insert_events(BATCH_PROJECT, rows)
    return time.perf_counter() - started, stored


if __name__ == "__main__":
    main()

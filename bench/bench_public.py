"""Benchmark published results: cached views against a bare route, and cold views against the query.

Usage: .venv/bin/python bench/bench_public.py [--seconds 1] [--rounds 15] [--connections 16]
       [--max-requests 200000] [--events 200000] [--cold-runs 30]

The server is pulseboard's `create_app` under uvicorn on 127.0.0.1, in a child process that runs
this script with `--serve` and opens its own chDB store in a temporary folder. It logs at INFO to
a file, as `pulseboard serve` logs to stderr. The child adds four routes for the benchmark:
`PUT /bench/bare` stores a body and a set of headers, `GET /bench/bare` returns the body from a
bare Starlette endpoint, `GET /bench/bare-headers` returns it with the stored headers too, and
`GET /bench/query` runs the cold publication's HogQL with `run_hogql` and returns its time.

(a) Cached view: the client fetches the cached publication's JSON once and stores its body and
headers with `PUT /bench/bare`, so all targets return the same bytes. The bare route with headers
shows what the published response's own headers (CORS, security, caching) cost in uvicorn's
HTTP/1.1 layer. Then R rounds run each target once, each round starting with the next target. A
target's turn sends GET requests over C keep-alive connections for S seconds or M requests,
whichever comes first. Short rounds and per-round ratios keep the load of other processes on a
shared machine from favouring one target. The load generator is asyncio with raw HTTP/1.1 on
sockets, in this process.

(b) Cold view: a publication with cache_ttl_s=0 recomputes on every view. Runs alternate a view
of it (latency seen by the client) and `GET /bench/query` (the query's own time, measured in the
server around `run_hogql`), up to N pairs or 120 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import markdown_table, percentile, print_end_load, print_machine

HOST = "127.0.0.1"
QUERY = (
    "SELECT properties.account_id AS account, count() AS events, uniq(distinct_id) AS users, "
    "max(timestamp) AS last_seen FROM events GROUP BY account ORDER BY events DESC, account"
)
PROJECT = "bench"
STARTUP_TIMEOUT_S = 300


# The server process


def serve(port: int, events: int, log_file: Path) -> None:
    """Open a store, load events, publish QUERY twice, print the URLs as JSON, and serve until stopped."""
    import datetime as dt

    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from generators import usage_event_rows
    from pulseboard.server.app import create_app
    from pulseboard.server.public import RequestBudget
    from pulseboard.server.runtime import Runtime
    from pulseboard.server.settings import load_settings
    from pulseboard.server.store import Store
    from pulseboard.tools.query import run_hogql

    data_dir = Path(tempfile.mkdtemp(prefix="pulseboard-bench-public-"))
    settings = load_settings(data_dir=data_dir, host=HOST, port=port)
    logging.basicConfig(
        filename=log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = Store.open(settings.clickhouse_url)
    try:
        store.migrate()
        store.create_project(PROJECT)
        rows = usage_event_rows(events, seed=7, end=dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc))
        for start in range(0, len(rows), 10_000):
            store.insert_events(PROJECT, rows[start : start + 10_000])
        cached, cached_key = store.create_publication(PROJECT, title="Cached", hogql=QUERY, cache_ttl_s=86_400)
        cold, cold_key = store.create_publication(PROJECT, title="Cold", hogql=QUERY, cache_ttl_s=0)

        # The budget is far above what the load generator can send, so no view gets 429.
        budget = RequestBudget(per_minute=10**12, burst=10**9)
        app = create_app(Runtime(settings, store), api_token=secrets.token_urlsafe(32), publication_budget=budget)
        bare: dict = {"body": b"", "headers": {}}

        async def store_bare(request: Request) -> Response:
            document = await request.json()
            bare["body"] = document["body"].encode()
            bare["headers"] = document["headers"]
            return Response(status_code=204)

        async def bare_route(request: Request) -> Response:
            return Response(bare["body"], media_type="application/json")

        async def bare_headers_route(request: Request) -> Response:
            return Response(bare["body"], media_type="application/json", headers=bare["headers"])

        def timed_query() -> float:
            started = time.perf_counter()
            run_hogql(store, settings, PROJECT, QUERY)
            return (time.perf_counter() - started) * 1000

        async def query_route(request: Request) -> JSONResponse:
            import anyio.to_thread

            return JSONResponse({"elapsed_ms": await anyio.to_thread.run_sync(timed_query)})

        routes = [
            Route("/bench/bare", store_bare, methods=["PUT"]),
            Route("/bench/bare", bare_route, methods=["GET"]),
            Route("/bench/bare-headers", bare_headers_route, methods=["GET"]),
            Route("/bench/query", query_route, methods=["GET"]),
        ]
        # Before the root mount of the MCP app, which matches every path.
        app.router.routes[0:0] = routes
        print(
            json.dumps(
                {
                    "cached": f"/q/{cached.publication_id}?key={cached_key}&format=json",
                    "cold": f"/q/{cold.publication_id}?key={cold_key}&format=json",
                    "events": events,
                }
            ),
            flush=True,
        )
        uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)
    finally:
        store.close()
        shutil.rmtree(data_dir, ignore_errors=True)


# The load generator


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    # CPU time (user and system) that the server process spent during the round.
    server_cpu_s: float = 0.0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip():
            headers[name.strip().lower()] = value.strip()
    return status, await reader.readexactly(int(headers.get("content-length", "0"))), headers


async def request_once(
    port: int, method: str, path: str, body: bytes = b"", media_type: str = ""
) -> tuple[int, bytes, dict[str, str]]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        headers = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
        if body:
            headers += f"Content-Type: {media_type}\r\nContent-Length: {len(body)}\r\n"
        writer.write(headers.encode() + b"\r\n" + body)
        return await read_response(reader)
    finally:
        writer.close()


async def load(port: int, path: str, *, connections: int, seconds: float, max_requests: int) -> LoadResult:
    """Send GET requests over keep-alive connections until `seconds` pass or `max_requests` are sent."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: application/json\r\n\r\n".encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while time.perf_counter() < deadline and len(latencies) < max_requests:
                started = time.perf_counter()
                writer.write(request)
                status, _, _ = await read_response(reader)
                if status != 200:
                    raise RuntimeError(f"GET {path.split('?')[0]} returned {status}, expected 200.")
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return LoadResult(requests=len(latencies), seconds=time.perf_counter() - started, latencies_ms=latencies)


async def timed_get(port: int, path: str) -> tuple[float, bytes, dict[str, str]]:
    started = time.perf_counter()
    status, body, headers = await request_once(port, "GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path.split('?')[0]} returned {status}, expected 200.")
    return (time.perf_counter() - started) * 1000, body, headers


# The benchmark


def process_cpu_seconds(pid: int) -> float:
    """Return the user and system CPU time of a process, from /proc/<pid>/stat (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the file, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(port: int, events: int, log_file: Path) -> tuple[subprocess.Popen, dict]:
    bench_dir = Path(__file__).parent
    command = [sys.executable, str(bench_dir / "bench_public.py"), "--serve", "--port", str(port),
               "--events", str(events), "--log-file", str(log_file)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=bench_dir.parent)
    line = child.stdout.readline()
    if not line:
        child.kill()
        raise RuntimeError(f"The benchmark server exited before it printed its URLs; see {log_file}.")
    return child, json.loads(line)


async def wait_until_up(port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            status, _, _ = await request_once(port, "GET", "/health")
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"The benchmark server did not respond to GET /health within {STARTUP_TIMEOUT_S} s.")
        await asyncio.sleep(0.1)


def load_row(name: str, results: list[LoadResult]) -> list:
    latencies = [value for result in results for value in result.latencies_ms]
    requests = sum(result.requests for result in results)
    seconds = sum(result.seconds for result in results)
    cpu_s = sum(result.server_cpu_s for result in results)
    return [
        name,
        requests,
        round(requests / seconds),
        round(statistics.median(latencies), 2),
        round(percentile(latencies, 99), 2),
        round(cpu_s / requests * 1e6),
    ]


async def run(args: argparse.Namespace, port: int, urls: dict, server_pid: int) -> None:
    await wait_until_up(port)

    # (a) Cached views against the bare route.
    _, body, headers = await timed_get(port, urls["cached"])
    # uvicorn writes these headers itself, and `connection: close` echoes this one request's header.
    own_headers = {"content-length", "content-type", "date", "server", "connection"}
    extra_headers = {name: value for name, value in headers.items() if name not in own_headers}
    stored = json.dumps({"body": body.decode(), "headers": extra_headers}).encode()
    status, _, _ = await request_once(port, "PUT", "/bench/bare", stored, "application/json")
    if status != 204:
        raise RuntimeError(f"PUT /bench/bare returned {status}, expected 204.")
    for path in ("/bench/bare", "/bench/bare-headers"):
        _, bare_body, _ = await timed_get(port, path)
        if bare_body != body:
            raise RuntimeError(f"GET {path} returned other bytes than the published result.")

    targets = {
        "published result, cached (`/q/<id>?format=json`)": urls["cached"],
        "bare Starlette route": "/bench/bare",
        f"bare route with the published response's {len(extra_headers)} headers": "/bench/bare-headers",
    }
    results: dict[str, list[LoadResult]] = {name: [] for name in targets}
    for name, path in targets.items():  # one short warm-up round each
        await load(port, path, connections=args.connections, seconds=1, max_requests=args.max_requests)
    names = list(targets)
    for round_index in range(args.rounds):
        # Each round starts with the next target, so no target always runs first.
        for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
            cpu_before = process_cpu_seconds(server_pid)
            result = await load(
                port, targets[name], connections=args.connections, seconds=args.seconds, max_requests=args.max_requests
            )
            result.server_cpu_s = process_cpu_seconds(server_pid) - cpu_before
            results[name].append(result)

    print(f"### (a) Cached view and bare route, {len(body):,} bytes of JSON each")
    print()
    print(f"{args.rounds} rounds of {args.seconds:g} s per target, alternating, {args.connections} connections.")
    print()
    rows = [load_row(name, runs) for name, runs in results.items()]
    print(markdown_table(["target", "requests", "requests/s", "median ms", "p99 ms", "server CPU µs per request"], rows))
    print()
    for name, runs in results.items():
        print(f"Requests/s by round, {name}: " + ", ".join(f"{run.per_second:,.0f}" for run in runs))
    print()
    # Ratios within each round cancel the load that other processes put on the machine in that round.
    published, bare, bare_headers = results.values()
    by_round = [first.per_second / second.per_second for first, second in zip(published, bare)]
    by_round_headers = [first.per_second / second.per_second for first, second in zip(published, bare_headers)]
    print(
        f"Throughput ratio, published / bare: {rows[0][2] / rows[1][2]:.2f} over all rounds, "
        f"median of rounds {statistics.median(by_round):.2f}"
    )
    print(
        f"Throughput ratio, published / bare with the same headers: {rows[0][2] / rows[2][2]:.2f} over all "
        f"rounds, median of rounds {statistics.median(by_round_headers):.2f}"
    )
    # The server runs on one core, so the inverse ratio of CPU per request is the throughput ratio
    # that a server with a core to itself would reach.
    print(f"Server CPU per request, bare / published: {rows[1][5] / rows[0][5]:.2f}")
    print(f"Server CPU per request, bare with the same headers / published: {rows[2][5] / rows[0][5]:.2f}")
    print()

    # (b) Cold views against the query's own time.
    await timed_get(port, urls["cold"])
    await timed_get(port, "/bench/query")
    view_ms: list[float] = []
    query_ms: list[float] = []
    deadline = time.monotonic() + 120
    for _ in range(args.cold_runs):
        elapsed, _, _ = await timed_get(port, urls["cold"])
        view_ms.append(elapsed)
        _, body, _ = await timed_get(port, "/bench/query")
        query_ms.append(json.loads(body)["elapsed_ms"])
        if time.monotonic() > deadline:
            break

    print(f"### (b) Cold view and the query's own time, {urls['events']:,} events, {len(view_ms)} runs each")
    print()
    rows = [
        ["cold view, seen by the client", round(statistics.median(view_ms), 2), round(percentile(view_ms, 95), 2)],
        ["`run_hogql` in the server", round(statistics.median(query_ms), 2), round(percentile(query_ms, 95), 2)],
    ]
    print(markdown_table(["measurement", "median ms", "p95 ms"], rows))
    print()
    print(f"Cold view minus query, medians: {statistics.median(view_ms) - statistics.median(query_ms):.2f} ms")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one load round, seconds")
    parser.add_argument("--rounds", type=int, default=15, help="load rounds per target")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--max-requests", type=int, default=200_000, help="request cap of one load round")
    parser.add_argument("--events", type=int, default=200_000, help="events the queries read")
    parser.add_argument("--cold-runs", type=int, default=30, help="cold views (and query runs) to time")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--log-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.port, args.events, args.log_file)
        return

    print_machine()
    port = free_port()
    log_file = Path(tempfile.mkdtemp(prefix="pulseboard-bench-log-")) / "server.log"
    print(f"Server log: {log_file}")
    print()
    child, urls = start_server(port, args.events, log_file)
    try:
        asyncio.run(run(args, port, urls, child.pid))
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    print_end_load()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

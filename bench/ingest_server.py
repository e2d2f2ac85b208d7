"""Serve pulseboard's web app on 127.0.0.1 for bench_ingest.py, in a process of its own.

Usage: python bench/ingest_server.py --data-dir DIR --port PORT --project ID [--cache-ingest-keys]
       [--profile FILE] [--pure-python-http]

The app is `create_app`, as `pulseboard serve` builds it, under uvicorn with the same options and
INFO logging to stderr. One extra route, `GET /bench/stats`, returns the event writer's insert
count and the number of stored events, so the benchmark can count the group commits. The first
line on stdout is JSON with the project's ingestion key. The server stops on SIGINT or SIGTERM.
With `--profile FILE`, pyinstrument samples the event loop thread while the server runs and
writes its text report to FILE at the end. With `--pure-python-http`, uvicorn uses h11 and the
asyncio loop instead of httptools and uvloop, to measure what those two packages save.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from clickhouse_connect.driver.client import Client
from starlette.responses import JSONResponse
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from pulseboard.server.app import create_app
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import load_settings
from pulseboard.server.store import Store, hash_key

STATS_PATH = "/bench/stats"


class KeyCachingStore(Store):
    """A store that remembers accepted ingestion keys, to measure what a key cache would save.

    pulseboard's own `Store.check_ingest_key` runs one query per request. This variant is used
    only with `--cache-ingest-keys`. It keeps every accepted key until the process ends, so it
    ignores key rotation.
    """

    def __init__(self, client: Client, url: str = "") -> None:
        super().__init__(client, url)
        self._accepted: set[tuple[str, str]] = set()

    def check_ingest_key(self, project_id: str, key: str) -> bool:
        entry = (project_id, hash_key(key))
        if entry in self._accepted:
            return True

        accepted = super().check_ingest_key(project_id, key)
        if accepted:
            self._accepted.add(entry)
        return accepted


def with_stats_route(app: Starlette, store: Store, project_id: str) -> ASGIApp:
    """Wrap the app so that `GET /bench/stats` reports the writer's insert count and the stored events."""

    async def stats_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STATS_PATH:
            await app(scope, receive, send)
            return

        stored = await asyncio.to_thread(
            store.query, "SELECT count() FROM events WHERE project_id = {p:String}", {"p": project_id}
        )
        body = {"insert_count": app.state.writer.insert_count, "stored_events": stored.rows[0][0]}
        await JSONResponse(body)(scope, receive, send)

    return stats_app


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """Sample the calling thread with pyinstrument and write the text report to `path`; do nothing without one."""
    if not path:
        yield
        return

    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(path).write_text(profiler.output_text(unicode=True, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="empty folder for the store and the API token")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--project", required=True, help="project to create for the ingested events")
    parser.add_argument(
        "--cache-ingest-keys", action="store_true",
        help="check each ingestion key with a query once, then accept it from memory (a what-if)",
    )
    parser.add_argument("--profile", help="write a pyinstrument profile of the event loop thread to this file")
    parser.add_argument("--pure-python-http", action="store_true", help="serve with h11 and asyncio (a what-if)")
    args = parser.parse_args()

    settings = load_settings(data_dir=args.data_dir, host="127.0.0.1", port=args.port, log_level="INFO")
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store_class = KeyCachingStore if args.cache_ingest_keys else Store
    store = store_class.open(settings.clickhouse_url)
    try:
        _, key = store.create_project(args.project)
        app = create_app(Runtime(settings, store), api_token=secrets.token_urlsafe(32))
        print(json.dumps({"ingestion_key": key}), flush=True)
        with profiled(args.profile):
            uvicorn.run(
                with_stats_route(app, store, args.project),
                host=settings.host, port=settings.port, log_level="warning", access_log=False,
                **({"http": "h11", "loop": "asyncio"} if args.pure_python_http else {}),
            )
    finally:
        store.close()


if __name__ == "__main__":
    main()

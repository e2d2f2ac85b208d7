"""Helpers of the published-result tests: publications, fixed results, a fake clock, and a real
HTTP server on 127.0.0.1 in a thread of the test process."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from pulseboard.server.public import (
    PublicationCache,
    PublicationLookup,
    RequestBudget,
    compute_publication,
    public_routes,
)
from pulseboard.server.public_page import render_page
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings, load_settings
from pulseboard.server.store import EventRow, Project, Publication, Store
from pulseboard.tools.query import Column, QueryOutput

COUNT_QUERY = "SELECT event, count() AS n FROM events GROUP BY event ORDER BY event"
EVENT_NAMES = [
    "$pageview",
    "signup",
    "$pageview",
    "<script>alert(1)</script>",
    'clicked "Buy", then left',
    "$pageview",
]
COUNT_ROWS = [["$pageview", 3], ["<script>alert(1)</script>", 1], ['clicked "Buy", then left', 1], ["signup", 1]]

START = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)

NOT_FOUND = {
    "error": {
        "code": "not_found",
        "message": "No publication matches this link. It may be mistyped, revoked or expired. "
        "Ask the person who shared it for a new link.",
    }
}


class FakeClock:
    """A monotonic clock and a wall clock that start at START and advance together by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def utc(self) -> dt.datetime:
        return START + dt.timedelta(seconds=self.seconds - 1000.0)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


class CountingCompute:
    """Wrap a compute function and count its calls, which may come from several threads."""

    def __init__(self, compute: Callable[[Publication], QueryOutput]) -> None:
        self.compute = compute
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, publication: Publication) -> QueryOutput:
        with self._lock:
            self.calls += 1
        return self.compute(publication)


def fixed_output(rows: list[list[object]] | None = None, *, truncated: bool = False) -> QueryOutput:
    rows = [["$pageview", 3], ["signup", 1]] if rows is None else rows
    return QueryOutput(
        columns=[Column(name="event", type="LowCardinality(String)"), Column(name="n", type="UInt64")],
        rows=rows,
        row_count=len(rows),
        truncated=truncated,
        elapsed_ms=1.0,
    )


def make_app(runtime: Runtime, cache: PublicationCache, budget: RequestBudget | None = None) -> Starlette:
    app = Starlette(routes=public_routes())
    app.state.runtime = runtime
    app.state.publications = cache
    app.state.publication_budget = budget or RequestBudget()
    app.state.publication_lookup = PublicationLookup(runtime.store)
    return app


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.fixture
def settings(tmp_path, store: Store) -> Settings:
    return load_settings(data_dir=tmp_path, clickhouse_url=store.url)


@pytest.fixture
def runtime(store: Store, settings: Settings) -> Runtime:
    return Runtime(settings=settings, store=store)


@pytest.fixture
def project_id(store: Store, project: tuple[Project, str]) -> str:
    """The test's project, with one event per name in EVENT_NAMES."""
    project_id = project[0].project_id
    events = [
        EventRow(
            uuid=str(uuid.uuid4()),
            event=name,
            distinct_id=f"user-{index}",
            timestamp=START - dt.timedelta(hours=index),
            properties={"account_id": "acme"},
        )
        for index, name in enumerate(EVENT_NAMES)
    ]
    store.insert_events(project_id, events)
    return project_id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(runtime: Runtime, clock: FakeClock) -> Iterator[TestClient]:
    """A client of an app that computes publications for real: HogQL through the compiler."""
    cache = PublicationCache(compute_publication(runtime), clock.monotonic, now=clock.utc)
    with TestClient(make_app(runtime, cache)) as test_client:
        yield test_client


@pytest.fixture
def counting() -> CountingCompute:
    return CountingCompute(lambda publication: fixed_output())


@pytest.fixture
def fixed_client(runtime: Runtime, clock: FakeClock, counting: CountingCompute) -> Iterator[TestClient]:
    """A client of an app whose cache computes every publication as fixed_output()."""
    cache = PublicationCache(counting, clock.monotonic, now=clock.utc)
    with TestClient(make_app(runtime, cache)) as test_client:
        yield test_client


def publish(store: Store, project_id: str, **fields: object) -> tuple[Publication, str]:
    """Create a publication of COUNT_QUERY unless `fields` override it; return it and its URL."""
    defaults = {"title": "Events by name", "description": "How often each event was sent.", "hogql": COUNT_QUERY}
    fields = {**defaults, **fields}
    publication, key = store.create_publication(project_id, **fields)
    return publication, f"/q/{publication.publication_id}?key={key}"


def render_route(path: str, publication: Publication, output: QueryOutput, **render_options: Any) -> Route:
    """A route that renders `output` as the page of `publication`, computed at START."""

    async def page(request: Request) -> Response:
        return render_page(
            request,
            publication,
            output,
            computed_at=START,
            stale_after=START + dt.timedelta(minutes=1),
            **render_options,
        )

    return Route(path, page)


@contextlib.contextmanager
def running_server(app: ASGIApp) -> Iterator[str]:
    """Serve the app with uvicorn on a free port of 127.0.0.1 in a thread; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("The test server on 127.0.0.1 did not start within 10 s.")
        time.sleep(0.01)

    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

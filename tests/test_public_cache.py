"""Caching of published results: stale-while-recompute under concurrent requests to a real server,
`?refresh=1`, ETag and 304, and the per-publication request budget."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

import httpx2
import pytest
from starlette.testclient import TestClient

from pulseboard.server.public import PublicationCache, PublicationLookup, RequestBudget
from pulseboard.server.runtime import Runtime
from pulseboard.server.store import Publication, Store
from pulseboard.tools.query import QueryOutput

pytest.register_assert_rewrite("tests.public_support")
from tests.public_support import (  # noqa: E402
    CountingCompute,
    FakeClock,
    fixed_output,
    make_app,
    publish,
    running_server,
)

# The fixtures settings, runtime, project_id, clock, counting and fixed_client.
pytest_plugins = ["tests.public_support"]


class GatedCompute:
    """A compute function whose calls after the first `free_calls` block until `gate` is set.

    Each result counts the calls so far in its `n` column, so a response shows which
    computation produced it.
    """

    def __init__(self, free_calls: int) -> None:
        self.free_calls = free_calls
        self.gate = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, publication: Publication) -> QueryOutput:
        with self._lock:
            self.calls += 1
            call = self.calls
        if call > self.free_calls:
            self.gate.wait(timeout=10)
        return fixed_output([["$pageview", call]])


class EnteredCache(PublicationCache):
    """A PublicationCache that counts the calls of `get`, read by the test thread.

    A call counted here reaches its wait for a computation in progress in the same step of the
    event loop, so once the count is in, the call is waiting.
    """

    entered = 0

    async def get(self, publication: Publication, *, refresh: bool = False):
        self.entered += 1
        return await super().get(publication, refresh=refresh)


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s} s")
        time.sleep(0.01)


def get_json(url: str) -> httpx2.Response:
    return httpx2.get(url, headers={"Accept": "application/json"}, timeout=15)


# Stale-while-recompute, with concurrent requests to a server on 127.0.0.1


def test_stale_result_while_recomputing(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    compute = GatedCompute(free_calls=1)
    cache = PublicationCache(compute, clock.monotonic, now=clock.utc, stale_wait_s=0.05)
    _, url = publish(store, project_id, cache_ttl_s=60)

    with running_server(make_app(runtime, cache)) as base_url:
        first = get_json(base_url + url)
        clock.advance(60)
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            futures = [pool.submit(get_json, base_url + url) for _ in range(10)]
            # Nine viewers get the stale result while the tenth waits for its recomputation.
            wait_until(lambda: sum(future.done() for future in futures) == 9)
            time.sleep(0.2)
            waiting = [future for future in futures if not future.done()]
            compute.gate.set()
            responses = [future.result() for future in futures]

    assert first.json()["rows"] == [["$pageview", 1]]
    assert compute.calls == 2
    assert len(waiting) == 1
    stale = [response for response in responses if response.headers["x-pulseboard-cache"] == "stale"]
    fresh = [response for response in responses if response.headers["x-pulseboard-cache"] == "miss"]
    assert len(stale) == 9
    assert len(fresh) == 1
    assert fresh[0] is waiting[0].result()
    for response in stale:
        assert response.status_code == 200
        assert response.json()["rows"] == [["$pageview", 1]]
        assert response.json()["stale"] is True
        assert response.json()["computed_at"] == "2025-03-01T12:00:00Z"
        assert response.headers["cache-control"] == "private, max-age=0"
    assert fresh[0].json()["rows"] == [["$pageview", 2]]
    assert fresh[0].json()["stale"] is False
    assert fresh[0].json()["computed_at"] == "2025-03-01T12:01:00Z"
    assert fresh[0].headers["cache-control"] == "private, max-age=60"
    assert stale[0].headers["etag"] != fresh[0].headers["etag"]


def test_first_views_wait_for_one_computation(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    compute = GatedCompute(free_calls=0)
    cache = EnteredCache(compute, clock.monotonic, now=clock.utc, stale_wait_s=0.05)
    _, url = publish(store, project_id, cache_ttl_s=60)

    with running_server(make_app(runtime, cache)) as base_url:
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            futures = [pool.submit(get_json, base_url + url) for _ in range(10)]
            wait_until(lambda: cache.entered == 10 and compute.calls == 1)
            finished_early = sum(future.done() for future in futures)
            compute.gate.set()
            responses = [future.result() for future in futures]

    assert finished_early == 0
    assert compute.calls == 1
    assert [response.status_code for response in responses] == [200] * 10
    assert sorted(response.headers["x-pulseboard-cache"] for response in responses) == ["miss"] + ["shared"] * 9
    assert {response.json()["computed_at"] for response in responses} == {"2025-03-01T12:00:00Z"}
    assert {response.json()["stale"] for response in responses} == {False}


def test_quick_recomputation_is_shared(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    compute = GatedCompute(free_calls=1)
    cache = EnteredCache(compute, clock.monotonic, now=clock.utc, stale_wait_s=5.0)
    _, url = publish(store, project_id, cache_ttl_s=60)

    with running_server(make_app(runtime, cache)) as base_url:
        get_json(base_url + url)
        clock.advance(61)
        with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
            futures = [pool.submit(get_json, base_url + url) for _ in range(5)]
            wait_until(lambda: cache.entered == 6 and compute.calls == 2)
            compute.gate.set()
            responses = [future.result() for future in futures]

    assert compute.calls == 2
    assert sorted(response.headers["x-pulseboard-cache"] for response in responses) == ["miss"] + ["shared"] * 4
    assert {response.json()["computed_at"] for response in responses} == {"2025-03-01T12:01:01Z"}
    assert {response.json()["rows"][0][1] for response in responses} == {2}


# ?refresh=1


def test_refresh_at_most_once_a_minute(
    fixed_client: TestClient, clock: FakeClock, counting: CountingCompute, store: Store, project_id: str
):
    _, url = publish(store, project_id, cache_ttl_s=600)
    _, other_url = publish(store, project_id, cache_ttl_s=600)
    # (seconds to advance, URL, query, cache status, computations so far, computed_at)
    steps = [
        (0, url, "", "miss", 1, "2025-03-01T12:00:00Z"),
        (5, url, "&refresh=1", "refresh", 2, "2025-03-01T12:00:05Z"),
        (30, url, "&refresh=1", "hit", 2, "2025-03-01T12:00:05Z"),
        (0, other_url, "&refresh=1", "refresh", 3, "2025-03-01T12:00:35Z"),
        (29.5, url, "&refresh=1", "hit", 3, "2025-03-01T12:00:05Z"),
        (0.5, url, "&refresh=1", "refresh", 4, "2025-03-01T12:01:05Z"),
        (1, url, "&refresh=0", "hit", 4, "2025-03-01T12:01:05Z"),
        (0, url, "&refresh=true", "hit", 4, "2025-03-01T12:01:05Z"),
    ]

    for advance, view_url, query, status, calls, computed_at in steps:
        clock.advance(advance)
        response = fixed_client.get(view_url + "&format=json" + query)
        assert response.status_code == 200, (advance, query)
        assert response.headers["x-pulseboard-cache"] == status, (advance, query)
        assert counting.calls == calls, (advance, query)
        assert response.json()["computed_at"] == computed_at, (advance, query)


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("refresh=yes", "invalid_refresh", "Invalid refresh value 'yes'. Use refresh=1 or refresh=0."),
        ("embed=2", "invalid_embed", "Invalid embed value '2'. Use embed=1 or embed=0."),
        ("theme=blue", "invalid_theme", "Invalid theme 'blue'. Use one of: auto, light, dark."),
    ],
)
def test_invalid_option_is_400(
    fixed_client: TestClient, counting: CountingCompute, store: Store, project_id: str, query, code, message
):
    _, url = publish(store, project_id)

    as_json = fixed_client.get(f"{url}&format=json&{query}")
    as_page = fixed_client.get(f"{url}&{query}")

    assert as_json.status_code == 400
    assert as_json.json() == {"error": {"code": code, "message": message}}
    assert as_json.headers["cache-control"] == "no-store"
    assert as_page.status_code == 400
    assert as_page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>This link has an invalid option</h1>" in as_page.text
    assert f'<p class="description">{message.replace(chr(39), "&#39;")}</p>' in as_page.text
    assert counting.calls == 0


# ETag and 304


def test_etag_and_not_modified(fixed_client: TestClient, clock: FakeClock, store: Store, project_id: str):
    _, url = publish(store, project_id, cache_ttl_s=60)

    as_json = fixed_client.get(url + "&format=json")
    etag = as_json.headers["etag"]
    again = fixed_client.get(url + "&format=json", headers={"If-None-Match": etag})
    listed = fixed_client.get(url + "&format=json", headers={"If-None-Match": f'W/"other", {etag}'})
    strong = fixed_client.get(url + "&format=json", headers={"If-None-Match": etag.removeprefix("W/")})
    star = fixed_client.get(url + "&format=json", headers={"If-None-Match": "*"})
    other = fixed_client.get(url + "&format=json", headers={"If-None-Match": 'W/"other"'})
    head = fixed_client.head(url + "&format=json", headers={"If-None-Match": etag})
    as_csv = fixed_client.get(url + "&format=csv")
    as_csv_again = fixed_client.get(url + "&format=csv", headers={"If-None-Match": as_csv.headers["etag"]})
    page = fixed_client.get(url)
    dark_page = fixed_client.get(url + "&theme=dark")
    clock.advance(60)
    recomputed = fixed_client.get(url + "&format=json", headers={"If-None-Match": etag})

    assert as_json.status_code == 200
    assert etag.startswith('W/"')
    assert len(etag) == len('W/""') + 24
    for response in (again, listed, strong, star, head, as_csv_again):
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["cache-control"] == "private, max-age=60"
        assert response.headers["access-control-allow-origin"] == "*"
    assert again.headers["etag"] == etag
    assert other.status_code == 200
    assert other.json() == as_json.json()
    assert len({etag, as_csv.headers["etag"], page.headers["etag"], dark_page.headers["etag"]}) == 4
    assert recomputed.status_code == 200
    assert recomputed.headers["etag"] != etag
    assert recomputed.json()["computed_at"] == "2025-03-01T12:01:00Z"


# The request budget


@pytest.mark.parametrize(
    ("steps"),
    [
        # (seconds to advance, expected take() results)
        [(0, [0, 0, 2]), (1, [1]), (1, [0, 2])],
        [(0, [0, 0]), (10, [0, 0, 2])],
        [(0, [0]), (0.5, [0]), (0.5, [1]), (2, [0])],
    ],
)
def test_request_budget_cases(clock: FakeClock, steps):
    budget = RequestBudget(per_minute=30, burst=2, clock=clock.monotonic)

    for advance, expected in steps:
        clock.advance(advance)
        assert [budget.take("pub_a") for _ in expected] == expected, advance


@pytest.mark.parametrize(
    ("per_minute", "burst", "message"),
    [(0, 1, "per_minute must be above 0, got 0."), (60, 0, "burst must be at least 1, got 0.")],
)
def test_request_budget_rejects_bad_limits(per_minute, burst, message):
    with pytest.raises(ValueError) as raised:
        RequestBudget(per_minute=per_minute, burst=burst)

    assert str(raised.value) == message


def test_views_over_budget_get_429(
    runtime: Runtime, clock: FakeClock, counting: CountingCompute, store: Store, project_id: str, caplog
):
    cache = PublicationCache(counting, clock.monotonic, now=clock.utc)
    budget = RequestBudget(per_minute=60, burst=3, clock=clock.monotonic)
    publication, url = publish(store, project_id)
    _, other_url = publish(store, project_id)
    wrong_key_url = f"/q/{publication.publication_id}?key=wrong&format=json"

    with caplog.at_level(logging.WARNING, logger="pulseboard.server.public"):
        with TestClient(make_app(runtime, cache, budget)) as client:
            wrong_key = [client.get(wrong_key_url).status_code for _ in range(5)]
            allowed = [client.get(url + "&format=json").status_code for _ in range(3)]
            over = client.get(url + "&format=json")
            over_page = client.get(url)
            other = client.get(other_url + "&format=json")
            clock.advance(1)
            after_wait = client.get(url + "&format=json")

    assert wrong_key == [404] * 5
    assert allowed == [200, 200, 200]
    assert over.status_code == 429
    assert over.headers["retry-after"] == "1"
    assert over.headers["cache-control"] == "no-store"
    assert over.headers["access-control-allow-origin"] == "*"
    message = (
        "This publication got more views than its budget allows. Retry after 1 seconds; "
        "tools that poll it should poll less often."
    )
    assert over.json() == {"error": {"code": "rate_limited", "message": message}}
    assert over_page.status_code == 429
    assert over_page.headers["retry-after"] == "1"
    assert "<h1>Too many views</h1>" in over_page.text
    assert other.status_code == 200
    assert after_wait.status_code == 200
    assert counting.calls == 2
    assert [record.getMessage() for record in caplog.records] == [
        f"publication {publication.publication_id} is over its request budget; retry after 1 s"
    ] * 2


# Publication lookups


def revoke_from_elsewhere(store: Store, publication_id: str) -> None:
    """Revoke a publication with SQL on the store, as another process sharing the store would."""
    store.client.command(
        "INSERT INTO publications (publication_id, project_id, title, description, recipe_id, hogql, params, "
        "key_hash, cache_ttl_s, created_at, expires_at, revoked, previous_key_hash, previous_key_valid_until, "
        "version) SELECT publication_id, project_id, title, description, recipe_id, hogql, params, key_hash, "
        "cache_ttl_s, created_at, expires_at, 1, previous_key_hash, previous_key_valid_until, version + 1 "
        "FROM publications FINAL WHERE publication_id = {i:String}",
        parameters={"i": publication_id},
    )


def lookup_client(runtime: Runtime, clock: FakeClock) -> TestClient:
    app = make_app(runtime, PublicationCache(lambda publication: fixed_output(), clock.monotonic, now=clock.utc))
    app.state.publication_lookup = PublicationLookup(runtime.store, ttl_s=5.0, clock=clock.monotonic)
    return TestClient(app)


def test_lookup_rereads_after_ttl(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    publication, url = publish(store, project_id)

    with lookup_client(runtime, clock) as client:
        before = client.get(url + "&format=json").status_code
        revoke_from_elsewhere(store, publication.publication_id)
        within_ttl = client.get(url + "&format=json").status_code
        clock.advance(5)
        after_ttl = client.get(url + "&format=json").status_code

    assert (before, within_ttl, after_ttl) == (200, 200, 404)


def test_lookup_sees_writes_of_this_process(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    revoked, revoked_url = publish(store, project_id)
    rotated, old_url = publish(store, project_id)

    with lookup_client(runtime, clock) as client:
        before = [client.get(url + "&format=json").status_code for url in (revoked_url, old_url)]
        store.revoke_publication(revoked.publication_id)
        new_key = store.rotate_publication_key(rotated.publication_id, grace_s=0)
        after_revoke = client.get(revoked_url + "&format=json").status_code
        old_key = client.get(old_url + "&format=json").status_code
        new_url = f"/q/{rotated.publication_id}?key={new_key}&format=json"
        with_new_key = client.get(new_url).status_code

    assert before == [200, 200]
    assert after_revoke == 404
    assert old_key == 404
    assert with_new_key == 200

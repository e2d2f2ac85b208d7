"""The drill-down of a published health table, `/q/<id>/drilldown`, through the real app on
constructed accounts: which accounts, in which order, under the publication's own parameters,
with the publication's keys, budget, cache, headers and error shape."""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from pulseboard.server.app import create_app
from pulseboard.server.demo import ingest_events
from pulseboard.server.public import NO_DRILLDOWN_MESSAGE, PublicationCache, RequestBudget
from pulseboard.server.public_drilldown import compute_drilldown
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store

pytest.register_assert_rewrite("tests.public_support")
from tests.public_support import NOT_FOUND, FakeClock, make_app  # noqa: E402

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 3, 14, 15, 30, tzinfo=UTC)
TOKEN = "drilldown-test-token"
HOSTILE_NAME = "<script>alert(1)</script>"
# account: (plan, events of the last 3 days). Usage is the only signal that differs between the
# accounts: none has errors or tickets, and none had events in the earlier trend period. So the
# fewer events, the lower the score.
ACCOUNTS = {
    "busy": ("pro", 200),
    "steady": ("pro", 120),
    "mid": ("starter", 60),
    "tiny": ("starter", 30),
    "low": ("starter", 20),
    "lower": ("pro", 10),
    HOSTILE_NAME: ("starter", 8),
    "lowest": ("starter", 5),
}
BOTTOM_FIVE = ["lowest", HOSTILE_NAME, "lower", "low", "tiny"]
BOTTOM_FIVE_STARTER = ["lowest", HOSTILE_NAME, "low", "tiny", "mid"]
SECTION_NAMES = [
    "summary",
    "usage_by_week",
    "active_users",
    "top_events",
    "errors",
    "tickets",
    "billing",
    "score_history",
    "last_activity",
]
DATA_HEADERS = {
    "access-control-allow-origin": "*",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex, nofollow",
    "vary": "Accept, Authorization",
    "content-security-policy": "default-src 'none'",
}


def constructed_events() -> list[dict[str, Any]]:
    """ACCOUNTS, each started 40 days before NOW, plus `gone`, which cancelled 5 days before NOW.

    Each account's events are `query_run` by one user, one second apart from 3 days before NOW.
    """
    events: list[dict[str, Any]] = []

    def add(account: str, name: str, count: int, days_ago: float, **properties: Any) -> None:
        start = NOW - dt.timedelta(days=days_ago)
        events.extend(
            {
                "event": name,
                "distinct_id": f"{account}-user",
                "timestamp": (start + dt.timedelta(seconds=index)).isoformat(),
                "properties": {"account_id": account, **properties},
            }
            for index in range(count)
        )

    for account, (plan, count) in ACCOUNTS.items():
        add(account, "subscription_started", 1, 40, plan=plan, mrr=100)
        add(account, "query_run", count, 3)
    add("gone", "subscription_started", 1, 40, plan="starter", mrr=100)
    add("gone", "query_run", 1, 3)
    add("gone", "subscription_cancelled", 1, 5)
    return events


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("drilldown-settings"))


@pytest.fixture(scope="module")
def project_id(store: Store) -> str:
    project, _ = store.create_project("dd" + NOW.strftime("%H%M") + str(id(store))[-6:])
    ingest_events(store, project.project_id, constructed_events(), now=NOW)
    return project.project_id


@pytest.fixture(scope="module")
def runtime(store: Store, settings: Settings) -> Runtime:
    return Runtime(settings=settings, store=store)


@pytest.fixture(scope="module")
def client(runtime: Runtime) -> Iterator[TestClient]:
    """A client of the app that `pulseboard serve` runs, shared by the module's tests.

    A drill-down takes a few seconds to compute, so the tests that only read share one
    publication (`shared`), whose drill-down this app computes once.
    """
    with TestClient(create_app(runtime, api_token=TOKEN), base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def shared(store: Store, project_id: str) -> tuple[str, str, str]:
    """A health publication with the default parameters at NOW, whose keys no test changes."""
    return publish_health(store, project_id)


def publish_health(store: Store, project_id: str, **params: Any) -> tuple[str, str, str]:
    """Publish the health recipe at NOW with extra parameters; return its id, key and table path."""
    publication, key = store.create_publication(
        project_id,
        title="Account health",
        recipe_id="account_health_score",
        params={"as_of": NOW.isoformat(), **params},
    )
    publication_id = publication.publication_id
    return publication_id, key, f"/q/{publication_id}?key={key}"


def drilldown_path(publication_id: str, key: str) -> str:
    return f"/q/{publication_id}/drilldown?key={key}"


def with_query(path: str, **query: str) -> str:
    """Append query parameters to a path that may already have a query string."""
    return path + ("&" if "?" in path else "?") + urlencode(query)


def table_rows(client: TestClient, path: str) -> dict[str, dict[str, Any]]:
    document = client.get(with_query(path, format="json")).json()
    names = [column["name"] for column in document["columns"]]
    return {row[0]: dict(zip(names, row)) for row in document["rows"]}


def sections_of(account: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {section["name"]: section for section in account["sections"]}


# Which accounts, in which order


def test_bottom_five_as_json(client: TestClient, shared: tuple[str, str, str]):
    publication_id, key, table_path = shared

    response = client.get(with_query(drilldown_path(publication_id, key), format="json"))
    table = table_rows(client, table_path)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["version"] == 1
    assert document["publication"]["id"] == publication_id
    assert document["publication"]["recipe_id"] == "account_health_score"
    assert document["as_of"] == "2025-03-14T15:30:00Z"
    assert document["stale"] is False
    accounts = document["accounts"]
    assert [account["account"] for account in accounts] == BOTTOM_FIVE
    for account in accounts:
        row = table[account["account"]]
        assert account["health_score"] == row["health_score"], account["account"]
        assert account["status"] == row["status"], account["account"]
        assert account["top_risk_signal"] == row["top_risk_signal"], account["account"]
        assert [section["name"] for section in account["sections"]] == SECTION_NAMES, account["account"]
    scores = [account["health_score"] for account in accounts]
    assert scores == sorted(scores)
    assert scores[0] < scores[1]


def test_sections_hold_the_account_events(client: TestClient, shared: tuple[str, str, str]):
    publication_id, key, _ = shared

    accounts = client.get(with_query(drilldown_path(publication_id, key), format="json")).json()["accounts"]
    lowest = sections_of(accounts[0])
    hostile = sections_of(accounts[1])

    assert accounts[0]["last_seen"] == "2025-03-11T15:30:04+00:00"
    assert lowest["top_events"]["rows"] == [["query_run", 5, 1, "2025-03-11T15:30:04+00:00"]]
    assert lowest["active_users"]["rows"] == [["lowest-user", 5, "2025-03-11T15:30:04+00:00"]]
    assert lowest["billing"]["rows"] == [["2025-02-02T15:30:00+00:00", "subscription_started", "starter", 100.0]]
    assert lowest["errors"]["rows"] == []
    assert hostile["top_events"]["rows"] == [["query_run", 8, 1, "2025-03-11T15:30:07+00:00"]]
    assert [column["name"] for column in lowest["top_events"]["columns"]] == ["event", "events", "users", "last_seen"]


def test_plan_filter_chooses_from_plan(client: TestClient, store: Store, project_id: str):
    publication_id, key, _ = publish_health(store, project_id, plan="starter")

    accounts = client.get(with_query(drilldown_path(publication_id, key), format="json")).json()["accounts"]

    assert [account["account"] for account in accounts] == BOTTOM_FIVE_STARTER


def test_summary_takes_publication_scores(
    client: TestClient, store: Store, project_id: str, shared: tuple[str, str, str]
):
    # Usage alone: every account's score differs from the default weights' score.
    publication_id, key, table_path = publish_health(store, project_id, w_trend=0, w_friction=0)
    _, _, default_path = shared

    accounts = client.get(with_query(drilldown_path(publication_id, key), format="json")).json()["accounts"]
    table = table_rows(client, table_path)
    default_table = table_rows(client, default_path)

    assert [account["account"] for account in accounts] == BOTTOM_FIVE
    for account in accounts:
        name = account["account"]
        summary = dict(sections_of(account)["summary"]["rows"])
        assert account["health_score"] == table[name]["health_score"], name
        assert account["health_score"] != default_table[name]["health_score"], name
        assert summary["health_score"] == f"{table[name]['health_score']:g}", name
        assert summary["status"] == table[name]["status"], name


def test_other_publications_have_no_drilldown(client: TestClient, store: Store, project_id: str):
    publication, key = store.create_publication(
        project_id, title="Events", hogql="SELECT event, count() AS n FROM events GROUP BY event"
    )
    path = drilldown_path(publication.publication_id, key)

    as_json = client.get(with_query(path, format="json"))
    as_html = client.get(path)
    table_page = client.get(f"/q/{publication.publication_id}?key={key}")

    assert as_json.status_code == 404
    assert as_json.json() == {"error": {"code": "not_found", "message": NO_DRILLDOWN_MESSAGE}}
    assert as_json.headers["access-control-allow-origin"] == "*"
    assert as_html.status_code == 404
    assert "This publication has no drill-down" in as_html.text
    assert table_page.status_code == 200
    assert "/drilldown" not in table_page.text


# Keys, budget and errors


def test_rejected_keys_get_one_404(client: TestClient, store: Store, project_id: str):
    live_id, live_key, _ = publish_health(store, project_id)
    revoked_id, revoked_key, _ = publish_health(store, project_id)
    store.revoke_publication(revoked_id)
    rotated_id, old_key, _ = publish_health(store, project_id)
    store.rotate_publication_key(rotated_id, grace_s=0)
    rejected = {
        "unknown id": "/q/pub_0000000000000000/drilldown?key=" + live_key,
        "wrong key": drilldown_path(live_id, "wrong"),
        "missing key": f"/q/{live_id}/drilldown",
        "key of another publication": drilldown_path(live_id, revoked_key),
        "revoked": drilldown_path(revoked_id, revoked_key),
        "rotated past its grace period": drilldown_path(rotated_id, old_key),
    }

    responses = {reason: client.get(with_query(path, format="json")) for reason, path in rejected.items()}

    for reason, response in responses.items():
        assert response.status_code == 404, reason
        assert response.json() == NOT_FOUND, reason
        assert response.headers["cache-control"] == "no-store", reason


def test_rotated_key_opens_drilldown(client: TestClient, store: Store, project_id: str):
    # No account is on the enterprise plan, so the drill-down is empty and quick to compute.
    publication_id, old_key, _ = publish_health(store, project_id, plan="enterprise")
    new_key = store.rotate_publication_key(publication_id, grace_s=3600)
    assert new_key is not None

    with_new = client.get(with_query(drilldown_path(publication_id, new_key), format="json"))
    with_old = client.get(with_query(drilldown_path(publication_id, old_key), format="json"))
    with_bearer = client.get(
        f"/q/{publication_id}/drilldown", headers={"Authorization": f"Bearer {new_key}", "Accept": "application/json"}
    )
    store.revoke_publication(publication_id)
    after_revoke = client.get(with_query(drilldown_path(publication_id, new_key), format="json"))

    assert with_new.status_code == 200
    assert with_old.status_code == 200
    assert with_bearer.status_code == 200
    assert with_bearer.headers["content-type"] == "application/json"
    assert with_bearer.json()["accounts"] == []
    assert after_revoke.status_code == 404
    assert after_revoke.json() == NOT_FOUND


def test_budget_is_shared_with_table(runtime: Runtime, store: Store, project_id: str):
    publication_id, key, table_path = publish_health(store, project_id, plan="enterprise")
    budget = RequestBudget(per_minute=1, burst=2, clock=FakeClock().monotonic)

    with TestClient(create_app(runtime, api_token=TOKEN, publication_budget=budget)) as client:
        table = client.get(with_query(table_path, format="json"))
        drilldown = client.get(with_query(drilldown_path(publication_id, key), format="json"))
        over = client.get(with_query(drilldown_path(publication_id, key), format="json"))

    assert table.status_code == 200
    assert drilldown.status_code == 200
    assert over.status_code == 429
    assert over.headers["retry-after"] == "60"
    assert over.json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"format": "csv"}, "Invalid format 'csv'. Use one of: html, json."),
        ({"format": "xml"}, "Invalid format 'xml'. Use one of: html, json."),
        ({"format": "json", "theme": "neon"}, "Invalid theme 'neon'. Use one of: auto, light, dark."),
        ({"format": "json", "refresh": "yes"}, "Invalid refresh value 'yes'. Use refresh=1 or refresh=0."),
    ],
)
def test_invalid_options_are_400(client: TestClient, shared: tuple[str, str, str], query, message: str):
    publication_id, key, _ = shared

    response = client.get(with_query(drilldown_path(publication_id, key), **query))

    assert response.status_code == 400
    assert response.json()["error"]["message"] == message


def test_accept_header_chooses_format(client: TestClient, shared: tuple[str, str, str]):
    publication_id, key, _ = shared
    path = drilldown_path(publication_id, key)

    as_json = client.get(path, headers={"Accept": "application/json"})
    as_csv_only = client.get(path, headers={"Accept": "text/csv"})
    from_browser = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})

    assert as_json.headers["content-type"] == "application/json"
    assert as_csv_only.headers["content-type"] == "text/html; charset=utf-8"
    assert from_browser.headers["content-type"] == "text/html; charset=utf-8"


def test_preflight_and_methods(client: TestClient, shared: tuple[str, str, str]):
    publication_id, key, _ = shared
    path = drilldown_path(publication_id, key)

    preflight = client.options(path)
    post = client.post(path)

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert post.status_code == 405
    assert post.json() == {
        "error": {"code": "method_not_allowed", "message": "Method POST is not allowed on published results. Use GET or HEAD."}
    }


def test_one_log_line_without_key(client: TestClient, shared: tuple[str, str, str], caplog):
    publication_id, key, _ = shared

    with caplog.at_level(logging.INFO, logger="pulseboard.server.public"):
        client.get(with_query(drilldown_path(publication_id, key), format="json"))
        client.head(drilldown_path(publication_id, key))

    lines = [record.getMessage() for record in caplog.records if record.name == "pulseboard.server.public"]
    assert len(lines) == 2
    assert re.fullmatch(rf"GET /q/{publication_id}/drilldown format=json status=200 cache=(hit|miss) ms=[0-9.]+", lines[0])
    assert re.fullmatch(rf"HEAD /q/{publication_id}/drilldown format=html status=200 cache=hit ms=[0-9.]+", lines[1])
    assert all(key not in record.getMessage() for record in caplog.records)


# Caching and headers


def test_cached_like_the_publication(runtime: Runtime, store: Store, project_id: str):
    publication_id, key, _ = publish_health(store, project_id, plan="enterprise")
    clock = FakeClock()
    app = make_app(runtime, PublicationCache(lambda publication: None, clock.monotonic, now=clock.utc))
    app.state.publication_drilldowns = PublicationCache(compute_drilldown(runtime), clock.monotonic, now=clock.utc)
    path = drilldown_path(publication_id, key)

    with TestClient(app) as client:
        first = client.get(with_query(path, format="json"))
        clock.advance(30)
        second = client.get(with_query(path, format="json"))
        not_modified = client.get(with_query(path, format="json"), headers={"If-None-Match": first.headers["etag"]})
        clock.advance(31)
        recomputed = client.get(with_query(path, format="json"))
        page = client.get(path)

    assert first.headers["x-pulseboard-cache"] == "miss"
    assert first.headers["cache-control"] == "private, max-age=60"
    assert first.headers["x-pulseboard-computed-at"] == "2025-03-01T12:00:00Z"
    assert first.json()["computed_at"] == "2025-03-01T12:00:00Z"
    assert first.json()["stale_after"] == "2025-03-01T12:01:00Z"
    for name, value in DATA_HEADERS.items():
        assert first.headers[name] == value, name
    assert re.fullmatch(r'W/"[0-9a-f]{24}"', first.headers["etag"])
    assert second.headers["x-pulseboard-cache"] == "hit"
    assert second.headers["cache-control"] == "private, max-age=30"
    assert second.headers["etag"] == first.headers["etag"]
    assert not_modified.status_code == 304
    assert recomputed.headers["x-pulseboard-cache"] == "miss"
    assert recomputed.json()["computed_at"] == "2025-03-01T12:01:01Z"
    assert recomputed.headers["etag"] != first.headers["etag"]
    assert page.headers["x-pulseboard-cache"] == "hit"
    assert page.headers["etag"] != recomputed.headers["etag"]


# The HTML page


def test_page_shows_blocks_and_escapes(client: TestClient, shared: tuple[str, str, str]):
    publication_id, key, table_path = shared

    table_page = client.get(table_path)
    response = client.get(drilldown_path(publication_id, key))
    page = response.text

    assert table_page.status_code == 200
    assert f'<a href="{publication_id}/drilldown?key={key}">Drill-down of the lowest-scoring accounts →</a>' in (
        table_page.text
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    nonce = re.search(r"script-src 'nonce-([^']+)'", response.headers["content-security-policy"]).group(1)
    assert response.headers["content-security-policy"] == (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; base-uri 'none'; form-action 'none'"
    )
    assert "<title>Account health: drill-down</title>" in page
    assert f'<a href="../{publication_id}?key={key}">← Back to the table</a>' in page
    blocks = re.findall(r'<section class="account" id="(account-\d)" aria-label="([^"]*)">\n<h2>([^<]*)</h2>', page)
    assert blocks == [(f"account-{number}", html.escape(name), html.escape(name)) for number, name in enumerate(BOTTOM_FIVE, 1)]
    assert page.count("<script") == 1
    assert HOSTILE_NAME not in page
    assert page.count("<h3>Usage per week, last 12 weeks <span class=\"count\">12 rows</span></h3>") == 5

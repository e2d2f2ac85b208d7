"""Published-result pages under /q/: formats, keys, CORS, caching and errors, on the real store."""

from __future__ import annotations

import datetime as dt
import logging
import re
from html import escape as html_escape

import pytest
from starlette.testclient import TestClient

from pulseboard.server.public import PublicationCache
from pulseboard.server.runtime import Runtime
from pulseboard.server.store import Publication, Store
from pulseboard.tools.query import Column, QueryOutput

pytest.register_assert_rewrite("tests.public_support")
from tests.public_support import (  # noqa: E402
    COUNT_ROWS,
    NOT_FOUND,
    CountingCompute,
    FakeClock,
    fixed_output,
    iso,
    make_app,
    publish,
)

# The fixtures settings, runtime, project_id, clock, client, counting and fixed_client.
pytest_plugins = ["tests.public_support"]

# Results of a HogQL publication, computed for real


def test_hogql_publication_as_json(client: TestClient, store: Store, project_id: str):
    publication, url = publish(store, project_id)

    response = client.get(url, headers={"Accept": "application/json"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "version": 1,
        "publication": {
            "id": publication.publication_id,
            "title": "Events by name",
            "description": "How often each event was sent.",
            "recipe_id": None,
            "params": {},
            "created_at": iso(publication.created_at),
            "expires_at": None,
        },
        "columns": [{"name": "event", "type": "LowCardinality(String)"}, {"name": "n", "type": "UInt64"}],
        "rows": COUNT_ROWS,
        "row_count": 4,
        "truncated": False,
        "computed_at": "2025-03-01T12:00:00Z",
        "stale_after": "2025-03-01T12:01:00Z",
        "stale": False,
    }
    assert response.headers["x-pulseboard-computed-at"] == "2025-03-01T12:00:00Z"


def test_hogql_publication_as_csv(client: TestClient, store: Store, project_id: str):
    publication, url = publish(store, project_id)

    response = client.get(url + "&format=csv")

    assert response.status_code == 200
    assert response.text == (
        "event,n\r\n"
        "$pageview,3\r\n"
        "<script>alert(1)</script>,1\r\n"
        '"clicked ""Buy"", then left",1\r\n'
        "signup,1\r\n"
    )
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'inline; filename="{publication.publication_id}.csv"'
    assert response.headers["x-pulseboard-computed-at"] == "2025-03-01T12:00:00Z"
    assert response.headers["cache-control"] == "private, max-age=60"


def test_hogql_publication_as_html(client: TestClient, store: Store, project_id: str):
    _, url = publish(store, project_id, title="Events <b>by</b> name")

    response = client.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert page.startswith("<!doctype html>\n")
    assert "<title>Events &lt;b&gt;by&lt;/b&gt; name</title>" in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page
    assert "<script>alert(1)" not in page
    assert "<td>clicked &#34;Buy&#34;, then left</td>" in page
    assert '<td class="num" data-sort="3">3</td>' in page
    assert '<th scope="col" data-type="number" class="num" title="UInt64"><button type="button">n</button></th>' in page
    assert 'Computed <time datetime="2025-03-01T12:00:00Z">2025-03-01 12:00:00 UTC</time>' in page
    assert 'Next refresh after <time datetime="2025-03-01T12:01:00Z">2025-03-01 12:01:00 UTC</time>' in page
    assert "<span>4 rows</span>" in page
    assert "Truncated" not in page


def test_hogql_publication_that_fails_now(client: TestClient, store: Store, project_id: str, caplog):
    _, url = publish(store, project_id, hogql="SELECT no_such_column FROM events")

    with caplog.at_level(logging.INFO, logger="pulseboard.server.public"):
        response = client.get(url + "&format=json")

    assert response.status_code == 500
    error_id = response.json()["error"]["error_id"]
    assert re.fullmatch(r"[0-9a-f]{8}", error_id)
    failures = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(failures) == 1
    assert error_id in failures[0].getMessage()
    assert failures[0].exc_info is not None


# Keys and the one 404


def rejected_views(store: Store, project_id: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Return one (path, headers) per reason a view is rejected."""
    live, live_url = publish(store, project_id)
    revoked, revoked_url = publish(store, project_id)
    store.revoke_publication(revoked.publication_id)
    an_hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    _, expired_url = publish(store, project_id, expires_at=an_hour_ago)
    live_path = f"/q/{live.publication_id}"
    return {
        "unknown id": ("/q/pub_0000000000000000?key=" + live_url.split("key=")[1], {}),
        "wrong key": (live_path + "?key=wrong", {}),
        "missing key": (live_path, {}),
        "empty key": (live_path + "?key=", {}),
        "wrong bearer key": (live_path, {"Authorization": "Bearer wrong"}),
        "key of another publication": (live_path + "?key=" + revoked_url.split("key=")[1], {}),
        "revoked": (revoked_url, {}),
        "expired": (expired_url, {}),
        "malformed id": ("/q/pub%20x%0Ay?key=x", {}),
        "unknown path": ("/q/a/b", {}),
        "unknown view of a live publication": (live_path + "/extra?key=" + live_url.split("key=")[1], {}),
    }


@pytest.mark.parametrize(
    ("requested", "html"),
    [({}, True), ({"format": "json"}, False), ({"format": "csv"}, False), ({"format": "html"}, True)],
)
def test_rejected_views_get_one_404(fixed_client: TestClient, store: Store, project_id: str, requested, html: bool):
    responses = {
        reason: fixed_client.get(path, params=requested, headers=headers)
        for reason, (path, headers) in rejected_views(store, project_id).items()
    }

    for reason, response in responses.items():
        assert response.status_code == 404, reason
        if html:
            assert response.headers["content-type"] == "text/html; charset=utf-8", reason
            assert "Publication not found" in response.text, reason
            assert html_escape(NOT_FOUND["error"]["message"]) in response.text, reason
        else:
            assert response.json() == NOT_FOUND, reason
        assert response.headers["access-control-allow-origin"] == "*", reason
        assert response.headers["cache-control"] == "no-store", reason
        assert "access-control-allow-credentials" not in response.headers, reason

    # HTML pages differ only in their per-response CSP nonce.
    def without_nonce(text: str) -> str:
        return re.sub(r"nonce-?[=\"']*[A-Za-z0-9_-]{16,}", "nonce", text)

    bodies = {without_nonce(response.text) for response in responses.values()}
    assert len(bodies) == 1
    header_sets = {
        tuple(sorted((name, without_nonce(value)) for name, value in response.headers.items()))
        for response in responses.values()
    }
    assert len(header_sets) == 1


def test_key_from_bearer_header(fixed_client: TestClient, store: Store, project_id: str):
    publication, url = publish(store, project_id)
    key = url.split("key=")[1]

    response = fixed_client.get(f"/q/{publication.publication_id}.json", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 200
    assert response.json()["rows"] == [["$pageview", 3], ["signup", 1]]


# Formats


@pytest.mark.parametrize(
    ("suffix", "query", "accept", "content_type"),
    [
        ("", "", None, "text/html; charset=utf-8"),
        ("", "", "*/*", "text/html; charset=utf-8"),
        ("", "", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html; charset=utf-8"),
        ("", "", "application/json", "application/json"),
        ("", "", "application/json, text/plain, */*", "application/json"),
        ("", "", "text/html;q=0.5, application/json", "application/json"),
        ("", "", "text/csv", "text/csv; charset=utf-8"),
        ("", "", "image/png", "text/html; charset=utf-8"),
        ("", "&format=json", None, "application/json"),
        ("", "&format=csv", "application/json", "text/csv; charset=utf-8"),
        ("", "&format=html", "application/json", "text/html; charset=utf-8"),
        (".json", "", "text/html", "application/json"),
        (".csv", "", None, "text/csv; charset=utf-8"),
        (".csv", "&format=csv", None, "text/csv; charset=utf-8"),
    ],
)
def test_format_choice(
    fixed_client: TestClient, store: Store, project_id: str, suffix, query, accept, content_type
):
    publication, url = publish(store, project_id)
    key = url.split("key=")[1]
    headers = {} if accept is None else {"Accept": accept}

    response = fixed_client.get(f"/q/{publication.publication_id}{suffix}?key={key}{query}", headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["vary"] == "Accept, Authorization"


@pytest.mark.parametrize(
    ("path_suffix", "query", "message"),
    [
        ("", "format=xml", "Invalid format 'xml'. Use one of: html, json, csv."),
        ("", "format=JSON", "Invalid format 'JSON'. Use one of: html, json, csv."),
        ("", "format=", "Invalid format ''. Use one of: html, json, csv."),
        (".csv", "format=json", "Format 'json' contradicts the path suffix '.csv'. Drop one of them."),
    ],
)
def test_bad_format_is_400(fixed_client: TestClient, counting: CountingCompute, path_suffix, query, message):
    response = fixed_client.get(f"/q/pub_0000000000000000{path_suffix}?{query}")

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_format", "message": message}}
    assert response.headers["access-control-allow-origin"] == "*"
    assert counting.calls == 0


def test_json_and_csv_share_computed_at(fixed_client: TestClient, clock: FakeClock, store: Store, project_id: str):
    _, url = publish(store, project_id)

    as_json = fixed_client.get(url + "&format=json")
    clock.advance(10)
    as_csv = fixed_client.get(url + "&format=csv")
    as_html = fixed_client.get(url)

    assert as_json.json()["computed_at"] == "2025-03-01T12:00:00Z"
    assert as_csv.text == "event,n\r\n$pageview,3\r\nsignup,1\r\n"
    assert as_csv.headers["x-pulseboard-computed-at"] == "2025-03-01T12:00:00Z"
    assert as_html.headers["x-pulseboard-computed-at"] == "2025-03-01T12:00:00Z"
    assert '<time datetime="2025-03-01T12:00:00Z">2025-03-01 12:00:00 UTC</time>' in as_html.text


def test_truncated_result(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    cache = PublicationCache(lambda publication: fixed_output(truncated=True), clock.monotonic, now=clock.utc)
    _, url = publish(store, project_id)

    with TestClient(make_app(runtime, cache)) as test_client:
        as_json = test_client.get(url + "&format=json")
        as_html = test_client.get(url)

    assert as_json.json()["truncated"] is True
    assert as_json.json()["row_count"] == 2
    assert (
        '<p class="note">Truncated: only the first 2 rows are shown, because the query returned more '
        "than its row limit.</p>"
    ) in as_html.text


def test_head_sends_headers_only(fixed_client: TestClient, store: Store, project_id: str):
    _, url = publish(store, project_id)

    got = fixed_client.get(url + "&format=json")
    head = fixed_client.head(url + "&format=json")

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"] == "application/json"
    assert head.headers["access-control-allow-origin"] == "*"


# HTML page


def test_page_security_headers(fixed_client: TestClient, store: Store, project_id: str):
    _, url = publish(store, project_id)

    first = fixed_client.get(url)
    second = fixed_client.get(url)

    nonce = re.search(r'<script nonce="([^"]+)">', first.text).group(1)
    assert first.headers["content-security-policy"] == (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "base-uri 'none'; form-action 'none'"
    )
    assert f'<style nonce="{nonce}">' in first.text
    assert first.text.count("<script") == 1
    assert first.text.count("<style") == 1
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert first.headers["cache-control"] == "private, max-age=60"
    assert "http://" not in first.text
    assert "https://" not in first.text
    second_nonce = re.search(r'<script nonce="([^"]+)">', second.text).group(1)
    assert second_nonce != nonce


def health_client(runtime: Runtime, clock: FakeClock, output: QueryOutput) -> TestClient:
    cache = PublicationCache(lambda publication: output, clock.monotonic, now=clock.utc)
    return TestClient(make_app(runtime, cache))


def header_names(page: str) -> list[str]:
    return re.findall(r'<th scope="col"[^>]*><button type="button">([^<]*)</button></th>', page)


def test_health_recipe_page(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    columns = [
        Column(name="account", type="String"),
        Column(name="plan", type="Nullable(String)"),
        Column(name="mrr", type="Nullable(Float64)"),
        Column(name="trend", type="Int64"),
        Column(name="health_score", type="Float64"),
        Column(name="status", type="String"),
    ]
    rows = [
        ["<script>alert(1)</script>", "enterprise", 5000.0, -800, 31.5, "critical"],
        ["acme", "pro", 750.5, 4100, 88.0, "champion"],
        ["tinyco", None, None, 0, 120.0, "unheard-of"],
    ]
    output = QueryOutput(columns=columns, rows=rows, row_count=3, truncated=False, elapsed_ms=1.0)
    _, url = publish(store, project_id, hogql="", recipe_id="account_health_score", params={"w_revenue": 10})

    with health_client(runtime, clock, output) as test_client:
        page = test_client.get(url).text
        as_json = test_client.get(url + "&format=json").json()

    assert '<td class="area-account" data-label="account">&lt;script&gt;alert(1)&lt;/script&gt;</td>' in page
    assert "<script>alert(1)" not in page
    expected_cells = [
        '<td class="area-status" data-label="status" data-sort="0"><span class="status status-critical">critical</span></td>',
        '<td class="area-status" data-label="status" data-sort="4"><span class="status status-champion">champion</span></td>',
        '<td class="area-status" data-label="status" data-sort="5"><span class="status status-other">unheard-of</span></td>',
        '<td class="num area-score" data-label="health_score" data-sort="31.5"><span class="score">',
        '<rect class="fill" width="31.5" height="8"/></svg><span>31.5</span>',
        '<rect class="fill" width="88" height="8"/></svg><span>88</span>',
        '<rect class="fill" width="100" height="8"/></svg><span>120</span>',
        '<td class="num trend-down area-fact" data-label="trend" data-sort="-800"><span aria-hidden="true">▼</span> −800</td>',
        '<td class="num trend-up area-fact" data-label="trend" data-sort="4100"><span aria-hidden="true">▲</span> +4,100</td>',
        '<td class="num trend-flat area-fact" data-label="trend" data-sort="0"><span aria-hidden="true">→</span> 0</td>',
        '<td class="num area-fact" data-label="mrr" data-sort="5000.0">$5,000</td>',
        '<td class="num area-fact" data-label="mrr" data-sort="750.5">$750.50</td>',
        '<td class="null num area-fact" data-label="mrr" data-null>—</td>',
        '<td class="null area-fact" data-label="plan" data-null>—</td>',
        '<th scope="col" data-type="number" class="area-status" '
        'title="Band of the score: critical, warn, ok, healthy or champion."><button type="button">status</button></th>',
    ]
    for cell in expected_cells:
        assert cell in page
    assert header_names(page) == ["account", "health_score", "status", "trend", "mrr", "plan"]
    assert as_json["publication"]["recipe_id"] == "account_health_score"
    assert as_json["publication"]["params"] == {"w_revenue": 10}
    assert [column["name"] for column in as_json["columns"]] == ["account", "plan", "mrr", "trend", "health_score", "status"]
    assert as_json["rows"] == rows


# The recipe's output columns in the recipe's order, with one column that no group names.
HEALTH_COLUMNS = [
    ("account", "String", "acme"),
    ("plan", "String", "pro"),
    ("mrr", "Float64", 750.0),
    ("events_30d", "UInt64", 18400),
    ("trend", "Int64", 4100),
    ("errors_30d", "UInt64", 4),
    ("tickets_30d", "UInt64", 1),
    ("health_score", "Float64", 97.6),
    ("status", "String", "champion"),
    ("top_risk_signal", "String", "none"),
    ("usage_score", "Float64", 98.2),
    ("trend_score", "Float64", 100.0),
    ("friction_score", "Float64", 94.6),
    ("revenue_score", "Float64", 15.0),
    ("trend_change_pct", "Nullable(Float64)", 22.3),
    ("active_users_30d", "UInt64", 12),
    ("last_seen_days_ago", "Nullable(Int64)", 1),
    ("nps", "Nullable(Float64)", 50.0),
    ("coverage", "String", "usage, trend, friction, revenue"),
    ("second_risk_signal", "String", "none"),
    ("score_change_7d", "Nullable(Float64)", -4.5),
    ("score_change_30d", "Nullable(Float64)", 12.0),
    ("score_history", "Array(Float64)", [90.0, 93.1, 97.6]),
    ("region", "String", "emea"),
]


def test_health_page_column_order(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    output = QueryOutput(
        columns=[Column(name=name, type=type_name) for name, type_name, _ in HEALTH_COLUMNS],
        rows=[[value for _, _, value in HEALTH_COLUMNS]],
        row_count=1,
        truncated=False,
        elapsed_ms=1.0,
    )
    _, url = publish(store, project_id, hogql="", recipe_id="account_health_score")

    with health_client(runtime, clock, output) as test_client:
        page = test_client.get(url).text
        as_csv = test_client.get(url + "&format=csv").text

    expected_order = [
        "account", "health_score", "status", "trend", "score_history", "top_risk_signal", "mrr", "plan",
        "score_change_7d", "score_change_30d", "trend_change_pct", "last_seen_days_ago",
        "second_risk_signal", "coverage",
        "events_30d", "active_users_30d", "errors_30d", "tickets_30d", "nps",
        "usage_score", "trend_score", "friction_score", "revenue_score",
        "region",
    ]
    assert header_names(page) == expected_order
    assert re.findall(r'<td[^>]* data-label="([^"]+)"', page) == expected_order
    header_pattern = r'<th scope="col"[^>]*?(?: class="([^"]*)")? title="[^"]*"><button type="button">([^<]*)<'
    header_classes = {name: classes for classes, name in re.findall(header_pattern, page)}
    assert header_classes == {
        "account": "area-account",
        "health_score": "num area-score",
        "status": "area-status",
        "trend": "num area-fact",
        "score_history": "area-fact",
        "top_risk_signal": "area-risk",
        "mrr": "num area-fact",
        "plan": "area-fact",
        "score_change_7d": "num area-fact group-start",
        "score_change_30d": "num area-detail",
        "trend_change_pct": "num area-detail",
        "last_seen_days_ago": "num area-fact",
        "second_risk_signal": "area-detail group-start",
        "coverage": "area-detail",
        "events_30d": "num area-detail group-start",
        "active_users_30d": "num area-detail",
        "errors_30d": "num area-detail",
        "tickets_30d": "num area-detail",
        "nps": "num area-detail",
        "usage_score": "num area-detail group-start",
        "trend_score": "num area-detail",
        "friction_score": "num area-detail",
        "revenue_score": "num area-detail",
        "region": "area-detail group-start",
    }
    assert '<td class="num area-detail group-start" data-label="usage_score" data-sort="98.2">98.2</td>' in page
    assert '<td class="area-risk" data-label="top_risk_signal">none</td>' in page
    assert (
        '<td class="num trend-down area-fact group-start" data-label="score_change_7d" data-sort="-4.5">'
        '<span aria-hidden="true">▼</span> −4.5</td>'
    ) in page
    assert (
        '<td class="num trend-up area-detail" data-label="score_change_30d" data-sort="12.0">'
        '<span aria-hidden="true">▲</span> +12</td>'
    ) in page
    assert '<td class="num area-detail" data-label="trend_change_pct" data-sort="22.3">+22.3%</td>' in page
    assert '<td class="num area-fact" data-label="last_seen_days_ago" data-sort="1">1</td>' in page
    assert (
        '<td class="area-detail" data-label="coverage">usage, trend, friction, revenue</td>'
    ) in page
    assert '<span class="visually-hidden">Score history, oldest first: 90, 93.1, 97.6</span>' in page
    # The region column is not one of the recipe's, so its tooltip is its type.
    assert 'class="area-detail group-start" title="String"><button type="button">region</button>' in page
    assert (
        'class="num area-detail" title="$exception events in the 30 days before as_of.">'
        '<button type="button">errors_30d</button>'
    ) in page
    assert as_csv.splitlines()[0] == ",".join(name for name, _, _ in HEALTH_COLUMNS)


WEIGHT_CASES = [
    (
        {},
        "The health score (0 to 100) weighs usage 40%, usage trend 30% and friction (errors and support tickets) "
        "30%. Revenue is not counted (weight 0). A cancelled account scores 0. Status: critical below 40, "
        "warn from 40, ok from 55, healthy from 70, champion from 85.",
    ),
    (
        {"w_trend": 20, "w_revenue": 10},
        "The health score (0 to 100) weighs usage 40%, usage trend 20%, friction (errors and support tickets) "
        "30% and revenue 10%. A cancelled account scores 0. Status: critical below 40, warn from 40, ok from 55, "
        "healthy from 70, champion from 85.",
    ),
    (
        {"w_usage": "1", "w_trend": 1, "w_friction": 1.0, "band_warn": 30, "band_champion": 92.5},
        "The health score (0 to 100) weighs usage 33.3%, usage trend 33.3% and friction (errors and support "
        "tickets) 33.3%. Revenue is not counted (weight 0). A cancelled account scores 0. Status: critical "
        "below 30, warn from 30, ok from 55, healthy from 70, champion from 92.5.",
    ),
    (
        {"w_usage": 0, "w_trend": 0, "w_friction": 5, "w_revenue": 15},
        "The health score (0 to 100) weighs friction (errors and support tickets) 25% and revenue 75%. Usage "
        "and usage trend are not counted (weight 0). A cancelled account scores 0. Status: critical below 40, "
        "warn from 40, ok from 55, healthy from 70, champion from 85.",
    ),
]


@pytest.mark.parametrize(("params", "sentence"), WEIGHT_CASES)
def test_health_page_states_weights(
    runtime: Runtime, clock: FakeClock, store: Store, project_id: str, params, sentence
):
    _, url = publish(store, project_id, hogql="", recipe_id="account_health_score", params=params)

    with health_client(runtime, clock, fixed_output()) as test_client:
        page = test_client.get(url).text

    assert re.findall(r'<p class="formula">([^<]*)</p>', page) == [sentence]


def test_health_page_without_weights_for_invalid_params(
    runtime: Runtime, clock: FakeClock, store: Store, project_id: str, caplog
):
    publication, url = publish(store, project_id, hogql="", recipe_id="account_health_score", params={"w_usage": -1})

    with caplog.at_level(logging.WARNING, logger="pulseboard.server.public"):
        with health_client(runtime, clock, fixed_output()) as test_client:
            response = test_client.get(url)

    assert response.status_code == 200
    assert 'class="formula"' not in response.text
    assert [record.getMessage() for record in caplog.records] == [
        f"describing the weights of publication {publication.publication_id} (recipe account_health_score) "
        "failed, so its page omits them: Parameter 'w_usage' must be a number from 0 to 1000; got -1."
    ]


def test_health_page_narrow_screen_rules(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    _, health_url = publish(store, project_id, hogql="", recipe_id="account_health_score")
    _, generic_url = publish(store, project_id)

    with health_client(runtime, clock, fixed_output()) as test_client:
        health_page = test_client.get(health_url).text
        generic_page = test_client.get(generic_url).text

    narrow = re.search(r"@media \(width <= 40rem\) \{\n(.*?)\n\}\n", health_page, re.DOTALL).group(1)
    narrow_rules = [
        "table.cards, table.cards thead, table.cards tbody { display: block; }",
        "  table.cards thead {\n    position: sticky; top: 0;",
        "  table.cards tbody tr {\n    display: flex; flex-wrap: wrap;",
        "  table.cards td.area-risk { order: 3; flex-basis: 100%; min-width: 0; }",
        "  table.cards td.area-detail { order: 5; display: none;",
        '    content: attr(data-label) " ";',
        "  main:has(.columns-toggle input:checked) table.cards td.area-detail { display: block; }",
    ]
    for rule in narrow_rules:
        assert rule in narrow, rule
    assert "main { max-width" not in health_page
    assert '<table class="result cards">' in health_page
    assert '<label class="columns-toggle"><input type="checkbox"> Show all columns</label>' in health_page
    assert '<table class="result">' in generic_page
    assert "columns-toggle\"" not in generic_page
    assert 'class="formula"' not in generic_page
    generic_body = generic_page.split("<body>")[1]
    assert "data-label" not in generic_body
    assert "area-" not in generic_body


# CORS


def test_cors_on_results(fixed_client: TestClient, store: Store, project_id: str):
    _, url = publish(store, project_id)

    response = fixed_client.get(url + "&format=json", headers={"Origin": "https://dashboards.example"})

    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-expose-headers"] == (
        "ETag, Retry-After, X-Pulseboard-Cache, X-Pulseboard-Computed-At, Content-Disposition"
    )
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("publication_id", ["pub_0000000000000000", "pub_0000000000000000.csv"])
def test_preflight(fixed_client: TestClient, counting: CountingCompute, publication_id):
    response = fixed_client.options(
        f"/q/{publication_id}",
        headers={
            "Origin": "https://dashboards.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert response.headers["access-control-allow-headers"] == "Authorization, Accept, If-None-Match"
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    assert "access-control-allow-credentials" not in response.headers
    assert counting.calls == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_405(fixed_client: TestClient, counting: CountingCompute, method):
    response = fixed_client.request(method, "/q/pub_0000000000000000")

    assert response.status_code == 405
    assert response.json() == {
        "error": {
            "code": "method_not_allowed",
            "message": f"Method {method} is not allowed on published results. Use GET or HEAD.",
        }
    }
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    assert response.headers["access-control-allow-origin"] == "*"
    assert counting.calls == 0


# Caching


def test_cache_serves_fresh_result_and_recomputes_stale(
    fixed_client: TestClient, clock: FakeClock, counting: CountingCompute, store: Store, project_id: str
):
    _, url = publish(store, project_id, cache_ttl_s=60)
    # (seconds to advance before the view, computations so far, Cache-Control, computed_at)
    steps = [
        (0, 1, "private, max-age=60", "2025-03-01T12:00:00Z"),
        (30, 1, "private, max-age=30", "2025-03-01T12:00:00Z"),
        (29.5, 1, "private, max-age=0", "2025-03-01T12:00:00Z"),
        (0.5, 2, "private, max-age=60", "2025-03-01T12:01:00Z"),
        (59, 2, "private, max-age=1", "2025-03-01T12:01:00Z"),
        (600, 3, "private, max-age=60", "2025-03-01T12:11:59Z"),
    ]

    for advance, calls, cache_control, computed_at in steps:
        clock.advance(advance)
        response = fixed_client.get(url + "&format=json")
        assert response.status_code == 200
        assert counting.calls == calls, advance
        assert response.headers["cache-control"] == cache_control, advance
        assert response.json()["computed_at"] == computed_at, advance


def test_zero_ttl_recomputes_every_view(
    fixed_client: TestClient, counting: CountingCompute, store: Store, project_id: str
):
    _, url = publish(store, project_id, cache_ttl_s=0)

    responses = [fixed_client.get(url + "&format=json") for _ in range(3)]

    assert counting.calls == 3
    assert [response.headers["cache-control"] for response in responses] == ["private, max-age=0"] * 3
    assert responses[0].json()["stale_after"] == "2025-03-01T12:00:00Z"


def test_cache_keeps_max_entries(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    counting = CountingCompute(lambda publication: fixed_output())
    cache = PublicationCache(counting, clock.monotonic, now=clock.utc, max_entries=1)
    _, first_url = publish(store, project_id)
    _, second_url = publish(store, project_id)

    with TestClient(make_app(runtime, cache)) as test_client:
        for url in (first_url, first_url, second_url, first_url):
            assert test_client.get(url + "&format=json").status_code == 200

    assert counting.calls == 3


# Errors and logging


@pytest.mark.parametrize(
    ("query", "content_type"),
    [("&format=json", "application/json"), ("", "text/html; charset=utf-8")],
)
def test_compute_failure_is_500_with_error_id(
    runtime: Runtime, clock: FakeClock, store: Store, project_id: str, caplog, query, content_type
):
    def compute(publication: Publication) -> QueryOutput:
        raise RuntimeError("the events table is gone")

    counting = CountingCompute(compute)
    publication, url = publish(store, project_id)
    cache = PublicationCache(counting, clock.monotonic, now=clock.utc)

    with caplog.at_level(logging.INFO, logger="pulseboard.server.public"):
        with TestClient(make_app(runtime, cache)) as test_client:
            response = test_client.get(url + query)
            retried = test_client.get(url + query)

    assert response.status_code == 500
    assert retried.status_code == 500
    assert counting.calls == 2
    assert response.headers["content-type"] == content_type
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"
    failures = [record for record in caplog.records if record.levelno == logging.ERROR]
    error_id = re.fullmatch(
        rf"computing publication {publication.publication_id} failed, error id ([0-9a-f]{{8}})",
        failures[0].getMessage(),
    ).group(1)
    assert failures[0].exc_info[0] is RuntimeError
    message = (
        "The query behind this publication failed. Try again later, or give the error id "
        f"{error_id} to the person who shared the link."
    )
    if query:
        assert response.json() == {"error": {"code": "internal_error", "message": message, "error_id": error_id}}
    else:
        assert f"<p class=\"description\">{message}</p>" in response.text
        assert f"Error id: <code>{error_id}</code>" in response.text
        assert "the events table is gone" not in response.text


def test_one_log_line_per_request_without_key(
    fixed_client: TestClient, store: Store, project_id: str, caplog
):
    publication, url = publish(store, project_id)
    key = url.split("key=")[1]
    publication_id = publication.publication_id

    with caplog.at_level(logging.DEBUG):
        fixed_client.get(url + "&format=json")
        fixed_client.get(url + "&format=csv")
        fixed_client.get(f"/q/{publication_id}", headers={"Authorization": f"Bearer {key}"})
        fixed_client.get(f"/q/{publication_id}?key={key}x&format=json")
        fixed_client.get(f"/q/{publication_id}?key={key}&format=xml")
        fixed_client.options(f"/q/{publication_id}")

    lines = [
        re.sub(r"ms=\d+\.\d$", "ms=_", record.getMessage())
        for record in caplog.records
        if record.name == "pulseboard.server.public" and record.levelno == logging.INFO
    ]
    assert lines == [
        f"GET /q/{publication_id} format=json status=200 cache=miss ms=_",
        f"GET /q/{publication_id} format=csv status=200 cache=hit ms=_",
        f"GET /q/{publication_id} format=html status=200 cache=hit ms=_",
        f"GET /q/{publication_id} format=json status=404 cache=- ms=_",
        f"GET /q/{publication_id} format=- status=400 cache=- ms=_",
        f"OPTIONS /q/{publication_id} format=- status=204 cache=- ms=_",
    ]
    # The test client's own httpx2 logger writes the URL with the key; only the server's lines count.
    server_log = "\n".join(
        caplog.handler.format(record) for record in caplog.records if record.name.startswith("pulseboard")
    )
    assert key not in server_log

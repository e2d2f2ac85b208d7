"""The HTML page of a published result: link previews, themes, the embed form, sparklines, dates,
drill-down sections, expiry, and CORS confined to /q/ in the full app."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pulseboard.server.app import create_app
from pulseboard.server.public import PublicationCache
from pulseboard.server.public_page import TableSection
from pulseboard.server.runtime import Runtime
from pulseboard.server.store import Store
from pulseboard.tools.query import Column, QueryOutput

pytest.register_assert_rewrite("tests.public_support")
from tests.public_support import FakeClock, fixed_output, make_app, publish, render_route  # noqa: E402

# The fixtures settings, runtime, project_id, clock, client, counting and fixed_client.
pytest_plugins = ["tests.public_support"]

HEALTH_OUTPUT = QueryOutput(
    columns=[Column(name="account", type="String"), Column(name="health_score", type="Float64"),
             Column(name="status", type="String")],
    rows=[["globex", 22.0, "critical"], ["acme", 91.0, "champion"], ["initech", 35.5, "Critical"]],
    row_count=3,
    truncated=False,
    elapsed_ms=1.0,
)


def meta_tags(page: str) -> dict[str, str]:
    return dict(re.findall(r'<meta (?:name|property)="([^"]+)" content="([^"]*)">', page))


# Link previews


def test_health_page_link_preview(runtime: Runtime, clock: FakeClock, store: Store, project_id: str):
    publication, url = publish(store, project_id, title="Account health", hogql="", recipe_id="account_health_score")
    publication_id = publication.publication_id
    key = url.split("key=")[1]
    cache = PublicationCache(lambda publication: HEALTH_OUTPUT, clock.monotonic, now=clock.utc)

    with TestClient(make_app(runtime, cache)) as client:
        page = client.get(url).text

    assert meta_tags(page) == {
        "viewport": "width=device-width, initial-scale=1",
        "color-scheme": "light dark",
        "referrer": "no-referrer",
        "robots": "noindex, nofollow",
        "description": "2 of 3 accounts are critical.",
        "og:type": "website",
        "og:site_name": "Pulseboard",
        "og:title": "Account health",
        "og:description": "2 of 3 accounts are critical.",
        "twitter:card": "summary",
        "twitter:title": "Account health",
        "twitter:description": "2 of 3 accounts are critical.",
    }
    assert "og:url" not in page
    # The key appears once: in the link to the drill-down, which sends no Referer.
    assert page.count(key) == 1
    assert f'<a href="{publication_id}/drilldown?key={key}">' in page


@pytest.mark.parametrize(
    ("fields", "rows", "summary"),
    [
        ({"description": "Events sent <this> week."}, [["a", 1]], "Events sent &lt;this&gt; week."),
        ({"description": ""}, [["a", 1], ["b", 2]], "2 rows."),
        ({"description": ""}, [["a", 1]], "1 row."),
        ({"description": "", "hogql": "", "recipe_id": "account_health_score"}, [["a", 1]], "1 row."),
    ],
)
def test_link_preview_summary(runtime: Runtime, clock: FakeClock, store: Store, project_id: str, fields, rows, summary):
    _, url = publish(store, project_id, **fields)
    cache = PublicationCache(lambda publication: fixed_output(rows), clock.monotonic, now=clock.utc)

    with TestClient(make_app(runtime, cache)) as client:
        page = client.get(url).text

    assert meta_tags(page)["og:description"] == summary


# Themes and the embed form


@pytest.mark.parametrize(
    ("query", "theme", "color_scheme", "dark_rules"),
    [
        ("", "auto", "light dark", "@media (prefers-color-scheme: dark) {\n  :root {\n    --bg: #0e1217;"),
        ("&theme=auto", "auto", "light dark", "@media (prefers-color-scheme: dark) {\n  :root {\n    --bg: #0e1217;"),
        ("&theme=dark", "dark", "dark", "@media all {\n  :root {\n    --bg: #0e1217;"),
        ("&theme=light", "light", "light", None),
    ],
)
def test_theme_option(fixed_client: TestClient, store: Store, project_id: str, query, theme, color_scheme, dark_rules):
    _, url = publish(store, project_id)

    page = fixed_client.get(url + query).text

    assert f'<html lang="en" data-theme="{theme}">' in page
    assert f'<meta name="color-scheme" content="{color_scheme}">' in page
    assert f"  color-scheme: {color_scheme};\n" in page
    if dark_rules is None:
        assert "#0e1217" not in page
    else:
        assert dark_rules in page
        assert page.count("#0e1217") == 1


def test_embed_form(fixed_client: TestClient, store: Store, project_id: str):
    _, url = publish(store, project_id, description="How often each event was sent.")

    full = fixed_client.get(url)
    embedded = fixed_client.get(url + "&embed=1")

    assert embedded.status_code == 200
    assert '<body class="embed">' in embedded.text
    assert "<body>" in full.text
    assert "<h1>Events by name</h1>" in embedded.text
    assert "How often each event was sent." in full.text.split("<body>")[1]
    assert "How often each event was sent." not in embedded.text.split("<body")[1]
    assert "<footer>" in full.text
    assert "<footer>" not in embedded.text
    assert embedded.text.count("<tr>") == full.text.count("<tr>") == 3
    assert "x-frame-options" not in embedded.headers
    assert "frame-ancestors" not in embedded.headers["content-security-policy"]


# Cells of generic tables, from real queries


def test_sparkline_from_published_query(client: TestClient, store: Store, project_id: str):
    hogql = (
        "SELECT properties.account_id AS account, [40, 55.5, 70] AS score_history, "
        "[120, 80] AS other_history FROM events GROUP BY account"
    )
    _, url = publish(store, project_id, hogql=hogql)

    page = client.get(url).text
    as_json = client.get(url + "&format=json").json()

    assert as_json["rows"] == [["acme", [40.0, 55.5, 70.0], [120, 80]]]
    assert (
        '<td data-sort="70.0"><svg class="spark" viewBox="0 0 100 24" preserveAspectRatio="none" aria-hidden="true">'
        '<polyline points="0,14.2 50,10.79 100,7.6" vector-effect="non-scaling-stroke"/>'
        '<circle cx="100" cy="7.6" r="1.5"/></svg>'
        '<span class="visually-hidden">Score history, oldest first: 40, 55.5, 70</span></td>'
    ) in page
    assert '<th scope="col" data-type="number" title="Array(Float64)"><button type="button">score_history</button></th>' in page
    # Only the column named score_history is drawn; other arrays show as JSON text.
    assert "<td>[120, 80]</td>" in page


@pytest.mark.parametrize(
    ("values", "points", "sort"),
    [
        ([50], "100,12", "50"),
        ([0, 100], "0,23 100,1", "100"),
        ([200, 100, 300], "0,12 50,23 100,1", "300"),
        ([5, 5], "0,21.9 100,21.9", "5"),
        ([150, 150], "0,23 100,23", "150"),
    ],
)
def test_sparkline_points(values, points, sort):
    from pulseboard.server.public_page import make_cell

    cell = make_cell(values, "sparkline")

    assert cell.kind == "sparkline"
    assert cell.detail == points
    assert cell.sort == sort


@pytest.mark.parametrize("value", [["a", "b"], [1, None], [True, False], "40,50"])
def test_sparkline_needs_number_list(value):
    from pulseboard.server.public_page import make_cell

    assert make_cell(value, "sparkline").kind == "text"


def test_dates_are_readable(client: TestClient, store: Store, project_id: str):
    hogql = (
        "SELECT toDateTime('2025-03-01 12:30:00') AS at, toDateTime('2025-03-01 12:30:15') AS at_seconds, "
        "toDate('2025-03-01') AS day, count() AS n FROM events"
    )
    _, url = publish(store, project_id, hogql=hogql)

    page = client.get(url).text

    assert '<td data-sort="1740832200.0"><time datetime="2025-03-01T12:30:00+00:00">2025-03-01 12:30 UTC</time></td>' in page
    assert '<time datetime="2025-03-01T12:30:15+00:00">2025-03-01 12:30:15 UTC</time>' in page
    assert "<td>2025-03-01</td>" in page
    assert '<td class="num" data-sort="6">6</td>' in page
    assert re.findall(r'<th scope="col" data-type="(\w+)"', page) == ["number", "number", "text", "number"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2025-03-01T12:30:00+02:00", "2025-03-01 12:30 +02:00"),
        ("2025-03-01T12:30:00.250000+00:00", "2025-03-01 12:30:00 UTC"),
        ("2025-03-01T12:30:00", "2025-03-01 12:30 UTC"),
    ],
)
def test_datetime_cell_cases(value, text):
    from pulseboard.server.public_page import make_cell

    assert make_cell(value, "datetime").text == text


def test_datetime_cell_keeps_unparsed_text():
    from pulseboard.server.public_page import make_cell

    cell = make_cell("soon", "datetime")

    assert (cell.kind, cell.text) == ("text", "soon")


def test_empty_score_history_is_null():
    from pulseboard.server.public_page import make_cell

    cell = make_cell([], "sparkline")

    assert (cell.kind, cell.text) == ("null", "—")


@pytest.mark.parametrize(
    ("value", "text", "sort"),
    [(22.3, "+22.3%", "22.3"), (-40, "−40%", "-40"), (0.0, "0%", "0.0"), (1234.5, "+1,234.5%", "1234.5")],
)
def test_percent_cell_cases(value, text: str, sort: str):
    from pulseboard.server.public_page import make_cell

    cell = make_cell(value, "percent")

    assert (cell.kind, cell.text, cell.sort) == ("number", text, sort)


# Drill-down sections and the stale note, through render_page


def render_app(runtime: Runtime, store: Store, project_id: str, **render_options) -> Starlette:
    """An app whose one route renders a fixed result of a new publication with the given options."""
    publication, _ = publish(store, project_id, title="Account health", hogql="", recipe_id="account_health_score")
    app = Starlette(routes=[render_route("/page", publication, HEALTH_OUTPUT, **render_options)])
    app.state.runtime = runtime
    return app


def test_drilldown_sections(runtime: Runtime, store: Store, project_id: str):
    drilldown = [
        TableSection(
            title="globex: last 30 days",
            columns=[Column(name="day", type="Date"), Column(name="events", type="UInt64"),
                     Column(name="top_error", type="Nullable(String)")],
            rows=[["2025-02-28", 1200, "<script>alert(1)</script>"], ["2025-03-01", 15, None]],
        ),
        TableSection(title="initech: last 30 days", columns=[Column(name="events", type="UInt64")], rows=[[7]]),
    ]

    with TestClient(render_app(runtime, store, project_id, drilldown=drilldown)) as client:
        page = client.get("/page").text

    section = page.split('<section class="drilldown">')[1].split("</section>")[0]
    assert re.findall(r"<summary>(.*?)</summary>", section) == [
        'globex: last 30 days <span class="count">2 rows</span>',
        'initech: last 30 days <span class="count">1 row</span>',
    ]
    assert section.count('<table class="result">') == 2
    assert '<td class="num" data-sort="1200">1,200</td>' in section
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in section
    assert '<td class="null" data-null>—</td>' in section
    assert "<script>alert(1)" not in page
    assert page.count('<table class="result') == 3


def test_page_without_drilldown(runtime: Runtime, store: Store, project_id: str):
    with TestClient(render_app(runtime, store, project_id)) as client:
        page = client.get("/page").text

    assert 'class="drilldown"' not in page
    assert "Stale:" not in page


def test_stale_note(runtime: Runtime, store: Store, project_id: str):
    with TestClient(render_app(runtime, store, project_id, stale=True)) as client:
        page = client.get("/page").text

    assert '<p class="note">Stale: this result is being recomputed. Reload in a moment for the new one.</p>' in page


# Expiry


def test_view_after_expiry_is_404(fixed_client: TestClient, store: Store, project_id: str):
    expires_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    _, url = publish(store, project_id, expires_at=expires_at)

    before = fixed_client.get(url + "&format=json")
    time.sleep(max(0.0, (expires_at - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.05)
    after = fixed_client.get(url + "&format=json")

    assert before.status_code == 200
    assert before.json()["publication"]["expires_at"] == expires_at.isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )
    assert after.status_code == 404
    assert after.json()["error"]["code"] == "not_found"


# CORS and logging in the full app


def test_cors_only_on_published_urls(runtime: Runtime, store: Store, project_id: str, caplog):
    _, url = publish(store, project_id)
    key = url.split("key=")[1]
    origin = {"Origin": "https://dashboards.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}

    with caplog.at_level(logging.INFO):
        with TestClient(create_app(runtime, api_token="test-token"), base_url="http://127.0.0.1") as client:
            published = client.get(url + "&format=json", headers=origin)
            others = {
                "health": client.get(f"/health?key={key}", headers=origin),
                "ingestion": client.post(f"/v1/analytics/{project_id}/", json={}, headers=origin),
                "ingestion preflight": client.options(f"/v1/analytics/{project_id}/", headers=preflight),
                "admin": client.get("/v1/projects", headers=origin),
                "mcp": client.post("/mcp", json={}, headers=origin),
                "mcp preflight": client.options("/mcp", headers=preflight),
            }

    assert published.status_code == 200
    assert published.headers["access-control-allow-origin"] == "*"
    for name, response in others.items():
        assert "access-control-allow-origin" not in response.headers, name
        assert "access-control-allow-methods" not in response.headers, name
    # One line per request: the endpoint under /q/ logs its own, the request log all others.
    server_lines = [record.getMessage() for record in caplog.records if record.name.startswith("pulseboard")]
    publication_id = url.split("?")[0].removeprefix("/q/")
    published_lines = [line for line in server_lines if "/q/" in line]
    assert len(published_lines) == 1
    assert re.fullmatch(rf"GET /q/{publication_id} format=json status=200 cache=miss ms=\d+\.\d", published_lines[0])
    assert any(re.fullmatch(r"GET /health\?key=\*\*\* 200 \d+\.\d ms", line) for line in server_lines)
    assert not any(key in line for line in server_lines)

"""The published page in a real browser: Debian's Chromium, headless, driven by Playwright, against
a server on 127.0.0.1. Screenshots go to a temporary folder that the test prints."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from pulseboard.server.demo import ingest_events
from pulseboard.server.public import PublicationCache, compute_publication
from pulseboard.server.public_drilldown import compute_drilldown
from pulseboard.server.public_page import TableSection
from pulseboard.server.runtime import Runtime
from pulseboard.server.store import Store
from pulseboard.tools.query import Column, QueryOutput

pytest.register_assert_rewrite("tests.public_support")
from tests.public_support import FakeClock, make_app, publish, render_route, running_server  # noqa: E402
from tests.test_public_drilldown import BOTTOM_FIVE, NOW, constructed_events  # noqa: E402

# The fixtures settings, runtime, project_id and clock.
pytest_plugins = ["tests.public_support"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE_NAME = "<script>alert(1)</script>"

HEALTH_OUTPUT = QueryOutput(
    columns=[
        Column(name="account", type="String"),
        Column(name="health_score", type="Float64"),
        Column(name="status", type="String"),
        Column(name="trend", type="Int64"),
        Column(name="score_history", type="Array(Float64)"),
        Column(name="top_risk_signal", type="String"),
        Column(name="mrr", type="Float64"),
    ],
    rows=[
        ["acme", 88.0, "champion", 4100, [70.0, 80.0, 88.0], "none", 750.5],
        [HOSTILE_NAME, 31.5, "critical", -800, [60.0, 45.0, 31.5], "errors up 3x", 5000.0],
        ["globex", 62.0, "ok", 0, [62.0, 62.0], "tickets", 1200.0],
        ["initech", 47.0, "warn", -120, [55.0, 47.0], "usage down", 300.0],
        ["umbrella", 74.5, "healthy", 300, [70.0, 74.5], "none", 9800.0],
        ["hooli", 12.0, "critical", -2500, [40.0, 12.0], "cancel request", 0.0],
    ],
    row_count=6,
    truncated=False,
    elapsed_ms=1.0,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium package (apt-get install -y chromium).")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("PULSEBOARD_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture
def health_url(runtime: Runtime, clock: FakeClock, store: Store, project_id: str) -> Iterator[str]:
    """The full URL of a health publication on a running server, whose result is HEALTH_OUTPUT."""
    publication, url = publish(store, project_id, title="Account health", hogql="", recipe_id="account_health_score")
    cache = PublicationCache(lambda publication: HEALTH_OUTPUT, clock.monotonic, now=clock.utc)
    app = make_app(runtime, cache)
    drilldown = [
        TableSection(
            title="hooli: last 7 days",
            columns=[Column(name="day", type="Date"), Column(name="events", type="UInt64")],
            rows=[["2025-02-28", 40], ["2025-03-01", 3]],
        )
    ]

    app.router.routes.append(render_route("/drilldown-page", publication, HEALTH_OUTPUT, drilldown=drilldown))
    with running_server(app) as base_url:
        yield base_url + url


def open_page(browser: Browser, url: str, **context_options) -> tuple[Page, list[str]]:
    """Open the URL in a fresh context; return the page and a list that collects console errors and dialogs."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    response = page.goto(url)
    assert response is not None
    assert response.status == 200
    return page, problems


def column_texts(page: Page, name: str) -> list[str]:
    index = page.locator("table.result thead th").all_inner_texts().index(name)
    return page.locator(f"table.result tbody tr td:nth-child({index + 1})").all_inner_texts()


def test_table_renders_and_sorts(browser: Browser, health_url: str, screenshot_dir: Path):
    page, problems = open_page(browser, health_url, viewport={"width": 1280, "height": 800})

    rows = page.locator("table.result tbody tr")
    score_header = page.locator("table.result thead th", has_text="health_score")
    page.screenshot(path=str(screenshot_dir / "health-wide-light.png"), full_page=True)
    score_header.locator("button").click()
    ascending = column_texts(page, "account")
    ascending_sort = score_header.get_attribute("aria-sort")
    score_header.locator("button").click()
    descending = column_texts(page, "account")
    descending_sort = score_header.get_attribute("aria-sort")

    assert rows.count() == 6
    assert ascending == ["hooli", HOSTILE_NAME, "initech", "globex", "umbrella", "acme"]
    assert ascending_sort == "ascending"
    assert descending == ["acme", "umbrella", "globex", "initech", HOSTILE_NAME, "hooli"]
    assert descending_sort == "descending"
    assert problems == []


def test_status_labels_show(browser: Browser, health_url: str):
    page, problems = open_page(browser, health_url, viewport={"width": 1280, "height": 800})

    labels = page.locator("table.result .status")
    critical_colour = page.locator(".status-critical").first.evaluate("element => getComputedStyle(element).color")
    ok_colour = page.locator(".status-ok").first.evaluate("element => getComputedStyle(element).color")

    assert labels.all_inner_texts() == ["champion", "critical", "ok", "warn", "healthy", "critical"]
    assert all(labels.nth(index).is_visible() for index in range(labels.count()))
    assert critical_colour != ok_colour
    assert problems == []


def test_hostile_name_shows_as_text(browser: Browser, health_url: str):
    page, problems = open_page(browser, health_url)

    cell = page.locator("table.result tbody td.area-account", has_text="alert(1)")

    assert cell.inner_text() == HOSTILE_NAME
    assert page.locator("body script").count() == 1
    assert problems == []


def test_phone_and_dark_screenshots(browser: Browser, health_url: str, screenshot_dir: Path):
    phone, problems = open_page(
        browser, health_url, viewport={"width": 390, "height": 844}, color_scheme="dark", device_scale_factor=2
    )
    background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
    card_display = phone.locator("table.cards tbody tr").first.evaluate("row => getComputedStyle(row).display")
    phone.screenshot(path=str(screenshot_dir / "health-phone-dark.png"), full_page=True)
    forced_light, light_problems = open_page(
        browser, health_url + "&theme=light", viewport={"width": 390, "height": 844}, color_scheme="dark"
    )
    light_background = forced_light.evaluate("getComputedStyle(document.body).backgroundColor")

    assert background == "rgb(14, 18, 23)"
    assert card_display == "flex"
    assert light_background == "rgb(255, 255, 255)"
    assert (screenshot_dir / "health-phone-dark.png").stat().st_size > 0
    assert problems == []
    assert light_problems == []


def test_drilldown_opens(browser: Browser, health_url: str, screenshot_dir: Path):
    base_url = health_url.split("/q/")[0]
    page, problems = open_page(browser, base_url + "/drilldown-page", viewport={"width": 1280, "height": 800})

    section_table = page.locator(".drilldown details table")
    hidden_before = section_table.is_visible()
    page.locator(".drilldown summary", has_text="hooli: last 7 days").click()
    page.screenshot(path=str(screenshot_dir / "health-drilldown.png"), full_page=True)

    assert hidden_before is False
    assert section_table.is_visible()
    assert page.locator(".drilldown details tbody tr").count() == 2
    assert problems == []


@pytest.fixture
def computed_health_url(runtime: Runtime, clock: FakeClock, store: Store, project) -> Iterator[str]:
    """The full URL of a health publication that the server computes for real, on the accounts
    of tests/test_public_drilldown.py alone, with its table and drill-down."""
    project_id = project[0].project_id
    ingest_events(store, project_id, constructed_events(), now=NOW)
    publication, url = publish(
        store, project_id, title="Account health", hogql="", recipe_id="account_health_score",
        params={"as_of": NOW.isoformat()},
    )
    app = make_app(runtime, PublicationCache(compute_publication(runtime), clock.monotonic, now=clock.utc))
    app.state.publication_drilldowns = PublicationCache(compute_drilldown(runtime), clock.monotonic, now=clock.utc)
    with running_server(app) as base_url:
        yield base_url + url


def test_drilldown_page_from_health_page(browser: Browser, computed_health_url: str, screenshot_dir: Path):
    page, problems = open_page(browser, computed_health_url, viewport={"width": 1280, "height": 800})

    with page.expect_navigation():
        page.get_by_role("link", name="Drill-down of the lowest-scoring accounts →").click()
    drilldown_path = page.url.split("127.0.0.1")[1].split(":", 1)[1]
    blocks = page.locator("section.account")
    block_names = blocks.locator("h2").all_inner_texts()
    block_statuses = blocks.locator(".account-facts .status").all_inner_texts()
    table_statuses: dict[str, str] = {}
    lowest = blocks.first
    top_events = lowest.locator("h3", has_text="Top events").locator("xpath=following-sibling::div[1]")
    top_event_cells = top_events.locator("tbody tr").first.locator("td").all_inner_texts()
    page.screenshot(path=str(screenshot_dir / "health-drilldown-wide.png"))
    phone, phone_problems = open_page(browser, page.url, viewport={"width": 390, "height": 844}, device_scale_factor=2)
    phone_overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    phone.screenshot(path=str(screenshot_dir / "health-drilldown-phone.png"))
    with page.expect_navigation():
        page.get_by_role("link", name="← Back to the table").click()
    for row in page.locator("table.result tbody tr").all():
        table_statuses[row.locator("td.area-account").inner_text()] = row.locator("td.area-status").inner_text()

    assert drilldown_path.split("?")[0].endswith("/drilldown")
    assert block_names == BOTTOM_FIVE
    assert block_statuses == [table_statuses[name] for name in BOTTOM_FIVE]
    assert top_event_cells == ["query_run", "5", "1", "2025-03-11 15:30:04 UTC"]
    assert page.url == computed_health_url
    assert phone_overflow == 0
    assert (screenshot_dir / "health-drilldown-wide.png").stat().st_size > 0
    assert problems == []
    assert phone_problems == []


def test_computed_health_page_on_phone(browser: Browser, computed_health_url: str, screenshot_dir: Path):
    phone, problems = open_page(browser, computed_health_url, viewport={"width": 390, "height": 844}, device_scale_factor=2)

    first_card = phone.locator("table.cards tbody tr").first
    visible = [
        cell.get_attribute("data-label") for cell in first_card.locator("td").all() if cell.is_visible()
    ]
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    phone.screenshot(path=str(screenshot_dir / "health-computed-phone.png"))
    phone.locator(".columns-toggle input").check()
    all_visible = sum(1 for cell in first_card.locator("td").all() if cell.is_visible())

    assert visible == [
        "account", "health_score", "status", "trend", "score_history", "top_risk_signal", "mrr", "plan",
        "score_change_7d", "last_seen_days_ago",
    ]
    assert overflow == 0
    assert all_visible == 23
    assert problems == []

"""Published results under `/q/`: one URL serves a stored query as HTML, JSON or CSV.

A view needs the publication's key, from `?key=` or `Authorization: Bearer <key>`. Every reason
to reject a view (unknown id, missing or wrong key, revoked, expired) gets the same 404, so a
caller cannot tell which publications exist. Results are cached per publication for its
`cache_ttl_s`. When a result is stale, one request recomputes it and concurrent viewers of the
same publication wait for that computation and share its result.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import io
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from pulseboard.recipes import Recipe, RecipeError, get_recipe
from pulseboard.server.runtime import Runtime
from pulseboard.server.store import Publication, utcnow

if TYPE_CHECKING:
    from pulseboard.tools.query import Column, QueryOutput

logger = logging.getLogger(__name__)

Format = Literal["html", "json", "csv"]
CacheStatus = Literal["hit", "miss", "shared"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "publication.html"

FORMATS: tuple[Format, ...] = ("html", "json", "csv")
PATH_SUFFIXES: dict[str, Format] = {".json": "json", ".csv": "csv"}
MEDIA_TYPES: dict[Format, str] = {"html": "text/html", "json": "application/json", "csv": "text/csv"}

# Store ids look like `pub_<16 hex digits>`. Anything outside this pattern gets the 404 without
# a store lookup, and is never written to the log.
PUBLICATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Output columns of the account_health_score recipe that get their own cell markup; the recipe's
# other columns get the generic cells.
HEALTH_RECIPE_ID = "account_health_score"
HEALTH_COLUMN_KINDS = {
    "status": "status",
    "health_score": "score",
    "trend": "trend",
    "mrr": "money",
}
# The health page shows its columns in groups, in this order: what a customer success lead reads
# first, then the raw 30-day counts, then the score components. Columns of the recipe that no group
# names follow at the end. JSON and CSV keep the recipe's own column order.
HEALTH_COLUMN_GROUPS = (
    ("account", "health_score", "status", "trend", "top_risk_signal", "mrr", "plan"),
    ("events_30d", "errors_30d", "tickets_30d"),
    ("usage_score", "trend_score", "friction_score", "revenue_score"),
)
# The card area of each column on narrow screens. Columns not listed here are "detail" columns:
# hidden in the cards until the reader asks for all columns, and set in muted text in the wide table.
HEALTH_COLUMN_AREAS = {
    "account": "account",
    "health_score": "score",
    "status": "status",
    "top_risk_signal": "risk",
    "trend": "fact",
    "mrr": "fact",
    "plan": "fact",
}
# The recipe's weight parameters and the component each weighs, in the order the page names them.
HEALTH_WEIGHTS = (
    ("w_usage", "usage"),
    ("w_trend", "usage trend"),
    ("w_friction", "friction (errors and support tickets)"),
    ("w_revenue", "revenue"),
)
# The recipe's band parameters: each is the lowest score of its status.
HEALTH_BANDS = (("band_warn", "warn"), ("band_ok", "ok"), ("band_healthy", "healthy"), ("band_champion", "champion"))
# Status labels get a colour class from this table; any other status gets the neutral class.
STATUS_CLASSES = {
    "critical": "critical",
    "warn": "warn",
    "warning": "warn",
    "ok": "ok",
    "healthy": "healthy",
    "champion": "champion",
}
# Sorting a status column ascending puts the accounts at most risk first; unknown statuses go last.
STATUS_ORDER = ("critical", "warn", "ok", "healthy", "champion", "other")
NUMERIC_KINDS = frozenset({"number", "score", "trend", "money"})

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "X-Pulseboard-Computed-At, Content-Disposition",
}
PREFLIGHT_HEADERS = {
    "Allow": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Accept",
    "Access-Control-Max-Age": "600",
}
# The key travels in the URL, so no page may send a Referer, and search engines must not index it.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
# JSON, CSV and the 404 load nothing, so their policy allows nothing.
DATA_CSP = "default-src 'none'"

# One body for every rejected view, whatever the reason and the requested format, so that no
# response distinguishes an unknown id from a wrong key.
NOT_FOUND_BODY = {
    "error": {
        "code": "not_found",
        "message": "No publication matches this link. It may be mistyped, revoked or expired. "
        "Ask the person who shared it for a new link.",
    }
}
SERVER_ERROR_TITLE = "This result cannot be shown"
NOT_FOUND_TITLE = "Publication not found"


# The cache


@dataclasses.dataclass(frozen=True)
class CachedResult:
    """One computed result of a publication."""

    output: QueryOutput
    computed_at: dt.datetime
    stale_after: dt.datetime
    # The cache's clock reading, in seconds, at which the result goes stale.
    fresh_until: float


class ComputeError(Exception):
    """Computing a publication failed; the traceback is logged once under `error_id`."""

    def __init__(self, publication_id: str, error_id: str) -> None:
        super().__init__(f"Computing publication {publication_id} failed, error id {error_id}.")
        self.publication_id = publication_id
        self.error_id = error_id


class _Flight:
    """A computation in progress, which concurrent viewers of the same publication wait for."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: CachedResult | None = None
        self.error: ComputeError | None = None


class PublicationCache:
    """Results of publications, each fresh for its `cache_ttl_s`, recomputed one at a time.

    `compute` blocks (chDB calls do), so it runs in a worker thread. The cache's own state is
    read and written only from the event loop, so it needs no lock. `clock` measures freshness
    and `now` stamps `computed_at`. At most `max_entries` results are kept, least recently
    viewed dropped first.
    """

    def __init__(
        self,
        compute: Callable[[Publication], QueryOutput],
        clock: Callable[[], float] = time.monotonic,
        *,
        now: Callable[[], dt.datetime] = utcnow,
        max_entries: int = 256,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}.")

        self._compute = compute
        self._clock = clock
        self._now = now
        self._max_entries = max_entries
        self._results: OrderedDict[str, CachedResult] = OrderedDict()
        self._flights: dict[str, _Flight] = {}

    def remaining_ttl(self, result: CachedResult) -> float:
        """Return the seconds until the result goes stale, 0 when it is stale."""
        return max(0.0, result.fresh_until - self._clock())

    async def get(self, publication: Publication) -> tuple[CachedResult, CacheStatus]:
        """Return the publication's result and where it came from.

        "hit" is a fresh cached result, "miss" one this call computed, and "shared" one that a
        concurrent call computed while this one waited. Raises ComputeError when the
        computation fails, and every waiting call gets the same error id.
        """
        publication_id = publication.publication_id
        while True:
            cached = self._results.get(publication_id)
            if cached is not None and self.remaining_ttl(cached) > 0:
                self._results.move_to_end(publication_id)
                return cached, "hit"

            flight = self._flights.get(publication_id)
            if flight is None:
                return await self._lead(publication), "miss"

            await flight.done.wait()
            if flight.error is not None:
                raise ComputeError(publication_id, flight.error.error_id)
            if flight.result is not None:
                return flight.result, "shared"
            # The computing call was cancelled before it finished, so start over.

    async def _lead(self, publication: Publication) -> CachedResult:
        publication_id = publication.publication_id
        flight = _Flight()
        self._flights[publication_id] = flight
        try:
            flight.result = await self._compute_result(publication)
            return flight.result
        except ComputeError as error:
            flight.error = error
            raise
        finally:
            del self._flights[publication_id]
            flight.done.set()

    async def _compute_result(self, publication: Publication) -> CachedResult:
        publication_id = publication.publication_id
        try:
            output = await anyio.to_thread.run_sync(self._compute, publication)
        except Exception as error:
            error_id = new_error_id()
            logger.exception("computing publication %s failed, error id %s", publication_id, error_id)
            raise ComputeError(publication_id, error_id) from error

        ttl = publication.cache_ttl_s
        computed_at = self._now()
        result = CachedResult(
            output=output,
            computed_at=computed_at,
            stale_after=computed_at + dt.timedelta(seconds=ttl),
            fresh_until=self._clock() + ttl,
        )
        self._results[publication_id] = result
        self._results.move_to_end(publication_id)
        while len(self._results) > self._max_entries:
            self._results.popitem(last=False)
        return result


def compute_publication(runtime: Runtime) -> Callable[[Publication], QueryOutput]:
    """Return the compute function that runs a publication's recipe or HogQL in its project."""

    def compute(publication: Publication) -> QueryOutput:
        # The tools import the compiler and the recipes; importing them on first use keeps this
        # module importable without them.
        if publication.recipe_id:
            from pulseboard.tools.recipes import run_recipe

            return run_recipe(
                runtime.store,
                runtime.settings,
                publication.project_id,
                publication.recipe_id,
                publication.params,
            )
        if publication.hogql:
            from pulseboard.tools.query import run_hogql

            return run_hogql(runtime.store, runtime.settings, publication.project_id, publication.hogql)
        raise ValueError(
            f"Publication {publication.publication_id} has neither a recipe id nor HogQL; "
            "publish the query again."
        )

    return compute


def new_error_id() -> str:
    return secrets.token_hex(4)


# Routes and request handling


def public_routes() -> list[BaseRoute]:
    """Return the routes of the published-result pages."""
    return [
        Route(
            "/q/{publication_id}",
            publication_endpoint,
            methods=["GET", "HEAD", "OPTIONS"],
            name="publication",
        ),
    ]


@dataclasses.dataclass
class RequestSummary:
    """The fields of the one INFO line logged per request."""

    publication_id: str = "-"
    format: str = "-"
    cache: str = "-"


class FormatError(Exception):
    """The requested format is not one of FORMATS, or contradicts the path suffix."""


async def publication_endpoint(request: Request) -> Response:
    """Serve one publication as HTML, JSON or CSV, and respond to CORS preflight requests."""
    started = time.perf_counter()
    summary = RequestSummary()
    status = 500
    try:
        response = await respond(request, summary)
        status = response.status_code
        if request.method == "HEAD":
            # Content-Length stays that of the GET body, as HEAD requires.
            response.body = b""
        return response
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "%s /q/%s format=%s status=%d cache=%s ms=%.1f",
            request.method,
            summary.publication_id,
            summary.format,
            status,
            summary.cache,
            elapsed_ms,
        )


async def respond(request: Request, summary: RequestSummary) -> Response:
    publication_id, suffix = split_suffix(request.path_params["publication_id"])
    valid_id = PUBLICATION_ID_PATTERN.match(publication_id) is not None
    if valid_id:
        summary.publication_id = publication_id

    # A preflight carries no key, so it gets its 204 without a publication lookup.
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={**CORS_HEADERS, **PREFLIGHT_HEADERS, **SECURITY_HEADERS})

    try:
        output_format = choose_format(request, suffix)
    except FormatError as error:
        return error_response(request, "json", 400, "invalid_format", str(error))
    summary.format = output_format

    try:
        key = request_key(request)
        runtime: Runtime = request.app.state.runtime
        publication = None
        if valid_id and key:
            publication = await anyio.to_thread.run_sync(runtime.store.open_publication, publication_id, key)
        if publication is None:
            return not_found_response(request, output_format)

        cache: PublicationCache = request.app.state.publications
        result, summary.cache = await cache.get(publication)
        max_age = int(cache.remaining_ttl(result))
        return result_response(request, output_format, publication, result, max_age)
    except ComputeError as error:
        return server_error_response(request, output_format, error.error_id)
    except Exception:
        # Anything else still gets an error in the requested format, with the CORS headers.
        error_id = new_error_id()
        logger.exception("serving publication %s failed, error id %s", summary.publication_id, error_id)
        return server_error_response(request, output_format, error_id)


def split_suffix(raw_id: str) -> tuple[str, Format | None]:
    """Split a `.json` or `.csv` suffix off the path's publication id."""
    for suffix, output_format in PATH_SUFFIXES.items():
        if raw_id.endswith(suffix):
            return raw_id.removesuffix(suffix), output_format
    return raw_id, None


def choose_format(request: Request, suffix: Format | None) -> Format:
    """Pick the format from `?format=`, else the path suffix, else the Accept header."""
    requested = request.query_params.get("format")
    if requested is None:
        return suffix or format_from_accept(request.headers.get("accept", ""))

    allowed = ", ".join(FORMATS)
    if requested not in FORMATS:
        raise FormatError(f"Invalid format {requested!r}. Use one of: {allowed}.")
    if suffix is not None and suffix != requested:
        raise FormatError(
            f"Format {requested!r} contradicts the path suffix '.{suffix}'. Drop one of them."
        )
    return requested


def format_from_accept(accept: str) -> Format:
    """Choose the best format for an Accept header; HTML when none is acceptable.

    Ties in quality go to the more specific media range, then to HTML, JSON, CSV in that
    order. So a browser's `text/html,...,*/*;q=0.8` gets HTML and a client sending
    `application/json, text/plain, */*` gets JSON.
    """
    ranges = parse_accept(accept)
    best: tuple[float, int] = (0.0, -1)
    chosen: Format = "html"
    for output_format in FORMATS:
        match = match_media_type(MEDIA_TYPES[output_format], ranges)
        if match is not None and match[0] > 0 and match > best:
            best = match
            chosen = output_format
    return chosen


def parse_accept(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media_range, *parameters = (piece.strip() for piece in part.split(";"))
        if not media_range:
            continue

        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media_range.lower(), quality))
    return ranges


def match_media_type(media_type: str, ranges: list[tuple[str, float]]) -> tuple[float, int] | None:
    """Return (quality, specificity) of the most specific range that matches the media type."""
    main_type = media_type.split("/")[0]
    specificity = {media_type: 2, f"{main_type}/*": 1, "*/*": 0}
    matches = [
        (specificity[media_range], quality) for media_range, quality in ranges if media_range in specificity
    ]
    if not matches:
        return None
    level, quality = max(matches)
    return quality, level


def request_key(request: Request) -> str:
    """Return the key from `?key=`, else from `Authorization: Bearer`, else an empty string."""
    key = request.query_params.get("key", "")
    if key:
        return key

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return credentials.strip()


# Responses


def base_headers() -> dict[str, str]:
    return {**CORS_HEADERS, **SECURITY_HEADERS, "Vary": "Accept, Authorization"}


def result_response(
    request: Request,
    output_format: Format,
    publication: Publication,
    result: CachedResult,
    max_age: int,
) -> Response:
    headers = {
        **base_headers(),
        "Cache-Control": f"private, max-age={max_age}",
        "X-Pulseboard-Computed-At": iso_utc(result.computed_at),
    }
    if output_format == "json":
        headers["Content-Security-Policy"] = DATA_CSP
        return JSONResponse(result_document(publication, result), headers=headers)

    if output_format == "csv":
        headers["Content-Security-Policy"] = DATA_CSP
        headers["Content-Disposition"] = f'inline; filename="{publication.publication_id}.csv"'
        return Response(result_csv(result.output), media_type="text/csv", headers=headers)

    nonce = secrets.token_urlsafe(16)
    headers["Content-Security-Policy"] = page_csp(nonce)
    context = page_context(publication, result)
    context["nonce"] = nonce
    return page_templates().TemplateResponse(request, TEMPLATE_NAME, context, headers=headers)


def not_found_response(request: Request, output_format: Format) -> Response:
    """Build the one 404 of each format, whatever the reason: the response must not reveal whether
    the id exists, the key is wrong, or the publication was revoked or has expired."""
    if output_format == "html":
        return error_response(
            request, "html", 404, "not_found", NOT_FOUND_BODY["error"]["message"], title=NOT_FOUND_TITLE
        )

    headers = {**base_headers(), "Cache-Control": "no-store", "Content-Security-Policy": DATA_CSP}
    return JSONResponse(NOT_FOUND_BODY, status_code=404, headers=headers)


def error_response(
    request: Request,
    output_format: Format,
    status: int,
    code: str,
    message: str,
    error_id: str | None = None,
    title: str = SERVER_ERROR_TITLE,
) -> Response:
    """Build an error in the requested format: an HTML page for HTML, JSON otherwise."""
    headers = {**base_headers(), "Cache-Control": "no-store"}
    if output_format != "html":
        headers["Content-Security-Policy"] = DATA_CSP
        error: dict[str, str] = {"code": code, "message": message}
        if error_id is not None:
            error["error_id"] = error_id
        return JSONResponse({"error": error}, status_code=status, headers=headers)

    nonce = secrets.token_urlsafe(16)
    headers["Content-Security-Policy"] = page_csp(nonce)
    context = {
        "error": {"title": title, "message": message, "error_id": error_id},
        "nonce": nonce,
    }
    return page_templates().TemplateResponse(
        request, TEMPLATE_NAME, context, status_code=status, headers=headers
    )


def server_error_response(request: Request, output_format: Format, error_id: str) -> Response:
    message = (
        "The query behind this publication failed. Try again later, or give the error id "
        f"{error_id} to the person who shared the link."
    )
    return error_response(request, output_format, 500, "internal_error", message, error_id)


def page_csp(nonce: str) -> str:
    """Allow only the page's own inline style and script, which carry this response's nonce.

    There is no frame-ancestors directive, so other sites may embed a page in a frame. The pages
    are read-only, so framing them enables no clickjacking.
    """
    return (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "base-uri 'none'; form-action 'none'"
    )


@functools.cache
def page_templates() -> Jinja2Templates:
    # Jinja2Templates turns on autoescaping for .html templates.
    return Jinja2Templates(directory=TEMPLATES_DIR)


def iso_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def result_document(publication: Publication, result: CachedResult) -> dict[str, Any]:
    output = result.output
    return {
        "publication": {
            "id": publication.publication_id,
            "title": publication.title,
            "description": publication.description,
            "recipe_id": publication.recipe_id or None,
            "params": publication.params,
            "created_at": iso_utc(publication.created_at),
        },
        "columns": [{"name": column.name, "type": column.type} for column in output.columns],
        "rows": output.rows,
        "row_count": output.row_count,
        "truncated": output.truncated,
        "computed_at": iso_utc(result.computed_at),
        "stale_after": iso_utc(result.stale_after),
    }


def result_csv(output: QueryOutput) -> str:
    """Write the result as RFC 4180 CSV: a header row, CRLF line ends, quotes only where needed."""
    # NOTE: values are written as stored. A cell starting with `=` or `+` is not escaped, so a
    # spreadsheet may read it as a formula.
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.name for column in output.columns])
    for row in output.rows:
        writer.writerow([csv_value(value) for value in row])
    return buffer.getvalue()


def csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


# The HTML page's view of a result


@dataclasses.dataclass(frozen=True)
class ColumnView:
    """One column as the page shows it; `kind` is the kind of its cells (see Cell).

    `title` is the header's tooltip: the recipe's description of the column, else its ClickHouse
    type. `area` places the cells in an account's card on narrow screens (see
    HEALTH_COLUMN_AREAS), empty for a plain table. `group_start` marks the first column of a
    group after the first, which gets a dividing line.
    """

    name: str
    type: str
    kind: str
    title: str
    area: str = ""
    group_start: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    @property
    def sort_type(self) -> str:
        return "number" if self.numeric or self.kind == "status" else "text"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One table cell as the page shows it.

    `kind` selects the markup: text, number, null, status, score, trend or money. `sort` is the
    number the sort script compares, empty for text and null cells. `detail` is the colour class
    of a status, the bar width (0-100) of a score, or the direction of a trend.
    """

    text: str
    kind: str
    sort: str = ""
    detail: str = ""


def page_context(publication: Publication, result: CachedResult) -> dict[str, Any]:
    output = result.output
    recipe = publication_recipe(publication)
    health = publication.recipe_id == HEALTH_RECIPE_ID
    order = display_order([column.name for column in output.columns]) if health else range(len(output.columns))
    columns = column_views(publication, output.columns, recipe, order)
    rows = [[make_cell(row[index], column.kind) for index, column in zip(order, columns)] for row in output.rows]
    return {
        "publication": publication,
        "formula": health_formula(publication, recipe) if health else "",
        "layout": "cards" if health else "table",
        "detail_count": sum(1 for column in columns if column.area == "detail"),
        "columns": columns,
        "rows": rows,
        "row_count": output.row_count,
        "row_count_text": f"{output.row_count:,} row" + ("" if output.row_count == 1 else "s"),
        "truncated": output.truncated,
        "computed_at": iso_utc(result.computed_at),
        "computed_at_text": display_time(result.computed_at),
        "stale_after": iso_utc(result.stale_after),
        "stale_after_text": display_time(result.stale_after),
    }


def publication_recipe(publication: Publication) -> Recipe | None:
    """Return the publication's recipe, or None for HogQL and for a recipe that no longer exists.

    Computing a publication whose recipe is gone already fails and logs the error, so a missing
    recipe is not logged again here.
    """
    if not publication.recipe_id:
        return None

    try:
        return get_recipe(publication.recipe_id)
    except RecipeError:
        return None


def display_order(names: list[str]) -> list[int]:
    """Return the indexes of the health recipe's columns in HEALTH_COLUMN_GROUPS order."""
    ranks = {name: rank for rank, name in enumerate(name for group in HEALTH_COLUMN_GROUPS for name in group)}
    unranked = len(ranks)
    return sorted(range(len(names)), key=lambda index: (ranks.get(names[index], unranked), index))


def column_views(
    publication: Publication, columns: list[Column], recipe: Recipe | None, order: Sequence[int]
) -> list[ColumnView]:
    """Describe the columns in display order. Columns of the health recipe also get areas and groups."""
    descriptions = {column.name: column.description for column in recipe.header.columns} if recipe else {}
    health = publication.recipe_id == HEALTH_RECIPE_ID
    groups = {name: number for number, group in enumerate(HEALTH_COLUMN_GROUPS) for name in group}
    views = []
    previous_group = 0
    for index in order:
        column = columns[index]
        group = groups.get(column.name, len(HEALTH_COLUMN_GROUPS))
        views.append(
            ColumnView(
                name=column.name,
                type=column.type,
                kind=column_kind(publication, column.name, column.type),
                title=descriptions.get(column.name, column.type),
                area=HEALTH_COLUMN_AREAS.get(column.name, "detail") if health else "",
                group_start=health and group != previous_group,
            )
        )
        previous_group = group
    return views


def health_formula(publication: Publication, recipe: Recipe | None) -> str:
    """Describe the weights and bands that a health publication scores with.

    Values come from the publication's parameters, else the recipe's defaults. The weights are
    shown as shares of their sum, as the recipe scales them to sum to 100. Returns an empty string
    when the parameters no longer validate against the recipe.
    """
    if recipe is None:
        return ""

    try:
        values = recipe.validate(publication.params, now=utcnow())
        weights = [(label, float(values[name])) for name, label in HEALTH_WEIGHTS]
        bands = [(label, float(values[name])) for name, label in HEALTH_BANDS]
    except (RecipeError, KeyError) as error:
        logger.warning(
            "describing the weights of publication %s (recipe %s) failed, so its page omits them: %s",
            publication.publication_id,
            publication.recipe_id,
            error,
        )
        return ""

    total = sum(weight for _, weight in weights)
    if total <= 0:
        return ""

    counted = [f"{label} {format_percent(100 * weight / total)}" for label, weight in weights if weight > 0]
    ignored = [label for label, weight in weights if weight <= 0]
    sentences = [f"The health score (0 to 100) weighs {join_words(counted)}."]
    if ignored:
        verb = "is" if len(ignored) == 1 else "are"
        sentences.append(f"{join_words(ignored).capitalize()} {verb} not counted (weight 0).")
    sentences.append("A cancelled account scores 0.")
    lowest_band = bands[0][1]
    band_starts = ", ".join(f"{label} from {format_number(start)}" for label, start in bands)
    sentences.append(f"Status: critical below {format_number(lowest_band)}, {band_starts}.")
    return " ".join(sentences)


def join_words(words: list[str]) -> str:
    """Join words as English does: 'a', 'a and b', 'a, b and c'."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def format_percent(value: float) -> str:
    return f"{format_number(round(value, 1))}%"


def display_time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def is_numeric_type(type_name: str) -> bool:
    """Tell whether a ClickHouse type, inside any Nullable or LowCardinality, is a number."""
    inner = type_name
    while inner.startswith(("Nullable(", "LowCardinality(")) and inner.endswith(")"):
        inner = inner[inner.index("(") + 1 : -1]
    return inner.startswith(("Int", "UInt", "Float", "Decimal"))


def column_kind(publication: Publication, name: str, type_name: str) -> str:
    if publication.recipe_id == HEALTH_RECIPE_ID and name in HEALTH_COLUMN_KINDS:
        return HEALTH_COLUMN_KINDS[name]
    return "number" if is_numeric_type(type_name) else "text"


def make_cell(value: Any, kind: str) -> Cell:
    """Format one value for the page according to its column's kind."""
    if value is None:
        return Cell(text="—", kind="null")
    if kind == "status":
        text = str(value)
        status_class = STATUS_CLASSES.get(text.lower(), "other")
        return Cell(text=text, kind="status", sort=str(STATUS_ORDER.index(status_class)), detail=status_class)

    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return Cell(text=plain_text(value), kind="text")

    sort = repr(value)
    if kind == "score":
        width = min(100.0, max(0.0, float(value)))
        return Cell(text=format_number(value), kind="score", sort=sort, detail=f"{width:g}")
    if kind == "trend":
        return trend_cell(value)
    if kind == "money":
        sign = "−" if value < 0 else ""
        return Cell(text=f"{sign}${format_money(abs(value))}", kind="money", sort=sort)
    return Cell(text=format_number(value), kind="number", sort=sort)


def trend_cell(value: int | float) -> Cell:
    sort = repr(value)
    if value > 0:
        return Cell(text=f"+{format_number(value)}", kind="trend", sort=sort, detail="up")
    if value < 0:
        return Cell(text=f"−{format_number(abs(value))}", kind="trend", sort=sort, detail="down")
    return Cell(text="0", kind="trend", sort=sort, detail="flat")


def plain_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def format_number(value: int | float) -> str:
    """Group thousands; round a fraction to two decimals, or to four significant digits below 1."""
    if isinstance(value, int):
        return f"{value:,}"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def format_money(amount: int | float) -> str:
    if isinstance(amount, float) and not amount.is_integer():
        return f"{amount:,.2f}"
    return f"{int(amount):,}"

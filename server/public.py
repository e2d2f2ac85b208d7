"""Published results under `/q/`: one URL serves a stored query as HTML, JSON or CSV.

A view needs the publication's key, from `?key=` or `Authorization: Bearer <key>`. Every reason
to reject a view (unknown id, missing or wrong key, revoked, expired) gets the same 404, so a
caller cannot tell which publications exist. Results are cached per publication for its
`cache_ttl_s`. When a result is stale, one request recomputes it. Concurrent viewers of the same
publication wait up to STALE_WAIT_S for that computation and otherwise get the last result,
marked as stale. Each publication has a request budget, and a view over it gets 429.

A health publication also has a drill-down at `/q/<id>/drilldown`, as HTML or JSON, under the same
key, budget, cache rules, headers and error shape (see server/public_drilldown.py).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import itertools
import json
import logging
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import urlencode

import anyio
import anyio.to_thread
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pulseboard.server.public_drilldown import PublicationDrilldown, compute_drilldown, has_drilldown
from pulseboard.server.public_page import (
    THEMES,
    PageOptions,
    iso_utc,
    render_drilldown_page,
    render_error_page,
    render_page,
)
from pulseboard.server.runtime import Runtime
from pulseboard.server.store import Publication, PublicationKeys, Store, check_publication_key, utcnow

if TYPE_CHECKING:
    from pulseboard.tools.query import QueryOutput

logger = logging.getLogger(__name__)

Format = Literal["html", "json", "csv"]
CacheStatus = Literal["hit", "miss", "shared", "stale", "refresh"]

FORMATS: tuple[Format, ...] = ("html", "json", "csv")
DRILLDOWN_FORMATS: tuple[Format, ...] = ("html", "json")
PATH_SUFFIXES: dict[str, Format] = {".json": "json", ".csv": "csv"}
MEDIA_TYPES: dict[Format, str] = {"html": "text/html", "json": "application/json", "csv": "text/csv"}
# The version of the JSON document's shape. It changes only when a field is removed or changes
# meaning, and added fields keep it.
DOCUMENT_VERSION = 1

# Store ids look like `pub_<16 hex digits>`. Anything outside this pattern gets the 404 without
# a store lookup, and is never written to the log.
PUBLICATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# A viewer that finds a recomputation in progress waits this long for it before it gets the
# last result marked as stale. A viewer with no earlier result waits for the computation.
STALE_WAIT_S = 0.25
# `?refresh=1` recomputes a publication at most once per this many seconds. A refresh requested
# sooner is served like a view without it.
REFRESH_INTERVAL_S = 60.0
# The default request budget of each publication: REQUEST_BURST views at once, refilled at
# REQUESTS_PER_MINUTE. A page view is one request, since the page loads nothing else.
REQUESTS_PER_MINUTE = 300
REQUEST_BURST = 60

ALLOWED_METHODS = "GET, HEAD, OPTIONS"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Retry-After, X-Pulseboard-Cache, X-Pulseboard-Computed-At, "
    "Content-Disposition",
}
PREFLIGHT_HEADERS = {
    "Allow": ALLOWED_METHODS,
    "Access-Control-Allow-Methods": ALLOWED_METHODS,
    "Access-Control-Allow-Headers": "Authorization, Accept, If-None-Match",
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
BAD_REQUEST_TITLE = "This link has an invalid option"
RATE_LIMITED_TITLE = "Too many views"
NO_DRILLDOWN_TITLE = "This publication has no drill-down"
NO_DRILLDOWN_MESSAGE = (
    "Only publications of the account_health_score recipe have a drill-down. Open the publication's "
    "own link without /drilldown."
)

# The result type that a cache holds: QueryOutput for publications, PublicationDrilldown for drill-downs.
ResultT = TypeVar("ResultT")


# The cache


@dataclasses.dataclass(frozen=True)
class CachedResult(Generic[ResultT]):
    """One computed result of a publication.

    `generation` numbers the results this process computed, so that two results never share an
    ETag even when their computed_at is the same.
    """

    output: ResultT
    computed_at: dt.datetime
    stale_after: dt.datetime
    # The cache's clock reading, in seconds, at which the result goes stale.
    fresh_until: float
    generation: int = 0
    # Encoded JSON and CSV bodies by (format, stale), filled on first use. Encoding a result of a
    # few hundred rows on every view took as long as the rest of a cached view.
    bodies: dict[tuple[str, bool], bytes] = dataclasses.field(default_factory=dict, compare=False)
    # ETags by the view options and staleness, filled on first use.
    etags: dict[tuple[ViewOptions, bool], str] = dataclasses.field(default_factory=dict, compare=False)

    @functools.cached_property
    def computed_at_iso(self) -> str:
        return iso_utc(self.computed_at)


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
        self.result: CachedResult[Any] | None = None
        self.error: ComputeError | None = None


class PublicationCache(Generic[ResultT]):
    """Results of publications, each fresh for its `cache_ttl_s`, recomputed one at a time.

    One instance caches one kind of result. The app keeps one for publications' results and one
    for the drill-downs of health publications.

    `compute` blocks (chDB calls do), so it runs in a worker thread. The cache's own state is
    read and written only from the event loop, so it needs no lock. `clock` measures freshness
    and `now` stamps `computed_at`. At most `max_entries` results are kept, least recently
    viewed dropped first.
    """

    def __init__(
        self,
        compute: Callable[[Publication], ResultT],
        clock: Callable[[], float] = time.monotonic,
        *,
        now: Callable[[], dt.datetime] = utcnow,
        max_entries: int = 256,
        stale_wait_s: float = STALE_WAIT_S,
        refresh_interval_s: float = REFRESH_INTERVAL_S,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}.")

        self._compute = compute
        self._clock = clock
        self._now = now
        self._max_entries = max_entries
        self._stale_wait_s = stale_wait_s
        self._refresh_interval_s = refresh_interval_s
        self._results: OrderedDict[str, CachedResult[ResultT]] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self._refreshed_at: OrderedDict[str, float] = OrderedDict()
        self._generations = itertools.count(1)

    def remaining_ttl(self, result: CachedResult[Any]) -> float:
        """Return the seconds until the result goes stale, 0 when it is stale."""
        return max(0.0, result.fresh_until - self._clock())

    async def get(
        self, publication: Publication, *, refresh: bool = False
    ) -> tuple[CachedResult[ResultT], CacheStatus]:
        """Return the publication's result and where it came from.

        "hit" is a fresh cached result, "miss" one this call computed, "refresh" one this call
        recomputed for `refresh`, "shared" one that a concurrent call computed while this one
        waited, and "stale" the last result, returned because a concurrent recomputation took
        longer than the stale wait. `refresh` recomputes a fresh result too, unless the
        publication was refreshed less than the refresh interval ago. Raises ComputeError when
        the computation fails, and every waiting call gets the same error id.
        """
        publication_id = publication.publication_id
        forced = refresh and self._take_refresh(publication_id)
        while True:
            cached = self._results.get(publication_id)
            if cached is not None and not forced and self.remaining_ttl(cached) > 0:
                self._results.move_to_end(publication_id)
                return cached, "hit"

            flight = self._flights.get(publication_id)
            if flight is None:
                return await self._lead(publication), "refresh" if forced else "miss"

            if cached is None:
                await flight.done.wait()
            else:
                with anyio.move_on_after(self._stale_wait_s):
                    await flight.done.wait()
                if not flight.done.is_set():
                    return cached, "stale"

            if flight.error is not None:
                raise ComputeError(publication_id, flight.error.error_id)
            if flight.result is not None:
                return flight.result, "shared"
            # The computing call was cancelled before it finished, so start over.

    def _take_refresh(self, publication_id: str) -> bool:
        """Record a forced refresh and return True, or return False when one happened too recently."""
        now = self._clock()
        last = self._refreshed_at.get(publication_id)
        if last is not None and now - last < self._refresh_interval_s:
            return False

        self._refreshed_at[publication_id] = now
        self._refreshed_at.move_to_end(publication_id)
        while len(self._refreshed_at) > self._max_entries:
            self._refreshed_at.popitem(last=False)
        return True

    async def _lead(self, publication: Publication) -> CachedResult[ResultT]:
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

    async def _compute_result(self, publication: Publication) -> CachedResult[ResultT]:
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
            generation=next(self._generations),
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


# Publication lookups


# A publication read from the store is used for key checks for this long. Revocations and key
# rotations through this process take effect at once; those written by another process sharing a
# ClickHouse server take effect within this time.
LOOKUP_TTL_S = 5.0


class PublicationLookup:
    """Checks keys against publications read from the store at most once per `ttl_s` per id.

    A cached view would otherwise spend most of its time on the store query behind the key check.
    Entries are dropped when the store has written any publication row since they were read, and
    unknown ids are not cached. At most `max_entries` publications are kept.
    """

    def __init__(
        self,
        store: Store,
        ttl_s: float = LOOKUP_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        now: Callable[[], dt.datetime] = utcnow,
        max_entries: int = 4096,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._now = now
        self._max_entries = max_entries
        # publication id -> (publication and key hashes, clock reading when read, store write count)
        self._entries: OrderedDict[str, tuple[tuple[Publication, PublicationKeys], float, int]] = OrderedDict()

    async def open(self, publication_id: str, key: str) -> Publication | None:
        """Return the live publication that the key opens, or None (see Store.open_publication)."""
        found = self._cached(publication_id)
        if found is None:
            writes = self._store.publication_writes
            found = await anyio.to_thread.run_sync(self._store.get_publication_keys, publication_id)
            if found is not None:
                self._entries[publication_id] = (found, self._clock(), writes)
                self._entries.move_to_end(publication_id)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return check_publication_key(found, key, self._now())

    def _cached(self, publication_id: str) -> tuple[Publication, PublicationKeys] | None:
        entry = self._entries.get(publication_id)
        if entry is None:
            return None

        found, read_at, writes = entry
        if writes != self._store.publication_writes or self._clock() - read_at >= self._ttl_s:
            del self._entries[publication_id]
            return None
        self._entries.move_to_end(publication_id)
        return found


# The request budget


@dataclasses.dataclass
class _Bucket:
    tokens: float
    updated: float


class RequestBudget:
    """A token bucket per publication: `burst` requests at once, refilled at `per_minute`.

    Only views that passed the key check spend the budget, so a caller without the key cannot
    use up the budget of a publication. At most `max_entries` buckets are kept, the least
    recently used dropped first (a dropped bucket starts full again).
    """

    def __init__(
        self,
        per_minute: float = REQUESTS_PER_MINUTE,
        burst: int = REQUEST_BURST,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = 10_000,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be above 0, got {per_minute}.")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}.")

        self._rate_per_s = per_minute / 60.0
        self._burst = burst
        self._clock = clock
        self._max_entries = max_entries
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, publication_id: str) -> int:
        """Spend one request. Return 0 when it is allowed, else the whole seconds until one is allowed."""
        now = self._clock()
        bucket = self._buckets.get(publication_id)
        if bucket is None:
            bucket = _Bucket(tokens=float(self._burst), updated=now)
            self._buckets[publication_id] = bucket
            while len(self._buckets) > self._max_entries:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(publication_id)

        bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.updated) * self._rate_per_s)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate_per_s))


# Routes and request handling


def public_routes() -> list[BaseRoute]:
    """Return the routes of the published-result pages and of the health drill-downs.

    The routes take every method, so that the endpoints can respond to the unsupported ones with
    the JSON error shape and the CORS headers.
    """
    methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/q/{publication_id}", publication_endpoint, methods=methods, name="publication"),
        Route(
            "/q/{publication_id}/drilldown", drilldown_endpoint, methods=methods, name="publication_drilldown"
        ),
        # Any other path under /q/ gets the same 404 as an unknown publication, not the MCP mount's.
        Route("/q/{rest:path}", unknown_path_endpoint, methods=methods, name="publication_unknown_path"),
    ]


@dataclasses.dataclass
class RequestSummary:
    """The fields of the one INFO line logged per request."""

    publication_id: str = "-"
    format: str = "-"
    cache: str = "-"


class RequestError(Exception):
    """A query parameter has an invalid value. `code` is the error code of the 400 response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class ViewOptions:
    """The options of a view, read from the path suffix, the query string and the Accept header."""

    format: Format
    page: PageOptions = PageOptions()
    refresh: bool = False


async def publication_endpoint(request: Request) -> Response:
    """Serve one publication as HTML, JSON or CSV, and respond to CORS preflight requests."""
    return await logged_response(request, respond, "")


async def drilldown_endpoint(request: Request) -> Response:
    """Serve a health publication's drill-down as HTML or JSON, and respond to CORS preflight requests."""
    return await logged_response(request, respond_drilldown, "/drilldown")


async def unknown_path_endpoint(request: Request) -> Response:
    """Respond to a path under /q/ that names no publication view with the one 404."""
    output_format: Format = "html" if wants_html(request, None) else "json"
    logger.info("%s /q/<unknown path> status=404", request.method)
    return not_found_response(request, output_format)


async def logged_response(
    request: Request,
    respond_with: Callable[[Request, RequestSummary], Awaitable[Response]],
    path_suffix: str,
) -> Response:
    """Run an endpoint's handler and log its one INFO line, whose path has no key."""
    started = time.perf_counter()
    summary = RequestSummary()
    status = 500
    try:
        response = await respond_with(request, summary)
        status = response.status_code
        if request.method == "HEAD":
            # Content-Length stays that of the GET body, as HEAD requires.
            response.body = b""
        return response
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "%s /q/%s%s format=%s status=%d cache=%s ms=%.1f",
            request.method,
            summary.publication_id,
            path_suffix,
            summary.format,
            status,
            summary.cache,
            elapsed_ms,
        )


async def respond(request: Request, summary: RequestSummary) -> Response:
    publication_id, suffix = split_suffix(request.path_params["publication_id"])
    opened = await open_view(request, summary, publication_id, suffix, FORMATS)
    if isinstance(opened, Response):
        return opened

    publication, options = opened
    try:
        cache: PublicationCache[QueryOutput] = request.app.state.publications
        result, summary.cache = await cache.get(publication, refresh=options.refresh)
        max_age = 0 if summary.cache == "stale" else int(cache.remaining_ttl(result))
        return result_response(request, options, publication, result, summary.cache, max_age)
    except Exception as error:
        return failure_response(request, options.format, summary, error)


async def respond_drilldown(request: Request, summary: RequestSummary) -> Response:
    opened = await open_view(request, summary, request.path_params["publication_id"], None, DRILLDOWN_FORMATS)
    if isinstance(opened, Response):
        return opened

    publication, options = opened
    if not has_drilldown(publication):
        return error_response(
            request, options.format, 404, "not_found", NO_DRILLDOWN_MESSAGE, title=NO_DRILLDOWN_TITLE
        )
    try:
        cache = drilldown_cache(request.app.state)
        result, summary.cache = await cache.get(publication, refresh=options.refresh)
        max_age = 0 if summary.cache == "stale" else int(cache.remaining_ttl(result))
        return drilldown_response(request, options, publication, result, summary.cache, max_age)
    except Exception as error:
        return failure_response(request, options.format, summary, error)


async def open_view(
    request: Request,
    summary: RequestSummary,
    publication_id: str,
    suffix: Format | None,
    formats: tuple[Format, ...],
) -> tuple[Publication, ViewOptions] | Response:
    """Check the method, the options, the key and the budget of a view.

    Returns the publication that the key opens with the view's options, or the response that
    ends the request: a preflight's 204, a 405, a 400, the one 404 or a 429.
    """
    valid_id = PUBLICATION_ID_PATTERN.match(publication_id) is not None
    if valid_id:
        summary.publication_id = publication_id

    # A preflight carries no key, so it gets its 204 without a publication lookup.
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={**CORS_HEADERS, **PREFLIGHT_HEADERS, **SECURITY_HEADERS})
    if request.method not in ("GET", "HEAD"):
        message = f"Method {request.method} is not allowed on published results. Use GET or HEAD."
        return error_response(request, "json", 405, "method_not_allowed", message, extra={"Allow": ALLOWED_METHODS})

    try:
        options = view_options(request, suffix, formats)
    except RequestError as error:
        html = error.code != "invalid_format" and wants_html(request, suffix, formats)
        return error_response(request, "html" if html else "json", 400, error.code, error.message, title=BAD_REQUEST_TITLE)
    summary.format = options.format

    try:
        key = request_key(request)
        lookup: PublicationLookup = request.app.state.publication_lookup
        publication = None
        if valid_id and key:
            publication = await lookup.open(publication_id, key)
        if publication is None:
            return not_found_response(request, options.format)

        budget: RequestBudget = request.app.state.publication_budget
        retry_after = budget.take(publication_id)
        if retry_after:
            return rate_limited_response(request, options.format, publication_id, retry_after)
    except Exception as error:
        return failure_response(request, options.format, summary, error)
    return publication, options


def failure_response(request: Request, output_format: Format, summary: RequestSummary, error: Exception) -> Response:
    """Build the 500 of a failed view in the requested format, with the CORS headers.

    A ComputeError was logged where it happened; any other error is logged here with a new id.
    """
    if isinstance(error, ComputeError):
        return server_error_response(request, output_format, error.error_id)

    error_id = new_error_id()
    logger.error(
        "serving publication %s failed, error id %s", summary.publication_id, error_id, exc_info=error
    )
    return server_error_response(request, output_format, error_id)


def drilldown_cache(state: State) -> PublicationCache[PublicationDrilldown]:
    """Return the app's cache of drill-downs, created on first use from the app's runtime.

    An app that sets `state.publication_drilldowns` itself chooses the cache's clock and limits.
    """
    cache: PublicationCache[PublicationDrilldown] | None = getattr(state, "publication_drilldowns", None)
    if cache is None:
        cache = PublicationCache(compute_drilldown(state.runtime))
        state.publication_drilldowns = cache
    return cache


def split_suffix(raw_id: str) -> tuple[str, Format | None]:
    """Split a `.json` or `.csv` suffix off the path's publication id."""
    for suffix, output_format in PATH_SUFFIXES.items():
        if raw_id.endswith(suffix):
            return raw_id.removesuffix(suffix), output_format
    return raw_id, None


def view_options(request: Request, suffix: Format | None, formats: tuple[Format, ...] = FORMATS) -> ViewOptions:
    """Read the format, `?theme=`, `?embed=` and `?refresh=`, and raise RequestError for an invalid value."""
    output_format = choose_format(request, suffix, formats)
    theme = request.query_params.get("theme", "auto")
    if theme not in THEMES:
        raise RequestError("invalid_theme", f"Invalid theme {theme!r}. Use one of: {', '.join(THEMES)}.")
    embed = flag_value(request, "embed")
    refresh = flag_value(request, "refresh")
    page = PageOptions(theme=theme, embed=embed)  # type: ignore[arg-type]  # checked against THEMES above
    return ViewOptions(format=output_format, page=page, refresh=refresh)


FLAG_VALUES = {"1": True, "true": True, "0": False, "false": False}


def flag_value(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value not in FLAG_VALUES:
        raise RequestError(f"invalid_{name}", f"Invalid {name} value {value!r}. Use {name}=1 or {name}=0.")
    return FLAG_VALUES[value]


def wants_html(request: Request, suffix: Format | None, formats: tuple[Format, ...] = FORMATS) -> bool:
    """Tell whether an error about another option should be an HTML page, by the requested format."""
    try:
        return choose_format(request, suffix, formats) == "html"
    except RequestError:
        return False


def choose_format(request: Request, suffix: Format | None, formats: tuple[Format, ...] = FORMATS) -> Format:
    """Pick the format from `?format=`, else the path suffix, else the Accept header, among `formats`."""
    requested = request.query_params.get("format")
    if requested is None:
        return suffix or format_from_accept(request.headers.get("accept", ""), formats)

    allowed = ", ".join(formats)
    if requested not in formats:
        raise RequestError("invalid_format", f"Invalid format {requested!r}. Use one of: {allowed}.")
    if suffix is not None and suffix != requested:
        raise RequestError(
            "invalid_format", f"Format {requested!r} contradicts the path suffix '.{suffix}'. Drop one of them."
        )
    return requested  # type: ignore[return-value]  # checked against formats above


def format_from_accept(accept: str, formats: tuple[Format, ...] = FORMATS) -> Format:
    """Choose the best of `formats` for an Accept header; HTML when none is acceptable.

    Ties in quality go to the more specific media range, then to HTML, JSON, CSV in that
    order. So a browser's `text/html,...,*/*;q=0.8` gets HTML and a client sending
    `application/json, text/plain, */*` gets JSON.
    """
    ranges = parse_accept(accept)
    best: tuple[float, int] = (0.0, -1)
    chosen: Format = "html"
    for output_format in formats:
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


BASE_HEADERS = {**CORS_HEADERS, **SECURITY_HEADERS, "Vary": "Accept, Authorization"}


def encoded_body(result: CachedResult[Any], key: tuple[str, bool], encode: Callable[[], bytes]) -> bytes:
    """Return the encoded body of a cached result, encoding it on first use, because views of one
    result repeat far more often than it is computed."""
    body = result.bodies.get(key)
    if body is None:
        body = encode()
        result.bodies[key] = body
    return body


def json_bytes(document: dict[str, Any]) -> bytes:
    """Encode a JSON document as JSONResponse does."""
    return JSONResponse(document).body


def result_response(
    request: Request,
    options: ViewOptions,
    publication: Publication,
    result: CachedResult[QueryOutput],
    cache_status: CacheStatus,
    max_age: int,
) -> Response:
    """Build the result in the requested format, or a 304 when the client's copy is current."""
    stale = cache_status == "stale"
    headers = view_headers(publication, "result", options, result, cache_status, max_age)
    if etag_matches(request.headers.get("if-none-match", ""), headers["ETag"]):
        return Response(status_code=304, headers=headers)

    if options.format == "json":
        headers["Content-Security-Policy"] = DATA_CSP
        body = encoded_body(
            result, ("json", stale), lambda: json_bytes(result_document(publication, result, stale=stale))
        )
        return Response(body, media_type="application/json", headers=headers)

    if options.format == "csv":
        headers["Content-Security-Policy"] = DATA_CSP
        headers["Content-Disposition"] = f'inline; filename="{publication.publication_id}.csv"'
        body = encoded_body(result, ("csv", False), lambda: result_csv(result.output).encode())
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)

    return render_page(
        request,
        publication,
        result.output,
        computed_at=result.computed_at,
        stale_after=result.stale_after,
        stale=stale,
        options=options.page,
        drilldown_url=drilldown_link(request, publication, options.page),
        headers=headers,
    )


def drilldown_response(
    request: Request,
    options: ViewOptions,
    publication: Publication,
    result: CachedResult[PublicationDrilldown],
    cache_status: CacheStatus,
    max_age: int,
) -> Response:
    """Build the drill-down as HTML or JSON, or a 304 when the client's copy is current."""
    stale = cache_status == "stale"
    headers = view_headers(publication, "drilldown", options, result, cache_status, max_age)
    if etag_matches(request.headers.get("if-none-match", ""), headers["ETag"]):
        return Response(status_code=304, headers=headers)

    if options.format == "json":
        headers["Content-Security-Policy"] = DATA_CSP
        body = encoded_body(
            result, ("json", stale), lambda: json_bytes(drilldown_document(publication, result, stale=stale))
        )
        return Response(body, media_type="application/json", headers=headers)

    return render_drilldown_page(
        request,
        publication,
        result.output,
        computed_at=result.computed_at,
        stale_after=result.stale_after,
        stale=stale,
        options=options.page,
        table_url=view_link(request, f"../{publication.publication_id}", options.page),
        headers=headers,
    )


def view_headers(
    publication: Publication,
    view: str,
    options: ViewOptions,
    result: CachedResult[Any],
    cache_status: CacheStatus,
    max_age: int,
) -> dict[str, str]:
    """Return the headers of a 200 or 304 view: CORS, security, caching and the ETag."""
    stale = cache_status == "stale"
    etag = result.etags.get((options, stale))
    if etag is None:
        etag = entity_tag(publication.publication_id, result, options, stale, view)
        result.etags[options, stale] = etag
    return {
        **BASE_HEADERS,
        "Cache-Control": f"private, max-age={max_age}",
        "ETag": etag,
        "X-Pulseboard-Cache": cache_status,
        "X-Pulseboard-Computed-At": result.computed_at_iso,
    }


def drilldown_link(request: Request, publication: Publication, page: PageOptions) -> str | None:
    """Return the relative URL of a health publication's drill-down, None for other publications."""
    if not has_drilldown(publication):
        return None
    return view_link(request, f"{publication.publication_id}/drilldown", page)


def view_link(request: Request, path: str, page: PageOptions) -> str:
    """Return a relative link to another view of the same publication, with the page's options.

    The link carries the key only when this request had it in `?key=`. A key sent as a bearer
    token stays out of the page, so its reader sends the token again to follow the link.
    """
    params = {"key": request.query_params.get("key", "")}
    if page.theme != "auto":
        params["theme"] = page.theme
    if page.embed:
        params["embed"] = "1"
    query = urlencode({name: value for name, value in params.items() if value})
    return f"{path}?{query}" if query else path


def entity_tag(
    publication_id: str, result: CachedResult[Any], options: ViewOptions, stale: bool, view: str = "result"
) -> str:
    """Return a weak ETag for one form of one result; `view` is "result" or "drilldown".

    It is weak because each HTML response carries its own CSP nonce, so two pages of the same
    result are equivalent but not byte for byte the same.
    """
    parts = (
        publication_id,
        view,
        result.computed_at_iso,
        str(result.generation),
        options.format,
        options.page.theme,
        str(options.page.embed),
        str(stale),
        str(DOCUMENT_VERSION),
    )
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]
    return f'W/"{digest}"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Compare an If-None-Match header with an ETag by the weak comparison of RFC 9110."""
    if not if_none_match.strip():
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


def not_found_response(request: Request, output_format: Format) -> Response:
    """Build the one 404 of each format, whatever the reason: the response must not reveal whether
    the id exists, the key is wrong, or the publication was revoked or has expired."""
    if output_format == "html":
        return error_response(
            request, "html", 404, "not_found", NOT_FOUND_BODY["error"]["message"], title=NOT_FOUND_TITLE
        )

    headers = {**BASE_HEADERS, "Cache-Control": "no-store", "Content-Security-Policy": DATA_CSP}
    return JSONResponse(NOT_FOUND_BODY, status_code=404, headers=headers)


def rate_limited_response(request: Request, output_format: Format, publication_id: str, retry_after: int) -> Response:
    logger.warning("publication %s is over its request budget; retry after %d s", publication_id, retry_after)
    message = (
        f"This publication got more views than its budget allows. Retry after {retry_after} seconds; "
        "tools that poll it should poll less often."
    )
    return error_response(
        request,
        output_format,
        429,
        "rate_limited",
        message,
        title=RATE_LIMITED_TITLE,
        extra={"Retry-After": str(retry_after)},
    )


def error_response(
    request: Request,
    output_format: Format,
    status: int,
    code: str,
    message: str,
    error_id: str | None = None,
    title: str = SERVER_ERROR_TITLE,
    extra: dict[str, str] | None = None,
) -> Response:
    """Build an error in the requested format: an HTML page for HTML, else the JSON error shape
    `{"error": {"code", "message", "error_id" (for 500 only)}}`."""
    headers = {**BASE_HEADERS, "Cache-Control": "no-store", **(extra or {})}
    if output_format == "html":
        return render_error_page(request, status, title, message, error_id, headers)

    headers["Content-Security-Policy"] = DATA_CSP
    error: dict[str, str] = {"code": code, "message": message}
    if error_id is not None:
        error["error_id"] = error_id
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def server_error_response(request: Request, output_format: Format, error_id: str) -> Response:
    message = (
        "The query behind this publication failed. Try again later, or give the error id "
        f"{error_id} to the person who shared the link."
    )
    return error_response(request, output_format, 500, "internal_error", message, error_id)


def publication_fields(publication: Publication) -> dict[str, Any]:
    """Return the `publication` object of the JSON documents."""
    return {
        "id": publication.publication_id,
        "title": publication.title,
        "description": publication.description,
        "recipe_id": publication.recipe_id or None,
        "params": publication.params,
        "created_at": iso_utc(publication.created_at),
        "expires_at": iso_utc(publication.expires_at) if publication.expires_at else None,
    }


def result_document(
    publication: Publication, result: CachedResult[QueryOutput], *, stale: bool = False
) -> dict[str, Any]:
    """Build the JSON document of a result, version DOCUMENT_VERSION of its shape."""
    output = result.output
    return {
        "version": DOCUMENT_VERSION,
        "publication": publication_fields(publication),
        "columns": [{"name": column.name, "type": column.type} for column in output.columns],
        "rows": output.rows,
        "row_count": output.row_count,
        "truncated": output.truncated,
        "computed_at": iso_utc(result.computed_at),
        "stale_after": iso_utc(result.stale_after),
        "stale": stale,
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


def drilldown_document(
    publication: Publication, result: CachedResult[PublicationDrilldown], *, stale: bool = False
) -> dict[str, Any]:
    """Build the JSON document of a drill-down, version DOCUMENT_VERSION of its shape.

    `accounts` lists the lowest-scoring accounts, lowest first; each has its score, status and top
    risk from the publication's table, and the titled sections of account_drilldown.
    """
    drilldown = result.output
    return {
        "version": DOCUMENT_VERSION,
        "publication": publication_fields(publication),
        "as_of": iso_utc(drilldown.as_of),
        "accounts": [
            {
                "account": account.account,
                "health_score": account.health_score,
                "status": account.status,
                "top_risk_signal": account.top_risk_signal,
                "last_seen": account.last_seen,
                "sections": [
                    {
                        "name": section.name,
                        "title": section.title,
                        "columns": [{"name": column.name, "type": column.type} for column in section.columns],
                        "rows": section.rows,
                    }
                    for section in account.sections
                ],
            }
            for account in drilldown.accounts
        ],
        "computed_at": iso_utc(result.computed_at),
        "stale_after": iso_utc(result.stale_after),
        "stale": stale,
    }

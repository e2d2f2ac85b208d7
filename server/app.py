"""The Starlette app: ingestion and the admin API under /v1/, published results under /q/, MCP at /mcp."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulseboard.server.admin import admin_routes
from pulseboard.server.capture import capture_routes
from pulseboard.server.ingest import EventWriter, ingest_routes
from pulseboard.server.mcp_server import create_mcp
from pulseboard.server.public import (
    PublicationCache,
    PublicationLookup,
    RequestBudget,
    compute_publication,
    public_routes,
)
from pulseboard.server.runtime import Runtime
from pulseboard.server.tokens import ClientAddressMiddleware, ProjectTokenVerifier
from pulseboard.server.webhooks import webhook_routes

logger = logging.getLogger(__name__)

LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

PUBLIC_PREFIX = "/q/"

SECRET_QUERY = re.compile(r"(?i)\b(key|token|api_key)=[^&\s]*")


def redact_query(query: str) -> str:
    """Replace key, token and api_key values in a query string with '***'."""
    return SECRET_QUERY.sub(lambda match: f"{match.group(1)}=***", query)


class RequestLogMiddleware:
    """Log one line per HTTP request: method, path, redacted query, status and duration.

    Requests under `/q/` are left out, because the published-result endpoint logs its own line
    with the publication id, format and cache status.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(PUBLIC_PREFIX):
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            query = redact_query(scope.get("query_string", b"").decode("latin-1"))
            target = scope["path"] + (f"?{query}" if query else "")
            logger.info(
                "%s %s %d %.1f ms", scope["method"], target, status, (time.perf_counter() - started) * 1000
            )


def transport_security(public_url: str) -> TransportSecuritySettings:
    """Allow MCP requests addressed to localhost or to the public URL's host, nothing else."""
    parts = urlsplit(public_url)
    hosts = list(LOCAL_HOSTS)
    if parts.hostname and parts.hostname not in hosts:
        hosts.append(parts.hostname)
    allowed_hosts = hosts + [f"{host}:*" for host in hosts]
    allowed_origins = [f"{scheme}://{host}" for host in allowed_hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
    )


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(runtime: Runtime, *, api_token: str, publication_budget: RequestBudget | None = None) -> Starlette:
    """Build the web app; one app per process, since the MCP session manager runs once.

    `publication_budget` limits the views of each publication, by default to RequestBudget()'s.
    """
    verifier = ProjectTokenVerifier(api_token, runtime.store)
    mcp = create_mcp(runtime, verifier=verifier)
    mcp_app = mcp.streamable_http_app(transport_security=transport_security(runtime.settings.public_url))
    writer = EventWriter(runtime.store)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        logger.info("pulseboard web app started; public URL %s", runtime.settings.public_url)
        async with mcp.session_manager.run():
            try:
                yield
            finally:
                await writer.close()
                logger.info("pulseboard web app stopped")

    app = Starlette(
        routes=[
            Route("/health", health),
            *ingest_routes(),
            *capture_routes(),
            *webhook_routes(),
            *admin_routes(),
            *public_routes(),
            Mount("/", app=ClientAddressMiddleware(mcp_app)),  # last: a root mount matches every path
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.writer = writer
    app.state.api_token = api_token
    app.state.token_verifier = verifier
    app.state.project_lock = asyncio.Lock()
    app.state.publications = PublicationCache(compute_publication(runtime))
    app.state.publication_budget = publication_budget or RequestBudget()
    app.state.publication_lookup = PublicationLookup(runtime.store)
    app.add_middleware(RequestLogMiddleware)
    return app

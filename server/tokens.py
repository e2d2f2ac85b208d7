"""API tokens limited to some projects, and the bearer-token check of the MCP endpoint.

The server's own API token (PULSEBOARD_API_TOKEN, or the `api_token` file in the data folder) may
use every project. A token made with `pulseboard token create --project X` may use only the
projects it names. The store keeps the token's SHA-256 hash, never the token itself.

A verified token reaches the tools as an MCP `AccessToken` whose scopes name its projects:
`projects:*` for the server's token, `project:<id>` for each project of a limited token.

Each rejected token is logged at INFO with the client address, never the token. The hash of a
rejected token is remembered for REJECTED_TTL_S seconds, so a client that repeats a wrong token
costs a dictionary lookup instead of a store query. Accepted tokens are not cached, so a revoked
token fails on its next request.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.auth.provider import AccessToken, TokenVerifier
from starlette.types import ASGIApp, Receive, Scope, Send

from pulseboard.server.ingest import format_iso
from pulseboard.server.store import API_TOKEN_PREFIX, Store, hash_key, new_key, utcnow

logger = logging.getLogger(__name__)

ALL_PROJECTS_SCOPE = "projects:*"
PROJECT_SCOPE_PREFIX = "project:"
SERVER_TOKEN_CLIENT_ID = "pulseboard-api-token"
TOKEN_PREFIX = API_TOKEN_PREFIX

# A wrong token is rejected from memory for this long after its store lookup missed. A new token
# is random, so no client sent it before, and creating one does not need to drop an entry.
REJECTED_TTL_S = 60.0
# At most this many rejected hashes are kept, and the oldest are dropped first.
MAX_REJECTED = 10_000

TOKEN_COLUMNS = ["token_id", "token_hash", "projects", "label", "created_at", "revoked", "version"]
SELECT_TOKENS = "SELECT token_id, projects, label, created_at, revoked, token_hash FROM api_tokens FINAL"


class TokenError(Exception):
    """A token request names an unknown project or token; the message names the fix."""


@dataclass(frozen=True)
class ProjectToken:
    """A stored API token limited to some projects; the token itself is not kept."""

    token_id: str
    projects: tuple[str, ...]
    label: str
    created_at: dt.datetime
    revoked: bool


def create_token(store: Store, projects: Sequence[str], label: str = "") -> tuple[ProjectToken, str]:
    """Store a new token for the given projects; return it with the token text, shown only once."""
    if not projects:
        raise TokenError("A token needs at least one project; name it with --project PROJECT_ID.")
    missing = [project_id for project_id in projects if store.get_project(project_id) is None]
    if missing:
        raise TokenError(
            f"Project {missing[0]!r} does not exist; create it with `pulseboard project create {missing[0]}` "
            "or check `pulseboard project list`."
        )

    token = new_key(TOKEN_PREFIX)
    record = ProjectToken(
        token_id="tok_" + secrets.token_hex(8),
        projects=tuple(sorted(set(projects))),
        label=label,
        created_at=utcnow(),
        revoked=False,
    )
    write_token(store, record, hash_key(token))
    logger.info("created API token %s for projects %s", record.token_id, ", ".join(record.projects))
    return record, token


def write_token(store: Store, record: ProjectToken, token_hash: str) -> None:
    row = [
        record.token_id, token_hash, list(record.projects), record.label, record.created_at,
        int(record.revoked), time.time_ns(),
    ]
    with store.connection() as client:
        client.insert("api_tokens", [row], column_names=TOKEN_COLUMNS)


def token_from_row(row: Sequence[Any]) -> ProjectToken:
    token_id, projects, label, created_at, revoked, _ = row
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.timezone.utc)
    return ProjectToken(token_id, tuple(projects), label, created_at, bool(revoked))


def token_json(record: ProjectToken) -> dict[str, Any]:
    """Return a token's record as the admin API sends it and `pulseboard token list` prints it."""
    return {
        "token_id": record.token_id,
        "projects": list(record.projects),
        "label": record.label,
        "created_at": format_iso(record.created_at),
        "revoked": record.revoked,
    }


def list_tokens(store: Store) -> list[ProjectToken]:
    """Return every stored token, revoked ones included, oldest first."""
    with store.connection() as client:
        rows = client.query(SELECT_TOKENS + " ORDER BY created_at, token_id").result_rows
    return [token_from_row(row) for row in rows]


def find_token(store: Store, token: str) -> ProjectToken | None:
    """Return the live stored token with this text, or None when it is unknown or revoked."""
    return find_token_by_hash(store, hash_key(token))


def find_token_by_hash(store: Store, token_hash: str) -> ProjectToken | None:
    with store.connection() as client:
        rows = client.query(SELECT_TOKENS + " WHERE token_hash = {h:String}", parameters={"h": token_hash}).result_rows
    if not rows:
        return None
    record = token_from_row(rows[0])
    return None if record.revoked else record


def revoke_token(store: Store, token_id: str) -> ProjectToken:
    """Mark a token revoked, so the next request that sends it gets 401."""
    with store.connection() as client:
        rows = client.query(SELECT_TOKENS + " WHERE token_id = {i:String}", parameters={"i": token_id}).result_rows
    if not rows:
        raise TokenError(f"API token {token_id!r} does not exist; `pulseboard token list` shows the ids.")

    record = token_from_row(rows[0])
    revoked = ProjectToken(record.token_id, record.projects, record.label, record.created_at, True)
    write_token(store, revoked, str(rows[0][-1]))
    logger.info("revoked API token %s", token_id)
    return revoked


# The address of the client whose request is being handled, for the log line of a rejected token,
# because the SDK passes the verifier only the token.
client_address: ContextVar[str] = ContextVar("client_address", default="unknown")


class ClientAddressMiddleware:
    """Record each HTTP request's client address in `client_address` for the token verifier."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        reset = client_address.set(client[0] if client else "unknown")
        try:
            await self.app(scope, receive, send)
        finally:
            client_address.reset(reset)


class ProjectTokenVerifier(TokenVerifier):
    """Accept the server's API token for every project, and stored tokens for their own projects."""

    def __init__(
        self, api_token: str, store: Store, *, rejected_ttl_s: float = REJECTED_TTL_S, max_rejected: int = MAX_REJECTED
    ) -> None:
        self._api_token = api_token.encode()
        self._store = store
        self._rejected_ttl_s = rejected_ttl_s
        self._max_rejected = max_rejected
        # token hash -> (monotonic time the entry expires, attempts rejected since the store lookup)
        self._rejected: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def is_server_token(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self._api_token)

    async def verify_token(self, token: str) -> AccessToken | None:
        return await self.identify(token, client_address.get())

    async def identify(self, token: str, client: str) -> AccessToken | None:
        """Return the token's access, or None (logged with `client`) when it is unknown or revoked."""
        if self.is_server_token(token):
            return AccessToken(token=token, client_id=SERVER_TOKEN_CLIENT_ID, scopes=[ALL_PROJECTS_SCOPE])

        token_hash = hash_key(token)
        now = time.monotonic()
        remembered = self._rejected.get(token_hash)
        if remembered is not None and remembered[0] > now:
            expires_at, rejections = remembered[0], remembered[1] + 1
            self._rejected[token_hash] = (expires_at, rejections)
            logger.info(
                "rejected an unknown or revoked API token from %s (%d rejections of this token in %.1f s)",
                client, rejections, now - (expires_at - self._rejected_ttl_s),
            )
            return None

        record = await anyio.to_thread.run_sync(find_token_by_hash, self._store, token_hash)
        if record is None:
            self._remember_rejected(token_hash, now)
            logger.info("rejected an unknown or revoked API token from %s", client)
            return None
        return AccessToken(
            token=token,
            client_id=record.token_id,
            scopes=[PROJECT_SCOPE_PREFIX + project_id for project_id in record.projects],
        )

    def _remember_rejected(self, token_hash: str, now: float) -> None:
        self._rejected.pop(token_hash, None)
        self._rejected[token_hash] = (now + self._rejected_ttl_s, 1)
        # Entries share one TTL, so the oldest entry is also the first to expire.
        while self._rejected and (
            len(self._rejected) > self._max_rejected or next(iter(self._rejected.values()))[0] <= now
        ):
            self._rejected.popitem(last=False)


def allowed_projects(access: AccessToken | None) -> list[str] | None:
    """Return the projects a verified token may use, or None when it may use every project.

    Stdio and in-memory clients carry no token: the person who started the process has the store.
    """
    if access is None or ALL_PROJECTS_SCOPE in access.scopes:
        return None
    return [scope.removeprefix(PROJECT_SCOPE_PREFIX) for scope in access.scopes if scope.startswith(PROJECT_SCOPE_PREFIX)]


def project_access_problem(access: AccessToken | None, project_id: str) -> str:
    """Return why the token may not use the project, or '' when it may."""
    allowed = allowed_projects(access)
    if allowed is None or project_id in allowed:
        return ""
    return (
        f"This API token may use only the project(s) {', '.join(allowed)}; project {project_id!r} is not one "
        "of them. Pass one of those as project_id, or use a token created with "
        f"`pulseboard token create --project {project_id}`."
    )


def choose_project(access: AccessToken | None, requested: str | None, default_project: str) -> tuple[str, str]:
    """Return the project a tool call acts on, and why the token may not use it ('' when it may).

    A call that names no project acts on the only project of a token limited to one project, and on
    `default_project` for the server's token and for stdio and in-memory clients.
    """
    allowed = allowed_projects(access)
    if requested is not None:
        return requested, project_access_problem(access, requested)
    if allowed is None:
        return default_project, ""
    if len(allowed) == 1:
        return allowed[0], ""
    return "", (
        f"This API token may use the projects {', '.join(allowed)}; pass one of them as project_id."
    )

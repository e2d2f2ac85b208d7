"""The admin API under `/v1/projects`, and the client the CLI uses to reach it on a running server.

Routes
    Every route needs the API token as `Authorization: Bearer <token>`, compared in constant time.
    A missing or wrong token gets 401 before the body is read.

    `GET /v1/projects` returns `200 {"projects": [project, ...]}`, ordered by id.
    `POST /v1/projects` takes `{"project_id", "name"?, "timezone"?}` and returns
    `201 {"project": project, "ingestion_key": "pbi_..."}`. The key is shown only in this response,
    because the store keeps its hash. An existing id gets 409, and an invalid id or time zone gets 422.
    `GET /v1/projects/{project_id}` returns `200 {"project": project}`, or 404.
    `POST /v1/projects/{project_id}/events/lookup` takes `{"uuids": [...]}` (1 to 1,000 uuids) and
    returns `200 {"stored": [...]}` with the ones the project already stores, sorted. The CLI uses it
    to reject a second import of the same file.
    `GET /v1/projects/{project_id}/settings` returns `200 {"settings": {...}}` with the webhook
    settings (see `pulseboard.server.webhooks`); the Stripe signing secret appears only as
    `stripe_signing_secret_set`. `PUT` takes `{"stripe_signing_secret"?, "stripe_account_metadata_key"?,
    "ticket_fields"?}`, stores the names given and returns the same body as GET; an unknown name or
    a bad value gets 422.

    `POST /v1/tokens` takes `{"projects": [...], "label"?}` and returns
    `201 {"api_token": token, "token": "pbt_..."}`: a project token for `/mcp` that may use only
    those projects. The token text is shown only in this response, because the store keeps its hash.
    An unknown project gets 422. `GET /v1/tokens` returns `200 {"api_tokens": [token, ...]}`, revoked
    ones included, oldest first. `DELETE /v1/tokens/{token_id}` revokes a token and returns
    `200 {"api_token": token}`, or 404.

    A project is `{"project_id", "name", "timezone", "created_at"}`, and a token is
    `{"token_id", "projects", "label", "created_at", "revoked"}`, never its text or hash; `created_at`
    is ISO 8601 UTC. Errors are `{"error": {"code", "message", "details"}}`, the shape ingestion uses.
    A project token sent to any of these routes gets 403, because they need the server's own API token.

Events are sent to `POST /v1/analytics/{project_id}/`, which takes the API token in place of a
project's ingestion key (see `pulseboard.server.ingest`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import zoneinfo
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any
from urllib.parse import quote as quote_path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pulseboard.server.importer import find_stored_uuids
from pulseboard.server.ingest import MAX_BATCH_EVENTS, format_iso, is_api_token
from pulseboard.server.settings import PROJECT_ID_PATTERN
from pulseboard.server.store import Project, Store
from pulseboard.server.tokens import TokenError, create_token, list_tokens, revoke_token, token_json
from pulseboard.server.webhooks import check_settings, public_settings

logger = logging.getLogger(__name__)

MAX_ADMIN_BODY_BYTES = 64 * 1024
MAX_NAME_CHARS = 200


class AdminError(Exception):
    """A request the admin API rejects, with its HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


class NewProject(BaseModel):
    """Body of `POST /v1/projects`."""

    model_config = ConfigDict(extra="forbid")

    project_id: str
    name: str = Field(default="", max_length=MAX_NAME_CHARS)
    timezone: str = "UTC"


class NewToken(BaseModel):
    """Body of `POST /v1/tokens`."""

    model_config = ConfigDict(extra="forbid")

    projects: list[str] = Field(min_length=1, max_length=100)
    label: str = Field(default="", max_length=MAX_NAME_CHARS)


class UuidLookup(BaseModel):
    """Body of `POST /v1/projects/{project_id}/events/lookup`."""

    model_config = ConfigDict(extra="forbid")

    uuids: list[str] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


# Checks shared with the CLI, so both paths reject the same input with the same message


def project_id_problem(project_id: str) -> str:
    """Return why `project_id` is not a valid project id, or '' when it is valid."""
    if PROJECT_ID_PATTERN.match(project_id):
        return ""
    return f"{project_id!r} is not a valid project id; use 1-63 lowercase letters, digits, '_' or '-'."


def timezone_problem(timezone: str) -> str:
    """Return why `timezone` is not an IANA time zone name, or '' when it is one."""
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"{timezone!r} is not an IANA time zone; use a name such as UTC or Europe/Berlin."
    return ""


def missing_project_message(project_id: str) -> str:
    return f"Project {project_id!r} does not exist; create it with `pulseboard project create {project_id}`."


def project_json(project: Project) -> dict[str, Any]:
    """Return a project as the admin API sends it; the CLI prints the same fields."""
    created_at = project.created_at
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.timezone.utc)
    return {
        "project_id": project.project_id,
        "name": project.name,
        "timezone": project.timezone,
        "created_at": format_iso(created_at),
    }


# Routes


Handler = Callable[[Request], Awaitable[JSONResponse]]


def admin_endpoint(handler: Handler) -> Handler:
    """Wrap a handler with the API token check and turn every failure into a logged JSON error."""

    async def endpoint(request: Request) -> JSONResponse:
        try:
            await check_api_token(request)
            return await handler(request)
        except AdminError as error:
            logger.info("admin %s %s rejected with %d: %s", request.method, request.url.path, error.status, error.message)
            return error_response(error)
        except Exception:
            error_id = secrets.token_hex(4)
            logger.exception("admin %s %s failed with internal error %s", request.method, request.url.path, error_id)
            return error_response(AdminError(
                500, "internal_error",
                f"Internal error {error_id}; the server log has the details. Retry once, and quote this id if it fails again.",
            ))

    return endpoint


async def check_api_token(request: Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AdminError(
            401, "missing_token", "Missing API token; send the header Authorization: Bearer <API token>"
        )
    if is_api_token(request, token.strip()):
        return

    verifier = getattr(request.app.state, "token_verifier", None)
    client = request.client.host if request.client else "unknown"
    if verifier is not None and await verifier.identify(token.strip(), client) is not None:
        raise AdminError(
            403, "project_token",
            "This API token is limited to some projects and works only for /mcp; the admin API needs the "
            "server's API token (PULSEBOARD_API_TOKEN, or the api_token file in the server's data folder).",
        )
    raise AdminError(401, "invalid_token", "Invalid API token")


def error_response(error: AdminError) -> JSONResponse:
    body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(body, status_code=error.status, headers=headers)


async def read_json(request: Request) -> Any:
    """Read a JSON body of at most MAX_ADMIN_BODY_BYTES."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_ADMIN_BODY_BYTES:
            raise AdminError(413, "payload_too_large", f"Body is larger than {MAX_ADMIN_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AdminError(400, "invalid_json", f"Body is not valid UTF-8 JSON: {error}") from None


def parse_body(model: type[BaseModel], payload: Any) -> Any:
    """Validate a body with a pydantic model; raise a 422 listing every invalid field."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        details = [
            {"field": ".".join(str(part) for part in problem["loc"]) or "(body)", "message": problem["msg"]}
            for problem in error.errors()
        ]
        message = "; ".join(f"{detail['field']}: {detail['message']}" for detail in details)
        raise AdminError(422, "invalid_body", f"Invalid request body: {message}", details) from None


def request_store(request: Request) -> Store:
    return request.app.state.runtime.store


async def find_project(request: Request) -> Project:
    project_id = request.path_params["project_id"]
    project = await asyncio.to_thread(request_store(request).get_project, project_id)
    if project is None:
        raise AdminError(404, "unknown_project", missing_project_message(project_id))
    return project


@admin_endpoint
async def list_projects(request: Request) -> JSONResponse:
    projects = await asyncio.to_thread(request_store(request).list_projects)
    return JSONResponse({"projects": [project_json(project) for project in projects]})


@admin_endpoint
async def create_project(request: Request) -> JSONResponse:
    new: NewProject = parse_body(NewProject, await read_json(request))
    problems = [problem for problem in (project_id_problem(new.project_id), timezone_problem(new.timezone)) if problem]
    if problems:
        raise AdminError(422, "invalid_project", " ".join(problems))

    store = request_store(request)
    # One creation at a time, so two requests for the same new id cannot both pass the check below.
    async with request.app.state.project_lock:
        if await asyncio.to_thread(store.get_project, new.project_id) is not None:
            raise AdminError(409, "project_exists", f"Project {new.project_id!r} already exists; choose another id.")
        project, key = await asyncio.to_thread(store.create_project, new.project_id, new.name, new.timezone)
    logger.info("admin created project %s", project.project_id)
    return JSONResponse({"project": project_json(project), "ingestion_key": key}, status_code=201)


@admin_endpoint
async def get_project(request: Request) -> JSONResponse:
    project = await find_project(request)
    return JSONResponse({"project": project_json(project)})


@admin_endpoint
async def look_up_events(request: Request) -> JSONResponse:
    project = await find_project(request)
    lookup: UuidLookup = parse_body(UuidLookup, await read_json(request))
    stored = await asyncio.to_thread(find_stored_uuids, request_store(request), project.project_id, lookup.uuids)
    return JSONResponse({"stored": sorted(stored)})


@admin_endpoint
async def create_api_token(request: Request) -> JSONResponse:
    new: NewToken = parse_body(NewToken, await read_json(request))
    try:
        record, token = await asyncio.to_thread(create_token, request_store(request), new.projects, new.label)
    except TokenError as error:
        raise AdminError(422, "unknown_project", str(error)) from None
    return JSONResponse({"api_token": token_json(record), "token": token}, status_code=201)


@admin_endpoint
async def list_api_tokens(request: Request) -> JSONResponse:
    records = await asyncio.to_thread(list_tokens, request_store(request))
    return JSONResponse({"api_tokens": [token_json(record) for record in records]})


@admin_endpoint
async def revoke_api_token(request: Request) -> JSONResponse:
    try:
        record = await asyncio.to_thread(revoke_token, request_store(request), request.path_params["token_id"])
    except TokenError as error:
        raise AdminError(404, "unknown_token", str(error)) from None
    return JSONResponse({"api_token": token_json(record)})


@admin_endpoint
async def get_settings(request: Request) -> JSONResponse:
    project = await find_project(request)
    settings = await asyncio.to_thread(request_store(request).project_settings, project.project_id)
    return JSONResponse({"settings": public_settings(settings)})


@admin_endpoint
async def put_settings(request: Request) -> JSONResponse:
    project = await find_project(request)
    payload = await read_json(request)
    if not isinstance(payload, dict) or not payload:
        raise AdminError(422, "invalid_settings", "Body must be a non-empty JSON object of settings")
    try:
        values = check_settings(payload)
    except ValueError as error:
        raise AdminError(422, "invalid_settings", f"Invalid settings: {error}") from None

    store = request_store(request)
    await asyncio.to_thread(store.set_project_settings, project.project_id, values)
    settings = await asyncio.to_thread(store.project_settings, project.project_id)
    logger.info("admin set settings %s of project %s", ", ".join(sorted(values)), project.project_id)
    return JSONResponse({"settings": public_settings(settings)})


def admin_routes() -> list[Route]:
    return [
        Route("/v1/projects", list_projects, methods=["GET"]),
        Route("/v1/projects", create_project, methods=["POST"]),
        Route("/v1/projects/{project_id}", get_project, methods=["GET"]),
        Route("/v1/projects/{project_id}/events/lookup", look_up_events, methods=["POST"]),
        Route("/v1/tokens", list_api_tokens, methods=["GET"]),
        Route("/v1/tokens", create_api_token, methods=["POST"]),
        Route("/v1/tokens/{token_id}", revoke_api_token, methods=["DELETE"]),
        Route("/v1/projects/{project_id}/settings", get_settings, methods=["GET"]),
        Route("/v1/projects/{project_id}/settings", put_settings, methods=["PUT"]),
    ]


# Client


class ServerRequestError(Exception):
    """A request to the running server failed; the message is the server's, or names what to check."""


class AdminClient:
    """Client of a running server's admin API and ingestion endpoint, authenticated with the API token."""

    def __init__(self, url: str, token: str, *, timeout_s: float) -> None:
        import httpx2

        self.url = url
        self._http = httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def list_projects(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/projects")["projects"]

    def get_project(self, project_id: str) -> dict[str, Any] | None:
        """Return the project, or None when the server has no project with this id."""
        body = self._request("GET", f"/v1/projects/{quote_path(project_id, safe='')}", missing_ok=True)
        return None if body is None else body["project"]

    def create_project(self, project_id: str, *, name: str = "", timezone: str = "UTC") -> tuple[dict[str, Any], str]:
        """Create a project; return it with its ingestion key."""
        body = self._request("POST", "/v1/projects", json={"project_id": project_id, "name": name, "timezone": timezone})
        return body["project"], body["ingestion_key"]

    def create_token(self, projects: list[str], label: str) -> tuple[dict[str, Any], str]:
        """Create a project token; return its record with the token text."""
        body = self._request("POST", "/v1/tokens", json={"projects": projects, "label": label})
        return body["api_token"], body["token"]

    def list_tokens(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/tokens")["api_tokens"]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/v1/tokens/{quote_path(token_id, safe='')}")["api_token"]

    def stored_uuids(self, project_id: str, uuids: list[str]) -> set[str]:
        if not uuids:
            return set()
        path = f"/v1/projects/{quote_path(project_id, safe='')}/events/lookup"
        return set(self._request("POST", path, json={"uuids": uuids})["stored"])

    def get_settings(self, project_id: str) -> dict[str, Any]:
        """Return a project's settings as the server shows them, the signing secret masked."""
        path = f"/v1/projects/{quote_path(project_id, safe='')}/settings"
        return self._request("GET", path)["settings"]

    def set_settings(self, project_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Store project settings; return the settings as the server shows them."""
        path = f"/v1/projects/{quote_path(project_id, safe='')}/settings"
        return self._request("PUT", path, json=values)["settings"]

    def send_events(self, project_id: str, body: bytes) -> int:
        """Post a JSON array of events to the ingestion endpoint; return how many the server stored."""
        path = f"/v1/analytics/{quote_path(project_id, safe='')}/"
        headers = {"Content-Type": "application/json"}
        return int(self._request("POST", path, content=body, headers=headers)["stored"])

    def _request(self, method: str, path: str, *, missing_ok: bool = False, **options: Any) -> Any:
        import httpx2

        try:
            response = self._http.request(method, path, **options)
        except httpx2.HTTPError as error:
            raise ServerRequestError(
                f"Cannot reach the pulseboard server at {self.url} ({type(error).__name__}: {error}); "
                "if it is still starting, retry in a moment."
            ) from None
        if missing_ok and response.status_code == 404:
            return None
        if response.is_success:
            return response.json()
        raise ServerRequestError(self._error_message(method, path, response))

    def _error_message(self, method: str, path: str, response: Any) -> str:
        try:
            message = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {response.status_code} for {method} {path}"
        if response.status_code == 401:
            return (
                f"The server at {self.url} rejected the API token ({message}). Give the CLI the token the server "
                "uses: PULSEBOARD_API_TOKEN, or the api_token file in the server's data folder."
            )
        if response.status_code >= 500:
            return f"The server at {self.url} failed: {message}"
        return message

"""The token routes of the admin API through the real Starlette app: create, list and revoke, who may
call them, and what the responses must never contain."""

from __future__ import annotations

import re
import uuid

import pytest
from starlette.testclient import TestClient

from pulseboard.server.app import create_app
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store, hash_key
from pulseboard.server.tokens import create_token

SERVER_TOKEN = "server-token-for-token-route-tests"
BASE_URL = "http://127.0.0.1:8787"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
PROJECT_TOKEN_MESSAGE = (
    "This API token is limited to some projects and works only for /mcp; the admin API needs the server's "
    "API token (PULSEBOARD_API_TOKEN, or the api_token file in the server's data folder)."
)
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}


def new_project(store: Store) -> str:
    project_id = "a" + uuid.uuid4().hex[:12]
    store.create_project(project_id)
    return project_id


def app_client(store: Store, tmp_path, default_project: str) -> TestClient:
    settings = Settings(
        data_dir=tmp_path, clickhouse_url=store.url, default_project=default_project, public_url=BASE_URL
    )
    return TestClient(create_app(Runtime(settings, store), api_token=SERVER_TOKEN), base_url=BASE_URL)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_routes_create_list_revoke(store: Store, tmp_path):
    project_id = new_project(store)
    with app_client(store, tmp_path, project_id) as http:
        created = http.post("/v1/tokens", json={"projects": [project_id], "label": "cs team"}, headers=bearer(SERVER_TOKEN))
        body = created.json()
        token_id, token = body["api_token"]["token_id"], body["token"]
        mcp_before = http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **bearer(token)})
        listed = http.get("/v1/tokens", headers=bearer(SERVER_TOKEN))
        revoked = http.delete(f"/v1/tokens/{token_id}", headers=bearer(SERVER_TOKEN))
        mcp_after = http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **bearer(token)})
        listed_after = http.get("/v1/tokens", headers=bearer(SERVER_TOKEN))

    created_at = body["api_token"]["created_at"]
    assert created.status_code == 201
    assert ISO_UTC.fullmatch(created_at)
    assert re.fullmatch(r"tok_[0-9a-f]{16}", token_id)
    assert re.fullmatch(r"pbt_[A-Za-z0-9_-]{43}", token)
    assert body == {
        "api_token": {
            "token_id": token_id, "projects": [project_id], "label": "cs team", "created_at": created_at,
            "revoked": False,
        },
        "token": token,
    }
    assert mcp_before.status_code == 200

    assert listed.status_code == 200
    [entry] = [entry for entry in listed.json()["api_tokens"] if entry["token_id"] == token_id]
    assert entry == body["api_token"]
    for response in (listed, revoked, listed_after):
        assert token not in response.text
        assert hash_key(token) not in response.text

    assert revoked.status_code == 200
    assert revoked.json() == {"api_token": {**body["api_token"], "revoked": True}}
    assert mcp_after.status_code == 401
    [entry_after] = [entry for entry in listed_after.json()["api_tokens"] if entry["token_id"] == token_id]
    assert entry_after["revoked"] is True


@pytest.mark.parametrize(
    ("method", "path", "sends_body"),
    [
        ("GET", "/v1/tokens", False),
        ("POST", "/v1/tokens", True),
        ("DELETE", "/v1/tokens/tok_0000000000000000", False),
        ("GET", "/v1/projects", False),
    ],
)
def test_project_token_gets_403(store: Store, tmp_path, method: str, path: str, sends_body: bool):
    project_id = new_project(store)
    _, project_token = create_token(store, [project_id])
    payload = {"projects": [project_id]} if sends_body else None
    with app_client(store, tmp_path, project_id) as http:
        response = http.request(method, path, json=payload, headers=bearer(project_token))

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "project_token", "message": PROJECT_TOKEN_MESSAGE, "details": []}}
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, {"code": "missing_token", "message": "Missing API token; send the header Authorization: Bearer <API token>"}),
        (bearer("pbt_wrong"), 401, {"code": "invalid_token", "message": "Invalid API token"}),
        ({"Authorization": "Basic abc"}, 401, {"code": "missing_token", "message": "Missing API token; send the header Authorization: Bearer <API token>"}),
    ],
)
def test_token_routes_without_server_token(store: Store, tmp_path, headers: dict, status: int, error: dict):
    project_id = new_project(store)
    with app_client(store, tmp_path, project_id) as http:
        responses = [
            http.get("/v1/tokens", headers=headers),
            http.post("/v1/tokens", json={"projects": [project_id]}, headers=headers),
            http.delete("/v1/tokens/tok_0000000000000000", headers=headers),
        ]
    for response in responses:
        assert response.status_code == status
        assert response.json() == {"error": {**error, "details": []}}
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("payload", "status", "code", "message"),
    [
        (
            {"projects": ["nosuchproject"]}, 422, "unknown_project",
            "Project 'nosuchproject' does not exist; create it with `pulseboard project create nosuchproject` or "
            "check `pulseboard project list`.",
        ),
        (
            {"projects": []}, 422, "invalid_body",
            "Invalid request body: projects: List should have at least 1 item after validation, not 0",
        ),
        ({}, 422, "invalid_body", "Invalid request body: projects: Field required"),
        (
            {"projects": ["x"], "token": "pbt_chosen"}, 422, "invalid_body",
            "Invalid request body: token: Extra inputs are not permitted",
        ),
        ({"projects": "x"}, 422, "invalid_body", "Invalid request body: projects: Input should be a valid list"),
    ],
)
def test_token_create_bad_body(store: Store, tmp_path, payload: dict, status: int, code: str, message: str):
    project_id = new_project(store)
    with app_client(store, tmp_path, project_id) as http:
        response = http.post("/v1/tokens", json=payload, headers=bearer(SERVER_TOKEN))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"] == message


def test_token_revoke_unknown_id(store: Store, tmp_path):
    project_id = new_project(store)
    with app_client(store, tmp_path, project_id) as http:
        response = http.delete("/v1/tokens/tok_0000000000000000", headers=bearer(SERVER_TOKEN))
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "unknown_token",
            "message": "API token 'tok_0000000000000000' does not exist; `pulseboard token list` shows the ids.",
            "details": [],
        }
    }

"""Rejected bearer tokens: logged with the client address and never the token, rejected from memory
when repeated, and a revoked token failing on its next request."""

from __future__ import annotations

import logging
import uuid

import anyio
import pytest
from starlette.testclient import TestClient

from pulseboard.server.app import create_app
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store, hash_key, utcnow
from pulseboard.server.tokens import ProjectToken, ProjectTokenVerifier, create_token, revoke_token, write_token

SERVER_TOKEN = "server-token-for-rejection-tests"
CLIENT = "192.0.2.7"
FIRST_REJECTION = f"rejected an unknown or revoked API token from {CLIENT}"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def new_project(store: Store) -> str:
    project_id = "a" + uuid.uuid4().hex[:12]
    store.create_project(project_id)
    return project_id


def store_token_text(store: Store, project_id: str, token: str) -> None:
    """Store a token with a chosen text, so a test can make a rejected text valid afterwards."""
    record = ProjectToken("tok_" + uuid.uuid4().hex[:16], (project_id,), "", utcnow(), False)
    write_token(store, record, hash_key(token))


def rejection_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage() for record in caplog.records
        if record.name == "pulseboard.server.tokens" and record.getMessage().startswith("rejected")
    ]


@pytest.mark.anyio
async def test_repeated_wrong_token_skips_store(store: Store, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="pulseboard.server.tokens")
    project_id = new_project(store)
    token = "pbt_guess_" + uuid.uuid4().hex
    verifier = ProjectTokenVerifier(SERVER_TOKEN, store)

    first = await verifier.identify(token, CLIENT)
    # The text becomes a stored token now. Only a store lookup would see it, and within the
    # rejection TTL none is made, so the next two attempts are still rejected.
    store_token_text(store, project_id, token)
    second = await verifier.identify(token, CLIENT)
    third = await verifier.identify(token, CLIENT)

    assert (first, second, third) == (None, None, None)
    lines = rejection_lines(caplog)
    assert lines[0] == FIRST_REJECTION
    assert lines[1].startswith(f"{FIRST_REJECTION} (2 rejections of this token in ")
    assert lines[2].startswith(f"{FIRST_REJECTION} (3 rejections of this token in ")
    assert len(lines) == 3
    assert token not in caplog.text


@pytest.mark.anyio
async def test_rejection_expires_after_ttl(store: Store):
    project_id = new_project(store)
    token = "pbt_guess_" + uuid.uuid4().hex
    verifier = ProjectTokenVerifier(SERVER_TOKEN, store, rejected_ttl_s=0.05)

    first = await verifier.identify(token, CLIENT)
    store_token_text(store, project_id, token)
    await anyio.sleep(0.1)
    later = await verifier.identify(token, CLIENT)

    assert first is None
    assert later is not None
    assert later.scopes == [f"project:{project_id}"]


@pytest.mark.anyio
async def test_oldest_rejection_dropped_at_limit(store: Store, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="pulseboard.server.tokens")
    verifier = ProjectTokenVerifier(SERVER_TOKEN, store, max_rejected=2)
    oldest, middle, newest = ("pbt_guess_" + uuid.uuid4().hex for _ in range(3))

    for token in (oldest, middle, newest, middle, oldest):
        assert await verifier.identify(token, CLIENT) is None

    lines = rejection_lines(caplog)
    assert lines[:3] == [FIRST_REJECTION] * 3
    assert lines[3].startswith(f"{FIRST_REJECTION} (2 rejections of this token in ")
    # `oldest` was dropped when `newest` arrived, so it was looked up again.
    assert lines[4] == FIRST_REJECTION


@pytest.mark.anyio
async def test_revoked_token_fails_next_request(store: Store):
    project_id = new_project(store)
    record, token = create_token(store, [project_id])
    verifier = ProjectTokenVerifier(SERVER_TOKEN, store)

    before = await verifier.identify(token, CLIENT)
    revoke_token(store, record.token_id)
    after = await verifier.identify(token, CLIENT)

    assert before is not None
    assert before.client_id == record.token_id
    assert after is None


def test_rejections_logged_with_client_address(store: Store, tmp_path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="pulseboard.server.tokens")
    project_id = new_project(store)
    settings = Settings(
        data_dir=tmp_path, clickhouse_url=store.url, default_project=project_id, public_url="http://127.0.0.1:8787"
    )
    app = create_app(Runtime(settings, store), api_token=SERVER_TOKEN)
    token = "pbt_wrong_" + uuid.uuid4().hex
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}

    with TestClient(app, base_url="http://127.0.0.1:8787") as http:
        statuses = [http.post("/mcp", json={}, headers=headers).status_code for _ in range(2)]
        admin_status = http.get("/v1/tokens", headers={"Authorization": f"Bearer {token}"}).status_code

    # Starlette's TestClient sends every request from the client address "testclient".
    lines = rejection_lines(caplog)
    assert statuses == [401, 401]
    assert admin_status == 401
    assert lines[0] == "rejected an unknown or revoked API token from testclient"
    assert lines[1].startswith("rejected an unknown or revoked API token from testclient (2 rejections of this token in ")
    assert lines[2].startswith("rejected an unknown or revoked API token from testclient (3 rejections of this token in ")
    assert len(lines) == 3
    assert token not in caplog.text

"""`pulseboard serve` and `pulseboard token` as a user runs them: the generated API token, 401 without
it, a project token, and the stdio server's message while `serve` has the embedded store open."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.live_server import free_port

HEALTH_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20


def child_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSEBOARD_")}
    env["PULSEBOARD_LOG_LEVEL"] = "INFO"
    return env


def pulseboard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulseboard.server.cli", *args],
        capture_output=True, text=True, env=child_env(), timeout=120, stdin=subprocess.DEVNULL,
    )


@contextmanager
def serve(data_dir: Path, port: int, *extra: str, env: dict[str, str] | None = None) -> Iterator[dict[str, Path]]:
    """Run `pulseboard serve` until the block ends; yield the paths of its stdout and stderr."""
    logs = {"stdout": data_dir.parent / f"serve-{port}.out", "stderr": data_dir.parent / f"serve-{port}.err"}
    with open(logs["stdout"], "w") as stdout, open(logs["stderr"], "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "pulseboard.server.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
             *extra],
            stdout=stdout, stderr=stderr, env={**child_env(), **(env or {})}, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{logs['stderr'].read_text()}")
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer /health:\n{logs['stderr'].read_text()}")
            time.sleep(0.1)
        yield logs
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def call_tool(base: str, token: str, tool: str, arguments: dict) -> tuple[bool, str, dict | None]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            result = await client.call_tool(tool, arguments)
    return result.is_error, result.content[0].text, result.structured_content


@pytest.mark.anyio
async def test_serve_tokens_end_to_end(tmp_path: Path):
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token_path = data_dir / "api_token"

    with serve(data_dir, port, "--create-project") as logs:
        token = token_path.read_text().strip()
        unauthenticated = httpx2.post(f"{base}/mcp", json={}, timeout=10)
        listed = await call_tool(base, token, "list_recipes", {})
        stdio = pulseboard("mcp", "--data-dir", str(data_dir))
        token_while_serving = pulseboard("token", "create", "--project", "default", "--data-dir", str(data_dir))
    banner = logs["stderr"].read_text()
    served_stdout = logs["stdout"].read_text()

    # The generated token: a file only its owner can read, named by the banner, never printed.
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    assert re.fullmatch(r"pbt_[A-Za-z0-9_-]{43}", token)
    assert f"MCP (streamable HTTP): {base}/mcp  (bearer token in {token_path})" in banner
    assert f"  read the token with:   cat {token_path}\n" in banner
    assert token not in banner
    assert token not in served_stdout
    assert unauthenticated.status_code == 401
    assert listed[0] is False
    assert stdio.stdout == ""
    assert token not in stdio.stderr

    # The stdio server cannot open the store while serve has it open, and prints what to paste instead.
    assert stdio.returncode == 2
    lines = stdio.stderr.splitlines()
    snippet_line = lines.index(
        "Paste this into the client's MCP configuration (Cursor's .cursor/mcp.json; see the README for others):"
    ) + 1
    assert json.loads(lines[snippet_line]) == {
        "mcpServers": {"pulseboard": {"url": f"{base}/mcp", "headers": {"Authorization": "Bearer <API token>"}}}
    }
    assert f"Connect MCP clients to the running server instead: {base}/mcp" in lines
    assert (
        f"The token is the server's PULSEBOARD_API_TOKEN, or the contents of {token_path} when that variable is unset."
    ) in lines

    assert token_while_serving.returncode == 2
    assert token_while_serving.stderr == (
        f"pulseboard: The server at {base} has the embedded store open, and API tokens are kept in the store. Stop "
        "the server, run `pulseboard token create` again, then start the server; the token works from then on.\n"
    )

    # With the server stopped: a second project and a token limited to it.
    created = pulseboard("project", "create", "other", "--data-dir", str(data_dir))
    assert created.returncode == 0, created.stderr
    token_created = pulseboard("token", "create", "--project", "other", "--label", "cs team", "--data-dir", str(data_dir))
    assert token_created.returncode == 0, token_created.stderr
    match = re.fullmatch(
        r"Created API token (tok_[0-9a-f]{16}) for project\(s\) other\.\n"
        r"Token \(shown only now; store it safely\): (pbt_[A-Za-z0-9_-]{43})\n",
        token_created.stdout,
    )
    assert match, token_created.stdout
    token_id, project_token = match.groups()
    listing = pulseboard("token", "list", "--format", "json", "--data-dir", str(data_dir))
    assert listing.returncode == 0, listing.stderr
    [entry] = json.loads(listing.stdout)
    assert {key: entry[key] for key in ("token_id", "projects", "label", "revoked")} == {
        "token_id": token_id, "projects": "other", "label": "cs team", "revoked": False,
    }
    assert project_token not in listing.stdout

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(data_dir, port) as logs:
        own = await call_tool(base, project_token, "analytics_query", {"hogql": "SELECT 1 AS one", "project_id": "other"})
        foreign = await call_tool(base, project_token, "analytics_query", {"hogql": "SELECT 1 AS one"})
        server_token = await call_tool(base, token, "analytics_query", {"hogql": "SELECT 1 AS one"})
    assert token_path.read_text().strip() == token
    assert own[0] is False
    assert own[2]["rows"] == [[1]]
    assert foreign[0] is True
    assert foreign[1] == (
        "Error executing tool analytics_query: This API token may use only the project(s) other; project 'default' "
        "is not one of them. Pass one of those as project_id, or use a token created with "
        "`pulseboard token create --project default`."
    )
    assert server_token[0] is False
    log_text = logs["stderr"].read_text()
    assert "tool analytics_query rejected in" in log_text
    assert f"client {token_id}" in log_text
    assert project_token not in log_text

    revoked = pulseboard("token", "revoke", token_id, "--data-dir", str(data_dir))
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout == f"Revoked API token {token_id}.\n"


@pytest.mark.anyio
async def test_serve_with_token_variable(tmp_path: Path):
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token = "pbt_token-from-the-environment"

    created = pulseboard("project", "create", "second", "--data-dir", str(data_dir))
    assert created.returncode == 0, created.stderr
    with serve(data_dir, port, "--create-project", env={"PULSEBOARD_API_TOKEN": token}) as logs:
        wrong = httpx2.post(f"{base}/mcp", json={}, headers={"Authorization": "Bearer pbt_other"}, timeout=10)
        results = [
            await call_tool(base, token, "analytics_query", {"hogql": "SELECT 1 AS one", "project_id": project_id})
            for project_id in ("default", "second")
        ]
    banner = logs["stderr"].read_text()

    assert not (data_dir / "api_token").exists()
    assert f"MCP (streamable HTTP): {base}/mcp  (bearer token in PULSEBOARD_API_TOKEN)" in banner
    assert "read the token with" not in banner
    assert token not in banner
    assert wrong.status_code == 401
    assert [(is_error, content["rows"]) for is_error, _, content in results] == [(False, [[1]]), (False, [[1]])]

"""`pulseboard serve` and `pulseboard token` as a user runs them: the generated API token, 401 without
it, project tokens made while `serve` runs and without it, and the stdio server's message while
`serve` has the embedded store open."""

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


def parse_created_token(stdout: str, projects: str) -> tuple[str, str]:
    """Return (token id, token) from the output of `pulseboard token create`."""
    match = re.fullmatch(
        rf"Created API token (tok_[0-9a-f]{{16}}) for project\(s\) {re.escape(projects)}\.\n"
        r"Token \(shown only now; store it safely\): (pbt_[A-Za-z0-9_-]{43})\n",
        stdout,
    )
    assert match, stdout
    return match.group(1), match.group(2)


def listed_tokens(data_dir: Path) -> list[dict]:
    listing = pulseboard("token", "list", "--format", "json", "--data-dir", str(data_dir))
    assert listing.returncode == 0, listing.stderr
    return json.loads(listing.stdout)


def foreign_project_message(allowed: str, project_id: str) -> str:
    return (
        f"Error executing tool analytics_query: This API token may use only the project(s) {allowed}; project "
        f"{project_id!r} is not one of them. Pass one of those as project_id, or use a token created with "
        f"`pulseboard token create --project {project_id}`."
    )


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
        created = pulseboard("project", "create", "other", "--data-dir", str(data_dir))
        token_created = pulseboard(
            "token", "create", "--project", "other", "--label", "cs team", "--data-dir", str(data_dir)
        )
        token_id, project_token = parse_created_token(token_created.stdout, "other")
        listing = listed_tokens(data_dir)
        own = await call_tool(base, project_token, "analytics_query", {"hogql": "SELECT 1 AS one", "project_id": "other"})
        omitted = await call_tool(base, project_token, "describe_schema", {})
        foreign = await call_tool(base, project_token, "analytics_query", {"hogql": "SELECT 1 AS one", "project_id": "default"})
        server_token = await call_tool(base, token, "analytics_query", {"hogql": "SELECT 1 AS one"})
        revoked = pulseboard("token", "revoke", token_id, "--data-dir", str(data_dir))
        after_revoke = httpx2.post(
            f"{base}/mcp", json={}, headers={"Authorization": f"Bearer {project_token}"}, timeout=10
        )
        listing_after_revoke = listed_tokens(data_dir)
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

    # token create, list and revoke went through the running server's admin API.
    assert created.returncode == 0, created.stderr
    assert token_created.returncode == 0, token_created.stderr
    assert token_created.stderr == ""
    [entry] = listing
    assert {key: entry[key] for key in ("token_id", "projects", "label", "revoked")} == {
        "token_id": token_id, "projects": "other", "label": "cs team", "revoked": False,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", entry["created_at"])
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout == f"Revoked API token {token_id}.\n"
    assert [entry["revoked"] for entry in listing_after_revoke] == [True]

    # The new token works on its project at once, which is also the project of a call that names none.
    assert own[0] is False
    assert own[2]["rows"] == [[1]]
    assert omitted[0] is False
    assert omitted[2]["project_id"] == "other"
    assert foreign[0] is True
    assert foreign[1] == foreign_project_message("other", "default")
    assert server_token[0] is False
    assert after_revoke.status_code == 401

    log_text = logs["stderr"].read_text()
    assert "tool analytics_query rejected in" in log_text
    assert f"client {token_id}" in log_text
    assert "rejected an unknown or revoked API token from 127.0.0.1\n" in log_text
    assert project_token not in log_text


def test_token_commands_without_server(tmp_path: Path):
    data_dir = tmp_path / "data"
    created = pulseboard("project", "create", "other", "--data-dir", str(data_dir))
    assert created.returncode == 0, created.stderr

    token_created = pulseboard("token", "create", "--project", "other", "--data-dir", str(data_dir))
    missing_project = pulseboard("token", "create", "--project", "nosuch", "--data-dir", str(data_dir))
    assert token_created.returncode == 0, token_created.stderr
    token_id, project_token = parse_created_token(token_created.stdout, "other")
    listing = listed_tokens(data_dir)
    revoked = pulseboard("token", "revoke", token_id, "--data-dir", str(data_dir))
    unknown = pulseboard("token", "revoke", "tok_0000000000000000", "--data-dir", str(data_dir))

    assert [(entry["token_id"], entry["projects"], entry["revoked"]) for entry in listing] == [(token_id, "other", False)]
    assert project_token not in json.dumps(listing)
    assert missing_project.returncode == 2
    assert missing_project.stderr == (
        "pulseboard: Project 'nosuch' does not exist; create it with `pulseboard project create nosuch` or check "
        "`pulseboard project list`.\n"
    )
    assert revoked.stdout == f"Revoked API token {token_id}.\n"
    assert [entry["revoked"] for entry in listed_tokens(data_dir)] == [True]
    assert unknown.returncode == 2
    assert unknown.stderr == (
        "pulseboard: API token 'tok_0000000000000000' does not exist; `pulseboard token list` shows the ids.\n"
    )


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

"""The `pulseboard` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pulseboard.server.admin import (
    AdminClient,
    ServerRequestError,
    missing_project_message,
    project_id_problem,
    project_json,
    timezone_problem,
)
from pulseboard.server.importer import (
    ImportFileError,
    ImportReport,
    MappingError,
    ReimportError,
    check_file,
    check_reimport,
    event_batches,
    import_file,
)
from pulseboard.server.ingest import MAX_BATCH_EVENTS, MAX_BODY_BYTES, format_iso
from pulseboard.server.lock import StoreLock
from pulseboard.server.settings import Settings, SettingsError, load_settings
from pulseboard.server.store import EventRow, Store, StoreError, StoreLockedError, redact_url

logger = logging.getLogger(__name__)


class CommandError(Exception):
    """A command cannot run; the message names the cause and the fix."""


# Store access


class OpenedStore:
    """A store opened by this process, with the embedded folder's lock held while open."""

    def __init__(self, settings: Settings, command: str) -> None:
        self.settings = settings
        self.lock: StoreLock | None = None
        folder = settings.chdb_path
        if folder is not None:
            self.lock = StoreLock(folder)
            if not self.lock.acquire(command):
                raise StoreLockedError(locked_message(settings, self.lock))
        try:
            self.store = Store.open(settings.clickhouse_url)
        except Exception:
            self.close_lock()
            raise

    def close(self) -> None:
        self.store.close()
        self.close_lock()

    def close_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> Store:
        return self.store

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def locked_message(settings: Settings, lock: StoreLock) -> str:
    holder = lock.holder()
    who = f"process {holder.pid} (pulseboard {holder.command})" if holder else "another process"
    lines = [f"The embedded store {settings.chdb_path} is in use by {who}; chDB opens a folder from one process only."]
    if holder and holder.url:
        lines.append(f"Connect MCP clients to the running server instead: {holder.url}/mcp")
        lines.append("Paste this into the client's MCP configuration (Cursor's .cursor/mcp.json; see the README for others):")
        lines.append("  " + json.dumps(http_client_config(holder.url)))
        lines.append(
            f"The token is the server's PULSEBOARD_API_TOKEN, or the contents of {settings.data_dir / 'api_token'} "
            "when that variable is unset."
        )
        lines.append(f"Send events to {holder.url}/v1/analytics/<project_id>/.")
    lines.append(
        "Or stop that process, or set PULSEBOARD_CLICKHOUSE_URL to a ClickHouse server "
        "(http://user:password@host:8123/db) that several processes can share."
    )
    return "\n".join(lines)


def http_client_config(url: str) -> dict[str, Any]:
    return {
        "mcpServers": {
            "pulseboard": {"url": f"{url}/mcp", "headers": {"Authorization": "Bearer <API token>"}}
        }
    }


def local_url(settings: Settings) -> str:
    """Return the URL at which this host reaches the server, with a wildcard bind address replaced by loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "::1": "[::1]"}.get(settings.host, settings.host)
    return f"http://{host}:{settings.port}"


def running_server(settings: Settings) -> str:
    """Return the URL of a server process (`serve` or `demo`) holding the embedded store, or ''."""
    folder = settings.chdb_path
    if folder is None:
        return ""
    lock = StoreLock(folder)
    if lock.acquire("probe"):
        lock.release()
        return ""
    holder = lock.holder()
    return holder.url if holder else ""


def api_token(settings: Settings, *, create: bool) -> str:
    """Return the API token: the setting, else the one stored in the data folder (made on first use)."""
    if settings.api_token:
        return settings.api_token
    path = settings.data_dir / "api_token"
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise CommandError(f"No API token yet: set PULSEBOARD_API_TOKEN or start `pulseboard serve` once ({path}).")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = "pbt_" + secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token


def ensure_project(store: Store, project_id: str) -> None:
    if store.get_project(project_id) is None:
        raise CommandError(missing_project_message(project_id))


def server_client(url: str, settings: Settings) -> AdminClient:
    """Return a client of the running server's admin API, with a time limit that covers one query."""
    try:
        token = api_token(settings, create=False)
    except CommandError:
        raise CommandError(
            f"The server at {url} has the store open, and its API token is missing here: set "
            "PULSEBOARD_API_TOKEN to the token the server was started with."
        ) from None
    return AdminClient(url, token, timeout_s=settings.query_timeout_s + 30)


def ensure_server_project(client: AdminClient, project_id: str) -> None:
    if client.get_project(project_id) is None:
        raise CommandError(missing_project_message(project_id))


def call_running_server(url: str, settings: Settings, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call one MCP tool on the running server over streamable HTTP with the API token.

    Check the project with `ensure_server_project` first. That request also checks that the server
    is reachable and accepts the token, so those failures get a plain message before an MCP session starts.
    """
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    token = api_token(settings, create=False)

    async def call() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=settings.query_timeout_s + 30) as http:
            async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
                result = await client.call_tool(tool, arguments)
        if result.is_error:
            raise CommandError(tool_error_text(result.content[0].text if result.content else f"{tool} failed"))
        return dict(result.structured_content or {})

    try:
        return anyio.run(call)
    except CommandError:
        raise
    except Exception as error:
        logger.debug("MCP call %s to %s/mcp failed", tool, url, exc_info=True)
        raise CommandError(f"Calling {tool} on the server at {url}/mcp failed: {first_error(error)}") from None


def tool_error_text(text: str) -> str:
    """Return a tool error without the SDK's "Error executing tool NAME: " prefix, as a local run prints it."""
    prefix, separator, message = text.partition(": ")
    if separator and prefix.startswith("Error executing tool "):
        return message
    return text


def first_error(error: BaseException) -> str:
    """Describe the first leaf of an exception group, or the error itself."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


# Output


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], output_format: str) -> None:
    if output_format == "json":
        print(json.dumps([dict(zip(columns, row)) for row in rows], default=str, indent=2))
        return
    if output_format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    from pulseboard.server.demo import format_table

    print(format_table(list(columns), [list(row) for row in rows]))
    if not rows:
        print("(0 rows)")


# Commands


class StopRequested(Exception):
    """SIGTERM arrived; raised so that the store is closed on the way out."""


def raise_stop_requested(signum: int, frame: object) -> None:
    raise StopRequested()


def check_port_free(settings: Settings) -> None:
    """Fail before printing any banner when the port is taken, naming the way to choose another."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
        # uvicorn binds with SO_REUSEADDR too. Without it, the probe fails for about a minute after
        # a crash, while the dead server's connections are in TIME_WAIT; a listening socket still
        # makes the bind fail on Linux.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as error:
            raise CommandError(
                f"Cannot listen on {settings.host}:{settings.port}: {error.strerror}. Stop the process "
                "that uses it, or choose another port with --port N or PULSEBOARD_PORT."
            ) from None


def run_uvicorn(app: Any, settings: Settings) -> None:
    """Serve the app until SIGINT or SIGTERM, and return after a graceful shutdown.

    uvicorn 0.55 shuts down on SIGTERM and then raises the signal again for the handler that was
    installed before it, which by default ends the process before `finally` blocks run. Here that
    handler raises StopRequested, so the caller closes the store.
    """
    import uvicorn

    previous = signal.signal(signal.SIGTERM, raise_stop_requested)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    except StopRequested:
        logger.info("stopping on SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from pulseboard.server.app import create_app
    from pulseboard.server.runtime import Runtime

    check_port_free(settings)
    token = api_token(settings, create=True)
    opened = OpenedStore(settings, "serve")
    logger.info("pulseboard serve opened the store %s", redact_url(settings.clickhouse_url))
    try:
        if opened.lock is not None:
            opened.lock.describe("serve", local_url(settings))
        if args.create_project and opened.store.get_project(settings.default_project) is None:
            _, key = opened.store.create_project(settings.default_project)
            # stdout, not the log on stderr: the key is shown once to the user and must not reach log files.
            print(f"Created project {settings.default_project!r}; ingestion key (shown once): {key}", flush=True)
        app = create_app(Runtime(settings, opened.store), api_token=token)
        print(serve_banner(settings), file=sys.stderr)
        run_uvicorn(app, settings)
    finally:
        opened.close()
        logger.info("pulseboard serve stopped and closed the store")
    return 0


def serve_banner(settings: Settings) -> str:
    token_source = "PULSEBOARD_API_TOKEN" if settings.api_token else str(settings.data_dir / "api_token")
    return (
        f"pulseboard serving on http://{settings.host}:{settings.port}\n"
        f"  MCP (streamable HTTP): {settings.public_url}/mcp  (bearer token in {token_source})\n"
        f"  ingestion:             {settings.public_url}/v1/analytics/<project_id>/\n"
        f"  admin API:             {settings.public_url}/v1/projects  (same bearer token)\n"
        f"  published results:     {settings.public_url}/q/<publication_id>?key=<key>"
        + ("" if settings.api_token else f"\n  read the token with:   cat {token_source}")
    )


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from pulseboard.server.mcp_server import create_mcp
    from pulseboard.server.runtime import Runtime

    with OpenedStore(settings, "mcp") as store:
        logger.info("pulseboard MCP server starting on stdio")
        create_mcp(Runtime(settings, store)).run()
        logger.info("pulseboard MCP server stopped")
    return 0


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    from pulseboard.server.tokens import TokenError, create_token, token_json

    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            record, token = client.create_token(args.project, args.label)
    else:
        with OpenedStore(settings, "token create") as store:
            try:
                created, token = create_token(store, args.project, args.label)
            except TokenError as error:
                raise CommandError(str(error)) from None
        record = token_json(created)
    print(f"Created API token {record['token_id']} for project(s) {', '.join(record['projects'])}.")
    print(f"Token (shown only now; store it safely): {token}")
    return 0


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    from pulseboard.server.tokens import list_tokens, token_json

    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            records = client.list_tokens()
    else:
        with OpenedStore(settings, "token list") as store:
            records = [token_json(record) for record in list_tokens(store)]
    columns = ["token_id", "projects", "label", "created_at", "revoked"]
    rows = [[",".join(record["projects"]) if column == "projects" else record[column] for column in columns]
            for record in records]
    print_rows(columns, rows, args.format)
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from pulseboard.server.tokens import TokenError, revoke_token

    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            client.revoke_token(args.token_id)
    else:
        with OpenedStore(settings, "token revoke") as store:
            try:
                revoke_token(store, args.token_id)
            except TokenError as error:
                raise CommandError(str(error)) from None
    print(f"Revoked API token {args.token_id}.")
    return 0


def cmd_project_create(args: argparse.Namespace, settings: Settings) -> int:
    problem = project_id_problem(args.name) or timezone_problem(args.timezone)
    if problem:
        raise CommandError(problem)

    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            project, key = client.create_project(args.name, timezone=args.timezone)
        project_id = project["project_id"]
    else:
        with OpenedStore(settings, "project create") as store:
            created, key = store.create_project(args.name, timezone=args.timezone)
        project_id = created.project_id
    print(f"Created project {project_id}.")
    print(f"Ingestion key (shown only now; store it safely): {key}")
    return 0


def cmd_project_list(args: argparse.Namespace, settings: Settings) -> int:
    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            projects = client.list_projects()
    else:
        with OpenedStore(settings, "project list") as store:
            projects = [project_json(project) for project in store.list_projects()]
    columns = ["project_id", "name", "timezone", "created_at"]
    print_rows(columns, [[project[column] for column in columns] for project in projects], args.format)
    return 0


def cmd_project_settings(args: argparse.Namespace, settings: Settings) -> int:
    from pulseboard.server.webhooks import check_settings, public_settings

    values = project_setting_values(args)
    try:
        checked = check_settings(values) if values else {}
    except ValueError as error:
        raise CommandError(str(error)) from None

    # With no option given, the command prints the current settings.
    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            public = client.set_settings(args.name, values) if values else client.get_settings(args.name)
    else:
        with OpenedStore(settings, "project settings") as store:
            ensure_project(store, args.name)
            if checked:
                store.set_project_settings(args.name, checked)
            public = public_settings(store.project_settings(args.name))
    print(json.dumps(public, indent=2, sort_keys=True))
    return 0


def project_setting_values(args: argparse.Namespace) -> dict[str, Any]:
    """Return the settings named on the command line; --ticket-fields is a built-in name or a JSON file."""
    values: dict[str, Any] = {}
    if args.stripe_signing_secret is not None:
        values["stripe_signing_secret"] = args.stripe_signing_secret
    if args.stripe_account_key is not None:
        values["stripe_account_metadata_key"] = args.stripe_account_key
    if args.ticket_fields is not None:
        path = Path(args.ticket_fields)
        if path.suffix == ".json":
            try:
                values["ticket_fields"] = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise CommandError(f"Cannot read the ticket field mapping {path}: {error}") from None
        else:
            values["ticket_fields"] = args.ticket_fields
    return values


def cmd_query(args: argparse.Namespace, settings: Settings) -> int:
    project_id = args.project or settings.default_project
    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            ensure_server_project(client, project_id)
        arguments = {"hogql": args.hogql, "project_id": project_id, "include_sql": args.explain}
        dates = {"date_from": args.date_from, "date_to": args.date_to}
        arguments.update({name: value for name, value in dates.items() if value})
        result = call_running_server(url, settings, "analytics_query", arguments)
    else:
        from pulseboard.server.mcp_server import query_filters
        from pulseboard.tools.errors import call_tool
        from pulseboard.tools.query import compile_hogql, run_hogql

        filters = call_tool("query", lambda: query_filters(args.hogql, {}, args.date_from, args.date_to))
        with OpenedStore(settings, "query") as store:
            ensure_project(store, project_id)
            if args.explain:
                compiled, _ = call_tool(
                    "query", lambda: compile_hogql(store, project_id, args.hogql, filters=filters)
                )
                print(compiled.sql)
                return 0
            output = call_tool("query", lambda: run_hogql(store, settings, project_id, args.hogql, filters=filters))
        result = output.model_dump(mode="json")
    if args.explain:
        # Through a running server the query also runs, because analytics_query returns its SQL.
        print(result["clickhouse_sql"])
        return 0
    columns = [column["name"] for column in result["columns"]]
    print_rows(columns, result["rows"], args.format)
    if result["truncated"]:
        print(f"(truncated to {len(result['rows'])} rows; add a LIMIT of up to 10000 to get more)", file=sys.stderr)
    return 0


def parse_param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise CommandError(f"--param {text!r} is not NAME=VALUE; e.g. --param w_revenue=50.")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    project_id = args.project or settings.default_project
    params = dict(parse_param(item) for item in args.param)
    arguments = {
        "description": args.description, "title": args.title, "recipe_id": args.recipe or "",
        "params": params or None, "hogql": args.hogql or "", "project_id": project_id,
        "cache_ttl_s": args.cache_ttl,
    }
    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            ensure_server_project(client, project_id)
        result = call_running_server(url, settings, "publish_query", arguments)
        public_url = result["public_url"]
    else:
        from pulseboard.tools.errors import call_tool
        from pulseboard.tools.publish import publish

        arguments.pop("project_id")
        arguments["params"] = params
        with OpenedStore(settings, "publish") as store:
            ensure_project(store, project_id)
            output = call_tool("publish", lambda: publish(store, settings, project_id, **arguments))
        public_url = output.public_url
    print(public_url)
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    project_id = args.project or settings.default_project
    path = Path(args.file)
    mapping_path = Path(args.mapping)
    now = dt.datetime.now(dt.timezone.utc)
    url = running_server(settings)
    try:
        if url:
            with server_client(url, settings) as client:
                ensure_server_project(client, project_id)
                report = import_through_server(client, project_id, path, mapping_path, now, args.allow_duplicates)
        else:
            with OpenedStore(settings, "import") as store:
                ensure_project(store, project_id)
                report = import_file(
                    store, project_id, path, mapping_path, now=now, allow_duplicates=args.allow_duplicates
                )
    except MappingError as error:
        raise CommandError(str(error)) from None
    except ReimportError as error:
        raise CommandError(
            f"{error.file_name} was already imported into project {error.project_id} (event {error.event_id} is "
            "stored); importing it again would store its events twice. Add --allow-duplicates to import anyway."
        ) from None
    except ImportFileError as error:
        # The message of invalid rows lists the first 20 of them already.
        raise CommandError(error.message) from None
    print(report.summary())
    return 0


def import_through_server(
    client: AdminClient, project_id: str, path: Path, mapping_path: Path, now: dt.datetime, allow_duplicates: bool
) -> ImportReport:
    """Validate the whole file here, then send its events to the server's ingestion endpoint in batches.

    Nothing is sent unless every row is valid. A batch the server rejects stops the import, and the
    error message counts the events stored before it.
    """
    started = time.perf_counter()
    checked = check_file(path, mapping_path, now=now)
    if not allow_duplicates:
        check_reimport(path, project_id, checked.first_uuids, client.stored_uuids(project_id, checked.first_uuids))

    total = sum(checked.events_by_name.values())
    sent = 0
    for batch in event_batches(checked, now=now, size=MAX_BATCH_EVENTS):
        for body, count in request_bodies(batch, path):
            try:
                sent += client.send_events(project_id, body)
            except ServerRequestError as error:
                raise CommandError(partial_import_message(str(error), path, sent, total)) from None
    elapsed_s = time.perf_counter() - started
    logger.info(
        "imported %s into project %s through %s: %d rows, %d events in %.1f s",
        path.name, project_id, client.url, checked.rows_read, sent, elapsed_s,
    )
    return ImportReport(
        path=str(path),
        project_id=project_id,
        rows_read=checked.rows_read,
        events_stored=sent,
        events_by_name=checked.events_by_name,
        elapsed_s=round(elapsed_s, 3),
    )


def request_bodies(batch: Sequence[EventRow], path: Path) -> Iterator[tuple[bytes, int]]:
    """Yield (JSON array body, event count) pairs that each fit the ingestion endpoint's body limit."""
    parts: list[bytes] = []
    size = 2  # the brackets
    for row in batch:
        part = json.dumps(event_payload(row), ensure_ascii=False, separators=(",", ":")).encode()
        if len(part) + 2 > MAX_BODY_BYTES:
            raise CommandError(
                f"An event of {path} is {len(part)} bytes as JSON, more than the {MAX_BODY_BYTES} bytes the "
                "server accepts in one request. Stop the server and import the file without it."
            )
        if parts and size + 1 + len(part) > MAX_BODY_BYTES:
            yield b"[" + b",".join(parts) + b"]", len(parts)
            parts = []
            size = 2
        parts.append(part)
        size += len(part) + (1 if len(parts) > 1 else 0)
    if parts:
        yield b"[" + b",".join(parts) + b"]", len(parts)


def event_payload(row: EventRow) -> dict[str, Any]:
    """Return a validated event in the ingestion endpoint's format."""
    return {
        "uuid": row.uuid,
        "event": row.event,
        "distinct_id": row.distinct_id,
        "timestamp": format_iso(row.timestamp),
        "properties": row.properties,
    }


def partial_import_message(error: str, path: Path, sent: int, total: int) -> str:
    if sent == 0:
        return f"{error}\nNo events of {path} were stored."
    return (
        f"{error}\n{sent} of {total} events of {path} were stored before the failure. Importing the file again "
        f"needs --allow-duplicates, and then stores those {sent} events twice."
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from pulseboard.server.demo import format_summary_table, load_demo
    from pulseboard.tools.publish import publish
    from pulseboard.tools.recipes import run_recipe

    project_id = settings.default_project
    opened = OpenedStore(settings, "demo")
    store = opened.store
    try:
        if store.list_projects():
            raise CommandError(
                f"{settings.data_dir} already contains a pulseboard store; the demo needs a new, empty data "
                "directory. Omit --data-dir to use a new temporary one."
            )
        store.create_project(project_id, name="Demo")
        reference_time = dt.datetime.now(dt.timezone.utc)
        count = load_demo(store, project_id, reference_time, args.extra_accounts)
        print(f"Loaded {count} demo events into project {project_id!r} in {settings.data_dir}.\n")

        output = run_recipe(store, settings, project_id, "account_health_score", {})
        print("account_health_score (lowest first):")
        print(format_summary_table([column.name for column in output.columns], output.rows))

        published = publish(
            store, settings, project_id, recipe_id="account_health_score", title="Account health",
            description="Every account with a subscription scored 0-100 on usage, usage trend and friction, with its MRR and plan.",
        )
        print(f"\nPublic dashboard: {published.public_url}")
        print(f"  JSON: {published.public_url}&format=json   CSV: {published.public_url}&format=csv")
        print(f"  Drill-down of the lowest-scoring accounts: {published.public_url.replace('?', '/drilldown?', 1)}")
        if args.no_serve:
            print(f"\nServe it with: pulseboard serve --data-dir {settings.data_dir} --port {settings.port}")
            return 0
    finally:
        if args.no_serve or sys.exc_info()[0] is not None:
            opened.close()

    from pulseboard.server.app import create_app
    from pulseboard.server.runtime import Runtime

    try:
        token = api_token(settings, create=True)
        if opened.lock is not None:
            opened.lock.describe("demo", local_url(settings))
        print(serve_banner(settings))
        print(f"  API token: {token}\nPress Ctrl+C to stop.")
        app = create_app(Runtime(settings, store), api_token=token)
        run_uvicorn(app, settings)
    finally:
        opened.close()
    return 0


def cmd_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    project_id = args.project or settings.default_project
    params = dict(parse_param(item) for item in args.param)
    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            ensure_server_project(client, project_id)
        arguments = {"as_of": args.as_of, "params": params or None, "project_id": project_id}
        result = call_running_server(url, settings, "snapshot_health_scores", arguments)
    else:
        from pulseboard.tools.errors import call_tool
        from pulseboard.tools.snapshots import take_snapshot

        with OpenedStore(settings, "snapshot") as store:
            ensure_project(store, project_id)
            output = call_tool(
                "snapshot", lambda: take_snapshot(store, settings, project_id, as_of=args.as_of, params=params)
            )
        result = output.model_dump(mode="json")
    accounts = result["accounts"]
    noun = "account" if accounts == 1 else "accounts"
    print(f"stored the scores of {accounts} {noun} for {result['day']} in project {project_id}")
    return 0


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from pulseboard.server.alerts import Drop, WebhookError, build_message, check_webhook_url, post_webhook

    project_id = args.project or settings.default_project
    try:
        check_webhook_url(args.webhook)
    except WebhookError as error:
        raise CommandError(str(error)) from None
    params = {"min_drop": args.min_drop, "period_hours": args.period_hours, "limit": 1000}
    if args.as_of:
        params["as_of"] = args.as_of
    url = running_server(settings)
    if url:
        with server_client(url, settings) as client:
            ensure_server_project(client, project_id)
        arguments = {"recipe_id": "score_drops", "params": params, "project_id": project_id}
        result = call_running_server(url, settings, "run_recipe", arguments)
    else:
        from pulseboard.tools.errors import call_tool
        from pulseboard.tools.recipes import run_recipe

        with OpenedStore(settings, "alerts") as store:
            ensure_project(store, project_id)
            output = call_tool("alerts", lambda: run_recipe(store, settings, project_id, "score_drops", params))
        result = output.model_dump(mode="json")

    names = [column["name"] for column in result["columns"]]
    rows = [dict(zip(names, row)) for row in result["rows"]]
    drops = [Drop(**{field: row[field] for field in Drop.__dataclass_fields__}) for row in rows]
    if not drops:
        print(f"no account in project {project_id} lost more than {args.min_drop:g} points; nothing posted")
        return 0

    message = build_message(
        drops, project_id=project_id, min_drop=args.min_drop, period_hours=args.period_hours,
        dashboard_url=args.dashboard_url or "",
    )
    try:
        post_webhook(args.webhook, message, retries=args.retries, backoff_s=args.backoff)
    except WebhookError as error:
        raise CommandError(str(error)) from None
    noun = "account" if len(drops) == 1 else "accounts"
    print(f"posted the score drops of {len(drops)} {noun} in project {project_id}")
    return 0


# Argument parsing


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="Data folder (PULSEBOARD_DATA_DIR); default ~/.local/share/pulseboard, and a new temporary folder for demo.")
    common.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (PULSEBOARD_LOG_LEVEL); default INFO.")

    network = argparse.ArgumentParser(add_help=False)
    network.add_argument("--host", help="Interface to bind (PULSEBOARD_HOST); default 127.0.0.1.")
    network.add_argument("--port", type=int, help="TCP port (PULSEBOARD_PORT); default 8787.")
    network.add_argument("--public-url", help="Base of published links (PULSEBOARD_PUBLIC_URL); default http://HOST:PORT.")

    parser = argparse.ArgumentParser(
        prog="pulseboard",
        description="Product analytics for agents: HogQL queries, account health recipes and published dashboards.",
        epilog="project, token, query, import and publish go through the HTTP API of a running `pulseboard serve` "
        "on the same data folder, and open the store themselves when no server holds it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common, network], help="Serve MCP (/mcp), ingestion (/v1/) and published results (/q/).")
    serve.add_argument("--create-project", action="store_true", help="Create the default project if it does not exist and print its ingestion key on stdout.")
    serve.set_defaults(handler=cmd_serve)

    mcp = commands.add_parser("mcp", parents=[common], help="Serve MCP over stdio (for a client that starts the server).")
    mcp.set_defaults(handler=cmd_mcp)

    project = commands.add_parser("project", help="Create, list or configure projects.")
    project_commands = project.add_subparsers(dest="project_command", required=True, metavar="ACTION")
    create = project_commands.add_parser("create", parents=[common], help="Create a project and print its ingestion key once.")
    create.add_argument("name", help="Project id: 1-63 lowercase letters, digits, '_' or '-'.")
    create.add_argument("--timezone", default="UTC", help="IANA time zone that day buckets and now() follow; default UTC.")
    create.set_defaults(handler=cmd_project_create)
    listing = project_commands.add_parser("list", parents=[common], help="List projects.")
    listing.add_argument("--format", choices=["table", "json", "csv"], default="table", help="Output format; default table.")
    listing.set_defaults(handler=cmd_project_list)
    project_settings = project_commands.add_parser("settings", parents=[common], help="Show or set a project's webhook settings; with no option, print them.")
    project_settings.add_argument("name", help="Project id.")
    project_settings.add_argument(
        "--stripe-signing-secret",
        help="Signing secret (whsec_...) of the Stripe webhook endpoint /v1/webhooks/stripe/PROJECT.",
    )
    project_settings.add_argument(
        "--stripe-account-key", help="Stripe customer metadata key that contains the account id; default account_id."
    )
    project_settings.add_argument(
        "--ticket-fields",
        help="Field mapping of /v1/webhooks/tickets/PROJECT: 'zendesk', 'default', or a .json file.",
    )
    project_settings.set_defaults(handler=cmd_project_settings)

    token = commands.add_parser("token", help="Create, list or revoke API tokens limited to some projects.")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    token_create = token_commands.add_parser(
        "create", parents=[common], help="Create an API token for /mcp that may use only the named projects; print it once."
    )
    token_create.add_argument("--project", action="append", required=True, help="Project id the token may use; repeatable.")
    token_create.add_argument("--label", default="", help="Label shown by `token list`, e.g. the token's owner.")
    token_create.set_defaults(handler=cmd_token_create)
    token_list = token_commands.add_parser("list", parents=[common], help="List API tokens (never the tokens themselves).")
    token_list.add_argument("--format", choices=["table", "json", "csv"], default="table", help="Output format; default table.")
    token_list.set_defaults(handler=cmd_token_list)
    token_revoke = token_commands.add_parser("revoke", parents=[common], help="Revoke an API token; requests that send it get 401.")
    token_revoke.add_argument("token_id", help="Token id from `token create` or `token list`, e.g. tok_0123456789abcdef.")
    token_revoke.set_defaults(handler=cmd_token_revoke)

    query = commands.add_parser("query", parents=[common], help="Run one HogQL query and print the rows.")
    query.add_argument("hogql", help="HogQL SELECT over the events table.")
    query.add_argument("--project", help="Project id; default PULSEBOARD_DEFAULT_PROJECT (default).")
    query.add_argument("--format", choices=["table", "json", "csv"], default="table", help="Output format; default table.")
    query.add_argument(
        "--explain", action="store_true", help="Print the compiled ClickHouse SQL instead of the rows."
    )
    query.add_argument(
        "--date-from",
        help="Start of the date range, inclusive, that {filters} in the query expands to: an ISO 8601 date or "
        "time (project time zone unless it has an offset), or a relative date written as --date-from=-7d "
        "(units h, d, w, m for months, y).",
    )
    query.add_argument(
        "--date-to", help="End of the date range, exclusive; same forms as --date-from. The query must contain {filters}."
    )
    query.set_defaults(handler=cmd_query)

    importer = commands.add_parser("import", parents=[common], help="Import a CSV or JSON-lines export as events.")
    importer.add_argument("file", help="CSV file with a header row, or JSON lines (.jsonl / .ndjson).")
    importer.add_argument("--mapping", required=True, help="TOML file mapping columns to event fields and properties.")
    importer.add_argument("--project", help="Project id; default PULSEBOARD_DEFAULT_PROJECT (default).")
    importer.add_argument(
        "--allow-duplicates", action="store_true",
        help="Import a file whose events the project already stores, storing them a second time.",
    )
    importer.set_defaults(handler=cmd_import)

    publisher = commands.add_parser("publish", parents=[common, network], help="Publish a recipe or query and print its public URL.")
    source = publisher.add_mutually_exclusive_group(required=True)
    source.add_argument("--recipe", help="Recipe id, e.g. account_health_score.")
    source.add_argument("--hogql", help="HogQL query to publish.")
    publisher.add_argument("--param", action="append", default=[], help="Recipe parameter NAME=VALUE (JSON value or text); repeatable.")
    publisher.add_argument("--description", default="", help="Text shown under the title.")
    publisher.add_argument("--title", default="", help="Page title; default the recipe id.")
    publisher.add_argument("--cache-ttl", type=int, help="Seconds a computed result is reused; default PULSEBOARD_CACHE_TTL_S (60).")
    publisher.add_argument("--project", help="Project id; default PULSEBOARD_DEFAULT_PROJECT (default).")
    publisher.set_defaults(handler=cmd_publish)

    snapshot = commands.add_parser("snapshot", parents=[common], help="Store the account health scores of a day (run daily).")
    snapshot.add_argument("--as-of", help="Day to store (YYYY-MM-DD, scored at the end of that day) or ISO 8601 time; default now.")
    snapshot.add_argument("--param", action="append", default=[], help="account_health_score parameter NAME=VALUE, e.g. w_revenue=50; repeatable.")
    snapshot.add_argument("--project", help="Project id; default PULSEBOARD_DEFAULT_PROJECT (default).")
    snapshot.set_defaults(handler=cmd_snapshot)

    alerts = commands.add_parser("alerts", parents=[common], help="Post accounts whose health score dropped to a chat webhook.")
    alerts.add_argument("--webhook", required=True, help="Slack-compatible incoming webhook URL.")
    alerts.add_argument("--min-drop", type=float, default=15, help="Points a score must fall by to be posted; default 15.")
    alerts.add_argument("--period-hours", type=int, default=24, help="Hours the drop is measured over, 24 to 2160; default 24.")
    alerts.add_argument("--dashboard-url", help="Link added to the message, e.g. a published account_health_score URL.")
    alerts.add_argument("--as-of", help="ISO 8601 time the period ends at; default now.")
    alerts.add_argument("--retries", type=int, default=3, help="Retries after a 5xx response or network error, 0 to 10; default 3.")
    alerts.add_argument("--backoff", type=float, default=1.0, help="Seconds before the first retry, doubling after each; default 1.")
    alerts.add_argument("--project", help="Project id; default PULSEBOARD_DEFAULT_PROJECT (default).")
    alerts.set_defaults(handler=cmd_alerts)

    demo = commands.add_parser("demo", parents=[common, network], help="Load demo accounts, score them, publish the table and serve it.")
    demo.add_argument("--extra-accounts", type=int, default=40, help="Generated accounts besides the five reference ones; default 40.")
    demo.add_argument("--no-serve", action="store_true", help="Print the table and URL, then exit instead of serving.")
    demo.set_defaults(handler=cmd_demo)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "host", "port", "public_url", "log_level"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if args.command == "demo" and "data_dir" not in overrides:
        overrides["data_dir"] = tempfile.mkdtemp(prefix="pulseboard-demo-")
    if args.command in QUIET_COMMANDS and "log_level" not in overrides and "PULSEBOARD_LOG_LEVEL" not in os.environ:
        overrides["log_level"] = "WARNING"
    return load_settings(**overrides)


# Commands that print a result log only warnings unless --log-level or PULSEBOARD_LOG_LEVEL sets
# another level, so their output is not buried under request lines.
QUIET_COMMANDS = {"project", "query", "import", "publish", "token", "snapshot", "alerts"}


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The HTTP client logs every request at INFO; its failures still surface as errors.
    for name in ("httpx2", "httpx", "httpcore", "mcp.client"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "extra_accounts", 0) < 0:
        parser.error(f"--extra-accounts {args.extra_accounts} is negative; give 0 or more.")
    try:
        settings = settings_from_args(args)
        configure_logging(settings.log_level)
        return args.handler(args, settings)
    except (CommandError, SettingsError, StoreError, ServerRequestError) as error:
        print(f"pulseboard: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # tool errors from call_tool carry their own text
        from mcp.server.mcpserver.exceptions import ToolError

        if isinstance(error, ToolError):
            print(f"pulseboard: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

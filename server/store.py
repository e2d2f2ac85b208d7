"""The ClickHouse store: connection, schema migrations, projects, events and publications.

Every piece of state lives in ClickHouse. Small mutable tables (projects, property definitions,
publications) use ReplacingMergeTree with a version column and are read with FINAL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

logger = logging.getLogger(__name__)

PropertyType = Literal["String", "Numeric", "Boolean", "DateTime"]

# The JSON column type is production-ready from ClickHouse 24.8; older servers reject the schema.
MIN_SERVER_VERSION = (24, 8)

# Seconds a project's ingestion key hash is reused before it is read again. Keys cannot change
# yet; when rotation exists it must clear the entry.
INGEST_KEY_CACHE_S = 60.0

# Each migration is applied once, in order, and recorded in `schema_migrations`.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "events, property definitions, projects, publications",
        [
            """
            CREATE TABLE IF NOT EXISTS events (
                project_id LowCardinality(String),
                uuid UUID,
                event LowCardinality(String),
                distinct_id String,
                timestamp DateTime64(6, 'UTC'),
                properties JSON,
                inserted_at DateTime64(6, 'UTC') DEFAULT now64(6)
            ) ENGINE = MergeTree
            ORDER BY (project_id, timestamp, event)
            """,
            """
            CREATE TABLE IF NOT EXISTS property_definitions (
                project_id LowCardinality(String),
                name String,
                property_type LowCardinality(String),
                first_seen DateTime64(6, 'UTC'),
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (project_id, name)
            """,
            """
            CREATE TABLE IF NOT EXISTS projects (
                project_id String,
                name String,
                ingest_key_hash String,
                timezone String,
                created_at DateTime64(6, 'UTC'),
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY project_id
            """,
            """
            CREATE TABLE IF NOT EXISTS publications (
                publication_id String,
                project_id String,
                title String,
                description String,
                recipe_id String,
                hogql String,
                params String,
                key_hash String,
                cache_ttl_s UInt32,
                created_at DateTime64(6, 'UTC'),
                expires_at Nullable(DateTime64(6, 'UTC')),
                revoked UInt8,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY publication_id
            """,
        ],
    ),
    (
        2,
        "publication key rotation: previous key hash and its expiry",
        [
            """
            ALTER TABLE publications
                ADD COLUMN IF NOT EXISTS previous_key_hash String DEFAULT '',
                ADD COLUMN IF NOT EXISTS previous_key_valid_until Nullable(DateTime64(6, 'UTC'))
            """,
        ],
    ),
    (
        4,
        "skipping index on event uuids for write-time deduplication; per-project settings",
        [
            # Without the index, checking 1,000 incoming uuids reads every uuid of the project; with
            # it, only granules whose bloom filter may contain one of them.
            """
            ALTER TABLE events ADD INDEX IF NOT EXISTS events_uuid_bloom uuid TYPE bloom_filter(0.001) GRANULARITY 1
            """,
            """
            CREATE TABLE IF NOT EXISTS project_settings (
                project_id String,
                name String,
                value String,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (project_id, name)
            """,
        ],
    ),
    (
        5,
        "daily account health score snapshots",
        [
            """
            CREATE TABLE IF NOT EXISTS health_snapshots (
                project_id LowCardinality(String),
                day Date,
                account String,
                health_score Float64,
                status LowCardinality(String),
                top_risk_signal String,
                as_of DateTime64(6, 'UTC'),
                computed_at DateTime64(6, 'UTC'),
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (project_id, day, account)
            """,
        ],
    ),
    (
        6,
        "API tokens limited to some projects",
        [
            """
            CREATE TABLE IF NOT EXISTS api_tokens (
                token_id String,
                token_hash String,
                projects Array(String),
                label String,
                created_at DateTime64(6, 'UTC'),
                revoked UInt8,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY token_id
            """,
        ],
    ),
]

# Prefixes of the secrets pulseboard issues, so a key sent to the wrong place can be named.
INGEST_KEY_PREFIX = "pbi_"
API_TOKEN_PREFIX = "pbt_"

# Compared against when no stored hash exists, so every lookup takes the same hashing work.
_NO_KEY_HASH = "0" * 64


class StoreError(Exception):
    """The store cannot be opened or used; the message names the fix."""


class StoreLockedError(StoreError):
    """Another process has the embedded store folder open."""


@dataclass(frozen=True)
class Project:
    project_id: str
    name: str
    timezone: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Publication:
    publication_id: str
    project_id: str
    title: str
    description: str
    recipe_id: str
    hogql: str
    params: dict[str, Any]
    cache_ttl_s: int
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked: bool


@dataclass(frozen=True)
class PublicationKeys:
    """Hashes of the keys that open a publication; the previous key works until its expiry."""

    key_hash: str
    previous_key_hash: str = ""
    previous_key_valid_until: dt.datetime | None = None


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    elapsed_ms: float


@dataclass
class EventRow:
    """One validated event, ready to store."""

    uuid: str
    event: str
    distinct_id: str
    timestamp: dt.datetime
    properties: dict[str, Any] = field(default_factory=dict)
    # True when the server made the uuid (uuid4) because the sender gave none: such an event cannot
    # be stored yet, so the duplicate check skips it.
    uuid_generated: bool = False


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(prefix: str) -> str:
    """Return a random key with 32 bytes of entropy, prefixed so a leaked key is recognisable."""
    return prefix + secrets.token_urlsafe(32)


def keys_match(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def format_timestamp(value: dt.datetime) -> str:
    """Format an aware datetime as the UTC text that DateTime64(6, 'UTC') parses."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def property_type_of(value: Any) -> PropertyType | None:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, (int, float)):
        return "Numeric"
    if isinstance(value, str):
        return "String"
    return None


def leaf_properties(properties: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Yield (dotted path, value) for every scalar leaf, the way the JSON column splits paths."""
    for key, value in properties.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from leaf_properties(value, path + ".")
        else:
            yield path, value


def connect(url: str) -> Client:
    """Open a clickhouse-connect client for a chdb:// or http(s):// URL and check the version."""
    try:
        client = clickhouse_connect.get_client(dsn=url)
    except Exception as error:  # the driver raises several unrelated types for a bad URL or host
        raise StoreError(f"Cannot connect to the store at {redact_url(url)}: {error}") from error

    version = tuple(int(part) for part in client.server_version.split(".")[:2])
    if version < MIN_SERVER_VERSION:
        client.close()
        raise StoreError(
            f"ClickHouse {client.server_version} at {redact_url(url)} is too old: pulseboard needs "
            f"{MIN_SERVER_VERSION[0]}.{MIN_SERVER_VERSION[1]} or newer for the JSON column type. "
            "Upgrade the server, or unset PULSEBOARD_CLICKHOUSE_URL to use the embedded store."
        )
    return client


def redact_url(url: str) -> str:
    """Hide the password of a user:password@host URL."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


class Store:
    """Typed access to pulseboard's tables over a small pool of clickhouse-connect clients.

    clickhouse-connect serialises the calls made on one client, so a slow query on a shared
    client would hold up every insert behind it. Each call therefore takes a client from a
    pool; chDB serves several client handles of its one engine in parallel.
    """

    def __init__(self, client: Client, url: str = "", *, pool_size: int = 8) -> None:
        self.client = client
        self.url = url
        self._lock = threading.Lock()
        self._definitions: dict[str, dict[str, PropertyType]] = {}
        self._ingest_key_hashes: dict[str, tuple[str, float]] = {}
        self._ingest_key_projects: dict[str, tuple[str, float]] = {}
        self._insert_locks: dict[str, threading.Lock] = {}
        self._idle: queue.LifoQueue[Client] = queue.LifoQueue()
        self._idle.put(client)
        self._opened = [client]
        self._pool_size = pool_size if url else 1
        # The number of publication rows written through this store. In-process caches of
        # publications compare it to tell when a revocation or key rotation made them stale.
        self.publication_writes = 0

    @contextmanager
    def connection(self) -> Iterator[Client]:
        """Lend a client for one call; open another while fewer than pool_size exist."""
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self._open_extra_client()
        try:
            yield client
        finally:
            self._idle.put(client)

    def _open_extra_client(self) -> Client:
        with self._lock:
            if len(self._opened) < self._pool_size:
                client = clickhouse_connect.get_client(dsn=self.url)
                self._opened.append(client)
                return client
        return self._idle.get()

    def _query(self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None):
        with self.connection() as client:
            return client.query(sql, parameters=dict(parameters or {}), settings=dict(settings or {}))

    def _insert(self, table: str, rows: list[list[Any]], column_names: list[str]) -> None:
        with self.connection() as client:
            client.insert(table, rows, column_names=column_names)

    @classmethod
    def open(cls, url: str) -> Store:
        store = cls(connect(url), url)
        store.migrate()
        return store

    def close(self) -> None:
        for client in self._opened:
            client.close()

    # Schema

    def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied now."""
        with self._lock:
            self.client.command(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, description String, "
                "applied_at DateTime64(6, 'UTC')) ENGINE = MergeTree ORDER BY version"
            )
            done = {row[0] for row in self.client.query("SELECT version FROM schema_migrations").result_rows}
            applied = []
            for version, description, statements in MIGRATIONS:
                if version in done:
                    continue

                for statement in statements:
                    self.client.command(statement)
                self.client.insert(
                    "schema_migrations",
                    [[version, description, utcnow()]],
                    column_names=["version", "description", "applied_at"],
                )
                logger.info("applied store migration %d: %s", version, description)
                applied.append(version)
            return applied

    # Projects

    def create_project(self, project_id: str, name: str = "", timezone: str = "UTC") -> tuple[Project, str]:
        """Create a project; return it with its ingestion key, which is not stored in clear."""
        if self.get_project(project_id) is not None:
            raise StoreError(f"Project {project_id!r} already exists; choose another id.")

        key = new_key(INGEST_KEY_PREFIX)
        project = Project(project_id, name or project_id, timezone, utcnow())
        self._insert(
            "projects",
            [[project_id, project.name, hash_key(key), timezone, project.created_at, time.time_ns()]],
            column_names=["project_id", "name", "ingest_key_hash", "timezone", "created_at", "version"],
        )
        logger.info("created project %s", project_id)
        return project, key

    def get_project(self, project_id: str) -> Project | None:
        rows = self._query(
            "SELECT project_id, name, timezone, created_at FROM projects FINAL WHERE project_id = {p:String}",
            {"p": project_id},
        ).result_rows
        if not rows:
            return None
        return Project(*rows[0])

    def list_projects(self) -> list[Project]:
        rows = self._query(
            "SELECT project_id, name, timezone, created_at FROM projects FINAL ORDER BY project_id"
        ).result_rows
        return [Project(*row) for row in rows]

    def check_ingest_key(self, project_id: str, key: str) -> bool:
        """Compare a key with the project's stored hash; only accepted keys are remembered a while.

        The lookup query cost about 1.9 ms per ingestion request and halved HTTP throughput in
        bench/bench_ingest.py, so a project's hash is kept for INGEST_KEY_CACHE_S seconds.
        """
        cached = self.cached_ingest_key_check(project_id, key)
        if cached is not None:
            return cached

        now = time.monotonic()
        rows = self._query(
            "SELECT ingest_key_hash FROM projects FINAL WHERE project_id = {p:String}",
            {"p": project_id},
        ).result_rows
        if not rows:
            # Hash anyway so an unknown project takes as long as a wrong key.
            keys_match(key, "0" * 64)
            return False

        stored_hash = rows[0][0]
        self._ingest_key_hashes[project_id] = (stored_hash, now + INGEST_KEY_CACHE_S)
        return keys_match(key, stored_hash)

    def cached_ingest_key_check(self, project_id: str, key: str) -> bool | None:
        """Return check_ingest_key's result from the cache, or None when it needs a query.

        Callers on an event loop use this first, because handing the check to a worker thread cost
        more than the check itself (bench/ingest_server.py --profile).
        """
        cached = self._ingest_key_hashes.get(project_id)
        if cached is None or cached[1] <= time.monotonic():
            return None
        return keys_match(key, cached[0])

    def cached_project_for_ingest_key(self, key: str) -> str | None:
        """Return project_for_ingest_key's result from the cache, or None when it needs a query."""
        cached = self._ingest_key_projects.get(hash_key(key))
        if cached is None or cached[1] <= time.monotonic():
            return None
        return cached[0]

    def project_for_ingest_key(self, key: str) -> str | None:
        """Return the project whose ingestion key this is, or None; for senders that name no project.

        PostHog's SDKs send only the key (`api_key`), so the project is found by the key's hash.
        A found hash is kept for INGEST_KEY_CACHE_S seconds, like check_ingest_key's.
        """
        key_hash = hash_key(key)
        now = time.monotonic()
        cached = self._ingest_key_projects.get(key_hash)
        if cached is not None and cached[1] > now:
            return cached[0]

        rows = self._query(
            "SELECT project_id FROM projects FINAL WHERE ingest_key_hash = {h:String} LIMIT 1",
            {"h": key_hash},
        ).result_rows
        if not rows:
            return None
        self._ingest_key_projects[key_hash] = (rows[0][0], now + INGEST_KEY_CACHE_S)
        return rows[0][0]

    def project_settings(self, project_id: str) -> dict[str, str]:
        """Return a project's settings by name; a name never set is absent."""
        rows = self._query(
            "SELECT name, value FROM project_settings FINAL WHERE project_id = {p:String}",
            {"p": project_id},
        ).result_rows
        return {name: value for name, value in rows}

    def set_project_settings(self, project_id: str, values: Mapping[str, str]) -> None:
        """Store settings of a project, replacing earlier values of the same names."""
        if not values:
            return
        version = time.time_ns()
        self._insert(
            "project_settings",
            [[project_id, name, value, version] for name, value in values.items()],
            column_names=["project_id", "name", "value", "version"],
        )
        logger.info("set project %s settings: %s", project_id, ", ".join(sorted(values)))

    # Events and property definitions

    def insert_events(self, project_id: str, events: Sequence[EventRow], *, skip_stored: bool = False) -> int:
        """Store events in one insert, record new property types, and return how many were stored.

        With `skip_stored`, as ingestion calls it, an event whose uuid repeats within `events` or
        is already stored is skipped, so a retried request is never counted twice and queries need
        no deduplication. Those inserts run one at a time per project in this process, so two of
        them cannot both pass the check. Without it, as the file importer calls it, every event is
        stored (the importer rejects a second import of a file itself, unless asked to store it
        again).
        NOTE: several processes writing one ClickHouse server can still race between the check
        and the insert; the embedded store allows one process only.
        """
        if not events:
            return 0

        with self._insert_lock(project_id):
            fresh = self._unstored(project_id, events) if skip_stored else list(events)
            if fresh:
                self._insert_rows(project_id, fresh)
        if fresh:
            self.record_definitions(project_id, fresh)
        skipped = len(events) - len(fresh)
        if skipped:
            logger.info("skipped %d of %d events already stored in project %s", skipped, len(events), project_id)
        return len(fresh)

    def _insert_lock(self, project_id: str) -> threading.Lock:
        with self._lock:
            return self._insert_locks.setdefault(project_id, threading.Lock())

    def _unstored(self, project_id: str, events: Sequence[EventRow]) -> list[EventRow]:
        """Return the events whose uuid is neither stored nor repeated earlier in `events`, in order."""
        first: dict[str, EventRow] = {}
        for event in events:
            first.setdefault(event.uuid, event)
        sent = [event_uuid for event_uuid, event in first.items() if not event.uuid_generated]
        stored = self.stored_uuids(project_id, sent)
        return [event for event_uuid, event in first.items() if event_uuid not in stored]

    def stored_uuids(self, project_id: str, uuids: Sequence[str]) -> set[str]:
        """Return the canonical uuids among `uuids` that the project stores."""
        if not uuids:
            return set()
        rows = self._query(
            "SELECT DISTINCT toString(uuid) FROM events WHERE project_id = {p:String} AND uuid IN {u:Array(UUID)}",
            {"p": project_id, "u": list(uuids)},
        ).result_rows
        return {row[0] for row in rows}

    def _insert_rows(self, project_id: str, events: Sequence[EventRow]) -> None:
        now = format_timestamp(utcnow())
        lines = []
        for event in events:
            row = {
                "project_id": project_id,
                "uuid": event.uuid,
                "event": event.event,
                "distinct_id": event.distinct_id,
                "timestamp": format_timestamp(event.timestamp),
                "properties": event.properties,
                "inserted_at": now,
            }
            lines.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        body = ("\n".join(lines) + "\n").encode()

        with self.connection() as client:
            client.raw_insert(
                "events",
                column_names=["project_id", "uuid", "event", "distinct_id", "timestamp", "properties", "inserted_at"],
                insert_block=body,
                fmt="JSONEachRow",
                # Without these, the JSON column stores ISO date strings as Date/DateTime values, and a
                # String read of that property returns NULL.
                settings={"input_format_try_infer_datetimes": 0, "input_format_try_infer_dates": 0},
            )

    def record_definitions(self, project_id: str, events: Sequence[EventRow]) -> None:
        known = self.property_types(project_id)
        new: dict[str, PropertyType] = {}
        for event in events:
            for path, value in leaf_properties(event.properties):
                if path in known or path in new:
                    continue
                kind = property_type_of(value)
                if kind is not None:
                    new[path] = kind
        if not new:
            return

        now = utcnow()
        version = time.time_ns()
        self._insert(
            "property_definitions",
            [[project_id, name, kind, now, version] for name, kind in new.items()],
            column_names=["project_id", "name", "property_type", "first_seen", "version"],
        )
        with self._lock:
            for name, kind in new.items():
                self._definitions[project_id].setdefault(name, kind)

    def property_types(self, project_id: str) -> dict[str, PropertyType]:
        """Return the first type recorded for each property path of a project."""
        with self._lock:
            cached = self._definitions.get(project_id)
            if cached is not None:
                return dict(cached)

        rows = self._query(
            "SELECT name, argMin(property_type, first_seen) FROM property_definitions "
            "WHERE project_id = {p:String} GROUP BY name",
            {"p": project_id},
        ).result_rows
        loaded = {name: kind for name, kind in rows}
        with self._lock:
            self._definitions.setdefault(project_id, loaded)
            return dict(self._definitions[project_id])

    # Queries

    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> QueryResult:
        started = time.perf_counter()
        result = self._query(sql, parameters, settings)
        elapsed_ms = (time.perf_counter() - started) * 1000
        columns = list(result.column_names)
        types = [column_type.name for column_type in result.column_types]
        if not columns:
            # clickhouse-connect returns no column metadata for an empty result, so describe the
            # query to keep headers in empty tables and CSV files.
            described = self._query(f"DESCRIBE TABLE ({sql})", parameters, settings).result_rows
            columns = [row[0] for row in described]
            types = [row[1] for row in described]
        return QueryResult(
            columns=columns,
            types=types,
            rows=[list(row) for row in result.result_rows],
            elapsed_ms=elapsed_ms,
        )

    # Publications

    def create_publication(
        self,
        project_id: str,
        *,
        title: str,
        description: str = "",
        recipe_id: str = "",
        hogql: str = "",
        params: Mapping[str, Any] | None = None,
        cache_ttl_s: int = 60,
        expires_at: dt.datetime | None = None,
    ) -> tuple[Publication, str]:
        """Store a publication; return it with its access key, which is shown only this once."""
        publication = Publication(
            publication_id="pub_" + secrets.token_hex(8),
            project_id=project_id,
            title=title,
            description=description,
            recipe_id=recipe_id,
            hogql=hogql,
            params=dict(params or {}),
            cache_ttl_s=cache_ttl_s,
            created_at=utcnow(),
            expires_at=expires_at,
            revoked=False,
        )
        key = new_key("")
        self._write_publication(publication, hash_key(key))
        logger.info("created publication %s in project %s", publication.publication_id, project_id)
        return publication, key

    def _write_publication(
        self,
        publication: Publication,
        key_hash: str,
        *,
        previous_key_hash: str = "",
        previous_key_valid_until: dt.datetime | None = None,
    ) -> None:
        """Write a whole publication row under a new version, which replaces the older rows."""
        self._insert(
            "publications",
            [[
                publication.publication_id,
                publication.project_id,
                publication.title,
                publication.description,
                publication.recipe_id,
                publication.hogql,
                json.dumps(publication.params, sort_keys=True, default=str),
                key_hash,
                publication.cache_ttl_s,
                publication.created_at,
                publication.expires_at,
                int(publication.revoked),
                previous_key_hash,
                previous_key_valid_until,
                time.time_ns(),
            ]],
            column_names=[
                "publication_id", "project_id", "title", "description", "recipe_id", "hogql", "params",
                "key_hash", "cache_ttl_s", "created_at", "expires_at", "revoked", "previous_key_hash",
                "previous_key_valid_until", "version",
            ],
        )
        # Counted after the insert, so a reader that saw the old count re-reads the new row.
        self.publication_writes += 1

    _PUBLICATION_COLUMNS = (
        "publication_id, project_id, title, description, recipe_id, hogql, params, cache_ttl_s, "
        "created_at, expires_at, revoked, key_hash, previous_key_hash, previous_key_valid_until"
    )

    # Serialises read-modify-write of publication rows in this process, so a rotation that read a
    # live row cannot overwrite a revocation written in between.
    _publication_lock = threading.Lock()

    def _publication_from_row(self, row: Sequence[Any]) -> Publication:
        (publication_id, project_id, title, description, recipe_id, hogql, params, cache_ttl_s,
         created_at, expires_at, revoked, *_keys) = row
        return Publication(
            publication_id=publication_id,
            project_id=project_id,
            title=title,
            description=description,
            recipe_id=recipe_id,
            hogql=hogql,
            params=json.loads(params),
            cache_ttl_s=cache_ttl_s,
            created_at=_aware(created_at),
            expires_at=_aware(expires_at) if expires_at else None,
            revoked=bool(revoked),
        )

    def _keys_from_row(self, row: Sequence[Any]) -> PublicationKeys:
        key_hash, previous_key_hash, previous_key_valid_until = row[-3:]
        return PublicationKeys(
            key_hash=key_hash,
            previous_key_hash=previous_key_hash,
            previous_key_valid_until=_aware(previous_key_valid_until) if previous_key_valid_until else None,
        )

    def get_publication_keys(self, publication_id: str) -> tuple[Publication, PublicationKeys] | None:
        """Return a publication and the hashes of its keys, or None when the id is unknown."""
        rows = self._query(
            f"SELECT {self._PUBLICATION_COLUMNS} FROM publications FINAL WHERE publication_id = {{i:String}}",
            {"i": publication_id},
        ).result_rows
        if not rows:
            return None
        return self._publication_from_row(rows[0]), self._keys_from_row(rows[0])

    def get_publication(self, publication_id: str) -> tuple[Publication, str] | None:
        """Return a publication and its current key hash, or None when the id is unknown."""
        found = self.get_publication_keys(publication_id)
        if found is None:
            return None
        publication, keys = found
        return publication, keys.key_hash

    def open_publication(self, publication_id: str, key: str) -> Publication | None:
        """Return a live publication when the key matches; None for unknown, wrong key, revoked or expired.

        The current key always matches; the previous key matches until its previous_key_valid_until.
        """
        return check_publication_key(self.get_publication_keys(publication_id), key, utcnow())

    def list_publications(self, project_id: str) -> list[Publication]:
        rows = self._query(
            f"SELECT {self._PUBLICATION_COLUMNS} FROM publications FINAL WHERE project_id = {{p:String}} "
            "ORDER BY created_at",
            {"p": project_id},
        ).result_rows
        return [self._publication_from_row(row) for row in rows]

    def revoke_publication(self, publication_id: str) -> bool:
        with self._publication_lock:
            found = self.get_publication_keys(publication_id)
            if found is None:
                return False

            publication, keys = found
            revoked = Publication(**{**publication.__dict__, "revoked": True})
            self._write_publication(
                revoked,
                keys.key_hash,
                previous_key_hash=keys.previous_key_hash,
                previous_key_valid_until=keys.previous_key_valid_until,
            )
        logger.info("revoked publication %s", publication_id)
        return True

    def rotate_publication_key(self, publication_id: str, *, grace_s: int) -> str | None:
        """Give a publication a new key and return it, or None when the id is unknown.

        The replaced key keeps opening the publication for grace_s seconds. Only one previous key
        is kept, so a second rotation ends the first key's grace period at once.
        """
        if grace_s < 0:
            raise ValueError(f"grace_s must be 0 or more seconds, got {grace_s}.")

        with self._publication_lock:
            found = self.get_publication_keys(publication_id)
            if found is None:
                return None

            publication, keys = found
            key = new_key("")
            self._write_publication(
                publication,
                hash_key(key),
                previous_key_hash=keys.key_hash,
                previous_key_valid_until=utcnow() + dt.timedelta(seconds=grace_s),
            )
        logger.info("rotated the key of publication %s, previous key valid for %d s", publication_id, grace_s)
        return key


def check_publication_key(
    found: tuple[Publication, PublicationKeys] | None, key: str, now: dt.datetime
) -> Publication | None:
    """Return the publication when the key opens it at `now`, else None (unknown, wrong key, revoked or expired)."""
    if found is None:
        keys_match(key, _NO_KEY_HASH)
        keys_match(key, _NO_KEY_HASH)
        return None

    publication, keys = found
    # Both comparisons always run, so the time taken does not tell whether a previous key exists.
    current = keys_match(key, keys.key_hash)
    previous = keys_match(key, keys.previous_key_hash or _NO_KEY_HASH)
    previous_live = keys.previous_key_valid_until is not None and keys.previous_key_valid_until > now
    if not (current or (previous and previous_live)):
        return None
    if publication.revoked:
        return None
    if publication.expires_at is not None and publication.expires_at <= now:
        return None
    return publication


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value

"""Shared fixtures: one embedded chDB store per test process, one fresh project per test.

chDB opens one data folder per process, so the store is opened once per session in a temporary
folder, and tests stay apart by working in their own project.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulseboard.server.store import Project, Store

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("store") / "clickhouse"
    opened = Store.open(f"chdb://{folder}")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def ch_client(store: Store):
    """The raw clickhouse-connect client of the session store, with the schema migrated."""
    return store.client


@pytest.fixture
def project(store: Store) -> tuple[Project, str]:
    """A new project with its ingestion key."""
    return store.create_project("t" + uuid.uuid4().hex[:12])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

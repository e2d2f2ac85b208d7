"""`publish_query`: store a query or recipe run and return its keyed public URL."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from pulseboard.server.settings import Settings
from pulseboard.server.store import Store, utcnow
from pulseboard.tools.errors import UserInputError
from pulseboard.tools.query import Column, QueryOutput, run_hogql

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 10


class PublishOutput(BaseModel):
    publication_id: str
    public_url: str = Field(description="Public link with its access key; anyone holding it can view the result.")
    title: str
    columns: list[Column]
    preview_rows: list[list[Any]] = Field(description=f"The first {PREVIEW_ROWS} rows of the published result.")
    row_count: int


def run_source(
    store: Store,
    settings: Settings,
    project_id: str,
    *,
    recipe_id: str = "",
    params: Mapping[str, Any] | None = None,
    hogql: str = "",
) -> QueryOutput:
    """Run what a publication shows: a stored recipe with parameters, or HogQL text."""
    if recipe_id:
        from pulseboard.tools.recipes import run_recipe

        return run_recipe(store, settings, project_id, recipe_id, dict(params or {}))
    return run_hogql(store, settings, project_id, hogql)


def publish(
    store: Store,
    settings: Settings,
    project_id: str,
    *,
    description: str,
    title: str = "",
    recipe_id: str = "",
    params: Mapping[str, Any] | None = None,
    hogql: str = "",
    cache_ttl_s: int | None = None,
    expires_at: dt.datetime | None = None,
) -> PublishOutput:
    """Validate by running once, store the publication, and return its URL with a preview."""
    if bool(recipe_id) == bool(hogql.strip()):
        raise UserInputError("Give exactly one of recipe_id (with params) or hogql.")
    if params and not recipe_id:
        raise UserInputError("params apply to recipes only; put values for hogql in the query text.")
    if store.get_project(project_id) is None:
        raise UserInputError(f"Project {project_id!r} does not exist; create it with `pulseboard project create`.")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=dt.timezone.utc)
        if expires_at <= utcnow():
            raise UserInputError(f"expires_at {expires_at.isoformat()} is in the past; give a future time.")

    output = run_source(store, settings, project_id, recipe_id=recipe_id, params=params, hogql=hogql)
    publication, key = store.create_publication(
        project_id,
        title=title or recipe_id or "Query result",
        description=description,
        recipe_id=recipe_id,
        hogql=hogql,
        params=params,
        cache_ttl_s=settings.cache_ttl_s if cache_ttl_s is None else cache_ttl_s,
        expires_at=expires_at,
    )
    return PublishOutput(
        publication_id=publication.publication_id,
        public_url=f"{settings.public_url}/q/{publication.publication_id}?key={key}",
        title=publication.title,
        columns=output.columns,
        preview_rows=output.rows[:PREVIEW_ROWS],
        row_count=output.row_count,
    )

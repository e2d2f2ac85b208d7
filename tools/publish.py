"""`publish_query`: store a query or recipe run and return its keyed public URL."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from pulseboard.server.settings import Settings
from pulseboard.server.store import Publication, Store, utcnow
from pulseboard.tools.errors import UserInputError, unknown_project_error
from pulseboard.tools.query import Column, QueryOutput, run_hogql

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 10

# Seconds the replaced key keeps working after rotate_key, so viewers have time to get the new link.
# After that the old key gets 404.
KEY_ROTATION_GRACE_S = 3600


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
        raise unknown_project_error(project_id)
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


class PublicationInfo(BaseModel):
    """A stored publication as its owner sees it; the key is never included."""

    publication_id: str
    url_without_key: str = Field(description="The public URL without its key; the key was shown once, at publishing.")
    title: str
    description: str
    recipe_id: str
    hogql: str
    params: dict[str, Any]
    cache_ttl_s: int
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked: bool


class PublicationList(BaseModel):
    publications: list[PublicationInfo]


def publication_info(settings: Settings, publication: Publication) -> PublicationInfo:
    return PublicationInfo(
        publication_id=publication.publication_id,
        url_without_key=f"{settings.public_url}/q/{publication.publication_id}",
        title=publication.title,
        description=publication.description,
        recipe_id=publication.recipe_id,
        hogql=publication.hogql,
        params=publication.params,
        cache_ttl_s=publication.cache_ttl_s,
        created_at=publication.created_at,
        expires_at=publication.expires_at,
        revoked=publication.revoked,
    )


def list_project_publications(store: Store, settings: Settings, project_id: str) -> PublicationList:
    """List a project's publications, oldest first, revoked ones included."""
    if store.get_project(project_id) is None:
        raise UserInputError(f"Project {project_id!r} does not exist; check the project_id.")
    return PublicationList(
        publications=[publication_info(settings, item) for item in store.list_publications(project_id)]
    )


def revoke(store: Store, settings: Settings, project_id: str, publication_id: str) -> PublicationInfo:
    """Revoke a project's publication, so its URL returns 404 from the next view on."""
    found = store.get_publication(publication_id)
    if found is None or found[0].project_id != project_id:
        raise UserInputError(
            f"Publication {publication_id!r} does not exist in project {project_id!r}; "
            "list_publications shows the ids."
        )

    store.revoke_publication(publication_id)
    publication, _ = store.get_publication(publication_id)
    return publication_info(settings, publication)


class RotatedKey(BaseModel):
    publication_id: str
    public_url: str = Field(description="Public link with the new access key; it is shown only this once.")
    old_key_valid_until: dt.datetime = Field(
        description="Time until which the old link keeps working; after it the old link gets 404."
    )


def rotate_key(store: Store, settings: Settings, project_id: str, publication_id: str) -> RotatedKey:
    """Give a project's publication a new key. The old key keeps working for KEY_ROTATION_GRACE_S seconds."""
    found = store.get_publication(publication_id)
    if found is None or found[0].project_id != project_id:
        raise UserInputError(
            f"Publication {publication_id!r} does not exist in project {project_id!r}; "
            "list_publications shows the ids."
        )
    if found[0].revoked:
        raise UserInputError(
            f"Publication {publication_id!r} is revoked and cannot be rotated; publish the query again "
            "with publish_query to get a new link."
        )

    key = store.rotate_publication_key(publication_id, grace_s=KEY_ROTATION_GRACE_S)
    if key is None:
        raise UserInputError(f"Publication {publication_id!r} no longer exists; list_publications shows the ids.")

    _, keys = store.get_publication_keys(publication_id)
    return RotatedKey(
        publication_id=publication_id,
        public_url=f"{settings.public_url}/q/{publication_id}?key={key}",
        old_key_valid_until=keys.previous_key_valid_until,
    )

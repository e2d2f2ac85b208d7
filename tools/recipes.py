"""`list_recipes`, `get_recipe` and `run_recipe`: stored analyses, run through the same compiler and
limits as `analytics_query`."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from pulseboard.recipes.loader import Recipe, RecipeError, get_recipe, load_recipes
from pulseboard.server.settings import Settings
from pulseboard.server.store import Store, utcnow
from pulseboard.tools.errors import UserInputError
from pulseboard.tools.query import QueryOutput, run_hogql

logger = logging.getLogger(__name__)


class RecipeParameterInfo(BaseModel):
    name: str
    type: str = Field(description="number, integer, string, datetime, enum or property (a property path).")
    default: Any = Field(default=None, description="Value used when the parameter is omitted; null means required.")
    min: float | None = None
    max: float | None = None
    values: list[str] | None = Field(default=None, description="Allowed values of an enum.")
    description: str


class RecipeColumnInfo(BaseModel):
    name: str
    description: str


class RecipeInfo(BaseModel):
    """A stored recipe as agents see it."""

    recipe_id: str
    title: str
    description: str
    prompt: str = Field(description="The plain-language request that this recipe carries out.")
    parameters: list[RecipeParameterInfo]
    output_columns: list[RecipeColumnInfo]


def recipe_info(recipe: Recipe) -> RecipeInfo:
    header = recipe.header
    return RecipeInfo(
        recipe_id=header.id,
        title=header.title,
        description=" ".join(header.description.split()),
        prompt=" ".join(header.prompt.split()),
        parameters=[
            RecipeParameterInfo(
                name=parameter.name,
                type=parameter.type,
                default=parameter.default,
                min=parameter.min,
                max=parameter.max,
                values=list(parameter.values) if parameter.values else None,
                description=parameter.description,
            )
            for parameter in header.parameters
        ],
        output_columns=[
            RecipeColumnInfo(name=column.name, description=column.description) for column in header.columns
        ],
    )


class RecipeDetail(RecipeInfo):
    """A stored recipe with its HogQL text."""

    hogql: str = Field(
        description="The recipe's HogQL. Parameters appear as {name} placeholders that are bound as values, "
        "except a property parameter, which is written in as properties.<path>."
    )


def get_recipe_detail(recipe_id: str) -> RecipeDetail:
    """Return one stored recipe with its text; raise UserInputError naming the known ids when unknown."""
    try:
        recipe = get_recipe(recipe_id)
    except RecipeError as error:
        raise UserInputError(str(error)) from None
    return RecipeDetail(**recipe_info(recipe).model_dump(), hogql=recipe.hogql.strip())


def list_recipes() -> list[RecipeInfo]:
    """Return every stored recipe with its parameters and output columns, ordered by id."""
    return [recipe_info(recipe) for _, recipe in sorted(load_recipes().items())]


def run_recipe(
    store: Store,
    settings: Settings,
    project_id: str,
    recipe_id: str,
    params: Mapping[str, Any] | None = None,
    *,
    now: dt.datetime | None = None,
) -> QueryOutput:
    """Run a stored recipe in a project with validated parameters; omitted ones take their defaults.

    Raises UserInputError for an unknown recipe or an invalid parameter; compile errors propagate
    as HogQLError.
    """
    try:
        recipe = get_recipe(recipe_id)
        hogql, placeholders = recipe.render(params or {}, now=now or utcnow())
    except RecipeError as error:
        raise UserInputError(str(error)) from None

    output = run_hogql(store, settings, project_id, hogql, placeholders)
    logger.info("recipe %s in project %s returned %d rows", recipe_id, project_id, output.row_count)
    return output

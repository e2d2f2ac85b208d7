"""Stored recipes: one `.sql` file per analysis, with a TOML header and HogQL text."""

from .loader import (
    Recipe,
    RecipeDefinitionError,
    RecipeError,
    RecipeNotFoundError,
    RecipeParameterError,
    get_recipe,
    load_recipes,
)

__all__ = [
    "Recipe",
    "RecipeDefinitionError",
    "RecipeError",
    "RecipeNotFoundError",
    "RecipeParameterError",
    "get_recipe",
    "load_recipes",
]

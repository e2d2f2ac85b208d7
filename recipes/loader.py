"""Load stored recipes: a TOML header in a leading `/* ... */` comment, then HogQL text.

A recipe's parameters appear in its HogQL as `{name}` placeholders. `Recipe.bind` validates the
caller's values, fills in defaults, and returns them as bound placeholders for the compiler. No
parameter value enters the query text, except the property paths described at
`PROPERTY_PATH_PATTERN`.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ParameterType = Literal["number", "integer", "string", "datetime", "enum", "property"]
ConstraintKind = Literal["increasing", "not_all_zero"]

# The ClickHouse type each bound parameter is sent as.
CLICKHOUSE_TYPES: dict[str, str] = {
    "number": "Float64",
    "integer": "Int64",
    "string": "String",
    "datetime": "DateTime64(6, 'UTC')",
    "enum": "String",
}

# A `property` parameter chooses which property a query reads, e.g. `account_id` or
# `$groups.company`. The compiler binds placeholders as values, and a bound value cannot name a
# column: the compiler must see `properties.<path>` to resolve its type from the project's
# property definitions. So the path is checked against this pattern (dot-separated names of
# letters, digits, '_' and '$') and written into the HogQL text as `properties.<path>`.
PROPERTY_PATH_PATTERN = re.compile(r"^[A-Za-z0-9_$]+(\.[A-Za-z0-9_$]+)*$")

PLACEHOLDER_PATTERN = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")
HEADER_PATTERN = re.compile(r"\A\s*/\*(?P<header>.*?)\*/(?P<body>.*)\Z", re.DOTALL)
DATETIME_EXAMPLE = "2025-01-31T00:00:00Z"
Placeholders = dict[str, tuple[object, str]]


class RecipeError(ValueError):
    """A recipe cannot be found, defined or run with the given parameters."""


class RecipeNotFoundError(RecipeError):
    """No recipe has the requested id."""


class RecipeParameterError(RecipeError):
    """A parameter value is unknown, missing, of the wrong type or out of range."""


class RecipeDefinitionError(RecipeError):
    """A recipe file is malformed."""


class RecipeParameter(BaseModel):
    """One parameter of a recipe, as declared in its header."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    type: ParameterType
    description: str
    default: Any = Field(default=None, description="Default value; 'now' for a datetime means the run time.")
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = Field(default=None, description="Allowed values of an enum.")

    @model_validator(mode="after")
    def check_bounds(self) -> RecipeParameter:
        if self.type == "enum" and not self.values:
            raise ValueError(f"enum parameter {self.name!r} needs a list of values")
        if self.type != "enum" and self.values is not None:
            raise ValueError(f"parameter {self.name!r} has values but is not an enum")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"parameter {self.name!r} has min {self.min} above max {self.max}")
        return self

    @property
    def required(self) -> bool:
        return self.default is None

    def convert(self, value: Any, *, now: dt.datetime) -> object:
        """Return the value as this parameter's Python type, or raise RecipeParameterError."""
        if self.type == "datetime":
            return self._convert_datetime(value, now)

        converters = {
            "number": self._convert_number,
            "integer": self._convert_integer,
            "string": self._convert_string,
            "enum": self._convert_enum,
            "property": self._convert_property,
        }
        return converters[self.type](value)

    def expectation(self) -> str:
        """Describe the accepted values, e.g. 'an integer from 1 to 10000'."""
        if self.type == "enum":
            return "one of " + ", ".join(repr(value) for value in self.values or ())
        if self.type == "datetime":
            return f"an ISO 8601 date-time such as {DATETIME_EXAMPLE}, or 'now'"
        if self.type == "property":
            return (
                "a property path of names made of letters, digits, '_' and '$', joined by '.', "
                "such as account_id or $groups.company"
            )
        if self.type == "string":
            return "a string"

        noun = "an integer" if self.type == "integer" else "a number"
        if self.min is not None and self.max is not None:
            return f"{noun} from {format_bound(self.min)} to {format_bound(self.max)}"
        if self.min is not None:
            return f"{noun} of at least {format_bound(self.min)}"
        if self.max is not None:
            return f"{noun} of at most {format_bound(self.max)}"
        return noun

    def _reject(self, value: Any) -> RecipeParameterError:
        return RecipeParameterError(f"Parameter '{self.name}' must be {self.expectation()}; got {value!r}.")

    def _check_range(self, number: float, original: Any) -> None:
        if self.min is not None and number < self.min:
            raise self._reject(original)
        if self.max is not None and number > self.max:
            raise self._reject(original)

    def _convert_number(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self._reject(value)

        try:
            number = float(value)
        except ValueError:
            raise self._reject(value) from None
        if not math.isfinite(number):
            raise self._reject(value)
        self._check_range(number, value)
        return number

    def _convert_integer(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self._reject(value)

        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not value.is_integer():
                raise self._reject(value)
            number = int(value)
        else:
            try:
                number = int(value.strip())
            except ValueError:
                raise self._reject(value) from None
        self._check_range(number, value)
        return number

    def _convert_string(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._reject(value)
        return value

    def _convert_enum(self, value: Any) -> str:
        if not isinstance(value, str) or value not in (self.values or ()):
            raise self._reject(value)
        return value

    def _convert_property(self, value: Any) -> str:
        if not isinstance(value, str) or not PROPERTY_PATH_PATTERN.match(value):
            raise self._reject(value)
        if value.startswith("properties."):
            path = value.removeprefix("properties.")
            raise RecipeParameterError(
                f"Parameter '{self.name}' is a path inside the event properties; "
                f"write '{path}' rather than '{value}'."
            )
        return value

    def _convert_datetime(self, value: Any, now: dt.datetime) -> dt.datetime:
        if isinstance(value, str) and value.strip().lower() == "now":
            parsed = now
        elif isinstance(value, dt.datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                # Python 3.11 parses ISO 8601 with a 'Z' suffix.
                parsed = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise self._reject(value) from None
        else:
            raise self._reject(value)

        # A time without an offset is taken as UTC, the zone events are stored in.
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.astimezone(dt.timezone.utc)


class RecipeColumn(BaseModel):
    """One output column of a recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str


class RecipeConstraint(BaseModel):
    """A rule across parameters: values in increasing order, or not all zero."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ConstraintKind
    parameters: tuple[str, ...] = Field(min_length=2)

    def check(self, values: Mapping[str, object]) -> None:
        numbers = [float(values[name]) for name in self.parameters]  # type: ignore[arg-type]
        names = join_names(self.parameters)
        listed = ", ".join(format_bound(number) for number in numbers)
        if self.kind == "increasing" and any(low >= high for low, high in zip(numbers, numbers[1:])):
            raise RecipeParameterError(f"Parameters {names} must be in increasing order; got {listed}.")
        if self.kind == "not_all_zero" and all(number == 0 for number in numbers):
            raise RecipeParameterError(
                f"Parameters {names} must not all be 0; got {listed}. Set at least one of them above 0."
            )


class RecipeHeader(BaseModel):
    """The metadata block at the top of a recipe file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    description: str
    prompt: str = Field(description="The plain-language request a person would paste to get this analysis.")
    parameters: tuple[RecipeParameter, ...] = ()
    columns: tuple[RecipeColumn, ...] = Field(min_length=1)
    constraints: tuple[RecipeConstraint, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """A stored analysis: metadata from the header and the HogQL text that follows it."""

    header: RecipeHeader
    hogql: str

    @property
    def id(self) -> str:
        return self.header.id

    @property
    def parameters(self) -> tuple[RecipeParameter, ...]:
        return self.header.parameters

    def parameter_names(self) -> list[str]:
        return [parameter.name for parameter in self.parameters]

    def validate(self, params: Mapping[str, Any], *, now: dt.datetime) -> dict[str, object]:
        """Return every parameter's value, given or default, checked and converted."""
        known = self.parameter_names()
        unknown = sorted(name for name in params if name not in known)
        if unknown:
            listed = ", ".join(f"'{name}'" for name in unknown)
            noun = "parameter" if len(unknown) == 1 else "parameters"
            raise RecipeParameterError(
                f"Unknown {noun} {listed} for recipe '{self.id}'. Known parameters: {', '.join(known)}."
            )

        values: dict[str, object] = {}
        for parameter in self.parameters:
            # An explicit null means the default, as when the parameter is left out.
            value = params.get(parameter.name)
            if value is None:
                value = parameter.default
            if value is None:
                raise RecipeParameterError(
                    f"Parameter '{parameter.name}' of recipe '{self.id}' is required: give {parameter.expectation()}."
                )
            values[parameter.name] = parameter.convert(value, now=now)

        for constraint in self.header.constraints:
            constraint.check(values)
        return values

    def bind(self, params: Mapping[str, Any], *, now: dt.datetime) -> Placeholders:
        """Validate parameters and return the bound ones as name -> (value, ClickHouse type)."""
        return self._placeholders(self.validate(params, now=now))

    def render(self, params: Mapping[str, Any], *, now: dt.datetime) -> tuple[str, Placeholders]:
        """Validate parameters; return the HogQL with property paths written in, and the placeholders."""
        values = self.validate(params, now=now)
        paths = {
            parameter.name: f"properties.{values[parameter.name]}"
            for parameter in self.parameters
            if parameter.type == "property"
        }
        hogql = PLACEHOLDER_PATTERN.sub(lambda match: paths.get(match[1], match[0]), self.hogql)
        return hogql, self._placeholders(values)

    def _placeholders(self, values: Mapping[str, object]) -> Placeholders:
        return {
            parameter.name: (values[parameter.name], CLICKHOUSE_TYPES[parameter.type])
            for parameter in self.parameters
            if parameter.type != "property"
        }


def format_bound(value: float) -> str:
    """Format a number without a trailing '.0', e.g. 10000 and 0.25."""
    return str(int(value)) if float(value).is_integer() else str(value)


def join_names(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1]


def parse_recipe(text: str, source: str) -> Recipe:
    """Parse a recipe file's text; `source` names the file in errors."""
    match = HEADER_PATTERN.match(text)
    if match is None:
        raise RecipeDefinitionError(
            f"Recipe file {source} must start with a /* ... */ comment holding its TOML header."
        )

    try:
        data = tomllib.loads(match["header"])
        header = RecipeHeader.model_validate(data)
    except (tomllib.TOMLDecodeError, ValidationError) as error:
        raise RecipeDefinitionError(f"Recipe file {source} has an invalid header: {error}") from None

    recipe = Recipe(header=header, hogql=match["body"].strip())
    check_definition(recipe, source)
    return recipe


def check_definition(recipe: Recipe, source: str) -> None:
    """Check that placeholders, parameters, constraints and defaults agree with each other."""
    declared = recipe.parameter_names()
    used = set(PLACEHOLDER_PATTERN.findall(recipe.hogql))
    problems = []
    if len(set(declared)) != len(declared):
        problems.append("a parameter name is declared twice")
    undeclared = sorted(used - set(declared))
    if undeclared:
        problems.append("placeholders without a parameter: " + ", ".join(undeclared))
    unused = sorted(set(declared) - used)
    if unused:
        problems.append("parameters never used in the query: " + ", ".join(unused))
    types = {parameter.name: parameter.type for parameter in recipe.parameters}
    for constraint in recipe.header.constraints:
        missing = sorted(set(constraint.parameters) - set(declared))
        if missing:
            problems.append(f"{constraint.kind} constraint names unknown parameters: " + ", ".join(missing))
        not_numeric = [name for name in constraint.parameters if types.get(name, "number") not in ("number", "integer")]
        if not_numeric:
            listed = ", ".join(not_numeric)
            problems.append(f"{constraint.kind} constraint names parameters that are not numbers: {listed}")
    if problems:
        raise RecipeDefinitionError(f"Recipe file {source}: " + "; ".join(problems) + ".")

    now = dt.datetime.now(dt.timezone.utc)
    try:
        defaults = {
            parameter.name: parameter.convert(parameter.default, now=now)
            for parameter in recipe.parameters
            if not parameter.required
        }
        for constraint in recipe.header.constraints:
            if set(constraint.parameters) <= set(defaults):
                constraint.check(defaults)
    except RecipeParameterError as error:
        raise RecipeDefinitionError(f"Recipe file {source} has an invalid default: {error}") from None


@functools.cache
def _load_all() -> tuple[Recipe, ...]:
    recipes = []
    for entry in sorted(importlib.resources.files("pulseboard.recipes").iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".sql"):
            continue

        recipe = parse_recipe(entry.read_text(encoding="utf-8"), entry.name)
        if recipe.id != entry.name.removesuffix(".sql"):
            raise RecipeDefinitionError(
                f"Recipe file {entry.name} has the id '{recipe.id}'; name the file {recipe.id}.sql."
            )
        recipes.append(recipe)
    return tuple(recipes)


def load_recipes() -> dict[str, Recipe]:
    """Return the stored recipes by id, read once from the package's .sql files."""
    recipes: dict[str, Recipe] = {}
    for recipe in _load_all():
        if recipe.id in recipes:
            raise RecipeDefinitionError(f"Two recipe files define the id '{recipe.id}'; ids must be unique.")
        recipes[recipe.id] = recipe
    return recipes


def get_recipe(recipe_id: str) -> Recipe:
    """Return one recipe, or raise RecipeNotFoundError listing the known ids."""
    recipes = load_recipes()
    recipe = recipes.get(recipe_id)
    if recipe is None:
        raise RecipeNotFoundError(f"Unknown recipe '{recipe_id}'. Known recipes: {', '.join(sorted(recipes))}.")
    return recipe

"""The MCP server: pulseboard's tools, typed for agents, over one Runtime."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument
from mcp.server.mcpserver.resources import TextResource
from mcp.types import ToolAnnotations
from pydantic import AnyHttpUrl, BaseModel, Field

from pulseboard.hogql import QueryFilters
from pulseboard.hogql.filters import FILTERS_MARKER
from pulseboard.hogql.prelex import prelex
from pulseboard.server.runtime import Runtime
from pulseboard.server.tokens import ProjectTokenVerifier, choose_project, project_access_problem
from pulseboard.tools.drilldown import MAX_BOTTOM_N, DrilldownOutput, account_drilldown as drill_down
from pulseboard.tools.errors import UserInputError, call_tool
from pulseboard.tools.publish import (
    PublicationInfo,
    PublicationList,
    PublishOutput,
    RotatedKey,
    list_project_publications,
    publish,
    revoke,
    rotate_key,
)
from pulseboard.tools.query import QueryOutput, run_hogql
from pulseboard.tools.recipes import (
    RecipeDetail,
    RecipeInfo,
    get_recipe_detail,
    list_recipes as load_recipe_infos,
    run_recipe as run_stored_recipe,
)
from pulseboard.tools.schema import SchemaOutput, describe_schema as describe_project_schema, require_project
from pulseboard.tools.snapshots import SnapshotOutput, take_snapshot

logger = logging.getLogger(__name__)

T = TypeVar("T")

INSTRUCTIONS = """\
Pulseboard answers product-analytics questions over events keyed by account.
Query the `events` table (uuid, event, distinct_id, timestamp, properties) with HogQL through
analytics_query; read properties as properties.account_id, properties.$browser or properties['x'].
Usage events, `$exception` errors, `support_ticket_opened` tickets and `subscription_started` /
`plan_changed` revenue events (properties mrr, plan) share one table. Call describe_schema first
to see the event names, property paths and their types. Use list_recipes, get_recipe and run_recipe
for stored analyses such as account_health_score, and publish_query to share a result as a public
dashboard URL."""

VariableValue = str | int | float | bool

DATE_FORMS = (
    "an ISO 8601 date or time such as 2024-10-01 or 2024-10-01T12:00:00Z, read in the project's time zone "
    "unless it carries an offset, or a relative date such as -7d (units h, d, w, m for months, y)"
)

ProjectId = Annotated[
    str | None,
    Field(
        description="Project to act on. When omitted, the token's project if the API token is limited to one "
        "project, otherwise the server's default project."
    ),
]


class RecipeList(BaseModel):
    recipes: list[RecipeInfo]


def placeholder_type(name: str, value: VariableValue) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, str):
        return "String"
    raise UserInputError(f"Variable {name!r} has an unsupported value {value!r}; use a string, number or boolean.")


def query_filters(
    hogql: str,
    placeholders: Mapping[str, tuple[object, str]],
    date_from: str | None,
    date_to: str | None,
) -> QueryFilters | None:
    """Return the date range that `{filters}` in the query expands to, or None when no bound is given.

    Raises UserInputError when a bound is given but the query does not use `{filters}`, because the
    range would then be ignored. The compiler's pre-lexer finds the placeholder, so `'{filters}'` in a
    string or a comment does not count. The compiler checks the date forms.
    """
    date_from = date_from or None
    date_to = date_to or None
    if date_from is None and date_to is None:
        return None

    if f"{{{FILTERS_MARKER}:" not in prelex(hogql, placeholders).source.rewritten:
        bounds = ", ".join(f"{name} {value!r}" for name, value in [("date_from", date_from), ("date_to", date_to)] if value)
        raise UserInputError(
            f"The query has no {{filters}} placeholder, so {bounds} would be ignored. Write {{filters}} where "
            "the date range applies, e.g. SELECT count() FROM events WHERE {filters}."
        )
    return QueryFilters(date_from=date_from, date_to=date_to)


def create_mcp(runtime: Runtime, *, verifier: ProjectTokenVerifier | None = None) -> MCPServer:
    """Build the MCP server. With a verifier, HTTP clients must send the server's API token or a
    stored project token as a bearer token, and tool calls act only on the projects that token may use."""
    auth: dict[str, Any] = {}
    if verifier is not None:
        auth = {
            "token_verifier": verifier,
            # No resource_server_url: a static token needs no OAuth discovery routes.
            "auth": AuthSettings(issuer_url=AnyHttpUrl(runtime.settings.public_url), resource_server_url=None),
        }
    server = MCPServer("pulseboard", instructions=INSTRUCTIONS, log_level=runtime.settings.log_level, **auth)
    settings = runtime.settings
    store = runtime.store

    async def run_tool(name: str, work: Callable[[], T]) -> T:
        """Run the body of a tool that reads no project in a worker thread."""
        return await run_project_tool(name, None, lambda _: work(), uses_project=False)

    async def run_project_tool(
        name: str, requested: str | None, work: Callable[[str], T], *, uses_project: bool = True
    ) -> T:
        """Choose the project (see `choose_project`), check that the caller's token may use it, then
        run the tool body on it in a worker thread."""
        started = time.perf_counter()
        status = "error"
        access = get_access_token()
        client_id = access.client_id if access else "local"
        project_id = ""
        try:
            if uses_project:
                project_id, problem = choose_project(access, requested, settings.default_project)
                if problem:
                    status = "rejected"
                    raise ToolError(problem)
            result = await anyio.to_thread.run_sync(call_tool, name, lambda: work(project_id))
            status = "ok"
            return result
        finally:
            logger.info(
                "tool %s %s in %.1f ms (project %s, client %s)",
                name, status, (time.perf_counter() - started) * 1000, project_id or "-", client_id,
            )

    @server.tool(
        title="Run a HogQL analytics query",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def analytics_query(
        hogql: Annotated[
            str,
            Field(
                description="One HogQL SELECT (PostHog's SQL dialect) over the `events` table, e.g. "
                "SELECT properties.account_id AS account, count() FROM events "
                "WHERE timestamp >= now() - INTERVAL 30 DAY GROUP BY account. "
                "Write {filters} in a WHERE clause to apply date_from and date_to there. "
                "Without LIMIT at most 100 rows return; the maximum is 10000."
            ),
        ],
        project_id: ProjectId = None,
        variables: Annotated[
            dict[str, VariableValue] | None,
            Field(description="Values for {variables.name} placeholders in the query, bound as parameters."),
        ] = None,
        include_sql: Annotated[bool, Field(description="Also return the compiled ClickHouse SQL.")] = False,
        date_from: Annotated[
            str | None,
            Field(
                description="Start of the date range, inclusive: {filters} in the query becomes "
                f"timestamp >= date_from. Give {DATE_FORMS}. The query must contain {{filters}}."
            ),
        ] = None,
        date_to: Annotated[
            str | None,
            Field(
                description="End of the date range, exclusive: {filters} becomes timestamp < date_to. "
                "Same forms as date_from; without it the range has no end."
            ),
        ] = None,
    ) -> QueryOutput:
        """Run a read-only HogQL query on one project's events and return typed rows."""

        def work(project_id: str) -> QueryOutput:
            placeholders = {
                name: (value, placeholder_type(name, value))
                for name, value in (variables or {}).items()
            }
            filters = query_filters(hogql, placeholders, date_from, date_to)
            return run_hogql(
                store, settings, project_id, hogql, placeholders, filters=filters, include_sql=include_sql
            )

        return await run_project_tool("analytics_query", project_id, work)

    @server.tool(
        title="Publish a query or recipe as a public dashboard",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                    open_world_hint=False),
    )
    async def publish_query(
        description: Annotated[str, Field(description="One or two sentences shown under the title.")],
        recipe_id: Annotated[str, Field(description="A stored recipe to publish (see list_recipes).")] = "",
        params: Annotated[
            dict[str, Any] | None, Field(description="Recipe parameters, e.g. {\"w_revenue\": 50}.")
        ] = None,
        hogql: Annotated[str, Field(description="HogQL to publish instead of a recipe.")] = "",
        title: Annotated[str, Field(description="Page title; defaults to the recipe id.")] = "",
        project_id: ProjectId = None,
        cache_ttl_s: Annotated[
            int | None,
            Field(ge=0, le=86_400, description="Seconds a computed result is served before a view recomputes it."),
        ] = None,
        expires_at: Annotated[
            dt.datetime | None, Field(description="ISO 8601 time after which the URL returns 404.")
        ] = None,
    ) -> PublishOutput:
        """Publish a recipe run or a HogQL query; return its public URL (with key) and the first rows."""

        def work(project_id: str) -> PublishOutput:
            return publish(
                store, settings, project_id, description=description, title=title, recipe_id=recipe_id,
                params=params, hogql=hogql, cache_ttl_s=cache_ttl_s, expires_at=expires_at,
            )

        return await run_project_tool("publish_query", project_id, work)

    @server.tool(
        title="List stored recipes",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def list_recipes() -> RecipeList:
        """List stored analyses (recipes) with their parameters and output columns."""

        def work() -> RecipeList:
            return RecipeList(recipes=load_recipe_infos())

        return await run_tool("list_recipes", work)

    @server.tool(
        title="Show a stored recipe",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def get_recipe(
        recipe_id: Annotated[str, Field(description="Recipe id from list_recipes, e.g. account_health_score.")],
    ) -> RecipeDetail:
        """Show one stored recipe: its request, HogQL text, parameters with types, defaults and bounds,
        and output columns."""

        def work() -> RecipeDetail:
            return get_recipe_detail(recipe_id)

        return await run_tool("get_recipe", work)

    @server.tool(
        title="Run a stored recipe",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def run_recipe(
        recipe_id: Annotated[str, Field(description="Recipe id from list_recipes, e.g. account_health_score.")],
        params: Annotated[
            dict[str, Any] | None,
            Field(description="Parameter values; omitted ones take their defaults (see list_recipes)."),
        ] = None,
        project_id: ProjectId = None,
    ) -> QueryOutput:
        """Run a stored recipe with parameters and return its rows."""

        def work(project_id: str) -> QueryOutput:
            return run_stored_recipe(store, settings, project_id, recipe_id, dict(params or {}))

        return await run_project_tool("run_recipe", project_id, work)

    @server.tool(
        title="Describe the events schema of a project",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def describe_schema(project_id: ProjectId = None) -> SchemaOutput:
        """Describe what a HogQL query can read in a project: the columns of the events and
        health_snapshots tables, event names with counts, property paths with their types, counts and
        example values, properties stored with mixed types, and hints. Call it before writing the
        first analytics_query."""

        def work(project_id: str) -> SchemaOutput:
            return describe_project_schema(store, settings, project_id)

        return await run_project_tool("describe_schema", project_id, work)

    @server.tool(
        title="List published results",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def list_publications(project_id: ProjectId = None) -> PublicationList:
        """List a project's publications with their sources and state; keys are never returned."""

        def work(project_id: str) -> PublicationList:
            return list_project_publications(store, settings, project_id)

        return await run_project_tool("list_publications", project_id, work)

    @server.tool(
        title="Revoke a published result",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                    open_world_hint=False),
    )
    async def revoke_publication(
        publication_id: Annotated[str, Field(description="Id from publish_query or list_publications.")],
        project_id: ProjectId = None,
    ) -> PublicationInfo:
        """Revoke a publication: its URL returns 404 from the next view on. This cannot be undone."""

        def work(project_id: str) -> PublicationInfo:
            return revoke(store, settings, project_id, publication_id)

        return await run_project_tool("revoke_publication", project_id, work)

    @server.tool(
        title="Rotate the key of a published result",
        # Destructive: the old link stops working an hour later.
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                                    open_world_hint=False),
    )
    async def rotate_publication_key(
        publication_id: Annotated[str, Field(description="Id from publish_query or list_publications.")],
        project_id: ProjectId = None,
    ) -> RotatedKey:
        """Give a publication a new key and return its new public URL. The old key keeps working for
        one hour, then gets 404. Only the latest previous key is kept, so rotating again ends the
        older key's hour at once. A revoked publication cannot be rotated."""

        def work(project_id: str) -> RotatedKey:
            return rotate_key(store, settings, project_id, publication_id)

        return await run_project_tool("rotate_publication_key", project_id, work)

    # Account drill-down and health score snapshots.

    @server.tool(
        title="Drill down into accounts",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    async def account_drilldown(
        account_id: Annotated[
            str | None, Field(description="One account to show, as its events carry it; or give bottom_n.")
        ] = None,
        bottom_n: Annotated[
            int | None,
            Field(ge=1, le=MAX_BOTTOM_N, description="Show the N lowest-scoring accounts that have not cancelled."),
        ] = None,
        as_of: Annotated[
            dt.datetime | None, Field(description="ISO 8601 time the drill-down is computed for; now when omitted.")
        ] = None,
        account_property: Annotated[
            str, Field(description="Event property that names the account, e.g. account_id or $groups.company.")
        ] = "account_id",
        project_id: ProjectId = None,
    ) -> DrilldownOutput:
        """Show everything known about one account, or the bottom N by health score, as titled tables.
        The tables are the score summary, usage per week for 12 weeks, most active users, top events,
        errors by message with first and last seen, support tickets, plan and MRR history, stored
        score history and the latest activity."""

        def work(project_id: str) -> DrilldownOutput:
            return drill_down(
                store, settings, project_id, account_id=account_id, bottom_n=bottom_n, as_of=as_of,
                account_property=account_property,
            )

        return await run_project_tool("account_drilldown", project_id, work)

    @server.tool(
        title="Store today's account health scores",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                    open_world_hint=False),
    )
    async def snapshot_health_scores(
        as_of: Annotated[
            str | None,
            Field(description="Day (2025-03-14, scored at its end) or ISO 8601 time to score at; now when omitted."),
        ] = None,
        params: Annotated[
            dict[str, Any] | None,
            Field(description="Further account_health_score parameters such as weights; not as_of, sort or limit."),
        ] = None,
        project_id: ProjectId = None,
    ) -> SnapshotOutput:
        """Score every account and store the scores as the snapshot of that day, replacing an earlier
        snapshot of the same day. Snapshots feed score_history, score changes and score_drops."""

        def work(project_id: str) -> SnapshotOutput:
            return take_snapshot(store, settings, project_id, as_of=as_of, params=params)

        return await run_project_tool("snapshot_health_scores", project_id, work)

    @server.resource(
        "schema://{project_id}",
        name="schema",
        title="Events schema of a project",
        description="The describe_schema output of one project, as JSON.",
        mime_type="application/json",
    )
    async def schema_resource(project_id: str) -> str:
        problem = project_access_problem(get_access_token(), project_id)
        if problem:
            raise ResourceError(problem)
        try:
            await anyio.to_thread.run_sync(require_project, store, project_id)
        except UserInputError as error:
            raise ResourceNotFoundError(str(error)) from None

        def work() -> str:
            return describe_project_schema(store, settings, project_id).model_dump_json(indent=2)

        try:
            return await run_tool("describe_schema resource", work)
        except ToolError as error:
            raise ResourceError(str(error)) from None

    for info in load_recipe_infos():
        add_recipe_prompt(server, info)
        add_recipe_resource(server, info.recipe_id)
    return server


def add_recipe_resource(server: MCPServer, recipe_id: str) -> None:
    """Expose a recipe as the resource recipe://<id>: the get_recipe output as JSON."""
    detail = get_recipe_detail(recipe_id)
    server.add_resource(
        TextResource(
            uri=f"recipe://{recipe_id}",
            name=recipe_id,
            title=detail.title,
            description=f"Recipe {recipe_id}: its request, HogQL, parameters and output columns, as JSON.",
            mime_type="application/json",
            text=detail.model_dump_json(indent=2),
        )
    )


def add_recipe_prompt(server: MCPServer, info: RecipeInfo) -> None:
    """Expose a recipe as an MCP prompt: its plain-language request plus the tool call that runs it."""

    def render(**values: str) -> str:
        given = {name: value for name, value in values.items() if value not in (None, "")}
        lines = [
            info.prompt,
            "",
            f"Use the run_recipe tool with recipe_id '{info.recipe_id}'"
            + (f" and params {json.dumps(given)}" if given else "")
            + ", show the result as a table, then publish it with publish_query and give me the URL.",
        ]
        return "\n".join(lines)

    arguments = [
        PromptArgument(
            name=parameter.name,
            description=f"{parameter.description} Default: {parameter.default}.",
            required=False,
        )
        for parameter in info.parameters
    ]
    server.add_prompt(
        Prompt(
            name=info.recipe_id, title=info.title, description=info.description, fn=render, arguments=arguments
        )
    )

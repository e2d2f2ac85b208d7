"""Turn failures inside a tool into messages an agent can act on."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from typing import TypeVar

from clickhouse_connect.driver.exceptions import DatabaseError
from mcp.server.mcpserver.exceptions import ToolError

from pulseboard.hogql import HogQLError
from pulseboard.server.settings import PROJECT_ID_PATTERN

logger = logging.getLogger(__name__)

T = TypeVar("T")


class UserInputError(Exception):
    """A request the caller can fix: unknown recipe, bad parameter, missing publication."""


def unknown_project_error(project_id: str) -> UserInputError:
    """Build the error for a project id that names no project, with the command that creates it."""
    name = project_id if PROJECT_ID_PATTERN.match(project_id) else "<project_id>"
    return UserInputError(
        f"Project {project_id!r} does not exist; check the project_id, or create it with "
        f"`pulseboard project create {name}`."
    )


# ClickHouse appends the failing query, with parameters substituted, as "In scope SELECT ..." or
# "In query SELECT ..." before the final "(ERROR_NAME)". That text carries the project id and the
# compiler's internals, so it is cut.
ECHOED_QUERY = re.compile(r"[.:]? In (?:scope|query) .*?(?= \([A-Z_]+\)$|$)", re.S)

HINTS = {
    "UNKNOWN_IDENTIFIER": " The events table has the columns uuid, event, distinct_id, timestamp and properties;"
    " read event properties as properties.name. The health_snapshots table has the columns day, account,"
    " health_score, status, top_risk_signal, as_of and computed_at.",
}


def clickhouse_message(error: DatabaseError) -> str:
    """Return the ClickHouse exception text without the echoed query, plus a hint where one helps."""
    text = str(error)
    start = text.find("DB::Exception:")
    if start >= 0:
        text = text[start + len("DB::Exception:"):]
    text = text.split("\n", 1)[0].split(". Stack trace", 1)[0].strip()
    text = ECHOED_QUERY.sub(".", text).replace(". .", ".")

    code = re.search(r"\(([A-Z_]+)\)$", text)
    if code and code.group(1) in HINTS:
        text += HINTS[code.group(1)]
    return text


class QueryFailedError(UserInputError):
    """ClickHouse rejected or aborted a compiled query; the message is ClickHouse's, cleaned."""


def call_tool(name: str, work: Callable[[], T]) -> T:
    """Run a tool body; fixable failures become ToolError, others a logged error with an id."""
    try:
        return work()
    except (HogQLError, UserInputError) as error:
        logger.info("tool %s rejected the request: %s", name, error)
        raise ToolError(str(error)) from None
    except DatabaseError as error:
        # A store call outside run_hogql failed. The caller's query did not cause it, so the caller cannot fix it.
        error_id = secrets.token_hex(4)
        logger.error(
            "tool %s failed in ClickHouse with internal error %s: %s", name, error_id, clickhouse_message(error),
            exc_info=True,
        )
        raise ToolError(f"Internal error {error_id} in {name}; the server log has the details.") from None
    except ToolError:
        raise
    except Exception:
        error_id = secrets.token_hex(4)
        logger.exception("tool %s failed with internal error %s", name, error_id)
        raise ToolError(
            f"Internal error {error_id} in {name}; the server log has the details. "
            "Retry once; if it fails again, report this id."
        ) from None

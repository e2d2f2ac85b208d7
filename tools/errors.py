"""Turn failures inside a tool into messages an agent can act on."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TypeVar

from clickhouse_connect.driver.exceptions import DatabaseError
from mcp.server.mcpserver.exceptions import ToolError

from pulseboard.hogql import HogQLError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class UserInputError(Exception):
    """A request the caller can fix: unknown recipe, bad parameter, missing publication."""


def clickhouse_message(error: DatabaseError) -> str:
    """Return the ClickHouse exception line without the echoed query text."""
    text = str(error)
    for marker in ("DB::Exception:", "Code:"):
        start = text.find(marker)
        if start >= 0:
            text = text[start:]
            break
    return text.split("\n", 1)[0].split(". Stack trace", 1)[0].strip()


def call_tool(name: str, work: Callable[[], T]) -> T:
    """Run a tool body; fixable failures become ToolError, others a logged error with an id."""
    try:
        return work()
    except (HogQLError, UserInputError) as error:
        logger.info("tool %s rejected the request: %s", name, error)
        raise ToolError(str(error)) from None
    except DatabaseError as error:
        message = clickhouse_message(error)
        logger.info("tool %s query failed in ClickHouse: %s", name, message)
        raise ToolError(f"The query failed in ClickHouse: {message}") from None
    except ToolError:
        raise
    except Exception:
        error_id = secrets.token_hex(4)
        logger.exception("tool %s failed with internal error %s", name, error_id)
        raise ToolError(
            f"Internal error {error_id} in {name}; the server log has the details. "
            "Retry once; if it fails again, report this id."
        ) from None

"""Find the query inside a Markdown code fence, because agents often paste ```sql ... ``` blocks.

A fence is three backticks, optionally followed by a language name (`sql`, `hogql`) on the
opening line. The opening and the closing fence are each removed when present, so a block whose
closing fence was cut off still compiles. Pre-lexing rejects any other triple backtick.
"""

from __future__ import annotations

import re

FENCE = "```"
FENCE_MESSAGE = "Remove the Markdown code fence (```) around the query; send only the SQL."
_OPENING_FENCE = re.compile(r"\A\s*```[ \t]*[A-Za-z0-9_+\-]*[ \t]*\r?\n")
_CLOSING_FENCE = re.compile(r"\n[ \t]*```\s*\Z")


def fenced_span(text: str) -> tuple[int, int]:
    """Return the half-open span of `text` without its opening and closing fences."""
    start, end = 0, len(text)

    opening = _OPENING_FENCE.match(text)
    if opening:
        start = opening.end()

    closing = _CLOSING_FENCE.search(text, start)
    if closing:
        return start, closing.start()

    # A closing fence right after the last line of SQL: "```sql\nSELECT 1```".
    tail = text.rstrip()
    if opening and tail.endswith(FENCE) and len(tail) - len(FENCE) >= start:
        end = len(tail) - len(FENCE)
    return start, end

"""Step 1: rewrite HogQL-only syntax that sqlglot cannot tokenize, before parsing.

- A bare word containing `$` (`$session_id`, `properties.$browser`) becomes a quoted identifier,
  because sqlglot 30.31 fails to tokenize `$` outside quotes.
- A Markdown code fence around the query is dropped; any other triple backtick is rejected.
- A keyword right after a dot, as in `properties.when` or `properties.from`, becomes a quoted
  identifier, because after a dot it can only be a name and sqlglot would read it as a keyword.
- The regex operators `a =~ b` and `a !~ b` become `a REGEXP b` and `a NOT REGEXP b`, which
  sqlglot parses as ClickHouse's `match(a, b)`; it would read `=~` as `=` and a bitwise `~`.
- `{name}` and `{variables.name}` become parameter markers that parse as ClickHouse query
  parameters; the parse step swaps in the caller's name and declared type. Any other `{...}` is
  rejected here, because sqlglot silently parses `{filters}` as an empty `map()`. `{filters}`
  becomes a marker that filters.py expands into the caller's date range.

String literals, quoted identifiers and comments are copied unchanged, so a `$` or a brace inside
them is never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import HogQLSyntaxError, PlaceholderError
from .fences import FENCE, FENCE_MESSAGE, fenced_span
from .source import SourceText

# A user placeholder name. The keys of CompileContext.placeholders follow the same rule.
PLACEHOLDER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# Parameter names the compiler creates itself start with this prefix, so a user placeholder
# can never take the name of the project guard or of a bound string literal.
RESERVED_PREFIX = "pb_"
# The text a placeholder is replaced with: the parse step finds it by this name.
MARKER_PREFIX = "pb_marker_"

_PLACEHOLDER = re.compile(r"\{\s*(variables\s*\.\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_WORD_CHARACTERS = re.compile(r"[A-Za-z0-9_$\u0080-\uffff]+")
# Characters that `_scan_one` always copies one at a time, unchanged: none starts a word, a quote,
# a comment, a regex operator or a placeholder. A run of them is copied in one piece.
_INERT_RUN = re.compile(r"[^A-Za-z0-9_$\u0080-\uffff'\"`/\-#=!{}]+")
_LINE_COMMENT_STARTS = ("--", "#")
# Keywords that sqlglot 30.31 fails to read as the name after a dot (`properties.when`), found by
# compiling `properties.<keyword>` for every single-word keyword of its ClickHouse tokenizer.
KEYWORDS_AFTER_DOT = frozenset({
    "AND", "BETWEEN", "DISTINCT", "DIV", "ELSE", "EXCEPT", "FROM", "HAVING", "ILIKE", "IN", "INTERSECT",
    "INTERVAL", "IS", "JOIN", "LIKE", "LIMIT", "NOT", "OFFSET", "ON", "OR", "OVER", "PREWHERE", "QUALIFY",
    "SELECT", "THEN", "UNION", "USING", "WHEN", "WHERE", "WITH",
})
# HogQL's regex match operators and the SQL that replaces them, with spaces around it so
# `a=~b` still reads as three tokens.
REGEX_OPERATORS = {"=~": " REGEXP ", "!~": " NOT REGEXP "}


@dataclass
class PrelexResult:
    source: SourceText
    # The placeholder name of each marker, one entry per occurrence: marker i is `names[i]`.
    placeholder_names: list[str] = field(default_factory=list)


def prelex(text: str, placeholders: Mapping[str, tuple[object, str]]) -> PrelexResult:
    """Drop code fences, rewrite `$` identifiers and placeholders; raise on any other brace."""
    result = PrelexResult(source=SourceText(original=text))
    position, end = fenced_span(text)
    # Offsets in `query` equal offsets in `text`, so errors point into the text as written.
    query = text[:end]

    while position < len(query):
        inert = _INERT_RUN.match(query, position)
        if inert is not None:
            result.source.append(inert.group(), position, inert.end(), verbatim=True)
            position = inert.end()
            continue

        position = _scan_one(query, position, placeholders, result)

    return result


def _scan_one(
    text: str, position: int, placeholders: Mapping[str, tuple[object, str]], result: PrelexResult
) -> int:
    """Copy or rewrite the piece of `text` starting at `position`; return where the next begins."""
    source = result.source
    character = text[position]

    if text.startswith(FENCE, position):
        raise source.error(HogQLSyntaxError, FENCE_MESSAGE, position, position + len(FENCE))

    if character in "'\"`":
        end = _quoted_end(text, position, source)
        source.append(text[position:end], position, end, verbatim=True)
        return end

    if text.startswith("/*", position):
        end = _block_comment_end(text, position, source)
        source.append(text[position:end], position, end, verbatim=True)
        return end

    if text.startswith(_LINE_COMMENT_STARTS, position):
        newline = text.find("\n", position)
        end = len(text) if newline == -1 else newline
        source.append(text[position:end], position, end, verbatim=True)
        return end

    operator = text[position : position + 2]
    if operator in REGEX_OPERATORS:
        source.append(REGEX_OPERATORS[operator], position, position + 2, verbatim=False)
        return position + 2

    if character == "{":
        return _replace_placeholder(text, position, placeholders, result)

    if character == "}":
        raise source.error(
            PlaceholderError,
            "Unexpected '}'. Placeholders are written {name} or {variables.name}.",
            position,
        )

    word = _WORD_CHARACTERS.match(text, position)
    if word is None:
        source.append(character, position, position + 1, verbatim=True)
        return position + 1

    end = word.end()
    if _follows_name_and_dot(text, position) and word.group().upper() in KEYWORDS_AFTER_DOT:
        source.append(f"`{word.group()}`", position, end, verbatim=False)
        return end

    if "$" not in word.group():
        source.append(word.group(), position, end, verbatim=True)
        return end

    if word.group().startswith("$$"):
        raise source.error(
            HogQLSyntaxError,
            "Dollar-quoted strings are not supported. Write string literals in single quotes.",
            position,
            end,
        )

    # A word contains no quote characters, so backticks quote it without escaping.
    source.append(f"`{word.group()}`", position, end, verbatim=False)
    return end


def _follows_name_and_dot(text: str, position: int) -> bool:
    """Return whether `text[position]` starts the part after a dot in a dotted name such as `e.x`."""
    if position < 2 or text[position - 1] != ".":
        return False
    before = text[position - 2]
    return before.isalnum() or before in "_`$\""


def _quoted_end(text: str, start: int, source: SourceText) -> int:
    """Return the offset just past a quoted string or identifier that starts at `start`.

    Backslash escapes and a doubled quote character both continue the literal, as in ClickHouse.
    """
    quote = text[start]
    position = start + 1

    while position < len(text):
        character = text[position]
        if character == "\\":
            position += 2
            continue

        if character == quote:
            if text.startswith(quote * 2, position):
                position += 2
                continue

            return position + 1

        position += 1

    if quote == "'":
        message = (
            "Unterminated string literal: the quote that opens it is never closed. "
            "Write a quote inside a string as \\' or ''."
        )
    else:
        message = f"Unterminated quoted identifier: the {quote} that opens it is never closed."
    raise source.error(HogQLSyntaxError, message, start, start + 1)


def _block_comment_end(text: str, start: int, source: SourceText) -> int:
    """Return the offset just past a /* */ comment; nested comments count, as in sqlglot."""
    depth = 0
    position = start

    while position < len(text):
        if text.startswith("/*", position):
            depth += 1
            position += 2
            continue

        if text.startswith("*/", position):
            depth -= 1
            position += 2
            if depth == 0:
                return position
            continue

        position += 1

    raise source.error(
        HogQLSyntaxError, "Unterminated comment: the /* that opens it is never closed with */.", start, start + 2
    )


def _replace_placeholder(
    text: str, start: int, placeholders: Mapping[str, tuple[object, str]], result: PrelexResult
) -> int:
    """Replace `{name}` or `{variables.name}` at `start` with a parameter marker."""
    source = result.source
    match = _PLACEHOLDER.match(text, start)
    if match is None:
        closing = text.find("}", start)
        end = start + 1 if closing == -1 else closing + 1
        raise source.error(
            PlaceholderError,
            f"Unsupported '{{' in {text[start:end]!r}. Placeholders are written {{name}} or "
            "{variables.name}; map literals are not supported, use map('key', value) instead.",
            start,
            end,
        )

    name = match.group(2)
    if name == "filters" and match.group(1) is None:
        # expand_filters (filters.py) replaces this marker with the caller's date range.
        source.append("{pb_filters:String}", start, match.end(), verbatim=False)
        return match.end()

    _check_placeholder_name(name, placeholders, source, start, match.end())

    marker = f"{{{MARKER_PREFIX}{len(result.placeholder_names)}:String}}"
    result.placeholder_names.append(name)
    source.append(marker, start, match.end(), verbatim=False)
    return match.end()


def _check_placeholder_name(
    name: str, placeholders: Mapping[str, tuple[object, str]], source: SourceText, start: int, end: int
) -> None:
    if name.lower().startswith(RESERVED_PREFIX):
        raise source.error(
            PlaceholderError,
            f"Placeholder names starting with '{RESERVED_PREFIX}' are reserved; rename {{{name}}}.",
            start,
            end,
        )

    if name in placeholders:
        return

    given = ", ".join(sorted(placeholders)) if placeholders else "none"
    raise source.error(
        PlaceholderError,
        f"Placeholder {{{name}}} has no value. Placeholders given: {given}.",
        start,
        end,
    )

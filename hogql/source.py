"""The query text before and after pre-lexing, and the map between their character offsets.

Pre-lexing rewrites parts of the text (`$browser` becomes a quoted identifier, `{name}` a bound
parameter), so sqlglot reports positions in the rewritten text. Errors must point into the text
the caller wrote, so every step converts offsets through `SourceText.original_offset`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from sqlglot.tokens import Token

from .errors import HogQLError


def quoted(text: str) -> str:
    """Quote text for a message: 'text', or "text" when it contains a single quote."""
    if "'" in text and '"' not in text:
        return f'"{text}"'
    return f"'{text}'"


@dataclass
class SourceText:
    original: str
    rewritten: str = ""
    # Parallel lists, one entry per piece of `rewritten`: where the piece starts in `rewritten`,
    # where it came from in `original`, and whether it was copied unchanged.
    _rewritten_starts: list[int] = field(default_factory=list)
    _original_spans: list[tuple[int, int]] = field(default_factory=list)
    _verbatim: list[bool] = field(default_factory=list)

    def append(self, text: str, original_start: int, original_end: int, *, verbatim: bool) -> None:
        """Add a piece to the rewritten text; `original[original_start:original_end]` is its source."""
        if not text:
            return

        if verbatim and self._verbatim and self._verbatim[-1] and self._original_spans[-1][1] == original_start:
            # Verbatim pieces that follow each other in both texts map offsets as one piece.
            self._original_spans[-1] = (self._original_spans[-1][0], original_end)
            self.rewritten += text
            return

        self._rewritten_starts.append(len(self.rewritten))
        self._original_spans.append((original_start, original_end))
        self._verbatim.append(verbatim)
        self.rewritten += text

    def original_offset(self, rewritten_offset: int) -> int:
        """Map an offset in the rewritten text to the offset in the original text."""
        if not self._rewritten_starts:
            return min(max(rewritten_offset, 0), len(self.original))

        index = max(bisect.bisect_right(self._rewritten_starts, rewritten_offset) - 1, 0)
        original_start, original_end = self._original_spans[index]
        if not self._verbatim[index]:
            return original_start

        offset = original_start + rewritten_offset - self._rewritten_starts[index]
        return min(offset, len(self.original))

    def original_span(self, rewritten_start: int, rewritten_end: int) -> tuple[int, int]:
        """Map a half-open span of the rewritten text to the matching span of the original."""
        start = self.original_offset(rewritten_start)
        if rewritten_end <= rewritten_start:
            return start, start

        last = self.original_offset(rewritten_end - 1)
        index = max(bisect.bisect_right(self._rewritten_starts, rewritten_end - 1) - 1, 0)
        if self._rewritten_starts and not self._verbatim[index]:
            last = self._original_spans[index][1] - 1
        return start, max(last + 1, start)

    def line_column(self, original_offset: int) -> tuple[int, int]:
        """Return the 1-based line and column of an offset in the original text."""
        offset = min(max(original_offset, 0), len(self.original))
        line = self.original.count("\n", 0, offset) + 1
        column = offset - (self.original.rfind("\n", 0, offset) + 1) + 1
        return line, column

    def error(
        self,
        error_class: type[HogQLError],
        message: str,
        original_start: int | None,
        original_end: int | None = None,
    ) -> HogQLError:
        """Build an error located at a span of the original text (None: no position)."""
        if original_start is None:
            return error_class(message)

        end = original_start + 1 if original_end is None else original_end
        line, column = self.line_column(original_start)
        fragment = self.original[original_start:end] or None
        return error_class(message, line=line, column=column, fragment=fragment)

    def error_at_rewritten(
        self,
        error_class: type[HogQLError],
        message: str,
        rewritten_start: int | None,
        rewritten_end: int | None = None,
    ) -> HogQLError:
        """Build an error located at a span of the rewritten text."""
        if rewritten_start is None:
            return error_class(message)

        end = rewritten_start + 1 if rewritten_end is None else rewritten_end
        start, end = self.original_span(rewritten_start, end)
        return self.error(error_class, message, start, end)

    def error_at_tokens(
        self, error_class: type[HogQLError], message: str, first: Token, last: Token | None = None
    ) -> HogQLError:
        """Build an error located at `first`, or at the text from `first` to `last`."""
        end = (last or first).end + 1
        return self.error_at_rewritten(error_class, message, first.start, end)

    def token_position(self, token: Token) -> str:
        """Describe where `token` starts in the original text, as errors print it: "Line 2, Col 14"."""
        line, column = self.line_column(self.original_offset(token.start))
        return f"Line {line}, Col {column}"

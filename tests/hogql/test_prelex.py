"""Pre-lexing: `$` identifiers and placeholders rewritten outside literals and comments."""

from __future__ import annotations

import pytest

from pulseboard.hogql.prelex import prelex

PLACEHOLDERS = {"days": (7, "Int64")}

# (HogQL, text handed to sqlglot)
REWRITES = [
    ("SELECT properties.$browser", "SELECT properties.`$browser`"),
    ("SELECT $session_id, e.properties.$set.$email", "SELECT `$session_id`, e.properties.`$set`.`$email`"),
    ("SELECT '$browser', \"$x\", `$y`", "SELECT '$browser', \"$x\", `$y`"),
    ("SELECT 1 -- $x {y}\n, 2 /* $z {w} /* nested */ */", "SELECT 1 -- $x {y}\n, 2 /* $z {w} /* nested */ */"),
    ("SELECT 'it''s {days}', 'a\\'{days}'", "SELECT 'it''s {days}', 'a\\'{days}'"),
    ("SELECT {days}, { days }, {variables.days}", "SELECT {pb_marker_0:String}, {pb_marker_1:String}, {pb_marker_2:String}"),
    ("SELECT ü, naïve_$x", "SELECT ü, `naïve_$x`"),
    ("SELECT properties.when, e.properties.from", "SELECT properties.`when`, e.properties.`from`"),
    ("SELECT properties.$set.limit, properties.order", "SELECT properties.`$set`.`limit`, properties.order"),
    ("SELECT 1 IN (1) AND x.y OR 2", "SELECT 1 IN (1) AND x.y OR 2"),
    ("SELECT a=~'b', a!~'c'", "SELECT a REGEXP 'b', a NOT REGEXP 'c'"),
    ("SELECT count() FROM events WHERE {filters}", "SELECT count() FROM events WHERE {pb_filters:String}"),
]


@pytest.mark.parametrize(("text", "rewritten"), REWRITES)
def test_prelex_rewrites(text, rewritten):
    assert prelex(text, PLACEHOLDERS).source.rewritten == rewritten


def test_prelex_records_each_placeholder_use():
    result = prelex("SELECT {days} + {variables.days}", PLACEHOLDERS)

    assert result.placeholder_names == ["days", "days"]


# "SELECT properties.$browser, {days} FROM events" is rewritten to
# "SELECT properties.`$browser`, {pb_marker_0:String} FROM events".
@pytest.mark.parametrize(
    ("rewritten_offset", "original_offset"),
    [
        (0, 0),    # 'S'
        (18, 18),  # the opening backtick maps to the '$'
        (27, 18),  # the closing backtick maps to the start of the rewritten word
        (28, 26),  # ',' after the identifier
        (30, 28),  # '{' of the marker
        (49, 28),  # '}' of the marker
        (50, 34),  # ' ' after the placeholder
        (51, 35),  # 'F' of FROM
    ],
)
def test_prelex_maps_offsets_back(rewritten_offset, original_offset):
    text = "SELECT properties.$browser, {days} FROM events"
    source = prelex(text, PLACEHOLDERS).source

    assert source.original_offset(rewritten_offset) == original_offset


def test_prelex_line_and_column():
    source = prelex("SELECT\n  $x,\n  {days}", PLACEHOLDERS).source

    assert source.line_column(0) == (1, 1)
    assert source.line_column(9) == (2, 3)
    assert source.line_column(15) == (3, 3)

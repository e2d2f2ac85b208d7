"""sqlglot's ClickHouse dialect, narrowed so that function calls print exactly as written.

Stock sqlglot parses known ClickHouse functions into generic expressions and prints them back in
another form: `toStartOfDay(t)` becomes `dateTrunc('DAY', t)`, `rand()` becomes `randCanonical()`
(a different function) and `splitByChar` becomes `splitByString` (checked with sqlglot 30.31).
With no function builders every call parses as `exp.Anonymous` (aggregates as sqlglot's ClickHouse
aggregate classes), so the allowlist checks the name the user wrote and ClickHouse receives that name.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.generators.clickhouse import ClickHouseGenerator
from sqlglot.parsers.clickhouse import ClickHouseParser
from sqlglot.tokens import Token, TokenType

# Calls with special argument syntax that still need sqlglot's own parsing: CAST(x AS T),
# EXTRACT(DAY FROM t), tuple(...) (TUPLE is a keyword token) and TRIM(BOTH ' ' FROM s).
_KEPT_FUNCTION_PARSERS = ("CAST", "EXTRACT", "TUPLE", "TRIM")

# Meta key on Placeholder nodes: the ClickHouse type to print, such as "DateTime64(6, 'UTC')".
PARAMETER_TYPE_KEY = "pb_parameter_type"
# Meta keys on Join and Interval nodes: the JOIN or INTERVAL keyword token and the last token
# of the node, because sqlglot keeps no position for keywords and error messages need one.
KEYWORD_TOKEN_KEY = "pb_keyword_token"
LAST_TOKEN_KEY = "pb_last_token"


class HogQLParser(ClickHouseParser):
    FUNCTIONS: dict = {}
    FUNCTION_PARSERS = {
        name: parser
        for name, parser in ClickHouseParser.FUNCTION_PARSERS.items()
        if name in _KEPT_FUNCTION_PARSERS
    }
    NO_PAREN_FUNCTION_PARSERS = {
        name: parser
        for name, parser in ClickHouseParser.NO_PAREN_FUNCTION_PARSERS.items()
        if name in ("CASE", "IF")
    }

    error_token: Token | None = None

    def _parse_function(
        self,
        functions: dict | None = None,
        anonymous: bool = False,
        optional_parens: bool = True,
        any_token: bool = False,
    ) -> exp.Expr | None:
        name_token = self._curr
        expression = super()._parse_function(
            functions=functions,
            anonymous=anonymous,
            optional_parens=optional_parens,
            any_token=any_token,
        )

        # The ClickHouse parser rebuilds aggregate calls (countIf, quantile(0.5)(x)) without
        # the name token's position, which error messages need.
        function = expression.this if isinstance(expression, exp.Window) else expression
        if isinstance(function, exp.Func) and "start" not in function.meta and name_token:
            function.update_positions(name_token)
        return expression

    def _parse_join(
        self,
        skip_join_token: bool = False,
        parse_bracket: bool = False,
        alias_tokens: Collection[TokenType] | None = None,
    ) -> exp.Join | None:
        start = self._index
        join = super()._parse_join(
            skip_join_token=skip_join_token, parse_bracket=parse_bracket, alias_tokens=alias_tokens
        )
        if join is not None:
            keyword = next((token for token in self._tokens[start : self._index] if token.token_type == TokenType.JOIN), None)
            join.meta[KEYWORD_TOKEN_KEY] = keyword
        return join

    def _parse_interval(self, require_interval: bool = True, parse_function_unit: bool = True) -> exp.Expr | None:
        keyword = self._curr
        interval = super()._parse_interval(require_interval=require_interval, parse_function_unit=parse_function_unit)
        if isinstance(interval, exp.Interval) and keyword is not None and keyword.token_type == TokenType.INTERVAL:
            interval.meta[KEYWORD_TOKEN_KEY] = keyword
            interval.meta[LAST_TOKEN_KEY] = self._prev
        return interval

    def raise_error(self, message: str, token: Token | None = None) -> None:
        # ParseError carries line and column but not the character offset, which the
        # compiler needs to map the position back through pre-lexing.
        self.error_token = token or self._curr or self._prev
        super().raise_error(message, token)


class HogQLGenerator(ClickHouseGenerator):
    # Set by the printer: True prints `{name}` placeholders, for echoing the HogQL text.
    hogql_placeholders = False

    def placeholder_sql(self, expression: exp.Placeholder) -> str:
        if self.hogql_placeholders:
            return f"{{{expression.name}}}"

        return f"{{{expression.name}:{expression.meta[PARAMETER_TYPE_KEY]}}}"


class HogQLDialect(ClickHouse):
    Parser = HogQLParser
    Generator = HogQLGenerator

"""Allowlists of the functions a query may call, as data, and the lookup that applies them.

Every name here was checked against `system.functions` of ClickHouse 26.9 (chDB 4.4), see
tests/hogql/test_functions.py. Names match case-insensitively and print in the spelling below.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

DATE_TIME_FUNCTIONS = {
    "now", "now64", "today", "yesterday", "current_date", "current_timestamp", "curdate",
    "localtimestamp", "timezone", "toTimeZone",
    "toDateTime", "toDateTime64", "toDateTimeOrNull", "toDateTime64OrNull", "toDate", "toDate32",
    "toDateOrNull", "toDate32OrNull", "toYear", "toQuarter", "toMonth", "toWeek", "toYearWeek",
    "toDayOfYear", "toDayOfMonth", "toDayOfWeek", "toHour", "toMinute", "toSecond",
    "toMillisecond", "toISOWeek", "toISOYear", "toUnixTimestamp", "toUnixTimestamp64Milli",
    "toUnixTimestamp64Micro", "fromUnixTimestamp", "fromUnixTimestamp64Milli",
    "fromUnixTimestamp64Micro", "toStartOfYear", "toStartOfISOYear", "toStartOfQuarter",
    "toStartOfMonth", "toStartOfWeek", "toMonday", "toStartOfDay", "toStartOfHour",
    "toStartOfMinute", "toStartOfSecond", "toStartOfFiveMinutes", "toStartOfTenMinutes",
    "toStartOfFifteenMinutes", "toStartOfInterval", "toLastDayOfMonth", "toLastDayOfWeek",
    "toYYYYMM", "toYYYYMMDD", "toYYYYMMDDhhmmss", "toRelativeYearNum", "toRelativeQuarterNum",
    "toRelativeMonthNum", "toRelativeWeekNum", "toRelativeDayNum", "toRelativeHourNum",
    "toRelativeMinuteNum", "toRelativeSecondNum", "dateDiff", "date_diff", "age", "dateTrunc",
    "date_trunc", "addSeconds", "addMinutes",
    "addHours", "addDays", "addWeeks", "addMonths", "addQuarters", "addYears", "subtractSeconds",
    "subtractMinutes", "subtractHours", "subtractDays", "subtractWeeks", "subtractMonths",
    "subtractQuarters", "subtractYears", "timeSlot", "timeSlots", "formatDateTime",
    "formatDateTimeInJodaSyntax", "parseDateTime", "parseDateTimeOrNull",
    "parseDateTimeBestEffort", "parseDateTimeBestEffortOrNull", "parseDateTime64BestEffort",
    "parseDateTime64BestEffortOrNull", "parseDateTimeBestEffortUSOrNull",
    "parseDateTime64BestEffortUSOrNull", "monthName", "dateName", "makeDate", "makeDateTime",
    "makeDateTime64", "toIntervalSecond", "toIntervalMinute", "toIntervalHour", "toIntervalDay",
    "toIntervalWeek", "toIntervalMonth", "toIntervalQuarter", "toIntervalYear",
}

TYPE_CONVERSION_FUNCTIONS = {
    "toString", "toFloat", "toInt", "toUUID", "toUUIDOrNull", "toBool", "toFloat32",
    "toFloat64", "toFloat32OrNull", "toFloat64OrNull", "toFloat32OrZero", "toFloat64OrZero",
    "toFloat64OrDefault", "toInt8", "toInt16", "toInt32", "toInt64", "toInt8OrNull",
    "toInt16OrNull", "toInt32OrNull", "toInt64OrNull", "toInt64OrZero", "toInt64OrDefault",
    "toUInt8", "toUInt16", "toUInt32", "toUInt64", "toUInt8OrNull", "toUInt16OrNull",
    "toUInt32OrNull", "toUInt64OrNull", "toUInt64OrZero", "toDecimal32", "toDecimal64",
    "toDecimal128", "toDecimal32OrNull", "toDecimal64OrNull", "toDecimal128OrNull",
    "toDecimalString", "toFixedString", "accurateCast", "accurateCastOrNull",
    "accurateCastOrDefault", "toTypeName", "toLowCardinality", "toNullable", "assumeNotNull",
}

STRING_FUNCTIONS = {
    "length", "lengthUTF8", "char_length", "empty", "notEmpty", "lower", "upper", "lowerUTF8",
    "upperUTF8", "reverse", "reverseUTF8", "concat", "concatWithSeparator", "concat_ws",
    "substring", "substr", "substringUTF8", "substringIndex", "left", "right", "leftUTF8",
    "rightUTF8", "leftPad", "rightPad", "lpad", "rpad", "trim", "trimLeft", "trimRight",
    "trimBoth", "ltrim", "rtrim", "startsWith", "endsWith", "startsWithUTF8", "endsWithUTF8",
    "position", "positionCaseInsensitive", "positionUTF8", "positionCaseInsensitiveUTF8",
    "locate", "like", "ilike", "notLike", "notILike", "match", "multiMatchAny",
    "multiSearchAny", "multiSearchFirstIndex", "extract", "extractAll", "extractGroups",
    "extractAllGroupsHorizontal", "extractAllGroupsVertical", "regexpExtract", "replace",
    "replaceAll", "replaceOne", "replaceRegexpAll", "replaceRegexpOne", "regexpQuoteMeta",
    "splitByChar", "splitByString", "splitByRegexp", "splitByWhitespace", "splitByNonAlpha",
    "arrayStringConcat", "format", "repeat", "space", "countSubstrings",
    "countSubstringsCaseInsensitive", "countMatches", "hasToken", "ngramDistance",
    "editDistance", "levenshteinDistance", "damerauLevenshteinDistance", "jaroSimilarity",
    "jaroWinklerSimilarity", "toValidUTF8", "isValidUTF8", "normalizeUTF8NFC", "initcap",
    "initcapUTF8", "base64Encode", "base64Decode", "tryBase64Decode", "hex", "unhex", "bin",
    "unbin", "formatReadableSize", "formatReadableDecimalSize", "formatReadableQuantity",
    "formatReadableTimeDelta", "bar", "visibleWidth", "firstLine", "translate", "translateUTF8",
}

URL_FUNCTIONS = {
    "protocol", "domain", "domainWithoutWWW", "topLevelDomain", "firstSignificantSubdomain",
    "cutToFirstSignificantSubdomain", "cutToFirstSignificantSubdomainWithWWW", "port", "path",
    "pathFull", "queryString", "fragment", "queryStringAndFragment", "netloc",
    "extractURLParameter", "extractURLParameters", "extractURLParameterNames", "URLHierarchy",
    "URLPathHierarchy", "cutWWW", "cutQueryString", "cutFragment", "cutQueryStringAndFragment",
    "cutURLParameter", "encodeURLComponent", "decodeURLComponent", "encodeURLFormComponent",
    "decodeURLFormComponent",
}

JSON_FUNCTIONS = {
    "JSONExtract", "JSONExtractString", "JSONExtractInt", "JSONExtractUInt", "JSONExtractFloat",
    "JSONExtractBool", "JSONExtractRaw", "JSONExtractArrayRaw", "JSONExtractKeys",
    "JSONExtractKeysAndValues", "JSONExtractKeysAndValuesRaw", "JSONHas", "JSONLength",
    "JSONType", "JSONArrayLength", "JSON_VALUE", "JSON_QUERY", "JSON_EXISTS", "isValidJSON",
    "toJSONString", "JSONAllPaths", "JSONAllPathsWithTypes", "JSONDynamicPaths", "dynamicType",
    "dynamicElement", "simpleJSONExtractString", "simpleJSONExtractInt", "simpleJSONExtractFloat",
    "simpleJSONExtractBool", "simpleJSONExtractRaw", "simpleJSONHas", "visitParamExtractString",
    "visitParamExtractInt", "visitParamExtractFloat", "visitParamExtractBool",
    "visitParamExtractRaw", "visitParamHas",
}

ARRAY_FUNCTIONS = {
    "array", "arrayConcat", "arrayElement", "arrayElementOrNull", "has", "hasAll", "hasAny",
    "hasSubstr", "indexOf", "countEqual", "arrayEnumerate", "arrayEnumerateUniq",
    "arrayEnumerateDense", "arrayPopBack", "arrayPopFront", "arrayPushBack", "arrayPushFront",
    "arrayResize", "arraySlice", "arraySort", "arrayReverseSort", "arrayPartialSort",
    "arrayShuffle", "arrayUniq", "arrayDistinct", "arrayIntersect", "arrayUnion", "arrayExcept",
    "arraySymmetricDifference", "arrayJoin", "arrayMap", "arrayFilter", "arrayFill",
    "arrayReverseFill", "arraySplit", "arrayReverseSplit", "arrayExists", "arrayAll",
    "arrayCount", "arraySum", "arrayAvg", "arrayMin", "arrayMax", "arrayProduct", "arrayCumSum",
    "arrayCumSumNonNegative", "arrayDifference", "arrayFirst", "arrayFirstOrNull", "arrayLast",
    "arrayLastOrNull", "arrayFirstIndex", "arrayLastIndex", "arrayCompact", "arrayZip",
    "arrayFlatten", "flatten", "arrayReduce", "arrayReduceInRanges", "arrayFold", "arrayReverse",
    "arrayWithConstant", "arrayRotateLeft", "arrayRotateRight", "arrayShiftLeft",
    "arrayShiftRight", "arrayAUC", "arrayROCAUC", "arrayRandomSample", "arrayJaccardIndex",
    "arrayDotProduct", "range", "replicate", "emptyArrayString", "emptyArrayInt64",
    "emptyArrayUInt64", "emptyArrayFloat64",
}

MATH_FUNCTIONS = {
    "abs", "sign", "round", "roundBankers", "roundDown", "roundToExp2", "roundAge",
    "roundDuration", "floor", "ceil", "ceiling", "trunc", "truncate", "sqrt", "cbrt", "exp",
    "exp2", "exp10", "log", "ln", "log2", "log10", "log1p", "pow", "power", "sin", "cos", "tan",
    "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "pi", "e", "greatest", "least",
    "clamp", "intDiv", "intDivOrZero", "intDivOrNull", "modulo", "moduloOrZero", "moduloOrNull",
    "positiveModulo", "pmod", "mod", "plus", "minus", "multiply", "divide", "divideOrNull",
    "negate", "gcd", "lcm", "max2", "min2", "isNaN", "isFinite", "isInfinite", "ifNotFinite",
    "widthBucket", "width_bucket", "erf", "sigmoid", "hypot", "degrees", "radians", "factorial",
    "midpoint", "bitAnd", "bitOr", "bitXor", "bitNot", "bitShiftLeft", "bitShiftRight",
    "bitCount", "bitTest",
}

LOGIC_FUNCTIONS = {
    "equals", "notEquals", "less", "greater", "lessOrEquals", "greaterOrEquals", "in", "notIn",
    "and", "or", "not", "xor", "isDistinctFrom", "isNotDistinctFrom", "if", "multiIf",
    "coalesce", "ifNull", "nullIf", "isNull", "isNotNull", "isZeroOrNull", "firstNonDefault",
    "transform",
}

TUPLE_AND_MAP_FUNCTIONS = {
    "tuple", "tupleElement", "untuple", "tupleNames", "map", "mapKeys", "mapValues",
    "mapContains", "mapContainsKey", "mapFromArrays", "mapFilter", "mapApply", "mapExists",
    "mapAll", "mapSort", "mapUpdate", "mapConcat", "mapAdd", "mapSubtract", "mapPopulateSeries",
    "extractKeyValuePairs",
}

OTHER_FUNCTIONS = {
    "cityHash64", "sipHash64", "xxHash32", "xxHash64", "murmurHash3_32", "murmurHash3_64",
    "farmFingerprint64", "intHash32", "intHash64", "halfMD5", "MD5", "SHA1", "SHA256",
    "generateUUIDv4", "generateUUIDv7", "UUIDv7ToDateTime", "UUIDStringToNum", "UUIDNumToString",
    "rand", "rand64", "randCanonical", "randUniform", "randNormal", "IPv4NumToString",
    "IPv4StringToNum", "IPv6NumToString", "toIPv4", "toIPv6", "isIPv4String", "isIPv6String",
    "isIPAddressInRange", "materialize", "runningDifference", "rowNumberInAllBlocks",
    "finalizeAggregation",
}

WINDOW_FUNCTIONS = {
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lagInFrame",
    "leadInFrame", "first_value", "last_value", "nth_value", "lag", "lead",
}

# Aggregate functions by base name; AGGREGATE_COMBINATORS may follow any of them (`countIf`,
# `uniqMerge`, `sumArrayIf`, `avgOrNull`, `sumMap`), and parametric ones take `name(params)(args)`.
AGGREGATE_FUNCTIONS = {
    "count", "sum", "avg", "min", "max", "any", "anyLast", "anyHeavy", "any_value", "argMin",
    "argMax", "uniq", "uniqExact", "uniqCombined", "uniqCombined64", "uniqHLL12", "uniqUpTo", "groupArray", "groupArrayLast", "groupUniqArray", "groupArrayInsertAt",
    "groupArrayMovingAvg", "groupArrayMovingSum", "groupArraySample", "groupArraySorted",
    "groupArrayIntersect", "groupConcat", "groupBitAnd", "groupBitOr", "groupBitXor",
    "groupBitmap", "groupBitmapAnd", "groupBitmapOr", "groupBitmapXor", "sumMapWithOverflow", "sumWithOverflow", "sumKahan", "sumCount", "avgWeighted",
    "median", "medianExact", "medianTDigest", "quantile", "quantileExact", "quantileExactLow",
    "quantileExactHigh", "quantileExactWeighted", "quantileTDigest", "quantileTDigestWeighted",
    "quantileTiming", "quantileTimingWeighted", "quantileDeterministic", "quantileBFloat16",
    "quantileGK", "quantileDD", "quantileInterpolatedWeighted", "quantiles", "quantilesExact",
    "quantilesExactLow", "quantilesExactHigh", "quantilesExactWeighted", "quantilesTDigest",
    "quantilesTDigestWeighted", "quantilesTiming", "quantilesDeterministic", "quantilesBFloat16",
    "quantilesGK", "quantilesDD", "stddevPop", "stddevSamp", "varPop", "varSamp", "covarPop",
    "covarSamp", "corr", "skewPop", "skewSamp", "kurtPop", "kurtSamp", "entropy",
    "simpleLinearRegression", "contingency", "cramersV", "cramersVBiasCorrected", "theilsU",
    "maxIntersections", "maxIntersectionsPosition", "topK", "topKWeighted", "approx_top_k",
    "histogram", "windowFunnel", "retention", "sequenceMatch", "sequenceCount",
    "sequenceNextNode", "deltaSum", "deltaSumTimestamp", "boundingRatio",
    "exponentialMovingAverage", "intervalLengthSum", "rankCorr", "studentTTest", "welchTTest",
    "mannWhitneyUTest", "meanZTest", "sparkbar", "largestTriangleThreeBuckets",
    "categoricalInformationValue", "singleValueOrNull",
}

AGGREGATE_COMBINATORS = (
    "If", "Array", "Map", "State", "SimpleState", "Merge", "MergeState", "ForEach", "Distinct",
    "OrDefault", "OrNull", "Resample", "ArgMin", "ArgMax",
)
# Combinators are stripped from the end of a name; a longer chain is rejected as unknown.
_MAX_COMBINATORS = 3

SCALAR_FUNCTIONS = (
    DATE_TIME_FUNCTIONS | TYPE_CONVERSION_FUNCTIONS | STRING_FUNCTIONS | URL_FUNCTIONS
    | JSON_FUNCTIONS | ARRAY_FUNCTIONS | MATH_FUNCTIONS | LOGIC_FUNCTIONS
    | TUPLE_AND_MAP_FUNCTIONS | OTHER_FUNCTIONS | WINDOW_FUNCTIONS
)

# ClickHouse table functions (from system.table_functions): none can be used, in FROM or as a
# call, because each reads data from outside the caller's project.
TABLE_FUNCTIONS = {
    "url", "urlCluster", "file", "fileCluster", "s3", "s3Cluster", "gcs", "azureBlobStorage",
    "azureBlobStorageCluster", "hdfs", "hdfsCluster", "remote", "remoteSecure", "cluster",
    "clusterAllReplicas", "mysql", "postgresql", "sqlite", "mongodb", "redis", "jdbc", "odbc",
    "input", "executable", "python", "merge", "numbers", "numbers_mt", "zeros", "zeros_mt",
    "generateRandom", "generateSeries", "generate_series", "values", "view", "viewExplain",
    "viewIfPermitted", "dictionary", "format", "loop", "null", "iceberg", "deltaLake", "hudi",
    "paimon", "filesystem", "fuzzJSON", "fuzzQuery", "mergeTreeIndex", "mergeTreeProjection",
    "primes", "ytsaurus", "bigquery", "arrowstream", "eval", "SQLStandardValues",
}

# Functions rejected with a specific reason, because the generic "not allowed" would not say why.
DENIED_FUNCTIONS = {
    "sleep": "Functions that pause the query are not allowed.",
    "sleepEachRow": "Functions that pause the query are not allowed.",
    "dictGet": "Dictionaries are not available.",
    "joinGet": "Join-engine tables are not available.",
    "joinGetOrNull": "Join-engine tables are not available.",
    "file": "Table functions cannot be used; query the events table instead.",
    "getSetting": "Server settings cannot be read.",
    "getServerSetting": "Server settings cannot be read.",
    "hasColumnInTable": "Other tables cannot be inspected.",
    "throwIf": "Functions that raise errors on purpose are not allowed.",
    **{
        name: "Functions that describe the server are not allowed."
        for name in (
            "currentUser", "current_user", "user", "currentDatabase", "database", "currentSchemas",
            "currentRoles", "enabledRoles", "defaultRoles", "currentProfiles", "enabledProfiles",
            "defaultProfiles", "currentQueryID", "queryID", "initialQueryID", "version", "hostName",
            "hostname", "fqdn", "FQDN", "serverUUID", "uptime", "tcpPort", "shardNum", "shardCount",
            "buildId", "revision", "displayName", "getMacro", "getOSKernelVersion", "filesystemAvailable",
            "filesystemCapacity", "filesystemUnreserved", "zookeeperSessionUptime", "getClientHTTPHeader",
        )
    },
}
_DICTIONARY_PREFIX = "dictget"
_TABLE_FUNCTION_REASON = "Table functions cannot be used; query the events table instead."


@dataclass(frozen=True)
class FunctionName:
    canonical: str
    is_aggregate: bool


def _lowercase_index(names: set[str]) -> dict[str, str]:
    return {name.lower(): name for name in names}


_SCALARS_BY_LOWERCASE = _lowercase_index(SCALAR_FUNCTIONS)
_AGGREGATES_BY_LOWERCASE = _lowercase_index(AGGREGATE_FUNCTIONS)


# Validation looks up every call and the aggregate calls around each aggregate, so the same
# names come back many times within one query and across queries.
@functools.lru_cache(maxsize=4096)
def lookup_function(name: str) -> FunctionName | None:
    """Return the canonical spelling of an allowed function, or None when it is not allowed."""
    scalar = _SCALARS_BY_LOWERCASE.get(name.lower())
    if scalar is not None:
        return FunctionName(scalar, is_aggregate=False)

    suffixes: list[str] = []
    base = name
    for _ in range(_MAX_COMBINATORS + 1):
        aggregate = _AGGREGATES_BY_LOWERCASE.get(base.lower())
        if aggregate is not None:
            return FunctionName(aggregate + "".join(reversed(suffixes)), is_aggregate=True)

        combinator = _trailing_combinator(base)
        if combinator is None or len(suffixes) == _MAX_COMBINATORS:
            return None

        suffixes.append(combinator)
        base = base[: -len(combinator)]

    return None


# Longer combinators are tried first, so "MergeState" is preferred over "State".
_COMBINATORS_LONGEST_FIRST = sorted(AGGREGATE_COMBINATORS, key=len, reverse=True)


def _trailing_combinator(name: str) -> str | None:
    for combinator in _COMBINATORS_LONGEST_FIRST:
        if len(name) > len(combinator) and name.lower().endswith(combinator.lower()):
            return combinator
    return None


def rejection_reason(name: str) -> str:
    """Explain why a function is not allowed, suggesting close allowed names when there are any."""
    if name in DENIED_FUNCTIONS:
        return DENIED_FUNCTIONS[name]

    if name.lower().startswith(_DICTIONARY_PREFIX):
        return DENIED_FUNCTIONS["dictGet"]

    if name.lower() in {table_function.lower() for table_function in TABLE_FUNCTIONS}:
        return _TABLE_FUNCTION_REASON

    candidates = sorted(SCALAR_FUNCTIONS | AGGREGATE_FUNCTIONS)
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if not close:
        return ""

    return f"Similar allowed functions: {', '.join(close)}."


def table_function_reason() -> str:
    return _TABLE_FUNCTION_REASON

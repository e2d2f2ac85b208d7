/*
id = "score_drops"
title = "Health score drops"
description = """
Lists accounts whose stored health score fell by more than min_drop points (15 by default) within
a period (24 hours by default), largest drop first. It reads the daily snapshots that
`pulseboard snapshot` stores: the score now is the latest snapshot at or before as_of's day, and
the score before is the latest snapshot at or before the day of as_of minus period_hours. Days are
dates in the project's time zone. An account needs a snapshot on both sides, on different days, to
be listed. `pulseboard alerts` posts this list to a chat webhook.
"""
prompt = """
Which accounts' health scores fell by more than 15 points in the last day? Show the score before
and now, the drop, and the signal that costs each account the most.
"""

[[parameters]]
name = "as_of"
type = "datetime"
default = "now"
description = "Time the period ends at (UTC when no offset is given)."

[[parameters]]
name = "min_drop"
type = "number"
default = 15
min = 0
max = 100
description = "An account is listed when its score fell by more than this many points."

[[parameters]]
name = "period_hours"
type = "integer"
default = 24
min = 24
max = 2160
description = "Length of the period in hours, up to 90 days; snapshots are daily, so the period is counted in whole days of as_of minus period_hours."

[[parameters]]
name = "limit"
type = "integer"
default = 100
min = 1
max = 10000
description = "Maximum number of accounts returned."

[[columns]]
name = "account"
description = "Account id, as the snapshots stored it."

[[columns]]
name = "score_before"
description = "Latest stored score at or before the start of the period."

[[columns]]
name = "score_now"
description = "Latest stored score at or before as_of's day."

[[columns]]
name = "score_drop"
description = "score_before minus score_now, in points."

[[columns]]
name = "status"
description = "Band of score_now, as stored with that snapshot."

[[columns]]
name = "top_risk_signal"
description = "Signal that cost the most points in the score_now snapshot."

[[columns]]
name = "day_before"
description = "Day of the score_before snapshot."

[[columns]]
name = "day_now"
description = "Day of the score_now snapshot."
*/
WITH
    -- The 92 days ending on as_of's day, enough for the longest period (90 days) to find the
    -- latest snapshot at or before its start.
    snapshots AS (
        SELECT account, day, health_score AS score, status, top_risk_signal
        FROM health_snapshots
        WHERE day > toDate(toTimeZone({as_of}, timezone())) - 92 AND day <= toDate(toTimeZone({as_of}, timezone()))
    ),
    compared AS (
        SELECT
            account,
            toDate(toTimeZone({as_of} - toIntervalHour({period_hours}), timezone())) AS start_day,
            argMax(score, day) AS score_now,
            max(day) AS day_now,
            argMax(status, day) AS status_now,
            argMax(top_risk_signal, day) AS top_risk_signal_now,
            argMaxIf(score, day, day <= start_day) AS score_before,
            maxIf(day, day <= start_day) AS day_before,
            countIf(day <= start_day) > 0 AS has_before
        FROM snapshots
        GROUP BY account
    )
SELECT
    account,
    score_before,
    score_now,
    round(score_before - score_now, 1) AS score_drop,
    status_now AS status,
    top_risk_signal_now AS top_risk_signal,
    day_before,
    day_now
FROM compared
WHERE has_before AND day_now > day_before AND score_before - score_now > {min_drop}
ORDER BY score_drop DESC, account
LIMIT {limit}

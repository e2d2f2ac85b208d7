/*
id = "account_drilldown"
title = "Account drill-down"
description = """
One row per account with what its health score does not show on its own: weekly usage over 12
weeks (oldest first), the most active users, the top events, the most frequent error messages,
support tickets and the time of the latest event. Give account to see one account. The
account_drilldown tool returns the same facts as separate tables per account, with the plan and
MRR history and the stored score history, for one account or for the lowest-scoring ones.
"""
prompt = """
Show me everything we know about this account: usage per week for 12 weeks, who uses it most,
which events and errors it has, its support tickets and when it was last active.
"""

[[parameters]]
name = "as_of"
type = "datetime"
default = "now"
description = "Time the weeks and the 30-day window end at (UTC when no offset is given)."

[[parameters]]
name = "account_property"
type = "property"
default = "account_id"
description = "Event property that names the account, e.g. account_id or $groups.company."

[[parameters]]
name = "account"
type = "string"
default = ""
description = "Account id to show; empty for every account with events in the 12 weeks."

[[parameters]]
name = "limit"
type = "integer"
default = 100
min = 1
max = 10000
description = "Maximum number of accounts returned."

[[columns]]
name = "account"
description = "Account id, read from the account_property property."

[[columns]]
name = "last_seen"
description = "Time of the account's latest event at or before as_of."

[[columns]]
name = "weekly_events"
description = "Events other than $exception per week (Monday to Sunday, project time zone) for the 12 weeks up to as_of, oldest first."

[[columns]]
name = "active_users_30d"
description = "Distinct users with events other than $exception in the 30 days before as_of."

[[columns]]
name = "most_active_users"
description = "Up to 3 users with the most events in those 30 days, most active first."

[[columns]]
name = "top_events"
description = "Up to 5 event names with the most events in those 30 days, $exception left out."

[[columns]]
name = "top_errors"
description = "Up to 3 $exception messages with the most errors in those 30 days, as 'message (count)'."

[[columns]]
name = "errors_30d"
description = "$exception events in those 30 days."

[[columns]]
name = "tickets_30d"
description = "support_ticket_opened events in those 30 days."
*/
WITH
    recent AS (
        SELECT
            toString({account_property}) AS account,
            event,
            distinct_id,
            timestamp,
            toString(properties.$exception_message) AS message,
            timestamp > {as_of} - toIntervalDay(30) AS in_window,
            dateDiff('week', toStartOfWeek(timestamp, 1), toStartOfWeek(toTimeZone({as_of}, timezone()), 1)) AS weeks_ago
        FROM events
        WHERE timestamp <= {as_of} AND timestamp > {as_of} - toIntervalWeek(13)
    ),
    accounts AS (
        SELECT
            account,
            arrayMap(
                week -> countEqual(groupArrayIf(weeks_ago, event != '$exception' AND weeks_ago < 12), 11 - week),
                range(12)
            ) AS weekly_events,
            uniqExactIf(distinct_id, event != '$exception' AND in_window) AS active_users_30d,
            countIf(event = '$exception' AND in_window) AS errors_30d,
            countIf(event = 'support_ticket_opened' AND in_window) AS tickets_30d
        FROM recent
        WHERE account IS NOT NULL AND account != '' AND ({account} = '' OR account = {account})
        GROUP BY account
    ),
    users AS (
        SELECT account, arraySlice(arrayMap(entry -> entry.2, arraySort(entry -> (-entry.1, entry.2), groupArray((events, distinct_id)))), 1, 3) AS most_active_users
        FROM (
            SELECT account, distinct_id, count() AS events
            FROM recent
            WHERE event != '$exception' AND in_window
            GROUP BY account, distinct_id
        )
        GROUP BY account
    ),
    event_counts AS (
        SELECT account, arraySlice(arrayMap(entry -> entry.2, arraySort(entry -> (-entry.1, entry.2), groupArray((events, event)))), 1, 5) AS top_events
        FROM (
            SELECT account, event, count() AS events
            FROM recent
            WHERE event != '$exception' AND in_window
            GROUP BY account, event
        )
        GROUP BY account
    ),
    error_counts AS (
        SELECT
            account,
            arraySlice(
                arrayMap(
                    entry -> concat(entry.2, ' (', toString(entry.1), ')'),
                    arraySort(entry -> (-entry.1, entry.2), groupArray((errors, message)))
                ),
                1, 3
            ) AS top_errors
        FROM (
            SELECT account, coalesce(message, '(no message)') AS message, count() AS errors
            FROM recent
            WHERE event = '$exception' AND in_window
            GROUP BY account, message
        )
        GROUP BY account
    ),
    last_seen AS (
        SELECT toString({account_property}) AS account, max(timestamp) AS last_seen
        FROM events
        WHERE timestamp <= {as_of}
        GROUP BY account
    )
SELECT
    accounts.account AS account,
    last_seen.last_seen AS last_seen,
    weekly_events,
    active_users_30d,
    users.most_active_users AS most_active_users,
    event_counts.top_events AS top_events,
    error_counts.top_errors AS top_errors,
    errors_30d,
    tickets_30d
FROM accounts
LEFT JOIN users ON accounts.account = users.account
LEFT JOIN event_counts ON accounts.account = event_counts.account
LEFT JOIN error_counts ON accounts.account = error_counts.account
LEFT JOIN last_seen ON accounts.account = last_seen.account
ORDER BY account
LIMIT {limit}

/*
id = "account_health_score"
title = "Account health score"
description = """
Scores every B2B account 0-100 from four components, each 0..1: usage (events in the last 30
days on a log scale against the busiest account), usage trend (the last 14 days against the 14
days before), friction (errors and support tickets per 1,000 events) and revenue (MRR against the
highest MRR; weight 0 by default). Weights are normalised to sum to 100. Usage (events_30d and
trend) counts every event except $exception, so support tickets and billing events count as
account activity too; they are a handful against the thousands of usage events of an account.

Billing events are subscription_started, plan_changed and subscription_cancelled, read at or
before as_of. Every account with at least one subscription_started or plan_changed event gets a
row. Its plan and mrr come from the latest of those two events; when several share the latest
time, the one with the highest MRR wins, then the plan name. The account is cancelled when its
latest subscription_cancelled event is strictly later than that event. Then mrr is 0, plan stays
the last plan, and top_risk_signal reads "subscription cancelled YYYY-MM-DD" (the date in the
project's time zone), whatever the components cost. A cancellation at the same time as a start
does not count, because it cannot end a subscription that starts with it. An account that
subscribes again after cancelling is active again. A cancelled account scores 0 and is critical,
whatever events it still sends.
"""
prompt = """
Score every B2B account 0-100 on usage, usage trend, revenue and friction (errors and support
tickets) over the last 30 days, band each one as critical, warn, ok, healthy or champion, and
name the signal that costs each account the most points, lowest scores first.
"""

[[parameters]]
name = "as_of"
type = "datetime"
default = "now"
description = "Time the 30-day and 14-day windows end at (UTC when no offset is given)."

[[parameters]]
name = "account_property"
type = "property"
default = "account_id"
description = "Event property that names the account, e.g. account_id or $groups.company."

[[parameters]]
name = "w_usage"
type = "number"
default = 40
min = 0
max = 1000
description = "Weight of the usage component."

[[parameters]]
name = "w_trend"
type = "number"
default = 30
min = 0
max = 1000
description = "Weight of the usage trend component."

[[parameters]]
name = "w_friction"
type = "number"
default = 30
min = 0
max = 1000
description = "Weight of the friction component (errors and support tickets)."

[[parameters]]
name = "w_revenue"
type = "number"
default = 0
min = 0
max = 1000
description = "Weight of the revenue component (MRR against the highest MRR)."

[[parameters]]
name = "trend_full_scale"
type = "number"
default = 0.25
min = 0.01
max = 10
description = "Relative change of the last 14 days against the 14 days before that earns the full trend component; its negative earns 0, and no change earns half."

[[parameters]]
name = "trend_min_base"
type = "integer"
default = 50
min = 1
max = 1000000
description = "Smallest event count of the earlier 14 days used as the base of the relative change, so small accounts do not swing between extremes."

[[parameters]]
name = "friction_ceiling"
type = "number"
default = 5
min = 0.01
max = 1000
description = "Errors plus support tickets per 1,000 events at which the friction component reaches 0."

[[parameters]]
name = "friction_min_events"
type = "integer"
default = 1000
min = 1
max = 1000000
description = "Smallest event count used as the base of the friction rate, so a few errors at a small account do not read as a high rate."

[[parameters]]
name = "band_warn"
type = "number"
default = 40
min = 0
max = 100
description = "Lowest score of the warn band; scores below it are critical."

[[parameters]]
name = "band_ok"
type = "number"
default = 55
min = 0
max = 100
description = "Lowest score of the ok band."

[[parameters]]
name = "band_healthy"
type = "number"
default = 70
min = 0
max = 100
description = "Lowest score of the healthy band."

[[parameters]]
name = "band_champion"
type = "number"
default = 85
min = 0
max = 100
description = "Lowest score of the champion band."

[[parameters]]
name = "sort"
type = "enum"
values = ["asc", "desc"]
default = "asc"
description = "Order by health_score: asc lists the accounts most at risk first."

[[parameters]]
name = "limit"
type = "integer"
default = 100
min = 1
max = 10000
description = "Maximum number of accounts returned."

[[constraints]]
kind = "not_all_zero"
parameters = ["w_usage", "w_trend", "w_friction", "w_revenue"]

[[constraints]]
kind = "increasing"
parameters = ["band_warn", "band_ok", "band_healthy", "band_champion"]

[[columns]]
name = "account"
description = "Account id, read from the account_property property."

[[columns]]
name = "plan"
description = "Plan of the latest subscription_started or plan_changed event at or before as_of, also for a cancelled account."

[[columns]]
name = "mrr"
description = "Monthly recurring revenue of that same event, or 0 when the account is cancelled."

[[columns]]
name = "events_30d"
description = "Events other than $exception in the 30 days before as_of."

[[columns]]
name = "trend"
description = "Events other than $exception in the last 14 days minus those in the 14 days before."

[[columns]]
name = "errors_30d"
description = "$exception events in the 30 days before as_of."

[[columns]]
name = "tickets_30d"
description = "support_ticket_opened events in the 30 days before as_of."

[[columns]]
name = "health_score"
description = "Weighted score from 0 to 100, one decimal."

[[columns]]
name = "status"
description = "Band of the score: critical, warn, ok, healthy or champion."

[[columns]]
name = "top_risk_signal"
description = "'subscription cancelled YYYY-MM-DD' for a cancelled account. Otherwise the component that costs the most weighted points, with its figure, or 'none' when no component costs 5 points or more."

[[columns]]
name = "usage_score"
description = "Usage component, 0 to 100."

[[columns]]
name = "trend_score"
description = "Trend component, 0 to 100."

[[columns]]
name = "friction_score"
description = "Friction component, 0 to 100."

[[columns]]
name = "revenue_score"
description = "Revenue component, 0 to 100."
*/
WITH
    billing_events AS (
        SELECT
            toString({account_property}) AS account,
            event = 'subscription_cancelled' AS is_cancellation,
            timestamp,
            -- Explicit conversions keep the recipe working whatever type each property was first
            -- sent as (an mrr of "750" or a plan of 3), and when no event carries it yet.
            toString(properties.plan) AS event_plan,
            toFloat(properties.mrr) AS event_mrr
        FROM events
        WHERE event IN ('subscription_started', 'plan_changed', 'subscription_cancelled')
            AND timestamp <= {as_of}
    ),
    -- Billing events at the same time are ordered by MRR, then plan, so plan and mrr always come
    -- from one event and repeated runs agree. A cancellation must be strictly later than the
    -- latest subscription_started or plan_changed event to count.
    billing AS (
        SELECT
            account,
            argMaxIf(
                event_plan, (timestamp, coalesce(event_mrr, 0), coalesce(event_plan, '')), NOT is_cancellation
            ) AS plan,
            argMaxIf(
                event_mrr, (timestamp, coalesce(event_mrr, 0), coalesce(event_plan, '')), NOT is_cancellation
            ) AS plan_mrr,
            maxIf(timestamp, NOT is_cancellation) AS subscribed_at,
            maxIf(timestamp, is_cancellation) AS cancelled_at,
            countIf(is_cancellation) > 0 AND cancelled_at > subscribed_at AS cancelled
        FROM billing_events
        GROUP BY account
        HAVING account IS NOT NULL AND account != '' AND countIf(NOT is_cancellation) > 0
    ),
    activity AS (
        SELECT
            account,
            countIf(event != '$exception') AS events_30d,
            countIf(event != '$exception' AND timestamp > {as_of} - INTERVAL 14 DAY) AS events_last_14d,
            countIf(
                event != '$exception'
                AND timestamp <= {as_of} - INTERVAL 14 DAY AND timestamp > {as_of} - INTERVAL 28 DAY
            ) AS events_prev_14d,
            countIf(event = '$exception') AS errors_30d,
            countIf(event = 'support_ticket_opened') AS tickets_30d
        FROM (
            SELECT toString({account_property}) AS account, event, timestamp
            FROM events
            WHERE timestamp > {as_of} - INTERVAL 30 DAY AND timestamp <= {as_of}
        )
        GROUP BY account
    ),
    signals AS (
        SELECT
            billing.account AS account,
            billing.plan AS plan,
            if(billing.cancelled, 0, billing.plan_mrr) AS mrr,
            billing.cancelled AS cancelled,
            billing.cancelled_at AS cancelled_at,
            coalesce(activity.events_30d, 0) AS events_30d,
            coalesce(activity.events_last_14d, 0) AS events_last_14d,
            coalesce(activity.events_prev_14d, 0) AS events_prev_14d,
            coalesce(activity.errors_30d, 0) AS errors_30d,
            coalesce(activity.tickets_30d, 0) AS tickets_30d
        FROM billing
        LEFT JOIN activity ON billing.account = activity.account
    ),
    -- Each component is 0..1. Usage is log(1 + events) over log(1 + the busiest account's events),
    -- so ten times the events adds a fixed step, and one very busy account cannot push the rest to 0.
    components AS (
        SELECT
            *,
            events_last_14d - events_prev_14d AS trend,
            log(1 + events_30d) / log(1 + greatest(max(events_30d) OVER (), 1)) AS usage_component,
            greatest(0, least(1,
                0.5 + trend / greatest(events_prev_14d, {trend_min_base}) / (2 * {trend_full_scale})
            )) AS trend_component,
            1 - least(1,
                1000 * (errors_30d + tickets_30d) / greatest(events_30d, {friction_min_events}) / {friction_ceiling}
            ) AS friction_component,
            coalesce(greatest(0, mrr) / nullIf(greatest(max(mrr) OVER (), 0), 0), 0) AS revenue_component
        FROM signals
    ),
    -- Weights are scaled to sum to 100; each component loses weight * (1 - component) points.
    scored AS (
        SELECT
            *,
            100 / ({w_usage} + {w_trend} + {w_friction} + {w_revenue}) AS weight_scale,
            {w_usage} * weight_scale * (1 - usage_component) AS usage_lost,
            {w_trend} * weight_scale * (1 - trend_component) AS trend_lost,
            {w_friction} * weight_scale * (1 - friction_component) AS friction_lost,
            {w_revenue} * weight_scale * (1 - revenue_component) AS revenue_lost,
            -- A cancelled account has left, whatever events still arrive, so it scores 0.
            if(cancelled, 0, round(
                greatest(0, least(100, 100 - usage_lost - trend_lost - friction_lost - revenue_lost)), 1
            )) AS health_score,
            greatest(usage_lost, trend_lost, friction_lost, revenue_lost) AS top_lost
        FROM components
    )
SELECT
    account,
    plan,
    mrr,
    events_30d,
    trend,
    errors_30d,
    tickets_30d,
    health_score,
    multiIf(
        health_score < {band_warn}, 'critical',
        health_score < {band_ok}, 'warn',
        health_score < {band_healthy}, 'ok',
        health_score < {band_champion}, 'healthy',
        'champion'
    ) AS status,
    -- A cancellation outranks every component. Otherwise the signal is the component that loses
    -- the most points, unless none loses 5 or more.
    multiIf(
        cancelled, concat('subscription cancelled ', toString(toDate(cancelled_at))),
        top_lost < 5, 'none',
        top_lost = friction_lost AND errors_30d > 0 AND tickets_30d > 0,
            concat('errors: ', toString(errors_30d), ', support tickets: ', toString(tickets_30d), ' in 30 days'),
        top_lost = friction_lost AND tickets_30d > 0,
            concat('support tickets: ', toString(tickets_30d), ' in 30 days'),
        top_lost = friction_lost, concat('errors: ', toString(errors_30d), ' in 30 days'),
        top_lost = trend_lost AND trend < 0,
            concat(
                'usage down ', toString(round(-100 * trend / greatest(events_prev_14d, 1))),
                '% (', toString(trend), ' events)'
            ),
        top_lost = trend_lost,
            concat(
                'little usage growth: +', toString(round(100 * trend / greatest(events_prev_14d, 1))),
                '% (+', toString(trend), ' events)'
            ),
        -- Usage is scored against the busiest account, so the signal gives the share of its events.
        top_lost = usage_lost,
            concat(
                'usage: ', toString(events_30d), ' events in 30 days, ',
                toString(round(100 * events_30d / greatest(max(events_30d) OVER (), 1))), '% of the busiest account'
            ),
        concat('low revenue: ', toString(mrr), ' MRR')
    ) AS top_risk_signal,
    round(100 * usage_component, 1) AS usage_score,
    round(100 * trend_component, 1) AS trend_score,
    round(100 * friction_component, 1) AS friction_score,
    round(100 * revenue_component, 1) AS revenue_score
FROM scored
ORDER BY if({sort} = 'desc', -health_score, health_score), account
LIMIT {limit}

/*
id = "account_health_score"
title = "Account health score"
description = """
Scores every B2B account from 0 (about to leave) to 100 (thriving), and says why.

How the score is built. Four signals each give a component from 0 to 1, and the weights say how
many of the 100 points each one is worth (any non-negative numbers; they are scaled to sum to
100). An account loses weight x (1 - component) points per signal.
- Usage: how much the account used the product in the last 30 days (window_days), counting every
  event except errors. By default it is compared with the busiest account on a log scale, so ten
  times the events adds a fixed step and one very busy account does not push everyone else to 0.
  With usage_scale = plan_tier it is the share of accounts on the same plan with at most as many
  events, so a starter account is judged against starter accounts, not enterprise ones.
- Trend: the last 14 days (trend_days) against the 14 before, as a relative change. The change is
  divided by the earlier count, or by 50 (trend_min_base) when that count is smaller, so going from
  3 to 6 events reads as +6%, not +100%. No change gives 0.5; a rise of 25% (trend_full_scale)
  or more gives 1; a fall of 25% or more gives 0.
- Friction: errors plus support tickets per 1,000 events (friction_basis = events; the count is at
  least 1,000, so a few errors at a small account do not read as a high rate), or per active user
  (friction_basis = active_users). The component falls from 1 at no friction to 0 at 5 per 1,000
  events (friction_ceiling) or 2 per active user (friction_ceiling_per_user).
- Revenue: MRR against the highest MRR of all accounts. Its weight is 0 by default; w_revenue = 100
  with the other defaults makes MRR half of the score.

Missing data is stated, never scored as good or bad. Trend has no data when the account had no
events in the earlier 14 days, friction when it had neither events nor errors in the window, and
revenue when its billing events carry no mrr. Usage always has data: no events is a usage of 0. A
signal without data drops out, the others are scaled back to 100 points, and the coverage column
says so. With only signals of weight 0 left the score is empty and the status is 'no data'.

Billing. Billing events are subscription_started, plan_changed and subscription_cancelled, read at
or before as_of. Every account with a subscription_started or plan_changed event gets a row, and
so does every account that sent other events in the window (its plan and mrr are then empty). Plan
and mrr come from the latest of those two events; when several share the latest time, the one with
the highest MRR wins, then the plan name. The account is cancelled when its latest
subscription_cancelled event is strictly later than that event. Then mrr is 0, plan stays the last
plan, and top_risk_signal reads "subscription cancelled YYYY-MM-DD" (the date in the project's
time zone). A cancellation at the same time as a start does not count, because it cannot end a
subscription that starts with it. An account that subscribes again after cancelling is active
again. A cancelled account scores 0 and is critical, whatever events it still sends.

History. `pulseboard snapshot` stores each day's scores. score_change_7d and score_change_30d
compare today's score with the stored score of 7 and 30 days before (or the latest stored day up
to 6 days earlier), and score_history lists the stored scores of the last 30 days.

On RavenStack. RavenStack (River @ Rivalytics) is a synthetic SaaS data set of 500 accounts,
2023-2024, imported with the mappings in tests/mappings; tests/test_ravenstack.py checks every
figure below. Scored with the defaults at the end of each day (23:59:59 UTC), accounts that have
not cancelled fall into these bands (the median is of their scores):

    as_of       rows  cancelled  critical  warn   ok  healthy  champion  median
    2023-06-30   445          7        33   168  129       96        12    57.05
    2023-12-31   469         22        49   140  133      105        20    57.6
    2024-06-30   475         39        44   112  158      101        21    59.55
    2024-12-31   500         62        43   129  148      100        18    58.75

Share of those accounts with a churn event in the 90 days after as_of, per band:

    as_of       critical     warn        ok          healthy     champion
    2023-12-31  6/49 12%     17/140 12%  14/133 11%  7/105 7%    1/20 5%
    2024-06-30  9/44 20%     23/112 21%  37/158 23%  23/101 23%  6/21 29%

The score spreads accounts over every band, and most top risk signals are low usage or errors.
It does not separate accounts that churn next: the two dates disagree, and the churn labels of
this synthetic data are known to carry little signal. The formula was not tuned to them. The
data also limits the coverage columns: 19,142 of the 25,000 feature usage rows predate the start
of the subscription they belong to, so on 2023-06-30 374 of the 445 accounts with a row have
events but no subscription start yet: no plan, no mrr, and no revenue data.
"""
prompt = """
Score every B2B account 0-100 on usage, usage trend, revenue and friction (errors and support
tickets) over the last 30 days, band each one as critical, warn, ok, healthy or champion, and
name the signals that cost each account the most points, lowest scores first.
"""

[[parameters]]
name = "as_of"
type = "datetime"
default = "now"
description = "Time the windows end at (UTC when no offset is given)."

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
description = "Weight of the revenue component (MRR against the highest MRR); 100 with the other defaults makes MRR half of the score."

[[parameters]]
name = "window_days"
type = "integer"
default = 30
min = 1
max = 365
description = "Days before as_of that usage, errors and support tickets are counted over. The columns ending in _30d cover this window, whatever its length."

[[parameters]]
name = "trend_days"
type = "integer"
default = 14
min = 1
max = 182
description = "Days of each of the two periods the trend compares: the last trend_days against the trend_days before."

[[parameters]]
name = "usage_scale"
type = "enum"
values = ["all_accounts", "plan_tier"]
default = "all_accounts"
description = "all_accounts compares usage with the busiest account on a log scale; plan_tier gives the share of accounts on the same plan with at most as many events."

[[parameters]]
name = "trend_full_scale"
type = "number"
default = 0.25
min = 0.01
max = 10
description = "Relative change of the last trend_days against the trend_days before that earns the full trend component; its negative earns 0, and no change earns half."

[[parameters]]
name = "trend_min_base"
type = "integer"
default = 50
min = 1
max = 1000000
description = "Smallest event count of the earlier period used as the base of the relative change, so small accounts do not swing between extremes."

[[parameters]]
name = "friction_basis"
type = "enum"
values = ["events", "active_users"]
default = "events"
description = "events rates errors plus support tickets per 1,000 events; active_users rates them per active user."

[[parameters]]
name = "friction_ceiling"
type = "number"
default = 5
min = 0.01
max = 1000
description = "Errors plus support tickets per 1,000 events at which the friction component reaches 0 (friction_basis = events)."

[[parameters]]
name = "friction_min_events"
type = "integer"
default = 1000
min = 1
max = 1000000
description = "Smallest event count used as the base of the friction rate, so a few errors at a small account do not read as a high rate."

[[parameters]]
name = "friction_ceiling_per_user"
type = "number"
default = 2
min = 0.01
max = 100000
description = "Errors plus support tickets per active user at which the friction component reaches 0 (friction_basis = active_users)."

[[parameters]]
name = "nps_days"
type = "integer"
default = 90
min = 1
max = 730
description = "Days before as_of whose nps_submitted responses make the nps column."

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
name = "plan"
type = "string"
default = ""
description = "Only accounts on this plan, e.g. starter; empty for every account. Scores are the same as without the filter."

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
description = "Plan of the latest subscription_started or plan_changed event at or before as_of, also for a cancelled account; empty without one."

[[columns]]
name = "mrr"
description = "Monthly recurring revenue of that same event, 0 when the account is cancelled, empty when no billing event carries an mrr."

[[columns]]
name = "events_30d"
description = "Events other than $exception in the 30 days before as_of."

[[columns]]
name = "trend"
description = "Events other than $exception in the last trend_days (14) days minus those in the trend_days before."

[[columns]]
name = "errors_30d"
description = "$exception events in the 30 days before as_of."

[[columns]]
name = "tickets_30d"
description = "support_ticket_opened events in the 30 days before as_of."

[[columns]]
name = "health_score"
description = "Weighted score from 0 to 100, one decimal. Empty when no weighted signal has data; status is then 'no data'."

[[columns]]
name = "status"
description = "Band of the score: critical, warn, ok, healthy or champion."

[[columns]]
name = "top_risk_signal"
description = "'subscription cancelled YYYY-MM-DD' for a cancelled account. Otherwise the component that costs the most points, with its figure and how it compares with the median account, or 'none' when no component costs 5 points or more."

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

[[columns]]
name = "trend_change_pct"
description = "trend as a percentage of the earlier period's events, or of trend_min_base when that is larger."

[[columns]]
name = "active_users_30d"
description = "Distinct users (distinct_id) with events other than $exception in the window."

[[columns]]
name = "last_seen_days_ago"
description = "Whole days from the account's latest event of any user, at or before as_of, to as_of."

[[columns]]
name = "nps"
description = "Net promoter score of the account's nps_submitted responses (property score, 0-10) in the last nps_days days: % of 9-10 minus % of 0-6. Empty without responses."

[[columns]]
name = "coverage"
description = "Signals that had data, then those without data and the weight moved from them to the others."

[[columns]]
name = "second_risk_signal"
description = "The component that costs the next most points after top_risk_signal, in the same form, or 'none' below 5 points."

[[columns]]
name = "score_change_7d"
description = "health_score minus the stored snapshot score of 7 days before as_of's day (or the latest stored day up to 6 days earlier); empty without one."

[[columns]]
name = "score_change_30d"
description = "health_score minus the stored snapshot score of 30 days before (or the latest stored day up to 6 days earlier); empty without one."

[[columns]]
name = "score_history"
description = "Stored snapshot scores of the last 30 days up to as_of's day, oldest first; empty without snapshots."
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
            countIf(event != '$exception' AND in_window) AS events_30d,
            uniqExactIf(distinct_id, event != '$exception' AND in_window) AS active_users_30d,
            countIf(event != '$exception' AND timestamp > {as_of} - toIntervalDay({trend_days})) AS events_last_14d,
            countIf(
                event != '$exception'
                AND timestamp <= {as_of} - toIntervalDay({trend_days})
                AND timestamp > {as_of} - toIntervalDay(2 * {trend_days})
            ) AS events_prev_14d,
            countIf(event = '$exception' AND in_window) AS errors_30d,
            countIf(event = 'support_ticket_opened' AND in_window) AS tickets_30d,
            countIf(
                event NOT IN ('subscription_started', 'plan_changed', 'subscription_cancelled') AND in_window
            ) AS own_events
        FROM (
            SELECT
                toString({account_property}) AS account,
                event,
                distinct_id,
                timestamp,
                timestamp > {as_of} - toIntervalDay({window_days}) AS in_window
            FROM events
            WHERE timestamp > {as_of} - toIntervalDay(greatest({window_days}, 2 * {trend_days}))
                AND timestamp <= {as_of}
        )
        GROUP BY account
    ),
    last_seen AS (
        SELECT toString({account_property}) AS account, max(timestamp) AS last_event_at
        FROM events
        WHERE timestamp <= {as_of}
        GROUP BY account
    ),
    -- NPS = % promoters (score 9-10) - % detractors (0-6) of the responses in the NPS window.
    nps_responses AS (
        SELECT
            account,
            round(100 * (countIf(score >= 9) - countIf(score <= 6)) / count()) AS nps
        FROM (
            SELECT toString({account_property}) AS account, toFloat(properties.score) AS score
            FROM events
            WHERE event = 'nps_submitted'
                AND timestamp > {as_of} - toIntervalDay({nps_days}) AND timestamp <= {as_of}
        )
        WHERE score IS NOT NULL AND score >= 0 AND score <= 10
        GROUP BY account
    ),
    -- Every account with a subscription_started or plan_changed event, and every account that
    -- sent other events in the window without one (its plan and mrr are then empty).
    accounts AS (
        SELECT account FROM billing
        UNION DISTINCT
        SELECT account FROM activity WHERE own_events > 0 AND account IS NOT NULL AND account != ''
    ),
    signals AS (
        SELECT
            accounts.account AS account,
            billing.plan AS plan,
            if(billing.cancelled, 0, billing.plan_mrr) AS mrr,
            coalesce(billing.cancelled, false) AS cancelled,
            billing.cancelled_at AS cancelled_at,
            coalesce(activity.events_30d, 0) AS events_30d,
            coalesce(activity.active_users_30d, 0) AS active_users_30d,
            coalesce(activity.events_last_14d, 0) AS events_last_14d,
            coalesce(activity.events_prev_14d, 0) AS events_prev_14d,
            coalesce(activity.errors_30d, 0) AS errors_30d,
            coalesce(activity.tickets_30d, 0) AS tickets_30d,
            last_seen.last_event_at AS last_event_at,
            nps_responses.nps AS nps
        FROM accounts
        LEFT JOIN billing ON accounts.account = billing.account
        LEFT JOIN activity ON accounts.account = activity.account
        LEFT JOIN last_seen ON accounts.account = last_seen.account
        LEFT JOIN nps_responses ON accounts.account = nps_responses.account
    ),
    -- Each component is 0..1; see the header for what each one measures.
    components AS (
        SELECT
            *,
            events_last_14d - events_prev_14d AS trend,
            trend / greatest(events_prev_14d, {trend_min_base}) AS trend_change,
            events_prev_14d > 0 AS has_trend,
            events_30d > 0 OR errors_30d > 0 AS has_friction,
            mrr IS NOT NULL AS has_revenue,
            log(1 + events_30d) / log(1 + greatest(max(events_30d) OVER (), 1)) AS usage_log_share,
            if(events_30d = 0, 0, cume_dist() OVER (PARTITION BY plan ORDER BY events_30d)) AS usage_plan_rank,
            if({usage_scale} = 'plan_tier', usage_plan_rank, usage_log_share) AS usage_component,
            greatest(0, least(1, 0.5 + trend_change / (2 * {trend_full_scale}))) AS trend_component,
            if(
                {friction_basis} = 'active_users',
                (errors_30d + tickets_30d) / greatest(active_users_30d, 1) / {friction_ceiling_per_user},
                1000 * (errors_30d + tickets_30d) / greatest(events_30d, {friction_min_events}) / {friction_ceiling}
            ) AS friction_ratio,
            1 - least(1, friction_ratio) AS friction_component,
            coalesce(greatest(0, mrr) / nullIf(greatest(max(mrr) OVER (), 0), 0), 0) AS revenue_component,
            medianIf(friction_ratio, has_friction AND NOT cancelled) OVER () AS median_friction_ratio,
            medianIf(mrr, has_revenue AND NOT cancelled) OVER () AS median_mrr
        FROM signals
    ),
    -- A signal without data keeps no weight. The weights of the signals with data are scaled to
    -- sum to 100, and each component loses weight * (1 - component) points.
    scored AS (
        SELECT
            *,
            {w_usage} AS weight_usage,
            if(has_trend, {w_trend}, 0) AS weight_trend,
            if(has_friction, {w_friction}, 0) AS weight_friction,
            if(has_revenue, {w_revenue}, 0) AS weight_revenue,
            weight_usage + weight_trend + weight_friction + weight_revenue AS weight_total,
            100 / nullIf(weight_total, 0) AS weight_scale,
            weight_usage * weight_scale * (1 - usage_component) AS usage_lost,
            weight_trend * weight_scale * (1 - trend_component) AS trend_lost,
            weight_friction * weight_scale * (1 - friction_component) AS friction_lost,
            weight_revenue * weight_scale * (1 - revenue_component) AS revenue_lost,
            -- A cancelled account has left, whatever events still arrive, so it scores 0.
            multiIf(
                cancelled, 0,
                weight_total = 0, NULL,
                round(greatest(0, least(100, 100 - usage_lost - trend_lost - friction_lost - revenue_lost)), 1)
            ) AS health_score,
            100 * (
                if(has_trend, 0, {w_trend}) + if(has_friction, 0, {w_friction}) + if(has_revenue, 0, {w_revenue})
            ) / ({w_usage} + {w_trend} + {w_friction} + {w_revenue}) AS moved_weight,
            concat(' in ', toString({window_days}), ' days') AS window_text,
            concat(
                'usage: ', toString(events_30d), ' events', window_text, ', ',
                if(
                    {usage_scale} = 'plan_tier',
                    concat(
                        'at most as many as ', toString(round(100 * usage_plan_rank)), '% of accounts on plan ',
                        coalesce(plan, 'unknown')
                    ),
                    concat(
                        toString(round(100 * events_30d / greatest(max(events_30d) OVER (), 1))),
                        '% of the busiest account'
                    )
                )
            ) AS usage_text,
            if(
                trend < 0,
                concat('usage down ', toString(round(-100 * trend_change)), '% (', toString(trend), ' events)'),
                concat('little usage growth: +', toString(round(100 * trend_change)), '% (+', toString(trend), ' events)')
            ) AS trend_text,
            concat(
                multiIf(
                    errors_30d > 0 AND tickets_30d > 0,
                        concat('errors: ', toString(errors_30d), ', support tickets: ', toString(tickets_30d)),
                    tickets_30d > 0, concat('support tickets: ', toString(tickets_30d)),
                    concat('errors: ', toString(errors_30d))
                ),
                window_text,
                if(
                    median_friction_ratio > 0,
                    concat(', ', toString(round(friction_ratio / median_friction_ratio, 1)), 'x the median'),
                    ', the median account has none'
                ),
                if({friction_basis} = 'active_users', concat(' per active user (', toString(active_users_30d), ')'), '')
            ) AS friction_text,
            concat(
                'low revenue: ', toString(mrr), ' MRR',
                if(median_mrr > 0, concat(', ', toString(round(mrr / median_mrr, 1)), 'x the median'), '')
            ) AS revenue_text,
            -- Components by points lost; on a tie friction comes first, then trend, usage, revenue.
            arrayReverseSort(
                signal -> (signal.1, signal.3),
                [
                    (usage_lost, usage_text, 2),
                    (trend_lost, trend_text, 3),
                    (friction_lost, friction_text, 4),
                    (revenue_lost, revenue_text, 1)
                ]
            ) AS ranked_signals
        FROM components
    ),
    -- Days are dates in the project's time zone, as `pulseboard snapshot` stores them. The 37
    -- days ending on as_of's day cover score_history and both score changes.
    snapshots AS (
        SELECT account, day, health_score AS score
        FROM health_snapshots
        WHERE day > toDate(toTimeZone({as_of}, timezone())) - 37 AND day <= toDate(toTimeZone({as_of}, timezone()))
    ),
    history AS (
        SELECT
            account,
            toDate(toTimeZone({as_of}, timezone())) AS today,
            arrayMap(entry -> entry.2, arraySort(entry -> entry.1, groupArrayIf((day, score), day > today - 30)))
                AS score_history,
            argMaxIf(score, day, day <= today - 7 AND day > today - 14) AS score_7d_ago,
            countIf(day <= today - 7 AND day > today - 14) > 0 AS has_7d,
            argMaxIf(score, day, day <= today - 30 AND day > today - 37) AS score_30d_ago,
            countIf(day <= today - 30 AND day > today - 37) > 0 AS has_30d
        FROM snapshots
        GROUP BY account
    )
SELECT
    scored.account AS account,
    plan,
    mrr,
    events_30d,
    trend,
    errors_30d,
    tickets_30d,
    health_score,
    multiIf(
        health_score IS NULL, 'no data',
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
        tupleElement(arrayElement(ranked_signals, 1), 1) < 5, 'none',
        tupleElement(arrayElement(ranked_signals, 1), 2)
    ) AS top_risk_signal,
    round(100 * usage_component, 1) AS usage_score,
    round(100 * trend_component, 1) AS trend_score,
    round(100 * friction_component, 1) AS friction_score,
    round(100 * revenue_component, 1) AS revenue_score,
    round(100 * trend_change, 1) AS trend_change_pct,
    active_users_30d,
    if(
        last_event_at IS NULL, NULL, intDiv(dateDiff('second', last_event_at, {as_of}), 86400)
    ) AS last_seen_days_ago,
    nps,
    concat(
        arrayStringConcat(
            arrayFilter(name -> name != '', [
                'usage', if(has_trend, 'trend', ''), if(has_friction, 'friction', ''), if(has_revenue, 'revenue', '')
            ]),
            ', '
        ),
        if(
            has_trend AND has_friction AND has_revenue,
            '',
            concat(
                '; no data: ',
                arrayStringConcat(
                    arrayFilter(name -> name != '', [
                        if(has_trend, '', 'trend'), if(has_friction, '', 'friction'), if(has_revenue, '', 'revenue')
                    ]),
                    ', '
                ),
                if(
                    moved_weight > 0,
                    concat(' (', toString(round(moved_weight, 1)), ' of 100 weight points moved to the signals with data)'),
                    ''
                )
            )
        )
    ) AS coverage,
    multiIf(
        cancelled AND tupleElement(arrayElement(ranked_signals, 1), 1) >= 5, tupleElement(arrayElement(ranked_signals, 1), 2),
        NOT cancelled AND tupleElement(arrayElement(ranked_signals, 2), 1) >= 5, tupleElement(arrayElement(ranked_signals, 2), 2),
        'none'
    ) AS second_risk_signal,
    if(history.has_7d, round(health_score - history.score_7d_ago, 1), NULL) AS score_change_7d,
    if(history.has_30d, round(health_score - history.score_30d_ago, 1), NULL) AS score_change_30d,
    history.score_history AS score_history
FROM scored
LEFT JOIN history ON scored.account = history.account
WHERE {plan} = '' OR plan = {plan}
ORDER BY if({sort} = 'desc', -health_score, health_score), account
LIMIT {limit}

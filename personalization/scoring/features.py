"""Point-in-time features and labels, computed in DuckDB SQL.

Everything time-dependent is computed from the event and order marts filtered to rows
strictly before the cut-off (a DATE, exclusive: cut-off `2026-01-01` sees all of
2025-12-31 and nothing later). The profile mart only contributes consent, evaluated against
its own timestamps, so a feature row for a past cut-off is what we could have known then.
Labels look at the following horizon `[cutoff, cutoff + horizon)`.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

NUMERIC_FEATURES = [
    "recency_days", "frequency", "monetary", "avg_order_value", "inter_purchase_days_mean",
    "days_since_first_order", "tenure_days", "orders_last_90", "spend_last_90",
    "spend_prev_90", "spend_trend_90",
    "product_views_7", "product_views_30", "product_views_90",
    "add_to_carts_7", "add_to_carts_30", "add_to_carts_90",
    "email_opens_7", "email_opens_30", "email_opens_90",
    "email_clicks_7", "email_clicks_30", "email_clicks_90",
    "days_since_last_activity", "top_category_share", "category_count", "is_opted_in",
]
CATEGORICAL_FEATURES = ["device"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# Money is added as exact decimals, as the marts' exact_sum macro does: DuckDB adds doubles
# in parallel in any order, so their sums varied in the last bits from run to run, now and
# then across a rounding step of the features (a retrained model then got another data hash
# and version).
EXACT_MONEY = "decimal(38, 9)"

# Purchases are placed orders only: cancelled and refunded orders are not revenue.
_FEATURES_SQL = """
with
past_orders as (
    -- Amounts as exact decimals: see EXACT_MONEY.
    select unified_id, ordered_at, total_amount::{exact_money} as total_amount
    from orders
    where status = 'placed' and unified_id is not null and ordered_at < $cutoff::timestamp
      and {sample_filter}
),

order_features as (
    select
        unified_id,
        count(*) as frequency,
        sum(total_amount) as monetary,
        avg(total_amount) as avg_order_value,
        (epoch($cutoff::timestamp) - epoch(max(ordered_at))) / 86400.0 as recency_days,
        (epoch($cutoff::timestamp) - epoch(min(ordered_at))) / 86400.0 as days_since_first_order,
        case when count(*) > 1
            then (epoch(max(ordered_at)) - epoch(min(ordered_at))) / 86400.0 / (count(*) - 1)
        end as inter_purchase_days_mean,
        count(*) filter (where ordered_at >= $cutoff::timestamp - interval 90 day)
            as orders_last_90,
        coalesce(sum(total_amount) filter (
            where ordered_at >= $cutoff::timestamp - interval 90 day), 0) as spend_last_90,
        coalesce(sum(total_amount) filter (
            where ordered_at >= $cutoff::timestamp - interval 180 day
              and ordered_at < $cutoff::timestamp - interval 90 day), 0) as spend_prev_90,
        min(ordered_at) as first_order_at
    from past_orders
    group by unified_id
),

engagement as (
    select
        unified_id,
        {engagement_sums},
        max(activity_on) as last_activity_on,
        min(activity_on) as first_activity_on
    from customer_engagement_daily
    where activity_on < $cutoff::date
      and unified_id in (select unified_id from order_features)
    group by unified_id
),

category_spend as (
    select unified_id, category, sum(line_amount::{exact_money}) as spend
    from order_items
    where status = 'placed' and unified_id is not null and ordered_at < $cutoff::timestamp
      and unified_id in (select unified_id from order_features)
    group by unified_id, category
),

category_mix as (
    select
        unified_id,
        max(spend) / nullif(sum(spend), 0) as top_category_share,
        count(*) as category_count
    from category_spend
    group by unified_id
),

{main_device}

consent as (
    -- Consent as it stood at the cut-off, from the profile's own timestamps.
    select
        unified_id,
        case
            when opted_in_at is not null then opted_in_at < $cutoff::timestamp
            else coalesce(is_opted_in, false)
        end
        and not coalesce(unsubscribed_at < $cutoff::timestamp
                         and unsubscribed_at >= coalesce(opted_in_at, unsubscribed_at), false)
            as is_opted_in
    from customer_profiles
),

final as (
    select
        o.unified_id,
        o.recency_days,
        o.frequency,
        o.monetary,
        o.avg_order_value,
        -- Sentinels instead of nulls: gradient boosting fails on a feature that is null in
        -- every row (e.g. no pixel history yet at an old cut-off).
        coalesce(o.inter_purchase_days_mean, -1) as inter_purchase_days_mean,
        o.days_since_first_order,
        (epoch($cutoff::timestamp) - epoch(least(o.first_order_at,
            coalesce(e.first_activity_on::timestamp, o.first_order_at)))) / 86400.0
            as tenure_days,
        o.orders_last_90,
        o.spend_last_90,
        o.spend_prev_90,
        o.spend_last_90 - o.spend_prev_90 as spend_trend_90,
        {engagement_columns},
        coalesce(date_diff('day', e.last_activity_on, $cutoff::date), 10000)
            as days_since_last_activity,
        coalesce(c.top_category_share, 0) as top_category_share,
        coalesce(c.category_count, 0) as category_count,
        coalesce(p.is_opted_in, false)::double as is_opted_in,
        coalesce(d.device, 'unknown') as device
    from order_features as o
    left join engagement as e on o.unified_id = e.unified_id
    left join category_mix as c on o.unified_id = c.unified_id
    left join main_device as d on o.unified_id = d.unified_id
    left join consent as p on o.unified_id = p.unified_id
)

select * from final order by unified_id
"""

_LABELS_SQL = """
with
future as (
    select unified_id, count(*) as future_orders,
        sum(total_amount::{exact_money}) as future_spend  -- exact: see EXACT_MONEY
    from orders
    where status = 'placed' and unified_id is not null
      and ordered_at >= $cutoff::timestamp
      and ordered_at < $cutoff::timestamp + to_days($horizon)
    group by unified_id
),

population as (
    select distinct unified_id
    from orders
    where status = 'placed' and unified_id is not null and ordered_at < $cutoff::timestamp
      and {sample_filter}
),

joined as (
    select
        p.unified_id,
        coalesce(f.future_orders, 0) as future_orders,
        coalesce(f.future_spend, 0) as future_spend
    from population as p
    left join future as f on p.unified_id = f.unified_id
),

final as (
    select
        unified_id,
        future_spend,
        future_orders = 0 as is_churned,
        -- Top 10% of the population by spend in the horizon (ties broken by id so the
        -- share is exactly ceil(10%)); a person who spent nothing is never VIP.
        future_spend > 0 and row_number() over (order by future_spend desc, unified_id)
            <= ceil(0.1 * count(*) over ()) as is_vip
    from joined
)

select * from final order by unified_id
"""

# A deterministic sample of persons: `$sample` of every 10,000 (by a hash of unified_id, so a
# person is in or out at every cut-off and in every run); null keeps everyone.
SAMPLE_FILTER = "($sample::bigint is null or hash(unified_id) % 10000 < $sample::bigint)"
_LABELS_SQL = _LABELS_SQL.format(sample_filter=SAMPLE_FILTER, exact_money=EXACT_MONEY)

# A person's main device: most events, then most recently used, then alphabetically; the
# definition of customer_profiles.main_device (int_customers__event_activity), so nightly
# scoring can read it from the profile (built for that very night) instead of grouping every
# event again (50 of the 56 CPU seconds of features at 1M persons).
_DEVICE_FROM_EVENTS = """device_counts as (
    select unified_id, device, count(*) as events, max(occurred_at) as last_used_at
    from customer_events
    where occurred_at < $cutoff::timestamp
      and device is not null
      and unified_id in (select unified_id from order_features)
    group by unified_id, device
),

main_device as (
    select unified_id, device
    from device_counts
    qualify row_number() over (partition by unified_id
                               order by events desc, last_used_at desc, device) = 1
),"""
_DEVICE_FROM_PROFILE = """main_device as (
    select unified_id, main_device as device
    from customer_profiles
    where main_device is not null
),"""

_WINDOWS = (7, 30, 90)
_ENGAGEMENT = {"product_views": "product_views", "add_to_carts": "add_to_carts",
               "email_opens": "email_opens", "email_clicks": "email_clicks"}


def _render_features_sql(main_device: str) -> str:
    sums, columns = [], []
    for name, source in _ENGAGEMENT.items():
        for days in _WINDOWS:
            sums.append(f"coalesce(sum({source}) filter (where activity_on >= "
                        f"$cutoff::date - interval {days} day), 0) as {name}_{days}")
            columns.append(f"coalesce(e.{name}_{days}, 0) as {name}_{days}")
    return _FEATURES_SQL.format(engagement_sums=",\n        ".join(sums),
                                engagement_columns=",\n        ".join(columns),
                                sample_filter=SAMPLE_FILTER, main_device=main_device,
                                exact_money=EXACT_MONEY)


FEATURES_SQL = _render_features_sql(_DEVICE_FROM_EVENTS)
FEATURES_FROM_PROFILE_SQL = _render_features_sql(_DEVICE_FROM_PROFILE)


def profiles_current(con: duckdb.DuckDBPyConnection, ds: date) -> bool:
    """Whether customer_profiles was built for `ds` (so its main_device is the one of the
    events up to the end of `ds`, as features at cut-off `ds + 1` would compute it)."""
    built = con.execute("select max(as_of_date) from customer_profiles").fetchone()[0]
    return built == ds


def build_features(con: duckdb.DuckDBPyConnection, cutoff: date,
                   sample: int | None = None, device_from_profile: bool = False) -> pd.DataFrame:
    """Feature rows as of `cutoff` for everyone with a placed order before it.

    Args:
        con: a (read-only) warehouse connection.
        cutoff: exclusive cut-off date; nothing at or after its midnight is read.
        sample: keep only persons whose unified_id hashes below `sample` of 10,000
            (training on a sample); None keeps everyone.
        device_from_profile: read the main device from customer_profiles (only right when
            the profiles were built for `cutoff - 1 day`: see `profiles_current`).

    Returns:
        One row per `unified_id`, sorted by it, with the columns in `FEATURES`.
    """
    sql = FEATURES_FROM_PROFILE_SQL if device_from_profile else FEATURES_SQL
    df = con.execute(sql, {"cutoff": cutoff, "sample": sample}).df()
    # DuckDB sums doubles in parallel, so the last bits vary between runs; rounding makes
    # the features (and so the data hash, the model and the scores) reproducible.
    df[NUMERIC_FEATURES] = df[NUMERIC_FEATURES].astype("float64").round(6)
    return df


def build_labels(con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int,
                 sample: int | None = None) -> pd.DataFrame:
    """Churn and VIP labels for the horizon after `cutoff`, for the same population
    (and the same `sample` as `build_features`).

    Returns:
        `unified_id, future_spend, is_churned, is_vip`, sorted by `unified_id`.
    """
    labels = con.execute(_LABELS_SQL, {"cutoff": cutoff, "horizon": horizon_days,
                                       "sample": sample}).df()
    labels["future_spend"] = labels["future_spend"].astype("float64").round(6)
    return labels


def count_training_rows(con: duckdb.DuckDBPyConnection, cutoffs: list[date]) -> int:
    """Rows `build_training_frame` gives without sampling: buyers before each cut-off."""
    total = 0
    for cutoff in cutoffs:
        total += con.execute(
            "select count(distinct unified_id) from orders where status = 'placed' "
            "and unified_id is not null and ordered_at < $cutoff::timestamp",
            {"cutoff": cutoff}).fetchone()[0]
    return int(total)


def build_training_frame(con: duckdb.DuckDBPyConnection, cutoffs: list[date],
                         horizon_days: int, sample: int | None = None) -> pd.DataFrame:
    """Features joined to labels for several cut-offs, stacked (one row per person and cut-off),
    for a `sample` of persons (see `build_features`)."""
    frames = []
    for cutoff in cutoffs:
        feats = build_features(con, cutoff, sample)
        labels = build_labels(con, cutoff, horizon_days, sample)
        frame = feats.merge(labels, on="unified_id", how="inner", validate="one_to_one")
        frame["cutoff"] = pd.Timestamp(cutoff)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

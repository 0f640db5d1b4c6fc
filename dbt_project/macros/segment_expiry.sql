{#-
    Segment expiry: a member whose last activity (last visit, order, email open or click;
    first seen when there is nothing else) is more than the segment's expires_after_days
    before the end of ds drops out. Members with no activity timestamps at all are kept:
    there is no evidence they went quiet. `members` is a relation/CTE with
    (segment, unified_id, expires_after_days); `profiles` one with customer_profiles' columns.
-#}
{% macro segment_apply_expiry(members, profiles) %}
    select
        m.segment,
        m.unified_id
    from {{ members }} as m
    left join {{ profiles }} as p
        on m.unified_id = p.unified_id
    where
        coalesce(
            greatest(p.last_seen_at, p.last_order_at, p.last_email_open_at,
                     p.last_email_click_at, p.first_seen_at),
            {{ segment_window_end() }}
        ) >= {{ dbt.dateadd('day', '-1 * m.expires_after_days', segment_window_end()) }}
{% endmacro %}

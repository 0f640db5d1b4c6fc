{#-
    Add-to-carts still in a person's cart: in the last `days` days up to the end of ds and
    after their last checkout start, purchase or order. One definition for the
    cart_abandoners segment and the shipping nudge of the content rules.
    Returns a select of (unified_id, sku, occurred_at) over the relations `events`
    (customer_events) and `orders`. It reads `events` twice: pass the model's ref, not a CTE
    name (DuckDB copies a CTE read more than once whole, every event of the window).
    Only checkouts and orders inside the window are read: one before it is before every add
    it could cancel, so the result is the same as with every one since the first event, and
    the filter on the event time lets DuckDB skip the row groups of older deliveries.
-#}
{% macro open_cart_adds(events, orders, days) -%}
    select cart_events.unified_id, cart_events.sku, cart_events.occurred_at
    from {{ events }} as cart_events
    left join (
        select unified_id, max(checked_out_at) as last_checked_out_at
        from (
            select unified_id, occurred_at as checked_out_at
            from {{ events }}
            where event_type in ('checkout_start', 'purchase')
              and {{ segment_in_window('occurred_at', days) }}
            union all
            select unified_id, ordered_at as checked_out_at
            from {{ orders }}
            where {{ segment_in_window('ordered_at', days) }}
        ) as checkouts
        where unified_id is not null
        group by unified_id
    ) as last_checkout on cart_events.unified_id = last_checkout.unified_id
    where cart_events.unified_id is not null
      and cart_events.event_type = 'add_to_cart'
      and cart_events.sku is not null
      and {{ segment_in_window('cart_events.occurred_at', days) }}
      and (last_checkout.last_checked_out_at is null
           or cart_events.occurred_at > last_checkout.last_checked_out_at)
{%- endmacro %}
